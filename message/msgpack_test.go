package message_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/vmihailenco/msgpack/v5"
)

// kv is one entry of an ordered msgpack map built by encodeMap.
type kv struct {
	k any // usually a string
	v any // encoded with msgpack.Encoder.Encode, or raw if msgpack.RawMessage
}

// encodeMap encodes the entries as a msgpack map, in order.
func encodeMap(t testing.TB, entries ...kv) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.EncodeMapLen(len(entries)); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := enc.Encode(e.k); err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(e.v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// requiredEntries are the required fields of minimalEnvelope in wire form.
func requiredEntries(t testing.TB) []kv {
	e := minimalEnvelope(t)
	return []kv{
		{"id", e.ID[:]},
		{"t", e.Time.UnixNano()},
		{"src", "acme.hq.reader.door-1"},
		{"mt", "state"},
	}
}

// with returns entries with extra appended.
func with(entries []kv, extra ...kv) []kv {
	return append(append([]kv(nil), entries...), extra...)
}

// without returns entries without key k.
func without(entries []kv, k string) []kv {
	var out []kv
	for _, e := range entries {
		if e.k != k {
			out = append(out, e)
		}
	}
	return out
}

func TestMsgpackRoundTrip(t *testing.T) {
	long := strings.Repeat("x", topic.MaxTokenLen)
	nested, _ := msgpack.Marshal(map[string]any{"a": []any{1, "two", map[string]any{"three": 3.5}}, "b": nil})
	binPayload, _ := msgpack.Marshal([]byte{1, 2, 3})
	tests := []struct {
		name string
		edit func(e *message.Envelope)
	}{
		{"access event", func(e *message.Envelope) {}},
		{"minimal", func(e *message.Envelope) { *e = *minimalEnvelope(t) }},
		{"custom names", func(e *message.Envelope) {
			e.Type, e.Name, e.ContentType = "custom", "vendor.thing_happened ✓", "application/vnd.acme+msgpack"
		}},
		{"long source", func(e *message.Envelope) { e.Source = topic.Thing{Org: long, Edge: long, Type: long, Code: long} }},
		{"long name", func(e *message.Envelope) { e.Name = strings.Repeat("n", 70000) }},
		{"seq 127", func(e *message.Envelope) { e.Seq = 127 }},
		{"seq 128", func(e *message.Envelope) { e.Seq = 128 }},
		{"seq 65536", func(e *message.Envelope) { e.Seq = 65536 }},
		{"seq max", func(e *message.Envelope) { e.Seq = math.MaxUint64 }},
		{"before 1970", func(e *message.Envelope) { e.Time = time.Date(1960, 5, 1, 1, 2, 3, 4, time.UTC) }},
		{"earliest time", func(e *message.Envelope) { e.Time = time.Unix(0, math.MinInt64).UTC() }},
		{"latest time", func(e *message.Envelope) { e.Time = time.Unix(0, math.MaxInt64).UTC() }},
		{"newer minor version", func(e *message.Envelope) { e.SchemaVersion = message.NewVersion(1, 300) }},
		{"nested msgpack payload", func(e *message.Envelope) { e.Payload = nested }},
		{"msgpack payload that is bin", func(e *message.Envelope) { e.Payload = binPayload }},
		{"msgpack payload that is nil", func(e *message.Envelope) { e.Payload = []byte{0xc0} }},
		{"msgpack content type, no payload", func(e *message.Envelope) { e.Payload = nil }},
		{"json payload", func(e *message.Envelope) { e.ContentType, e.Payload = message.ContentTypeJSON, []byte(`{"a": [1, 2]}`) }},
		{"octet payload", func(e *message.Envelope) {
			e.ContentType, e.Payload = message.ContentTypeOctetStream, bytes.Repeat([]byte{0xc1}, 300)
		}},
		{"large bin payload", func(e *message.Envelope) { e.ContentType, e.Payload = "image/jpeg", make([]byte, 70000) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := accessEvent(t)
			tt.edit(e)
			b, err := e.AppendMsgpack(nil)
			if err != nil {
				t.Fatal(err)
			}
			var got message.Envelope
			if err := (message.MsgpackCodec{}).Unmarshal(b, &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			checkEqual(t, &got, e)
			if got.Time.Location() != time.UTC {
				t.Errorf("decoded time in %v, want UTC", got.Time.Location())
			}
			again, _ := got.AppendMsgpack(nil)
			if !bytes.Equal(again, b) {
				t.Error("re-encoding the decoded envelope gives different bytes")
			}

			// The reflection-based msgpack API gives the same bytes and result.
			viaLib, err := msgpack.Marshal(e)
			if err != nil || !bytes.Equal(viaLib, b) {
				t.Fatalf("msgpack.Marshal(*Envelope) = %x, %v", viaLib, err)
			}
			if viaLib, err := msgpack.Marshal(*e); err != nil || !bytes.Equal(viaLib, b) {
				t.Fatalf("msgpack.Marshal(Envelope) = %x, %v", viaLib, err)
			}
			var viaUnmarshal message.Envelope
			if err := msgpack.Unmarshal(b, &viaUnmarshal); err != nil {
				t.Fatal(err)
			}
			checkEqual(t, &viaUnmarshal, e)
		})
	}
}

func TestMsgpackEmbedded(t *testing.T) {
	// An envelope inside another msgpack structure, through the library.
	type batch struct {
		Envelopes []message.Envelope `msgpack:"envs"`
		Note      string             `msgpack:"note"`
	}
	in := batch{Envelopes: []message.Envelope{*accessEvent(t), *minimalEnvelope(t)}, Note: "hi"}
	b, err := msgpack.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out batch
	if err := msgpack.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Envelopes) != 2 || out.Note != "hi" {
		t.Fatalf("got %+v", out)
	}
	for i := range in.Envelopes {
		checkEqual(t, &out.Envelopes[i], &in.Envelopes[i])
	}
}

// TestMsgpackGenericView proves the fast encoder writes plain msgpack: a
// generic decoder sees the documented keys, and the payload as structure.
func TestMsgpackGenericView(t *testing.T) {
	e := accessEvent(t)
	b, err := e.AppendMsgpack(nil)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"v":    []any{int8(1), int8(0)},
		"id":   e.ID[:],
		"t":    e.Time.UnixNano(),
		"src":  "acme.hq.reader.door-1",
		"mt":   "evt",
		"name": "access.granted",
		"seq":  int8(42),
		"boot": e.BootID[:],
		"corr": e.CorrelationID[:],
		"ct":   "application/msgpack",
	}
	for k, v := range want {
		if !equalGeneric(m[k], v) {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	p, ok := m["p"].(map[string]any)
	if !ok {
		t.Fatalf("p = %#v, want the payload as a map", m["p"])
	}
	if p["granted"] != true || p["door"] != "door-1" || p["holder"] != "holder-1234" {
		t.Errorf("payload seen as %#v", p)
	}
	if len(m) != len(want)+1 {
		t.Errorf("%d keys, want %d: %v", len(m), len(want)+1, m)
	}
}

func equalGeneric(a, b any) bool {
	switch b := b.(type) {
	case []byte:
		a, ok := a.([]byte)
		return ok && bytes.Equal(a, b)
	case []any:
		a, ok := a.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

// TestMsgpackFromOtherEncoders decodes envelopes written by the reflection
// encoder and by generic maps, as other msgpack libraries would write them.
func TestMsgpackFromOtherEncoders(t *testing.T) {
	want := accessEvent(t)

	type wire struct {
		V    []uint             `msgpack:"v"`
		ID   []byte             `msgpack:"id"`
		T    int64              `msgpack:"t"`
		Src  string             `msgpack:"src"`
		MT   string             `msgpack:"mt"`
		Name string             `msgpack:"name,omitempty"`
		Seq  uint64             `msgpack:"seq,omitempty"`
		Boot []byte             `msgpack:"boot,omitempty"`
		Corr []byte             `msgpack:"corr,omitempty"`
		CT   string             `msgpack:"ct,omitempty"`
		P    msgpack.RawMessage `msgpack:"p,omitempty"`
	}
	fromStruct, err := msgpack.Marshal(wire{
		V: []uint{1, 0}, ID: want.ID[:], T: want.Time.UnixNano(), Src: "acme.hq.reader.door-1", MT: "evt",
		Name: want.Name, Seq: want.Seq, Boot: want.BootID[:], Corr: want.CorrelationID[:],
		CT: want.ContentType, P: want.Payload,
	})
	if err != nil {
		t.Fatal(err)
	}

	var payload any
	if err := msgpack.Unmarshal(want.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	// A generic map: keys in any order, a msgpack timestamp for the time,
	// IDs as text, a narrow integer for the sequence, the version as text
	// and keys this package does not know.
	fromMap, err := msgpack.Marshal(map[string]any{
		"p":     payload,
		"ct":    want.ContentType,
		"t":     want.Time,
		"id":    want.ID.String(),
		"boot":  want.BootID[:],
		"corr":  want.CorrelationID.String(),
		"src":   "acme.hq.reader.door-1",
		"mt":    "evt",
		"name":  want.Name,
		"seq":   uint8(42),
		"v":     "1.0",
		"extra": map[string]any{"x": []int{1, 2}},
		"later": nil,
	})
	if err != nil {
		t.Fatal(err)
	}

	for name, b := range map[string][]byte{"struct": fromStruct, "map": fromMap} {
		t.Run(name, func(t *testing.T) {
			var got message.Envelope
			if err := got.UnmarshalMsgpack(b); err != nil {
				t.Fatal(err)
			}
			if name == "map" {
				// The map's payload went through a generic decode and
				// encode; compare its meaning.
				var p any
				_ = msgpack.Unmarshal(got.Payload, &p)
				if !equalJSONish(p, payload) {
					t.Errorf("payload %v, want %v", p, payload)
				}
				got.Payload = want.Payload
			}
			checkEqual(t, &got, want)
		})
	}
}

// equalJSONish compares generic msgpack values by their printed form.
func equalJSONish(a, b any) bool {
	return strings.EqualFold(sprint(a), sprint(b))
}

func sprint(v any) string {
	var sb strings.Builder
	enc := msgpack.NewEncoder(&sb)
	enc.SetSortMapKeys(true)
	_ = enc.Encode(v)
	return sb.String()
}

func TestMsgpackTolerates(t *testing.T) {
	req := requiredEntries(t)
	tests := []struct {
		name    string
		entries []kv
		check   func(t *testing.T, e *message.Envelope)
	}{
		{"only required fields", req, func(t *testing.T, e *message.Envelope) {
			checkEqual(t, e, minimalEnvelope(t))
			if e.SchemaVersion != message.CurrentVersion {
				t.Errorf("SchemaVersion = %v, want 1.0 when absent", e.SchemaVersion)
			}
		}},
		{"unknown keys", with(req, kv{"zz", map[string]any{"deep": []any{1, []any{2}}}}, kv{"x", nil}), nil},
		{"non-string keys", with(req, kv{7, "seven"}, kv{[]int{1}, 2}), nil},
		{"nil optional fields", with(req, kv{"name", nil}, kv{"seq", nil}, kv{"boot", nil}, kv{"ct", nil}, kv{"v", nil}), func(t *testing.T, e *message.Envelope) {
			checkEqual(t, e, minimalEnvelope(t))
		}},
		{"newer minor version, longer version array", with(req, kv{"v", []int{1, 5, 9}}), func(t *testing.T, e *message.Envelope) {
			if e.SchemaVersion != message.NewVersion(1, 5) {
				t.Errorf("SchemaVersion = %v, want 1.5", e.SchemaVersion)
			}
		}},
		{"any int64 time", with(without(req, "t"), kv{"t", int64(math.MinInt64)}), func(t *testing.T, e *message.Envelope) {
			if e.Time.UnixNano() != math.MinInt64 {
				t.Errorf("Time = %v", e.Time)
			}
		}},
		{"uint time", with(without(req, "t"), kv{"t", uint64(math.MaxInt64)}), nil},
		{"fixext8 timestamp", with(without(req, "t"), kv{"t", time.Unix(1e9, 5)}), func(t *testing.T, e *message.Envelope) {
			if !e.Time.Equal(time.Unix(1e9, 5)) {
				t.Errorf("Time = %v", e.Time)
			}
		}},
		{"timestamp before 1970", with(without(req, "t"), kv{"t", time.Unix(-5, 7)}), func(t *testing.T, e *message.Envelope) {
			if !e.Time.Equal(time.Unix(-5, 7)) {
				t.Errorf("Time = %v", e.Time)
			}
		}},
		{"str payload with content type", with(req, kv{"ct", "text/plain"}, kv{"p", "hello"}), func(t *testing.T, e *message.Envelope) {
			if string(e.Payload) != "hello" {
				t.Errorf("Payload = %q", e.Payload)
			}
		}},
		{"nil payload for text", with(req, kv{"ct", "text/plain"}, kv{"p", nil}), func(t *testing.T, e *message.Envelope) {
			if e.Payload != nil {
				t.Errorf("Payload = %q", e.Payload)
			}
		}},
		{"payload before content type", with(req, kv{"p", msgpack.RawMessage{0x93, 1, 2, 3}}, kv{"ct", "application/x-msgpack"}), func(t *testing.T, e *message.Envelope) {
			if !bytes.Equal(e.Payload, []byte{0x93, 1, 2, 3}) {
				t.Errorf("Payload = %x", e.Payload)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e message.Envelope
			if err := e.UnmarshalMsgpack(encodeMap(t, tt.entries...)); err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, &e)
			}
		})
	}
}

func TestMsgpackBadInput(t *testing.T) {
	req := requiredEntries(t)
	valid, _ := accessEvent(t).AppendMsgpack(nil)
	deep := bytes.Repeat([]byte{0x91}, 200)
	deep = append(deep, 1)

	tests := []struct {
		name     string
		in       []byte
		opts     message.DecodeOptions
		sentinel error
		field    string
	}{
		{"empty", nil, message.DecodeOptions{}, message.ErrTruncated, ""},
		{"not a map", []byte{0x93, 1, 2, 3}, message.DecodeOptions{}, message.ErrWrongType, ""},
		{"never-used code", []byte{0xc1}, message.DecodeOptions{}, message.ErrMalformed, ""},
		{"trailing bytes", append(append([]byte(nil), valid...), 0), message.DecodeOptions{}, message.ErrMalformed, ""},
		{"huge map count", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v'}, message.DecodeOptions{}, message.ErrTruncated, ""},
		{"huge str length", encodeMap(t, kv{"src", msgpack.RawMessage{0xdb, 0xff, 0xff, 0xff, 0xff}}), message.DecodeOptions{}, message.ErrTruncated, message.FieldSource},
		{"over MaxSize", valid, message.DecodeOptions{MaxSize: len(valid) - 1}, message.ErrTooLarge, ""},
		{"over default MaxSize", make([]byte, message.DefaultMaxSize+1), message.DecodeOptions{}, message.ErrTooLarge, ""},
		{"deep payload", encodeMap(t, with(req, kv{"ct", message.ContentTypeMsgpack}, kv{"p", msgpack.RawMessage(deep)})...), message.DecodeOptions{}, message.ErrTooLarge, message.FieldPayload},
		{"deep unknown key", encodeMap(t, with(req, kv{"zz", msgpack.RawMessage(deep)})...), message.DecodeOptions{}, message.ErrTooLarge, ""},
		{"depth option", encodeMap(t, with(req, kv{"ct", message.ContentTypeMsgpack}, kv{"p", []any{[]any{1}}})...), message.DecodeOptions{MaxDepth: 1}, message.ErrTooLarge, message.FieldPayload},

		{"missing id", encodeMap(t, without(req, "id")...), message.DecodeOptions{}, message.ErrMissingField, message.FieldID},
		{"zero id", encodeMap(t, with(without(req, "id"), kv{"id", make([]byte, 16)})...), message.DecodeOptions{}, message.ErrMissingField, message.FieldID},
		{"nil id", encodeMap(t, with(without(req, "id"), kv{"id", nil})...), message.DecodeOptions{}, message.ErrMissingField, message.FieldID},
		{"missing time", encodeMap(t, without(req, "t")...), message.DecodeOptions{}, message.ErrMissingField, message.FieldTime},
		{"missing source", encodeMap(t, without(req, "src")...), message.DecodeOptions{}, message.ErrMissingField, message.FieldSource},
		{"missing type", encodeMap(t, without(req, "mt")...), message.DecodeOptions{}, message.ErrMissingField, message.FieldType},
		{"payload without content type", encodeMap(t, with(req, kv{"p", 1})...), message.DecodeOptions{}, message.ErrMissingField, message.FieldContentType},
		{"duplicate key", encodeMap(t, with(req, kv{"mt", "evt"})...), message.DecodeOptions{}, message.ErrDuplicateField, message.FieldType},

		{"time as string", encodeMap(t, with(without(req, "t"), kv{"t", "2026-01-01"})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldTime},
		{"time as float", encodeMap(t, with(without(req, "t"), kv{"t", 1.5})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldTime},
		{"time beyond int64", encodeMap(t, with(without(req, "t"), kv{"t", uint64(math.MaxUint64)})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldTime},
		{"timestamp beyond int64", encodeMap(t, with(without(req, "t"), kv{"t", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldTime},
		{"other ext as time", encodeMap(t, with(without(req, "t"), kv{"t", msgpack.RawMessage{0xd6, 5, 0, 0, 0, 1}})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldTime},
		{"id as int", encodeMap(t, with(without(req, "id"), kv{"id", 5})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldID},
		{"short id", encodeMap(t, with(without(req, "id"), kv{"id", make([]byte, 15)})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldID},
		{"bad id text", encodeMap(t, with(without(req, "id"), kv{"id", "not-an-id"})...), message.DecodeOptions{}, message.ErrInvalidID, message.FieldID},
		{"source as int", encodeMap(t, with(without(req, "src"), kv{"src", 5})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldSource},
		{"source as array", encodeMap(t, with(without(req, "src"), kv{"src", []string{"acme", "hq", "reader", "r1"}})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldSource},
		{"three-part source", encodeMap(t, with(without(req, "src"), kv{"src", "acme.hq.reader"})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSource},
		{"five-part source", encodeMap(t, with(without(req, "src"), kv{"src", "acme.hq.reader.r1.x"})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSource},
		{"wildcard in source", encodeMap(t, with(without(req, "src"), kv{"src", "acme.*.reader.r1"})...), message.DecodeOptions{}, topic.ErrInvalidChar, message.FieldSource},
		{"bad type", encodeMap(t, with(without(req, "mt"), kv{"mt", "e v t"})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldType},
		{"seq negative", encodeMap(t, with(req, kv{"seq", -1})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSeq},
		{"seq as string", encodeMap(t, with(req, kv{"seq", "1"})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldSeq},
		{"name as int", encodeMap(t, with(req, kv{"name", 1})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldName},
		{"name not utf-8", encodeMap(t, with(req, kv{"name", "\xff\xfe"})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldName},
		{"content type with newline", encodeMap(t, with(req, kv{"ct", "a\nb"})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldContentType},
		{"json payload as map", encodeMap(t, with(req, kv{"ct", "application/json"}, kv{"p", map[string]int{"a": 1}})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldPayload},
		{"version as int", encodeMap(t, with(req, kv{"v", 1})...), message.DecodeOptions{}, message.ErrWrongType, message.FieldSchemaVersion},
		{"version too short", encodeMap(t, with(req, kv{"v", []int{1}})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSchemaVersion},
		{"version text", encodeMap(t, with(req, kv{"v", "one"})...), message.DecodeOptions{}, message.ErrInvalidValue, message.FieldSchemaVersion},

		{"major 2", encodeMap(t, with(req, kv{"v", []int{2, 0}})...), message.DecodeOptions{}, message.ErrUnsupportedVersion, message.FieldSchemaVersion},
		{"major 0", encodeMap(t, with(req, kv{"v", []int{0, 1}})...), message.DecodeOptions{}, message.ErrUnsupportedVersion, message.FieldSchemaVersion},
		{"major 2 as text", encodeMap(t, with(req, kv{"v", "2.1"})...), message.DecodeOptions{}, message.ErrUnsupportedVersion, message.FieldSchemaVersion},
		{"major 2 with changed fields", encodeMap(t, kv{"id", "a new kind of id"}, kv{"v", []int{2, 0}}, kv{"t", "later"}), message.DecodeOptions{}, message.ErrUnsupportedVersion, message.FieldSchemaVersion},
		{"major 2 with fields missing", encodeMap(t, kv{"v", []int{2, 0}}), message.DecodeOptions{}, message.ErrUnsupportedVersion, message.FieldSchemaVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e message.Envelope
			err := message.MsgpackCodec{Options: tt.opts}.Unmarshal(tt.in, &e)
			var de *message.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tt.sentinel) || de.Field != tt.field || de.Format != message.FormatMsgpack {
				t.Fatalf("Unmarshal = %v (%#v), want a msgpack *DecodeError for field %q wrapping %v", err, de, tt.field, tt.sentinel)
			}
		})
	}
}

func TestMsgpackTruncated(t *testing.T) {
	valid, _ := accessEvent(t).AppendMsgpack(nil)
	for n := range len(valid) {
		var e message.Envelope
		if err := e.UnmarshalMsgpack(valid[:n]); !errors.Is(err, message.ErrTruncated) {
			t.Fatalf("first %d of %d bytes: %v, want ErrTruncated", n, len(valid), err)
		}
	}
}

func TestDecodeErrorText(t *testing.T) {
	req := requiredEntries(t)
	var e message.Envelope
	err := e.UnmarshalMsgpack(encodeMap(t, with(without(req, "t"), kv{"t", "soon"})...))
	want := `message: msgpack: field "time": wrong type: got str, want int`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
}

func TestMsgpackAllocs(t *testing.T) {
	e := accessEvent(t)
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = e.AppendMsgpack(buf[:0]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendMsgpack into a reused buffer: %v allocations, want 0", n)
	}
	var got message.Envelope
	if n := testing.AllocsPerRun(100, func() {
		if err := got.UnmarshalMsgpack(buf); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("decoding an access event: %v allocations, want at most 2 (source and payload)", n)
	}
}
