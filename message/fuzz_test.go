package message_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/; the f.Add seeds below
// only keep each fuzzer meaningful if those files go missing.

// sentinels are the errors every decode error must wrap one of.
var sentinels = []error{
	message.ErrTruncated, message.ErrTooLarge, message.ErrMalformed, message.ErrWrongType,
	message.ErrInvalidValue, message.ErrMissingField, message.ErrDuplicateField,
	message.ErrUnsupportedVersion,
}

// checkDecodeErr fails the test unless err is a *DecodeError wrapping a sentinel.
func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	var de *message.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %v wraps no sentinel", err)
}

// checkReencode checks that a decoded envelope is valid and survives both
// codecs.
func checkReencode(t *testing.T, e *message.Envelope) {
	t.Helper()
	if err := e.Validate(); err != nil {
		t.Fatalf("decoded envelope is not valid: %v\n%+v", err, *e)
	}
	b, err := e.AppendMsgpack(nil)
	if err != nil {
		t.Fatalf("AppendMsgpack of a decoded envelope: %v", err)
	}
	var back message.Envelope
	if err := back.UnmarshalMsgpack(b); err != nil {
		t.Fatalf("msgpack decode(encode(e)): %v", err)
	}
	if !equalEnvelope(&back, e) {
		t.Fatalf("msgpack decode(encode(e)) != e\n got: %+v\nwant: %+v", back, *e)
	}
	again, _ := back.AppendMsgpack(nil)
	if string(again) != string(b) {
		t.Fatal("msgpack encoding is not canonical")
	}

	j, err := e.AppendCloudEvent(nil)
	if err != nil {
		// Only a payload without a JSON form, or too deep, may fail.
		var fe *message.FieldError
		if !errors.As(err, &fe) || fe.Field != message.FieldPayload {
			t.Fatalf("AppendCloudEvent: %v", err)
		}
		return
	}
	if !json.Valid(j) {
		t.Fatalf("AppendCloudEvent wrote invalid JSON: %s", j)
	}
	var ce message.Envelope
	if err := ce.UnmarshalJSON(j); err != nil {
		if errors.Is(err, message.ErrTooLarge) && len(j) > message.DefaultMaxSize {
			return
		}
		t.Fatalf("CloudEvents decode(encode(e)): %v\n%s", err, j)
	}
	want := *e
	if isMsgpack(e.ContentType) && len(e.Payload) > 0 {
		// A msgpack payload comes back as JSON.
		if ce.ContentType != message.ContentTypeJSON || !json.Valid(ce.Payload) {
			t.Fatalf("msgpack payload came back as %q %q", ce.ContentType, ce.Payload)
		}
		want.ContentType, want.Payload = ce.ContentType, ce.Payload
	}
	if isJSON(e.ContentType) {
		want.Payload = bytes.Trim(want.Payload, " \t\r\n") // white space around JSON is not kept
	}
	if !equalEnvelope(&ce, &want) {
		t.Fatalf("CloudEvents decode(encode(e)) != e\n got: %+v\nwant: %+v\n%s", ce, want, j)
	}
	j2, err := ce.AppendCloudEvent(nil)
	if err != nil || string(j2) != string(j) {
		t.Fatalf("JSON → Envelope → JSON changed the event:\n%s\n%s (%v)", j, j2, err)
	}
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

func isMsgpack(ct string) bool {
	c, err := message.CodecFor(ct)
	return err == nil && c.ContentType() == message.ContentTypeMsgpack
}

// FuzzDecodeMsgpack feeds arbitrary bytes to the msgpack decoder: it never
// panics, fails only with a *DecodeError, and what it accepts is a valid
// envelope that both codecs reproduce.
func FuzzDecodeMsgpack(f *testing.F) {
	valid, _ := accessEvent(f).AppendMsgpack(nil)
	f.Add(valid)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		var e message.Envelope
		if err := (message.MsgpackCodec{Options: message.DecodeOptions{MaxDepth: 20}}).Unmarshal(data, &e); err != nil {
			checkDecodeErr(t, err)
			return
		}
		checkReencode(t, &e)
	})
}

// FuzzDecodeCloudEvents does the same for the CloudEvents JSON decoder.
func FuzzDecodeCloudEvents(f *testing.F) {
	valid, _ := minimalEnvelope(f).AppendCloudEvent(nil)
	f.Add(valid)
	f.Add([]byte(`{"specversion":"1.0"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e message.Envelope
		if err := (message.CloudEventsCodec{Options: message.DecodeOptions{MaxDepth: 20}}).Unmarshal(data, &e); err != nil {
			checkDecodeErr(t, err)
			return
		}
		checkReencode(t, &e)
	})
}

// FuzzRoundTrip builds envelopes from fuzzed fields: exactly the valid ones
// encode, and decode(encode(e)) == e in both codecs.
func FuzzRoundTrip(f *testing.F) {
	e := accessEvent(f)
	f.Add(e.ID[:], e.Time.UnixNano(), "acme", "hq", "reader", "door-1", "evt", e.Name, e.Seq, e.BootID[:], e.CorrelationID[:], uint16(1), uint16(0), e.ContentType, e.Payload)
	f.Fuzz(func(t *testing.T, id []byte, ns int64, org, edge, typ, code, mt, name string, seq uint64,
		boot, corr []byte, major, minor uint16, ct string, payload []byte) {
		e := &message.Envelope{
			Time:          time.Unix(0, ns).UTC(),
			Source:        topic.Thing{Org: org, Edge: edge, Type: typ, Code: code},
			Type:          topic.MessageType(mt),
			Name:          name,
			Seq:           seq,
			SchemaVersion: message.NewVersion(major, minor),
			ContentType:   ct,
			Payload:       payload,
		}
		copy(e.ID[:], id)
		copy(e.BootID[:], boot)
		copy(e.CorrelationID[:], corr)
		if len(e.Payload) == 0 {
			e.Payload = nil // decoders return nil for no payload
		}

		verr := e.Validate()
		b, err := e.AppendMsgpack(nil)
		if (verr == nil) != (err == nil) {
			t.Fatalf("Validate = %v but AppendMsgpack = %v", verr, err)
		}
		if verr != nil {
			var fe *message.FieldError
			if !errors.As(verr, &fe) {
				t.Fatalf("Validate error %v is not a *FieldError", verr)
			}
			if _, err := e.AppendCloudEvent(nil); err == nil {
				t.Fatal("AppendCloudEvent accepted an invalid envelope")
			}
			return
		}
		var back message.Envelope
		if err := back.UnmarshalMsgpack(b); err != nil {
			if errors.Is(err, message.ErrTooLarge) && (len(b) > message.DefaultMaxSize || strings.Contains(err.Error(), "nested")) {
				return
			}
			t.Fatalf("decode(encode(e)): %v", err)
		}
		if !equalEnvelope(&back, e) {
			t.Fatalf("decode(encode(e)) != e\n got: %+v\nwant: %+v", back, *e)
		}
		checkReencode(t, &back)
	})
}

// FuzzParseID checks that ParseID never panics and accepts exactly the
// canonical form, in either case.
func FuzzParseID(f *testing.F) {
	f.Add("0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := message.ParseID(s)
		if err != nil {
			if !errors.Is(err, message.ErrInvalidID) {
				t.Fatalf("ParseID(%q) = %v", s, err)
			}
			return
		}
		if got := id.String(); got != strings.ToLower(s) {
			t.Fatalf("ParseID(%q).String() = %q", s, got)
		}
	})
}
