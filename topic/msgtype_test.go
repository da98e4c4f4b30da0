package topic_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/lintel-io/lintel/topic"
)

func TestNewRegistry(t *testing.T) {
	builtins := topic.MessageTypes()
	tests := []struct {
		name    string
		extra   []topic.MessageType
		want    []topic.MessageType // Types(), when valid
		wantErr string
		sent    error
	}{
		{name: "no extras", want: builtins},
		{name: "one extra", extra: []topic.MessageType{"alarm"}, want: append(topic.MessageTypes(), "alarm")},
		{name: "extras keep their order", extra: []topic.MessageType{"log", "alarm"}, want: append(topic.MessageTypes(), "log", "alarm")},
		{name: "empty", extra: []topic.MessageType{""},
			wantErr: `topic: message_type "": empty`, sent: topic.ErrEmpty},
		{name: "wildcard", extra: []topic.MessageType{"*"},
			wantErr: `topic: message_type "*": wildcard '*' not allowed`, sent: topic.ErrInvalidChar},
		{name: "dot", extra: []topic.MessageType{"a.b"},
			wantErr: `topic: message_type "a.b": '.' not allowed (it separates tokens)`, sent: topic.ErrInvalidChar},
		{name: "too long", extra: []topic.MessageType{topic.MessageType(repeat('m', 65))},
			wantErr: `topic: message_type "` + repeat('m', 65) + `": 65 bytes, at most 64 allowed`, sent: topic.ErrTooLong},
		{name: "reserved", extra: []topic.MessageType{"_internal"},
			wantErr: `topic: message_type "_internal": names beginning with '_' are reserved`, sent: topic.ErrReserved},
		{name: "duplicate of built-in", extra: []topic.MessageType{topic.Event},
			wantErr: `topic: message_type "evt": already registered`, sent: topic.ErrDuplicate},
		{name: "duplicate extra", extra: []topic.MessageType{"alarm", "alarm"},
			wantErr: `topic: message_type "alarm": already registered`, sent: topic.ErrDuplicate},
		{name: "bad one after good ones", extra: []topic.MessageType{"alarm", "bad type"},
			wantErr: `topic: message_type "bad type": space not allowed`, sent: topic.ErrInvalidChar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := topic.NewRegistry(tt.extra...)
			checkErr(t, err, tt.wantErr, tt.sent, topic.PartMessageType)
			if tt.wantErr != "" {
				if r != nil {
					t.Errorf("NewRegistry returned a registry with an error")
				}
				return
			}
			if got := r.Types(); !equalTypes(got, tt.want) {
				t.Errorf("Types() = %v, want %v", got, tt.want)
			}
			for _, mt := range tt.want {
				if !r.Known(mt) {
					t.Errorf("Known(%q) = false", mt)
				}
			}
		})
	}
}

func TestRegistryExtension(t *testing.T) {
	r, err := topic.NewRegistry("alarm")
	if err != nil {
		t.Fatal(err)
	}
	const in = "acme.hq.panel.p1.alarm"

	s, err := r.Parse(in)
	if err != nil {
		t.Fatalf("registry Parse(%q): %v", in, err)
	}
	if want := subj("acme", "hq", "panel", "p1", "alarm"); s != want {
		t.Errorf("registry Parse(%q) = %#v, want %#v", in, s, want)
	}
	if err := r.Validate(s); err != nil {
		t.Errorf("registry Validate: %v", err)
	}
	if _, err := r.Parse("acme.hq.panel.p1.evt"); err != nil {
		t.Errorf("registry Parse of a built-in type: %v", err)
	}

	// The package-level functions know only the built-in types.
	if _, err := topic.Parse(in); !errors.Is(err, topic.ErrUnknownMessageType) {
		t.Errorf("topic.Parse(%q) = %v, want ErrUnknownMessageType", in, err)
	}
	if err := s.Validate(); !errors.Is(err, topic.ErrUnknownMessageType) {
		t.Errorf("Subject.Validate with extension type = %v, want ErrUnknownMessageType", err)
	}
	if _, err := topic.New("acme", "hq", "panel", "p1", "alarm"); !errors.Is(err, topic.ErrUnknownMessageType) {
		t.Errorf("topic.New with extension type = %v, want ErrUnknownMessageType", err)
	}

	// The registry's error lists what it knows.
	_, err = r.Parse("acme.hq.panel.p1.log")
	want := `topic: message_type "log": unknown message type, want one of [evt tlm state cmd ack cfg req alarm]`
	checkErr(t, err, want, topic.ErrUnknownMessageType, topic.PartMessageType)

	// The registry applies every other rule too.
	if _, err := r.Parse("_acme.hq.panel.p1.alarm"); !errors.Is(err, topic.ErrReserved) {
		t.Errorf("registry Parse of reserved org = %v, want ErrReserved", err)
	}
	if _, err := r.Parse("acme.hq.panel.p1.alarm.x"); !errors.Is(err, topic.ErrTokenCount) {
		t.Errorf("registry Parse of 6 tokens = %v, want ErrTokenCount", err)
	}

	// Filters.
	f, err := r.ParseFilter("acme.*.*.*.alarm")
	if err != nil {
		t.Fatalf("registry ParseFilter: %v", err)
	}
	if !f.Matches(s) {
		t.Errorf("%v does not match %v", f, s)
	}
	if _, err := topic.ParseFilter("acme.*.*.*.alarm"); !errors.Is(err, topic.ErrUnknownMessageType) {
		t.Errorf("topic.ParseFilter with extension type = %v, want ErrUnknownMessageType", err)
	}
	if _, err := r.NewFilter("acme", "hq", topic.Any, topic.Any, "alarm"); err != nil {
		t.Errorf("registry NewFilter: %v", err)
	}
	if _, err := topic.NewFilter("acme", "hq", topic.Any, topic.Any, "alarm"); !errors.Is(err, topic.ErrUnknownMessageType) {
		t.Errorf("topic.NewFilter with extension type = %v, want ErrUnknownMessageType", err)
	}
}

func TestRegistriesAreIndependent(t *testing.T) {
	a, err := topic.NewRegistry("alarm")
	if err != nil {
		t.Fatal(err)
	}
	b, err := topic.NewRegistry("log")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Known("alarm") || a.Known("log") {
		t.Errorf("registry a: Known(alarm)=%v Known(log)=%v, want true false", a.Known("alarm"), a.Known("log"))
	}
	if !b.Known("log") || b.Known("alarm") {
		t.Errorf("registry b: Known(log)=%v Known(alarm)=%v, want true false", b.Known("log"), b.Known("alarm"))
	}
	if _, err := a.Parse("acme.hq.x.y.log"); !errors.Is(err, topic.ErrUnknownMessageType) {
		t.Errorf("registry a parsed registry b's type: %v", err)
	}

	// Types returns a copy: changing it changes nothing.
	types := a.Types()
	types[len(types)-1] = "log"
	if a.Known("log") || !a.Known("alarm") {
		t.Errorf("mutating Types() changed the registry")
	}

	// Building a registry leaves the built-in set alone.
	if _, err := topic.Parse("acme.hq.x.y.alarm"); err == nil {
		t.Errorf("NewRegistry leaked its extension into topic.Parse")
	}
	if got := topic.MessageTypes(); len(got) != 7 {
		t.Errorf("MessageTypes() = %v after NewRegistry", got)
	}
	// The same extension may be registered in as many registries as wanted.
	if _, err := topic.NewRegistry("alarm"); err != nil {
		t.Errorf("second registry with the same extension: %v", err)
	}
}

func TestRegistryConcurrentUse(t *testing.T) {
	r, err := topic.NewRegistry("alarm")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := r.Parse("acme.hq.panel.p1.alarm"); err != nil {
					t.Error(err)
					return
				}
				if _, err := r.ParseFilter("acme.>"); err != nil {
					t.Error(err)
					return
				}
				_ = r.Types()
			}
		})
	}
	wg.Wait()
}

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func TestZeroRegistryKnowsBuiltins(t *testing.T) {
	for name, r := range map[string]*topic.Registry{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.Parse("acme.hq.reader.r1.evt"); err != nil {
				t.Errorf("Parse with a %s registry: %v", name, err)
			}
			if _, err := r.Parse("acme.hq.reader.r1.alarm"); !errors.Is(err, topic.ErrUnknownMessageType) {
				t.Errorf("Parse of an unknown type with a %s registry: %v, want ErrUnknownMessageType", name, err)
			}
			if got, want := len(r.Types()), len(topic.MessageTypes()); got != want {
				t.Errorf("%s registry has %d types, want %d", name, got, want)
			}
		})
	}
}
