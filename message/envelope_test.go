package message_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(e *message.Envelope)
		field     string
		sentinel  error
		alsoTopic error // a topic error also wrapped, if any
	}{
		{"valid", func(e *message.Envelope) {}, "", nil, nil},
		{"zero version", func(e *message.Envelope) { e.SchemaVersion = 0 }, "", nil, nil},
		{"newer minor", func(e *message.Envelope) { e.SchemaVersion = message.NewVersion(1, 9) }, "", nil, nil},
		{"no payload", func(e *message.Envelope) { e.Payload, e.ContentType = nil, "" }, "", nil, nil},
		{"content type without payload", func(e *message.Envelope) { e.Payload = nil }, "", nil, nil},
		{"missing id", func(e *message.Envelope) { e.ID = message.ID{} }, message.FieldID, message.ErrMissingField, nil},
		{"missing time", func(e *message.Envelope) { e.Time = time.Time{} }, message.FieldTime, message.ErrMissingField, nil},
		{"time too late", func(e *message.Envelope) { e.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, message.FieldTime, message.ErrInvalidValue, nil},
		{"missing source", func(e *message.Envelope) { e.Source = topic.Thing{} }, message.FieldSource, message.ErrMissingField, nil},
		{"partial source", func(e *message.Envelope) { e.Source.Code = "" }, message.FieldSource, message.ErrInvalidValue, topic.ErrEmpty},
		{"dot in source", func(e *message.Envelope) { e.Source.Code = "a.b" }, message.FieldSource, message.ErrInvalidValue, topic.ErrInvalidChar},
		{"reserved org", func(e *message.Envelope) { e.Source.Org = "_sys" }, message.FieldSource, message.ErrInvalidValue, topic.ErrReserved},
		{"missing type", func(e *message.Envelope) { e.Type = "" }, message.FieldType, message.ErrMissingField, nil},
		{"wildcard type", func(e *message.Envelope) { e.Type = "*" }, message.FieldType, message.ErrInvalidValue, topic.ErrInvalidChar},
		{"bad utf-8 name", func(e *message.Envelope) { e.Name = "\xff" }, message.FieldName, message.ErrInvalidValue, nil},
		{"major 2", func(e *message.Envelope) { e.SchemaVersion = message.NewVersion(2, 0) }, message.FieldSchemaVersion, message.ErrUnsupportedVersion, nil},
		{"payload without content type", func(e *message.Envelope) { e.ContentType = "" }, message.FieldContentType, message.ErrMissingField, nil},
		{"control char in content type", func(e *message.Envelope) { e.ContentType = "a\nb" }, message.FieldContentType, message.ErrInvalidValue, nil},
		{"two msgpack values", func(e *message.Envelope) { e.Payload = []byte{1, 2} }, message.FieldPayload, message.ErrInvalidValue, nil},
		{"truncated msgpack", func(e *message.Envelope) { e.Payload = []byte{0x92, 1} }, message.FieldPayload, message.ErrInvalidValue, nil},
		{"any bytes as octets", func(e *message.Envelope) { e.Payload, e.ContentType = []byte{0xc1}, message.ContentTypeOctetStream }, "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := accessEvent(t)
			tt.edit(e)
			err := e.Validate()
			if tt.sentinel == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *message.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, tt.sentinel) {
				t.Fatalf("Validate = %v, want a *FieldError for %q wrapping %v", err, tt.field, tt.sentinel)
			}
			if tt.alsoTopic != nil && !errors.Is(err, tt.alsoTopic) {
				t.Errorf("Validate = %v, want it to wrap %v too", err, tt.alsoTopic)
			}
			// Encoders refuse what Validate refuses, and leave dst alone.
			dst := []byte("keep")
			if out, err := e.AppendMsgpack(dst); err == nil || string(out) != "keep" {
				t.Errorf("AppendMsgpack = %q, %v", out, err)
			}
			if out, err := e.AppendCloudEvent(dst); err == nil || string(out) != "keep" {
				t.Errorf("AppendCloudEvent = %q, %v", out, err)
			}
		})
	}
}

func TestFieldErrorText(t *testing.T) {
	e := accessEvent(t)
	e.Source.Code = "door 1"
	want := `message: field "source": invalid value: topic: thing_code "door 1": space not allowed`
	if err := e.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v\nwant %s", err, want)
	}
}

func TestSubject(t *testing.T) {
	e := accessEvent(t)
	if got, want := e.Subject().String(), "acme.hq.reader.door-1.evt"; got != want {
		t.Errorf("Subject() = %q, want %q", got, want)
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    message.Version
		wantErr bool
	}{
		{"1.0", message.CurrentVersion, false},
		{"1.7", message.NewVersion(1, 7), false},
		{"65535.65535", message.NewVersion(65535, 65535), false},
		{"2.0", message.NewVersion(2, 0), false},
		{"1", 0, true},
		{"1.", 0, true},
		{".1", 0, true},
		{"1.0.0", 0, true},
		{"+1.0", 0, true},
		{"1.-0", 0, true},
		{"65536.0", 0, true},
		{"v1.0", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := message.ParseVersion(tt.in)
			if tt.wantErr {
				if !errors.Is(err, message.ErrInvalidValue) {
					t.Fatalf("ParseVersion(%q) = %v, %v; want ErrInvalidValue", tt.in, v, err)
				}
				return
			}
			if err != nil || v != tt.want {
				t.Fatalf("ParseVersion(%q) = %v, %v; want %v", tt.in, v, err, tt.want)
			}
			if v.String() != tt.in {
				t.Errorf("String() = %q", v.String())
			}
		})
	}
	if v := message.NewVersion(3, 4); v.Major() != 3 || v.Minor() != 4 || v <= message.NewVersion(2, 9) {
		t.Error("NewVersion/Major/Minor/ordering wrong")
	}
}

func TestEnvelopeLogValue(t *testing.T) {
	e := minimalEnvelope(t)
	e.Name, e.Seq = message.NameAccessRequested, 3
	if err := message.SetPayload(e, message.AccessRequest{Door: "d", Credential: "SECRET-1234"}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).Info("got", "env", e)
	want := `level=INFO msg=got env.msg_id=0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d env.subject=acme.hq.reader.door-1.state env.name=access.requested env.seq=3 env.content_type=application/msgpack env.payload_bytes=`
	if !strings.HasPrefix(out.String(), want) || strings.Contains(out.String(), "SECRET") {
		t.Errorf("logged %q\nwant prefix %q and no payload", out.String(), want)
	}
}
