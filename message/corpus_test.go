package message_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/vmihailenco/msgpack/v5"
)

// TestFuzzCorpus writes the seed corpora under testdata/fuzz/ when run with
// -update; otherwise it checks that every seed it would write is there.
//
//	go test -run TestFuzzCorpus -update ./message/
func TestFuzzCorpus(t *testing.T) {
	for fuzzer, seeds := range fuzzSeeds(t) {
		for name, vals := range seeds {
			path := filepath.Join("testdata", "fuzz", fuzzer, name)
			want := corpusFile(vals...)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("seed %s is missing or stale (run with -update): %v", path, err)
			}
		}
	}
}

// corpusFile renders values in the "go test fuzz v1" format.
func corpusFile(vals ...any) string {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
		default:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		}
	}
	return b.String()
}

type seeds map[string][]any

func fuzzSeeds(t *testing.T) map[string]seeds {
	mp := func(e *message.Envelope) []byte {
		b, err := e.AppendMsgpack(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ce := func(e *message.Envelope) []byte {
		b, err := e.AppendCloudEvent(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withPayload := func(name string, v any) *message.Envelope {
		e := minimalEnvelope(t)
		e.Name = name
		if err := message.SetPayload(e, v); err != nil {
			t.Fatal(err)
		}
		return e
	}
	id := mustID(t, "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d")
	access := accessEvent(t)
	req := requiredEntries(t)
	jsonEvent := accessEvent(t)
	jsonEvent.ContentType, jsonEvent.Payload = message.ContentTypeJSON, []byte(`{"granted":true,"door":"door-1"}`)
	octets := accessEvent(t)
	octets.ContentType, octets.Payload = message.ContentTypeOctetStream, []byte{0, 0xc1, 0xff}
	text := minimalEnvelope(t)
	text.ContentType, text.Payload = "text/plain; charset=utf-8", []byte("door 1 ✓\n")
	nan, _ := msgpack.Marshal(math.NaN())
	nanEvent := minimalEnvelope(t)
	nanEvent.ContentType, nanEvent.Payload = message.ContentTypeMsgpack, nan
	deep := append(bytes.Repeat([]byte{0x91}, 30), 0xc0)
	valid := mp(access)

	msgpackSeeds := seeds{
		"access_event":        {valid},
		"minimal":             {mp(minimalEnvelope(t))},
		"json_payload":        {mp(jsonEvent)},
		"octet_payload":       {mp(octets)},
		"text_payload":        {mp(text)},
		"nan_payload":         {mp(nanEvent)},
		"access_request":      {mp(withPayload(message.NameAccessRequested, message.AccessRequest{Door: "d", Kind: message.CredentialPIN, Credential: "1234"}))},
		"command":             {mp(withPayload(message.NameCommand, message.Command{Action: "unlock", Params: map[string]string{"s": "5"}, Deadline: testTime}))},
		"ack":                 {mp(withPayload(message.NameAck, message.Ack{CommandID: id, Status: message.AckCompleted}))},
		"birth":               {mp(withPayload(message.NameThingBirth, message.Birth{BootID: id, Model: "m", HeartbeatInterval: time.Second}))},
		"sensor":              {mp(withPayload(message.NameSensorReading, message.SensorReading{Metric: "t", Value: -0.5, Unit: "Cel"}))},
		"unknown_keys":        {encodeMap(t, with(req, kv{"zz", []any{1, map[string]any{"a": nil}}}, kv{7, true})...)},
		"nil_fields":          {encodeMap(t, with(req, kv{"name", nil}, kv{"seq", nil}, kv{"v", nil})...)},
		"timestamp_time":      {encodeMap(t, with(without(req, "t"), kv{"t", testTime})...)},
		"id_as_text":          {encodeMap(t, with(without(req, "id"), kv{"id", id.String()})...)},
		"version_text":        {encodeMap(t, with(req, kv{"v", "1.3"})...)},
		"major_2":             {encodeMap(t, with(req, kv{"v", []int{2, 0}})...)},
		"payload_first":       {encodeMap(t, with(req, kv{"p", map[string]int{"a": 1}}, kv{"ct", "application/x-msgpack"})...)},
		"duplicate_key":       {encodeMap(t, with(req, kv{"mt", "evt"})...)},
		"time_as_string":      {encodeMap(t, with(without(req, "t"), kv{"t", "now"})...)},
		"seq_negative":        {encodeMap(t, with(req, kv{"seq", -1})...)},
		"bad_source":          {encodeMap(t, with(without(req, "src"), kv{"src", "a.b.c"})...)},
		"deep_payload":        {encodeMap(t, with(req, kv{"ct", message.ContentTypeMsgpack}, kv{"p", msgpack.RawMessage(deep)})...)},
		"truncated":           {valid[:len(valid)/2]},
		"trailing_byte":       {append(append([]byte(nil), valid...), 0)},
		"huge_map_count":      {[]byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v'}},
		"huge_string":         {[]byte{0x81, 0xa3, 's', 'r', 'c', 0xdb, 0xff, 0xff, 0xff, 0xff}},
		"not_a_map":           {[]byte{0x93, 1, 2, 3}},
		"never_used_code":     {[]byte{0xc1}},
		"empty":               {[]byte{}},
		"empty_map":           {[]byte{0x80}},
		"ext_payload":         {encodeMap(t, with(req, kv{"ct", message.ContentTypeMsgpack}, kv{"p", msgpack.RawMessage{0xd4, 5, 1}})...)},
		"int_keyed_payload":   {encodeMap(t, with(req, kv{"ct", message.ContentTypeMsgpack}, kv{"p", msgpack.RawMessage{0x82, 0x01, 0xa1, 'x', 0xff, 0xc0}})...)},
		"bin_payload_no_type": {encodeMap(t, with(req, kv{"p", []byte{1}})...)},
	}

	ceSeeds := seeds{
		"access_event_json_data": {ce(access)},
		"minimal":                {ce(minimalEnvelope(t))},
		"json_payload":           {ce(jsonEvent)},
		"octet_payload":          {ce(octets)},
		"text_payload":           {ce(text)},
		"base64_msgpack":         {[]byte(`{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00Z","datacontenttype":"application/msgpack","data_base64":"kwECAw=="}`)},
		"null_data":              {[]byte(`{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00Z","data":null}`)},
		"foreign_order":          {[]byte(`{"data":{"a":[1,{"b":null}]},"type":"io.lintel.evt.x.y","sequence":"7","source":"/acme/hq/reader/door-1","id":"0195512A-1BDB-7A3F-9C2E-5D6F7A8B9C0D","time":"2026-03-01T09:30:00.5+01:00","specversion":"1.0","subject":"s","traceparent":"00"}`)},
		"escapes":                {[]byte(`{"specversion":"1\u002e0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"\/acme\/hq\/reader\/door-1","type":"io.lintel.state.a\"b\u2028","time":"2026-03-01T08:30:00Z"}`)},
		"specversion_03":         {[]byte(`{"specversion":"0.3","id":"x","source":"/a","type":"t"}`)},
		"schema_major_2":         {[]byte(`{"specversion":"1.0","schemaversion":"2.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00Z"}`)},
		"missing_time":           {[]byte(`{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state"}`)},
		"bad_source":             {[]byte(`{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader","type":"io.lintel.state","time":"2026-03-01T08:30:00Z"}`)},
		"foreign_type":           {[]byte(`{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"com.example.x","time":"2026-03-01T08:30:00Z"}`)},
		"both_data_forms":        {[]byte(`{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00Z","data":1,"data_base64":"AA=="}`)},
		"deep_data":              {[]byte(`{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.state","time":"2026-03-01T08:30:00Z","data":` + strings.Repeat("[", 30) + strings.Repeat("]", 30) + `}`)},
		"truncated":              {ce(access)[:100]},
		"array":                  {[]byte(`[{"specversion":"1.0"}]`)},
		"empty":                  {[]byte{}},
	}

	roundTrip := func(e *message.Envelope) []any {
		return []any{e.ID[:], e.Time.UnixNano(), e.Source.Org, e.Source.Edge, e.Source.Type, e.Source.Code,
			string(e.Type), e.Name, e.Seq, e.BootID[:], e.CorrelationID[:],
			e.SchemaVersion.Major(), e.SchemaVersion.Minor(), e.ContentType, e.Payload}
	}
	edit := func(f func(e *message.Envelope)) *message.Envelope {
		e := accessEvent(t)
		f(e)
		return e
	}
	rtSeeds := seeds{
		"access_event":    roundTrip(access),
		"json_payload":    roundTrip(jsonEvent),
		"octet_payload":   roundTrip(octets),
		"text_payload":    roundTrip(text),
		"dot_in_code":     roundTrip(edit(func(e *message.Envelope) { e.Source.Code = "a.b" })),
		"reserved_org":    roundTrip(edit(func(e *message.Envelope) { e.Source.Org = "_sys" })),
		"max_seq":         roundTrip(edit(func(e *message.Envelope) { e.Seq = math.MaxUint64 })),
		"earliest_time":   roundTrip(edit(func(e *message.Envelope) { e.Time = time.Unix(0, math.MinInt64) })),
		"two_values":      roundTrip(edit(func(e *message.Envelope) { e.Payload = []byte{1, 2} })),
		"major_2":         roundTrip(edit(func(e *message.Envelope) { e.SchemaVersion = message.NewVersion(2, 0) })),
		"empty_type":      roundTrip(edit(func(e *message.Envelope) { e.Type = "" })),
		"nan_payload":     roundTrip(nanEvent),
		"invalid_utf8":    roundTrip(edit(func(e *message.Envelope) { e.Name = "\xff" })),
		"zero_everything": roundTrip(&message.Envelope{}),
	}

	idSeeds := seeds{
		"canonical":  {"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d"},
		"upper":      {"0195512A-1BDB-7A3F-9C2E-5D6F7A8B9C0D"},
		"zero":       {"00000000-0000-0000-0000-000000000000"},
		"empty":      {""},
		"no_hyphens": {"0195512a1bdb7a3f9c2e5d6f7a8b9c0d"},
		"non_hex":    {"0195512g-1bdb-7a3f-9c2e-5d6f7a8b9c0d"},
		"braces":     {"{0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d}"},
	}

	return map[string]seeds{
		"FuzzDecodeMsgpack":     msgpackSeeds,
		"FuzzDecodeCloudEvents": ceSeeds,
		"FuzzRoundTrip":         rtSeeds,
		"FuzzParseID":           idSeeds,
	}
}
