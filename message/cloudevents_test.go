package message_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update to accept)\n got: %s\nwant: %s", path, got, want)
	}
}

func TestCloudEventsGolden(t *testing.T) {
	e := accessEvent(t)
	b, err := message.CloudEventsCodec{}.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, b, "", "  "); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b)
	}
	indented.WriteByte('\n')
	golden(t, "access_granted.cloudevents.json", indented.Bytes())

	// json.Marshal of an envelope is the same event.
	viaJSON, err := json.Marshal(e)
	if err != nil || !bytes.Equal(viaJSON, b) {
		t.Errorf("json.Marshal = %s, %v", viaJSON, err)
	}
}

func TestCloudEventsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		edit func(e *message.Envelope)
	}{
		{"minimal", func(e *message.Envelope) { *e = *minimalEnvelope(t) }},
		{"json payload", func(e *message.Envelope) {
			e.ContentType, e.Payload = message.ContentTypeJSON, []byte(`{"a":[1,2.5,"x"],"b":null}`)
		}},
		{"json suffix payload", func(e *message.Envelope) {
			e.ContentType, e.Payload = "application/vnd.acme+json; charset=utf-8", []byte(`"just a string"`)
		}},
		{"octet payload", func(e *message.Envelope) {
			e.ContentType, e.Payload = message.ContentTypeOctetStream, []byte{0, 1, 2, 0xff}
		}},
		{"text payload", func(e *message.Envelope) { e.ContentType, e.Payload = "text/plain", []byte("héllo\n") }},
		{"content type only", func(e *message.Envelope) { e.Payload = nil }},
		{"odd name", func(e *message.Envelope) { e.Name = "quote\" back\\slash \u2028 ✓ \x01" }},
		{"no name", func(e *message.Envelope) { e.Name = "" }},
		{"custom type", func(e *message.Envelope) { e.Type = "custom" }},
		{"max seq", func(e *message.Envelope) { e.Seq = math.MaxUint64 }},
		{"earliest time", func(e *message.Envelope) { e.Time = time.Unix(0, math.MinInt64).UTC() }},
		{"latest time", func(e *message.Envelope) { e.Time = time.Unix(0, math.MaxInt64).UTC() }},
		{"whole second", func(e *message.Envelope) { e.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"minor version", func(e *message.Envelope) { e.SchemaVersion = message.NewVersion(1, 12) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := accessEvent(t)
			e.ContentType, e.Payload = message.ContentTypeJSON, []byte(`{"granted":true}`)
			tt.edit(e)
			b, err := e.AppendCloudEvent(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON: %s", b)
			}
			var got message.Envelope
			if err := (message.CloudEventsCodec{}).Unmarshal(b, &got); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			checkEqual(t, &got, e)
			again, _ := got.AppendCloudEvent(nil)
			if !bytes.Equal(again, b) {
				t.Errorf("JSON → Envelope → JSON changed the event\n got: %s\nwant: %s", again, b)
			}
		})
	}
}

// TestCloudEventsMsgpackPayload checks that a msgpack payload becomes JSON
// data that decodes to the same value.
func TestCloudEventsMsgpackPayload(t *testing.T) {
	e := accessEvent(t)
	b, err := e.AppendCloudEvent(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got message.Envelope
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ContentType != message.ContentTypeJSON {
		t.Errorf("ContentType = %q, want JSON", got.ContentType)
	}
	want, _ := message.DecodePayload[message.AccessDecision](e)
	have, err := message.DecodePayload[message.AccessDecision](&got)
	if err != nil || have != want {
		t.Errorf("payload = %+v, %v; want %+v", have, err, want)
	}
	got.ContentType, got.Payload = e.ContentType, e.Payload
	checkEqual(t, &got, e)
}

// TestCloudEventsFromJSON decodes events written by others and checks that
// re-encoding keeps every attribute Lintel defines.
func TestCloudEventsFromJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(e *message.Envelope)
	}{
		{"attributes in another order, with space and unknown attributes", `{
			"data": { "granted" : true },
			"type": "io.lintel.evt.access.granted",
			"sequence": "42", "bootid": "01954f00-0000-7000-8000-000000000001",
			"source": "/acme/hq/reader/door-1",
			"id": "0195512A-1BDB-7A3F-9C2E-5D6F7A8B9C0D",
			"time": "2026-03-01T09:30:00.123456789+01:00",
			"specversion": "1.0",
			"subject": "ignored", "dataschema": "urn:x", "traceparent": "00-abc",
			"correlationid": null
		}`, func(e *message.Envelope) {
			e.Name, e.Seq, e.BootID = message.NameAccessGranted, 42, mustID(t, "01954f00-0000-7000-8000-000000000001")
			e.Type, e.ContentType, e.Payload = topic.Event, message.ContentTypeJSON, []byte(`{ "granted" : true }`)
		}},
		{"no schema version means 1.0", `{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00.123456789Z"}`, nil},
		{"escaped strings", `{"specversion":"1\u002e0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"\/acme\/hq\/reader\/door-1","type":"io.lintel.state.a\"b","time":"2026-03-01T08:30:00.123456789Z"}`, func(e *message.Envelope) {
			e.Name = `a"b`
		}},
		{"data_base64 msgpack", `{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00.123456789Z","datacontenttype":"application/msgpack","data_base64":"kwECAw=="}`, func(e *message.Envelope) {
			e.ContentType, e.Payload = message.ContentTypeMsgpack, []byte{0x93, 1, 2, 3}
		}},
		{"data_base64 without content type", `{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00.123456789Z","data_base64":"AAE="}`, func(e *message.Envelope) {
			e.ContentType, e.Payload = message.ContentTypeOctetStream, []byte{0, 1}
		}},
		{"text data as a string", `{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00.123456789Z","datacontenttype":"text/plain","data":"hi\n"}`, func(e *message.Envelope) {
			e.ContentType, e.Payload = "text/plain", []byte("hi\n")
		}},
		{"null data", `{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00.123456789Z","data":null}`, func(e *message.Envelope) {
			e.ContentType, e.Payload = message.ContentTypeJSON, []byte("null")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got message.Envelope
			if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
				t.Fatal(err)
			}
			want := minimalEnvelope(t)
			want.SchemaVersion = message.CurrentVersion
			if tt.want != nil {
				tt.want(want)
			}
			checkEqual(t, &got, want)

			// Re-encoding keeps every Lintel attribute of the input.
			out, err := json.Marshal(&got)
			if err != nil {
				t.Fatal(err)
			}
			var in, re map[string]any
			_ = json.Unmarshal([]byte(tt.in), &in)
			_ = json.Unmarshal(out, &re)
			for _, k := range []string{"specversion", "id", "source", "type", "time", "sequence", "bootid", "correlationid", "schemaversion", "datacontenttype", "data", "data_base64"} {
				if in[k] == nil {
					continue
				}
				if got.ContentType == message.ContentTypeMsgpack && (k == "datacontenttype" || k == "data_base64") {
					continue // msgpack comes back as JSON data; see TestCloudEventsMsgpackPayload
				}
				if !sameAttr(k, in[k], re[k]) {
					t.Errorf("%s: %v became %v", k, in[k], re[k])
				}
			}
		})
	}
}

// sameAttr compares attribute values by meaning.
func sameAttr(k string, a, b any) bool {
	switch k {
	case "id", "bootid", "correlationid":
		return strings.EqualFold(a.(string), b.(string))
	case "time":
		ta, _ := time.Parse(time.RFC3339Nano, a.(string))
		tb, _ := time.Parse(time.RFC3339Nano, b.(string))
		return ta.Equal(tb)
	case "sequence":
		return strings.TrimLeft(a.(string), "0") == strings.TrimLeft(b.(string), "0")
	}
	return reflect.DeepEqual(a, b)
}

func TestCloudEventsBadInput(t *testing.T) {
	base := map[string]any{
		"specversion": "1.0",
		"id":          "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d",
		"source":      "/acme/hq/reader/door-1",
		"type":        "io.lintel.evt.access.granted",
		"time":        "2026-03-01T08:30:00Z",
	}
	// event returns base with changes; a nil value deletes the attribute.
	event := func(changes map[string]any) []byte {
		m := make(map[string]any)
		for k, v := range base {
			m[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid := event(nil)
	deep := strings.Repeat("[", 150) + strings.Repeat("]", 150)

	tests := []struct {
		name     string
		in       []byte
		opts     message.DecodeOptions
		sentinel error
		field    string
	}{
		{"empty", nil, message.DecodeOptions{}, message.ErrTruncated, ""},
		{"truncated", valid[:len(valid)-1], message.DecodeOptions{}, message.ErrTruncated, ""},
		{"not JSON", []byte("hello"), message.DecodeOptions{}, message.ErrMalformed, ""},
		{"trailing garbage", append(append([]byte(nil), valid...), '}'), message.DecodeOptions{}, message.ErrMalformed, ""},
		{"array", []byte(`[1,2]`), message.DecodeOptions{}, message.ErrWrongType, ""},
		{"null", []byte(`null`), message.DecodeOptions{}, message.ErrWrongType, ""},
		{"too large", valid, message.DecodeOptions{MaxSize: 10}, message.ErrTooLarge, ""},
		{"deep data", event(map[string]any{"data": json.RawMessage(deep)}), message.DecodeOptions{}, message.ErrTooLarge, message.FieldPayload},

		{"no specversion", event(map[string]any{"specversion": nil}), message.DecodeOptions{}, message.ErrMissingField, message.FieldSpecVersion},
		{"specversion 0.3", event(map[string]any{"specversion": "0.3"}), message.DecodeOptions{}, message.ErrUnsupportedVersion, message.FieldSpecVersion},
		{"specversion number", event(map[string]any{"specversion": 1.0}), message.DecodeOptions{}, message.ErrWrongType, message.FieldSpecVersion},
		{"schema major 2", event(map[string]any{"schemaversion": "2.0", "id": 7, "type": "whatever"}), message.DecodeOptions{}, message.ErrUnsupportedVersion, message.FieldSchemaVersion},
		{"bad schema version", event(map[string]any{"schemaversion": "1"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSchemaVersion},
		{"no id", event(map[string]any{"id": nil}), message.DecodeOptions{}, message.ErrMissingField, message.FieldID},
		{"zero id", event(map[string]any{"id": "00000000-0000-0000-0000-000000000000"}), message.DecodeOptions{}, message.ErrMissingField, message.FieldID},
		{"id not a uuid", event(map[string]any{"id": "abc"}), message.DecodeOptions{}, message.ErrInvalidID, message.FieldID},
		{"id number", event(map[string]any{"id": 5}), message.DecodeOptions{}, message.ErrWrongType, message.FieldID},
		{"no source", event(map[string]any{"source": nil}), message.DecodeOptions{}, message.ErrMissingField, message.FieldSource},
		{"source without slash", event(map[string]any{"source": "acme/hq/reader/door-1"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSource},
		{"source too short", event(map[string]any{"source": "/acme/hq/reader"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSource},
		{"source too long", event(map[string]any{"source": "/acme/hq/reader/door/1"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSource},
		{"source url", event(map[string]any{"source": "https://acme.example/hq"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSource},
		{"source bad token", event(map[string]any{"source": "/acme/hq/reader/door 1"}), message.DecodeOptions{}, topic.ErrInvalidChar, message.FieldSource},
		{"no type", event(map[string]any{"type": nil}), message.DecodeOptions{}, message.ErrMissingField, message.FieldType},
		{"foreign type", event(map[string]any{"type": "com.example.thing"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldType},
		{"type without message type", event(map[string]any{"type": "io.lintel."}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldType},
		{"type with trailing dot", event(map[string]any{"type": "io.lintel.evt."}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldType},
		{"bad time", event(map[string]any{"time": "yesterday"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldTime},
		{"empty time", event(map[string]any{"time": ""}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldTime},
		{"time without zone", event(map[string]any{"time": "2026-03-01T08:30:00"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldTime},
		{"time number", event(map[string]any{"time": 1772353800}), message.DecodeOptions{}, message.ErrWrongType, message.FieldTime},
		{"no time, receive time out of range", event(map[string]any{"time": nil}), message.DecodeOptions{Now: func() time.Time { return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }}, message.ErrInvalidValue, message.FieldTime},
		{"time out of range", event(map[string]any{"time": "9999-01-01T00:00:00Z"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldTime},
		{"sequence number", event(map[string]any{"sequence": 5}), message.DecodeOptions{}, message.ErrWrongType, message.FieldSeq},
		{"sequence not decimal", event(map[string]any{"sequence": "-5"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSeq},
		{"bad bootid", event(map[string]any{"bootid": "x"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldBootID},
		{"bad correlationid", event(map[string]any{"correlationid": true}), message.DecodeOptions{}, message.ErrWrongType, message.FieldCorrelationID},
		{"content type number", event(map[string]any{"datacontenttype": 1}), message.DecodeOptions{}, message.ErrWrongType, message.FieldContentType},
		{"data and data_base64", event(map[string]any{"data": 1, "data_base64": "AA=="}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldPayload},
		{"bad base64", event(map[string]any{"data_base64": "!!"}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldPayload},
		{"base64 msgpack not one value", event(map[string]any{"datacontenttype": "application/msgpack", "data_base64": "AQI="}), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldPayload},
		{"object data for octets", event(map[string]any{"datacontenttype": "application/octet-stream", "data": map[string]int{"a": 1}}), message.DecodeOptions{}, message.ErrWrongType, message.FieldPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e message.Envelope
			err := message.CloudEventsCodec{Options: tt.opts}.Unmarshal(tt.in, &e)
			var de *message.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tt.sentinel) || de.Field != tt.field || de.Format != message.FormatCloudEvents {
				t.Fatalf("Unmarshal(%s) = %v (%#v), want a cloudevents *DecodeError for field %q wrapping %v", tt.in, err, de, tt.field, tt.sentinel)
			}
		})
	}
}

func TestCloudEventsEncodeErrors(t *testing.T) {
	nan, _ := msgpack.Marshal(math.NaN())
	ext := []byte{0xd4, 5, 1}
	boolKey := []byte{0x81, 0xc3, 1}
	tests := []struct {
		name string
		ct   string
		p    []byte
	}{
		{"NaN", message.ContentTypeMsgpack, nan},
		{"extension type", message.ContentTypeMsgpack, ext},
		{"bool map key", message.ContentTypeMsgpack, boolKey},
		{"invalid JSON", message.ContentTypeJSON, []byte(`{"a":`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := accessEvent(t)
			e.ContentType, e.Payload = tt.ct, tt.p
			_, err := e.AppendCloudEvent(nil)
			var fe *message.FieldError
			if !errors.As(err, &fe) || fe.Field != message.FieldPayload || !errors.Is(err, message.ErrInvalidValue) {
				t.Errorf("AppendCloudEvent = %v, want a payload *FieldError", err)
			}
		})
	}
}

// TestTranscode checks how msgpack payload values appear in CloudEvents data.
func TestTranscode(t *testing.T) {
	tests := []struct {
		name string
		v    any // encoded with msgpack, or raw bytes if []byte is wanted as msgpack.RawMessage
		want string
	}{
		{"nil", nil, `null`},
		{"bools", []bool{true, false}, `[true,false]`},
		{"ints", []any{0, 127, 128, -1, -32, -33, int64(math.MinInt64), uint64(math.MaxUint64)}, `[0,127,128,-1,-32,-33,-9223372036854775808,18446744073709551615]`},
		{"floats", []any{1.5, 1e21, 1e-7, float32(0.1), 0.0, -2.0}, `[1.5,1e+21,1e-7,0.1,0,-2]`},
		{"string escapes", "a\"b\\c\n\t\x01 ✓ \u2028", `"a\"b\\c\n\t\u0001 ✓ \u2028"`},
		{"invalid utf-8", msgpack.RawMessage{0xa2, 0xff, 'a'}, `"\ufffda"`},
		{"bin", []byte{0, 1, 2}, `"AAEC"`},
		{"timestamp", time.Date(2026, 3, 1, 8, 30, 0, 5, time.UTC), `"2026-03-01T08:30:00.000000005Z"`},
		{"nested", map[string]any{"a": []any{map[string]any{"b": nil}}}, `{"a":[{"b":null}]}`},
		{"int keys", msgpack.RawMessage{0x82, 0x01, 0xa1, 'x', 0xff, 0xc0}, `{"1":"x","-1":null}`},
		{"uint64 key", msgpack.RawMessage{0x81, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, `{"18446744073709551615":1}`},
		{"empty containers", []any{[]any{}, map[string]any{}}, `[[],{}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := tt.v.(msgpack.RawMessage)
			if !ok {
				var err error
				if p, err = msgpack.Marshal(tt.v); err != nil {
					t.Fatal(err)
				}
			}
			e := minimalEnvelope(t)
			e.ContentType, e.Payload = message.ContentTypeMsgpack, p
			b, err := e.AppendCloudEvent(nil)
			if err != nil {
				t.Fatal(err)
			}
			var got message.Envelope
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if string(got.Payload) != tt.want {
				t.Errorf("data = %s, want %s", got.Payload, tt.want)
			}
		})
	}
}

func TestCloudEventsInStruct(t *testing.T) {
	type reply struct {
		Events []message.Envelope `json:"events"`
	}
	in := reply{Events: []message.Envelope{*minimalEnvelope(t)}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out reply
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, &out.Events[0], &in.Events[0])
}

// TestCloudEventsWithoutTime shows that an event without a time, which
// CloudEvents 1.0 allows, is accepted and gets the receive time from the
// decoder's clock, through every way of decoding one.
func TestCloudEventsWithoutTime(t *testing.T) {
	received := time.Date(2026, 3, 1, 9, 30, 0, 5, time.FixedZone("CET", 3600))
	clock := func() time.Time { return received }
	opts := message.DecodeOptions{Now: clock}
	for name, in := range map[string]string{
		"absent": `{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.evt.door.held_open","data":{"door":"door-1"}}`,
		"null":   `{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.evt.door.held_open","time":null,"data":{"door":"door-1"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			var e message.Envelope
			if err := (message.CloudEventsCodec{Options: opts}).Unmarshal([]byte(in), &e); err != nil {
				t.Fatal(err)
			}
			if !e.Time.Equal(received) || e.Time.Location() != time.UTC {
				t.Errorf("Time = %v, want the receive time %v in UTC", e.Time, received.UTC())
			}
			if e.Name != message.NameDoorHeldOpen || e.Source != testThing || string(e.Payload) != `{"door":"door-1"}` {
				t.Errorf("decoded %+v", e)
			}
			// Encoding writes the stamped time, so it survives a round trip.
			out, err := e.AppendCloudEvent(nil)
			if err != nil {
				t.Fatal(err)
			}
			var back message.Envelope
			if err := (message.CloudEventsCodec{}).Unmarshal(out, &back); err != nil {
				t.Fatal(err)
			}
			checkEqual(t, &back, &e)

			// DecodeMsg hands its options to the codec.
			m := &nats.Msg{Subject: "acme.hq.reader.door-1.evt", Header: nats.Header{message.HeaderContentType: {message.ContentTypeCloudEventsJSON}}, Data: []byte(in)}
			var viaNATS message.Envelope
			if err := message.DecodeMsg(m, &viaNATS, &opts); err != nil {
				t.Fatal(err)
			}
			if !viaNATS.Time.Equal(received) {
				t.Errorf("DecodeMsg: Time = %v, want %v", viaNATS.Time, received)
			}

			// json.Unmarshal uses the real clock.
			var viaJSON message.Envelope
			if err := json.Unmarshal([]byte(in), &viaJSON); err != nil {
				t.Fatal(err)
			}
			if viaJSON.Time.IsZero() || viaJSON.Time.Location() != time.UTC {
				t.Errorf("json.Unmarshal: Time = %v, want the receive time in UTC", viaJSON.Time)
			}
		})
	}
}
