package topic_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/topic"
)

func TestParse(t *testing.T) {
	long64 := strings.Repeat("c", 64)
	long65 := strings.Repeat("c", 65)
	tests := []struct {
		name    string
		in      string
		want    topic.Subject // checked when wantErr == ""
		wantErr string        // exact message
		sent    error
		part    topic.Part
	}{
		{name: "event", in: "acme.hq.reader.door-1.evt",
			want: subj("acme", "hq", "reader", "door-1", topic.Event)},
		{name: "every built-in type", in: "a.b.c.d.req", want: subj("a", "b", "c", "d", topic.Request)},
		{name: "mixed case and underscore", in: "Acme_1.HQ-2.Reader_X.D_1.state",
			want: subj("Acme_1", "HQ-2", "Reader_X", "D_1", topic.State)},
		{name: "reserved thing type _edge", in: "acme.hq._edge.hq.state",
			want: subj("acme", "hq", topic.ThingTypeEdge, "hq", topic.State)},
		{name: "reserved thing type _sys", in: "acme.hq._sys.audit.evt",
			want: subj("acme", "hq", topic.ThingTypeSystem, "audit", topic.Event)},
		{name: "reserved thing code", in: "acme.hq.reader._r1.evt",
			want: subj("acme", "hq", "reader", "_r1", topic.Event)},
		{name: "exactly 64 bytes", in: "acme.hq.reader." + long64 + ".tlm",
			want: subj("acme", "hq", "reader", long64, topic.Telemetry)},

		{name: "space", in: "acme.hq.reader.door 1.evt",
			wantErr: `topic: thing_code "door 1": space not allowed`, sent: topic.ErrInvalidChar, part: topic.PartThingCode},
		{name: "star token", in: "acme.*.reader.r1.evt",
			wantErr: `topic: edge "*": wildcard '*' not allowed`, sent: topic.ErrInvalidChar, part: topic.PartEdge},
		{name: "gt token", in: "acme.hq.reader.r1.>",
			wantErr: `topic: message_type ">": wildcard '>' not allowed`, sent: topic.ErrInvalidChar, part: topic.PartMessageType},
		{name: "wildcard inside token", in: "acme.hq.read*.r1.evt",
			wantErr: `topic: thing_type "read*": wildcard '*' not allowed`, sent: topic.ErrInvalidChar, part: topic.PartThingType},
		{name: "non-ASCII", in: "acme.hq.lecteur.entrée.evt",
			wantErr: `topic: thing_code "entrée": non-ASCII byte 0xc3 not allowed`, sent: topic.ErrInvalidChar, part: topic.PartThingCode},
		{name: "control char", in: "acme.hq\x01.reader.r1.evt",
			wantErr: `topic: edge "hq\x01": control character 0x01 not allowed`, sent: topic.ErrInvalidChar, part: topic.PartEdge},
		{name: "trailing newline", in: "acme.hq.reader.r1.evt\n",
			wantErr: `topic: message_type "evt\n": whitespace not allowed`, sent: topic.ErrInvalidChar, part: topic.PartMessageType},
		{name: "too long 65 bytes", in: "acme.hq.reader." + long65 + ".tlm",
			wantErr: `topic: thing_code "` + long65 + `": 65 bytes, at most 64 allowed`, sent: topic.ErrTooLong, part: topic.PartThingCode},
		{name: "empty token", in: "acme..reader.r1.evt",
			wantErr: `topic: edge "": empty`, sent: topic.ErrEmpty, part: topic.PartEdge},
		{name: "empty last token", in: "acme.hq.reader.r1.",
			wantErr: `topic: message_type "": empty`, sent: topic.ErrEmpty, part: topic.PartMessageType},
		{name: "empty first token", in: ".hq.reader.r1.evt",
			wantErr: `topic: org "": empty`, sent: topic.ErrEmpty, part: topic.PartOrg},
		{name: "empty string", in: "",
			wantErr: `topic: subject "": 1 token, want 5: org.edge.thing_type.thing_code.message_type`, sent: topic.ErrTokenCount, part: topic.PartSubject},
		{name: "too few tokens", in: "acme.hq.reader.evt",
			wantErr: `topic: subject "acme.hq.reader.evt": 4 tokens, want 5: org.edge.thing_type.thing_code.message_type`, sent: topic.ErrTokenCount, part: topic.PartSubject},
		{name: "too many tokens", in: "acme.hq.reader.r1.evt.x",
			wantErr: `topic: subject "acme.hq.reader.r1.evt.x": 6 tokens, want 5: org.edge.thing_type.thing_code.message_type`, sent: topic.ErrTokenCount, part: topic.PartSubject},
		{name: "many more tokens", in: "a.b.c.d.e.f.g.h",
			wantErr: `topic: subject "a.b.c.d.e.f.g.h": 8 tokens, want 5: org.edge.thing_type.thing_code.message_type`, sent: topic.ErrTokenCount, part: topic.PartSubject},
		{name: "trailing dot", in: "acme.hq.reader.r1.evt.",
			wantErr: `topic: subject "acme.hq.reader.r1.evt.": 6 tokens, want 5: org.edge.thing_type.thing_code.message_type`, sent: topic.ErrTokenCount, part: topic.PartSubject},
		{name: "unknown message type", in: "acme.hq.reader.r1.log",
			wantErr: `topic: message_type "log": unknown message type, want one of [evt tlm state cmd ack cfg req]`, sent: topic.ErrUnknownMessageType, part: topic.PartMessageType},
		{name: "message type is case sensitive", in: "acme.hq.reader.r1.EVT",
			sent: topic.ErrUnknownMessageType, part: topic.PartMessageType},
		{name: "reserved org", in: "_INBOX.hq.reader.r1.evt",
			wantErr: `topic: org "_INBOX": names beginning with '_' are reserved`, sent: topic.ErrReserved, part: topic.PartOrg},
		{name: "reserved edge", in: "acme._edge.reader.r1.evt",
			wantErr: `topic: edge "_edge": names beginning with '_' are reserved`, sent: topic.ErrReserved, part: topic.PartEdge},
		{name: "first bad part is reported", in: "a b.c d.reader.r1.evt",
			wantErr: `topic: org "a b": space not allowed`, sent: topic.ErrInvalidChar, part: topic.PartOrg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := topic.Parse(tt.in)
			if tt.wantErr == "" && tt.sent == nil {
				if err != nil {
					t.Fatalf("Parse(%q): %v", tt.in, err)
				}
				if got != tt.want {
					t.Fatalf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
				}
				if s := got.String(); s != tt.in {
					t.Errorf("String() = %q, want %q", s, tt.in)
				}
				if err := got.Validate(); err != nil {
					t.Errorf("Validate(): %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want error", tt.in, got)
			}
			if got != (topic.Subject{}) {
				t.Errorf("Parse(%q) returned %#v with an error, want the zero Subject", tt.in, got)
			}
			if tt.wantErr == "" {
				checkErr(t, err, err.Error(), tt.sent, tt.part)
				return
			}
			checkErr(t, err, tt.wantErr, tt.sent, tt.part)
		})
	}
}

// TestErrorSentinels checks that each rejection wraps exactly one sentinel.
func TestErrorSentinels(t *testing.T) {
	sentinels := []error{topic.ErrEmpty, topic.ErrTooLong, topic.ErrInvalidChar, topic.ErrTokenCount,
		topic.ErrUnknownMessageType, topic.ErrReserved, topic.ErrWildcard}
	inputs := map[string]error{
		"a..c.d.evt": topic.ErrEmpty,
		"a.b.c." + strings.Repeat("d", 65) + ".evt": topic.ErrTooLong,
		"a.b.c.d e.evt": topic.ErrInvalidChar,
		"a.b.c":         topic.ErrTokenCount,
		"a.b.c.d.nope":  topic.ErrUnknownMessageType,
		"_a.b.c.d.evt":  topic.ErrReserved,
	}
	for in, want := range inputs {
		_, err := topic.Parse(in)
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == want) {
				t.Errorf("Parse(%q): errors.Is(err, %v) = %v", in, s, got)
			}
		}
		var te *topic.Error
		if !errors.As(err, &te) || te.Err != want || te.Unwrap() != want {
			t.Errorf("Parse(%q): error %v does not carry sentinel %v", in, err, want)
		}
	}
}

func TestErrorFields(t *testing.T) {
	_, err := topic.Parse("acme.hq.reader.door 1.evt")
	var te *topic.Error
	if !errors.As(err, &te) {
		t.Fatalf("errors.As(%v) = false", err)
	}
	want := topic.Error{Part: topic.PartThingCode, Value: "door 1", Reason: "space not allowed", Err: topic.ErrInvalidChar}
	if *te != want {
		t.Errorf("got %#v, want %#v", *te, want)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name                 string
		org, edge, typ, code string
		mt                   topic.MessageType
		want                 string
		wantErr              string
		sent                 error
		part                 topic.Part
	}{
		{name: "valid", org: "acme", edge: "hq", typ: "lock", code: "front", mt: topic.Command, want: "acme.hq.lock.front.cmd"},
		{name: "reserved thing type allowed", org: "acme", edge: "hq", typ: topic.ThingTypeEdge, code: "hq", mt: topic.State, want: "acme.hq._edge.hq.state"},
		{name: "dot smuggled into code", org: "acme", edge: "hq", typ: "lock", code: "front.x", mt: topic.Command,
			wantErr: `topic: thing_code "front.x": '.' not allowed (it separates tokens)`, sent: topic.ErrInvalidChar, part: topic.PartThingCode},
		{name: "wildcard smuggled into type", org: "acme", edge: "hq", typ: "*", code: "front", mt: topic.Command,
			wantErr: `topic: thing_type "*": wildcard '*' not allowed`, sent: topic.ErrInvalidChar, part: topic.PartThingType},
		{name: "empty org", org: "", edge: "hq", typ: "lock", code: "front", mt: topic.Command,
			wantErr: `topic: org "": empty`, sent: topic.ErrEmpty, part: topic.PartOrg},
		{name: "empty message type", org: "acme", edge: "hq", typ: "lock", code: "front", mt: "",
			wantErr: `topic: message_type "": empty`, sent: topic.ErrEmpty, part: topic.PartMessageType},
		{name: "wildcard message type", org: "acme", edge: "hq", typ: "lock", code: "front", mt: ">",
			wantErr: `topic: message_type ">": wildcard '>' not allowed`, sent: topic.ErrInvalidChar, part: topic.PartMessageType},
		{name: "unknown message type", org: "acme", edge: "hq", typ: "lock", code: "front", mt: "alarm",
			sent: topic.ErrUnknownMessageType, part: topic.PartMessageType},
		{name: "reserved edge", org: "acme", edge: "_hq", typ: "lock", code: "front", mt: topic.Command,
			sent: topic.ErrReserved, part: topic.PartEdge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := topic.New(tt.org, tt.edge, tt.typ, tt.code, tt.mt)
			if tt.want != "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := s.String(); got != tt.want {
					t.Errorf("String() = %q, want %q", got, tt.want)
				}
				return
			}
			if tt.wantErr == "" && err != nil {
				tt.wantErr = err.Error() // only the sentinel and part are pinned
			}
			checkErr(t, err, tt.wantErr, tt.sent, tt.part)
		})
	}
}

func TestAppendSubject(t *testing.T) {
	s := subj("acme", "hq", "reader", "r1", topic.Event)
	tests := []struct {
		name string
		dst  []byte
		want string
	}{
		{name: "nil", dst: nil, want: "acme.hq.reader.r1.evt"},
		{name: "prefix kept", dst: []byte("PUB "), want: "PUB acme.hq.reader.r1.evt"},
		{name: "with capacity", dst: make([]byte, 0, 64), want: "acme.hq.reader.r1.evt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(topic.AppendSubject(tt.dst, s)); got != tt.want {
				t.Errorf("AppendSubject = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStringDoesNotValidate(t *testing.T) {
	// String and AppendSubject are documented not to validate; the zero
	// Subject still has a well-defined (invalid) wire form.
	var s topic.Subject
	if got := s.String(); got != "...." {
		t.Errorf("zero Subject String() = %q, want %q", got, "....")
	}
	if err := s.Validate(); !errors.Is(err, topic.ErrEmpty) {
		t.Errorf("zero Subject Validate() = %v, want ErrEmpty", err)
	}
}

func TestAllocs(t *testing.T) {
	const in = "acme.hq.reader.door-1.evt"
	s := subj("acme", "hq", "reader", "door-1", topic.Event)
	buf := make([]byte, 0, 128)
	tf, err := s.Thing.Filter()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fn   func()
	}{
		{name: "Parse", fn: func() {
			if _, err := topic.Parse(in); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "AppendSubject with capacity", fn: func() { buf = topic.AppendSubject(buf[:0], s) }},
		{name: "Matches", fn: func() { _ = tf.Matches(s) }},
		{name: "Validate", fn: func() {
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
				t.Errorf("%s allocates %v times per run, want 0", tt.name, n)
			}
		})
	}
}

func TestValidateThing(t *testing.T) {
	tests := []struct {
		name    string
		thing   topic.Thing
		wantErr string
		sent    error
		part    topic.Part
	}{
		{name: "device", thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}},
		{name: "reserved-looking code is fine", thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "_r1"}},
		{name: "_edge", thing: topic.Thing{Org: "acme", Edge: "hq", Type: topic.ThingTypeEdge, Code: "hq"},
			wantErr: `topic: thing_type "_edge": thing types beginning with '_' are reserved for the platform`, sent: topic.ErrReserved, part: topic.PartThingType},
		{name: "_sys", thing: topic.Thing{Org: "acme", Edge: "hq", Type: topic.ThingTypeSystem, Code: "audit"},
			wantErr: `topic: thing_type "_sys": thing types beginning with '_' are reserved for the platform`, sent: topic.ErrReserved, part: topic.PartThingType},
		{name: "any underscore type", thing: topic.Thing{Org: "acme", Edge: "hq", Type: "_camera", Code: "c1"},
			wantErr: `topic: thing_type "_camera": thing types beginning with '_' are reserved for the platform`, sent: topic.ErrReserved, part: topic.PartThingType},
		{name: "reserved org", thing: topic.Thing{Org: "_acme", Edge: "hq", Type: "reader", Code: "r1"},
			wantErr: `topic: org "_acme": names beginning with '_' are reserved`, sent: topic.ErrReserved, part: topic.PartOrg},
		{name: "invalid code", thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r 1"},
			wantErr: `topic: thing_code "r 1": space not allowed`, sent: topic.ErrInvalidChar, part: topic.PartThingCode},
		{name: "character error wins over reserved type", thing: topic.Thing{Org: "acme", Edge: "hq", Type: "_edge", Code: ""},
			wantErr: `topic: thing_code "": empty`, sent: topic.ErrEmpty, part: topic.PartThingCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, topic.ValidateThing(tt.thing), tt.wantErr, tt.sent, tt.part)
		})
	}

	// The platform's own subjects under reserved thing types still parse.
	s, err := topic.Parse("acme.hq._edge.hq.state")
	if err != nil {
		t.Fatalf("Parse of a platform subject: %v", err)
	}
	if err := s.Thing.Validate(); err != nil {
		t.Errorf("Thing.Validate of a platform thing: %v", err)
	}
	if err := topic.ValidateThing(s.Thing); !errors.Is(err, topic.ErrReserved) {
		t.Errorf("ValidateThing(%v) = %v, want ErrReserved", s.Thing, err)
	}
}

func TestThing(t *testing.T) {
	th := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "door-1"}
	if got, want := th.String(), "acme.hq.reader.door-1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := th.InboxPrefix(), "_INBOX.acme.hq.reader.door-1"; got != want {
		t.Errorf("InboxPrefix() = %q, want %q", got, want)
	}
	s := th.Subject(topic.Ack)
	if s.Thing != th || s.MessageType != topic.Ack {
		t.Errorf("Subject(Ack) = %#v", s)
	}
	if got, want := s.String(), "acme.hq.reader.door-1.ack"; got != want {
		t.Errorf("Subject(Ack).String() = %q, want %q", got, want)
	}
	// The inbox prefix is not a Lintel subject (its org is reserved), so no
	// device subject can be mistaken for an inbox and vice versa.
	if _, err := topic.Parse(th.InboxPrefix()); err == nil {
		t.Errorf("Parse(%q) succeeded, want error", th.InboxPrefix())
	}
}

func TestMessageTypes(t *testing.T) {
	want := []topic.MessageType{"evt", "tlm", "state", "cmd", "ack", "cfg", "req"}
	got := topic.MessageTypes()
	if !equalTypes(got, want) {
		t.Fatalf("MessageTypes() = %v, want %v", got, want)
	}
	got[0] = "mutated"
	if again := topic.MessageTypes(); !equalTypes(again, want) {
		t.Errorf("MessageTypes() returned shared state: mutating it changed the next result to %v", again)
	}
	if _, err := topic.Parse("a.b.c.d.evt"); err != nil {
		t.Errorf("mutating MessageTypes() result changed Parse: %v", err)
	}
	for _, mt := range want {
		if _, err := topic.New("acme", "hq", "reader", "r1", mt); err != nil {
			t.Errorf("New with built-in type %q: %v", mt, err)
		}
	}
}

func subj(org, edge, typ, code string, mt topic.MessageType) topic.Subject {
	return topic.Subject{Thing: topic.Thing{Org: org, Edge: edge, Type: typ, Code: code}, MessageType: mt}
}

func equalTypes(a, b []topic.MessageType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var (
	sinkSubject topic.Subject
	sinkString  string
	sinkBytes   []byte
	sinkBool    bool
)

func BenchmarkParse(b *testing.B) {
	const in = "acme.hq.reader.door-1.evt"
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		s, err := topic.Parse(in)
		if err != nil {
			b.Fatal(err)
		}
		sinkSubject = s
	}
}

func BenchmarkParseError(b *testing.B) {
	const in = "acme.hq.reader.door 1.evt"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := topic.Parse(in); err == nil {
			b.Fatal("no error")
		}
	}
}

func BenchmarkString(b *testing.B) {
	long := strings.Repeat("x", topic.MaxTokenLen)
	benchmarks := []struct {
		name string
		s    topic.Subject
	}{
		{"short", subj("acme", "hq", "reader", "door-1", topic.Event)},
		{"long", subj(long, long, long, long, topic.Event)},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkString = bm.s.String()
			}
		})
	}
}

func BenchmarkAppendSubject(b *testing.B) {
	s := subj("acme", "hq", "reader", "door-1", topic.Event)
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = topic.AppendSubject(buf[:0], s)
	}
	sinkBytes = buf
}
