package message_test

import (
	"errors"
	"testing"

	"github.com/lintel-io/lintel/message"
)

func TestCodecFor(t *testing.T) {
	tests := []struct {
		ct   string
		want string // the codec's content type; "" means an error
	}{
		{"application/msgpack", message.ContentTypeMsgpack},
		{"application/x-msgpack", message.ContentTypeMsgpack},
		{"application/vnd.msgpack", message.ContentTypeMsgpack},
		{"Application/MsgPack", message.ContentTypeMsgpack},
		{"application/cloudevents+json", message.ContentTypeCloudEventsJSON},
		{"application/cloudevents+json; charset=utf-8", message.ContentTypeCloudEventsJSON},
		{" application/cloudevents+json ", message.ContentTypeCloudEventsJSON},
		{"application/json", ""},
		{"application/cloudevents-batch+json", ""},
		{"text/plain", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			c, err := message.CodecFor(tt.ct)
			if tt.want == "" {
				if !errors.Is(err, message.ErrUnsupportedContentType) {
					t.Fatalf("CodecFor(%q) = %v, %v; want ErrUnsupportedContentType", tt.ct, c, err)
				}
				return
			}
			if err != nil || c.ContentType() != tt.want {
				t.Fatalf("CodecFor(%q) = %v, %v; want the %s codec", tt.ct, c, err, tt.want)
			}
		})
	}
}

// TestCodecs runs every codec through the same checks.
func TestCodecs(t *testing.T) {
	for _, c := range []message.Codec{message.MsgpackCodec{}, message.CloudEventsCodec{}} {
		t.Run(c.ContentType(), func(t *testing.T) {
			e := accessEvent(t)
			if c.ContentType() == message.ContentTypeCloudEventsJSON {
				e.ContentType, e.Payload = message.ContentTypeJSON, []byte(`{"granted":true}`)
			}
			b, err := c.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			appended, err := c.Append([]byte("prefix"), e)
			if err != nil || string(appended) != "prefix"+string(b) {
				t.Fatalf("Append = %q, %v", appended, err)
			}
			var got message.Envelope
			if err := c.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			checkEqual(t, &got, e)

			// Unmarshal overwrites every field.
			stale := *accessEvent(t)
			min, _ := c.Marshal(minimalEnvelope(t))
			if err := c.Unmarshal(min, &stale); err != nil {
				t.Fatal(err)
			}
			checkEqual(t, &stale, minimalEnvelope(t))

			// Bad envelopes are refused.
			if _, err := c.Marshal(&message.Envelope{}); !errors.Is(err, message.ErrMissingField) {
				t.Errorf("Marshal(empty) = %v, want ErrMissingField", err)
			}
			// Garbage is refused without panicking.
			for _, in := range [][]byte{nil, {0}, []byte("{}"), []byte{0x80}} {
				var e message.Envelope
				var de *message.DecodeError
				if err := c.Unmarshal(in, &e); !errors.As(err, &de) {
					t.Errorf("Unmarshal(%q) = %v, want a *DecodeError", in, err)
				}
			}
		})
	}
}
