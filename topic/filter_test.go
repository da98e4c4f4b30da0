package topic_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/topic"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // exact message; "" with sent == nil means valid
		sent    error
		part    topic.Part
	}{
		{name: "literal subject", in: "acme.hq.reader.r1.evt"},
		{name: "all stars", in: "*.*.*.*.*"},
		{name: "everything", in: ">"},
		{name: "org", in: "acme.>"},
		{name: "edge", in: "acme.hq.>"},
		{name: "thing type", in: "acme.hq.reader.>"},
		{name: "thing", in: "acme.hq.reader.r1.*"},
		{name: "gt as message type", in: "acme.hq.reader.r1.>"},
		{name: "message type across edge", in: "acme.hq.*.*.evt"},
		{name: "star then gt", in: "*.>"},
		{name: "reserved thing type", in: "acme.hq._edge.*.state"},

		{name: "gt not last", in: "acme.>.reader.r1.evt",
			wantErr: `topic: edge ">": '>' is allowed only as the last token`, sent: topic.ErrWildcard, part: topic.PartEdge},
		{name: "gt not last in short filter", in: "acme.>.x",
			wantErr: `topic: filter "acme.>.x": 3 tokens, want 5, or fewer ending in '>'`, sent: topic.ErrTokenCount, part: topic.PartFilter},
		{name: "two gts", in: ">.>",
			wantErr: `topic: org ">": '>' is allowed only as the last token`, sent: topic.ErrWildcard, part: topic.PartOrg},
		{name: "fewer than five without gt", in: "acme.hq.*",
			wantErr: `topic: filter "acme.hq.*": 3 tokens, want 5, or fewer ending in '>'`, sent: topic.ErrTokenCount, part: topic.PartFilter},
		{name: "single literal", in: "acme",
			wantErr: `topic: filter "acme": 1 token, want 5, or fewer ending in '>'`, sent: topic.ErrTokenCount, part: topic.PartFilter},
		{name: "empty", in: "",
			wantErr: `topic: filter "": 1 token, want 5, or fewer ending in '>'`, sent: topic.ErrTokenCount, part: topic.PartFilter},
		{name: "too many tokens", in: "acme.hq.reader.r1.evt.>",
			wantErr: `topic: filter "acme.hq.reader.r1.evt.>": 6 tokens, want at most 5`, sent: topic.ErrTokenCount, part: topic.PartFilter},
		{name: "wildcard inside token", in: "a*.hq.>",
			wantErr: `topic: org "a*": wildcard '*' not allowed`, sent: topic.ErrInvalidChar, part: topic.PartOrg},
		{name: "gt inside token", in: "acme.hq.reader.r>.*",
			wantErr: `topic: thing_code "r>": wildcard '>' not allowed`, sent: topic.ErrInvalidChar, part: topic.PartThingCode},
		{name: "double star", in: "acme.**.>",
			wantErr: `topic: edge "**": wildcard '*' not allowed`, sent: topic.ErrInvalidChar, part: topic.PartEdge},
		{name: "empty token", in: "acme..>",
			wantErr: `topic: edge "": empty`, sent: topic.ErrEmpty, part: topic.PartEdge},
		{name: "trailing dot", in: "acme.>.",
			wantErr: `topic: filter "acme.>.": 3 tokens, want 5, or fewer ending in '>'`, sent: topic.ErrTokenCount, part: topic.PartFilter},
		{name: "space", in: "acme.h q.>",
			wantErr: `topic: edge "h q": space not allowed`, sent: topic.ErrInvalidChar, part: topic.PartEdge},
		{name: "non-ASCII", in: "acmé.>",
			wantErr: `topic: org "acmé": non-ASCII byte 0xc3 not allowed`, sent: topic.ErrInvalidChar, part: topic.PartOrg},
		{name: "unknown message type", in: "acme.hq.*.*.log",
			sent: topic.ErrUnknownMessageType, part: topic.PartMessageType},
		{name: "reserved org", in: "_INBOX.>",
			wantErr: `topic: org "_INBOX": names beginning with '_' are reserved`, sent: topic.ErrReserved, part: topic.PartOrg},
		{name: "reserved edge", in: "acme._x.>",
			wantErr: `topic: edge "_x": names beginning with '_' are reserved`, sent: topic.ErrReserved, part: topic.PartEdge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := topic.ParseFilter(tt.in)
			if tt.wantErr == "" && tt.sent == nil {
				if err != nil {
					t.Fatalf("ParseFilter(%q): %v", tt.in, err)
				}
				if got := f.String(); got != tt.in {
					t.Errorf("String() = %q, want %q", got, tt.in)
				}
				if got := strings.Join(f.Tokens(), "."); got != tt.in {
					t.Errorf("Tokens() joined = %q, want %q", got, tt.in)
				}
				return
			}
			want := tt.wantErr
			if want == "" && err != nil {
				want = err.Error()
			}
			checkErr(t, err, want, tt.sent, tt.part)
		})
	}
}

func TestNewFilter(t *testing.T) {
	tests := []struct {
		name                 string
		org, edge, typ, code string
		mt                   topic.MessageType
		want                 string
		sent                 error
		part                 topic.Part
	}{
		{name: "literal", org: "acme", edge: "hq", typ: "reader", code: "r1", mt: topic.Event, want: "acme.hq.reader.r1.evt"},
		{name: "all any", org: topic.Any, edge: topic.Any, typ: topic.Any, code: topic.Any, mt: topic.Any, want: "*.*.*.*.*"},
		{name: "rest as message type", org: "acme", edge: "hq", typ: "reader", code: "r1", mt: topic.Rest, want: "acme.hq.reader.r1.>"},
		{name: "rest in the middle", org: "acme", edge: topic.Rest, typ: "reader", code: "r1", mt: topic.Event,
			sent: topic.ErrWildcard, part: topic.PartEdge},
		{name: "dot in token", org: "acme", edge: "hq", typ: "reader", code: "r1.x", mt: topic.Event,
			sent: topic.ErrInvalidChar, part: topic.PartThingCode},
		{name: "empty type", org: "acme", edge: "hq", typ: "", code: "r1", mt: topic.Event,
			sent: topic.ErrEmpty, part: topic.PartThingType},
		{name: "unknown type", org: "acme", edge: "hq", typ: "reader", code: "r1", mt: "nope",
			sent: topic.ErrUnknownMessageType, part: topic.PartMessageType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := topic.NewFilter(tt.org, tt.edge, tt.typ, tt.code, tt.mt)
			if tt.sent == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := f.String(); got != tt.want {
					t.Errorf("String() = %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v, want error", f)
			}
			checkErr(t, err, err.Error(), tt.sent, tt.part)
		})
	}
}

func TestFilterHelpers(t *testing.T) {
	th := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	tests := []struct {
		name     string
		build    func() (topic.Filter, error)
		want     string
		matches  []string
		excludes []string
	}{
		{
			name:     "OrgFilter",
			build:    func() (topic.Filter, error) { return topic.OrgFilter("acme") },
			want:     "acme.>",
			matches:  []string{"acme.hq.reader.r1.evt", "acme.b2.lock.l1.cmd", "acme.hq._edge.hq.state"},
			excludes: []string{"globex.hq.reader.r1.evt", "acme2.hq.reader.r1.evt"},
		},
		{
			name:     "EdgeFilter",
			build:    func() (topic.Filter, error) { return topic.EdgeFilter("acme", "hq") },
			want:     "acme.hq.>",
			matches:  []string{"acme.hq.reader.r1.evt", "acme.hq._sys.audit.evt"},
			excludes: []string{"acme.b2.reader.r1.evt", "globex.hq.reader.r1.evt"},
		},
		{
			name:     "Thing.Filter",
			build:    func() (topic.Filter, error) { return th.Filter() },
			want:     "acme.hq.reader.r1.*",
			matches:  []string{"acme.hq.reader.r1.evt", "acme.hq.reader.r1.cmd", "acme.hq.reader.r1.state"},
			excludes: []string{"acme.hq.reader.r2.evt", "acme.hq.lock.r1.evt", "acme.b2.reader.r1.evt"},
		},
		{
			name:     "MessageTypeFilter",
			build:    func() (topic.Filter, error) { return topic.MessageTypeFilter("acme", "hq", topic.Event) },
			want:     "acme.hq.*.*.evt",
			matches:  []string{"acme.hq.reader.r1.evt", "acme.hq.lock.l9.evt", "acme.hq._sys.audit.evt"},
			excludes: []string{"acme.hq.reader.r1.tlm", "acme.b2.reader.r1.evt"},
		},
		{
			name:    "EdgeFilter with Any edge",
			build:   func() (topic.Filter, error) { return topic.EdgeFilter("acme", topic.Any) },
			want:    "acme.*.>",
			matches: []string{"acme.hq.reader.r1.evt", "acme.b2.lock.l1.cmd"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.build()
			if err != nil {
				t.Fatal(err)
			}
			if got := f.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			parsed, err := topic.ParseFilter(tt.want)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tt.want, err)
			}
			if parsed != f {
				t.Errorf("helper filter %#v differs from parsed %#v", f, parsed)
			}
			for _, in := range tt.matches {
				if !f.Matches(mustParse(t, in)) {
					t.Errorf("%v does not match %s", f, in)
				}
			}
			for _, in := range tt.excludes {
				if f.Matches(mustParse(t, in)) {
					t.Errorf("%v matches %s", f, in)
				}
			}
		})
	}
}

func TestFilterHelperErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func() (topic.Filter, error)
		sent  error
		part  topic.Part
	}{
		{name: "OrgFilter empty", build: func() (topic.Filter, error) { return topic.OrgFilter("") }, sent: topic.ErrEmpty, part: topic.PartOrg},
		{name: "OrgFilter reserved", build: func() (topic.Filter, error) { return topic.OrgFilter("_INBOX") }, sent: topic.ErrReserved, part: topic.PartOrg},
		{name: "OrgFilter dot", build: func() (topic.Filter, error) { return topic.OrgFilter("a.b") }, sent: topic.ErrInvalidChar, part: topic.PartOrg},
		{name: "OrgFilter rest", build: func() (topic.Filter, error) { return topic.OrgFilter(topic.Rest) }, sent: topic.ErrWildcard, part: topic.PartOrg},
		{name: "EdgeFilter reserved edge", build: func() (topic.Filter, error) { return topic.EdgeFilter("acme", "_hq") }, sent: topic.ErrReserved, part: topic.PartEdge},
		{name: "EdgeFilter smuggled wildcard", build: func() (topic.Filter, error) { return topic.EdgeFilter("acme", "hq.>") }, sent: topic.ErrInvalidChar, part: topic.PartEdge},
		{name: "MessageTypeFilter unknown", build: func() (topic.Filter, error) { return topic.MessageTypeFilter("acme", "hq", "log") }, sent: topic.ErrUnknownMessageType, part: topic.PartMessageType},
		{name: "MessageTypeFilter bad org", build: func() (topic.Filter, error) { return topic.MessageTypeFilter("ac me", "hq", topic.Event) }, sent: topic.ErrInvalidChar, part: topic.PartOrg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.build()
			if err == nil {
				t.Fatalf("got %v, want error", f)
			}
			checkErr(t, err, err.Error(), tt.sent, tt.part)
		})
	}
}

func TestFilterMatches(t *testing.T) {
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{">", "acme.hq.reader.r1.evt", true},
		{"*.>", "acme.hq.reader.r1.evt", true},
		{"*.*.*.*.*", "acme.hq.reader.r1.evt", true},
		{"acme.hq.reader.r1.evt", "acme.hq.reader.r1.evt", true},
		{"acme.hq.reader.r1.evt", "acme.hq.reader.r1.tlm", false},
		{"acme.hq.reader.r1.>", "acme.hq.reader.r1.tlm", true},
		{"acme.*.reader.>", "acme.b2.reader.x.cmd", true},
		{"acme.*.reader.>", "acme.b2.lock.x.cmd", false},
		{"*.hq.>", "globex.hq.lock.l.cmd", true},
		{"acme.hq.*.*.evt", "acme.hq.reader.r1.evt", true},
		{"acme.hq.*.*.evt", "acme.hq.reader.r1.cmd", false},
		{"Acme.>", "acme.hq.reader.r1.evt", false}, // case-sensitive
	}
	for _, tt := range tests {
		t.Run(tt.filter+" "+tt.subject, func(t *testing.T) {
			f := mustParseFilter(t, tt.filter)
			s := mustParse(t, tt.subject)
			if got := f.Matches(s); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
			if ref := natsMatch(tt.filter, tt.subject); ref != tt.want {
				t.Errorf("reference matcher = %v, want %v (test table is wrong)", ref, tt.want)
			}
		})
	}
}

func TestZeroFilter(t *testing.T) {
	var zero topic.Filter
	if zero.Matches(mustParse(t, "acme.hq.reader.r1.evt")) {
		t.Error("zero Filter matches a subject")
	}
	if got := zero.String(); got != "" {
		t.Errorf("zero Filter String() = %q, want empty", got)
	}
	if got := zero.Tokens(); len(got) != 0 {
		t.Errorf("zero Filter Tokens() = %q, want none", got)
	}
	all := mustParseFilter(t, ">")
	if !zero.Covers(zero) {
		t.Error("zero Filter does not cover itself")
	}
	if zero.Covers(all) {
		t.Error("zero Filter covers '>'")
	}
	if !all.Covers(zero) {
		t.Error("'>' does not cover the zero Filter (which matches nothing)")
	}
}

func TestFilterTokensIsACopy(t *testing.T) {
	f := mustParseFilter(t, "acme.hq.>")
	toks := f.Tokens()
	if !slices.Equal(toks, []string{"acme", "hq", ">"}) {
		t.Fatalf("Tokens() = %q", toks)
	}
	toks[0] = "globex"
	if f.String() != "acme.hq.>" {
		t.Errorf("mutating Tokens() changed the filter to %v", f)
	}
}

func TestFilterCovers(t *testing.T) {
	tests := []struct {
		name string
		f, g string
		want bool
	}{
		{"equal literal", "acme.hq.reader.r1.evt", "acme.hq.reader.r1.evt", true},
		{"different literal", "acme.hq.reader.r1.evt", "acme.hq.reader.r1.tlm", false},
		{"everything covers org", ">", "acme.>", true},
		{"everything covers everything", ">", ">", true},
		{"org covers edge", "acme.>", "acme.hq.>", true},
		{"edge does not cover org", "acme.hq.>", "acme.>", false},
		{"org does not cover other org", "acme.>", "globex.hq.>", false},
		{"edge covers thing", "acme.hq.>", "acme.hq.reader.r1.*", true},
		{"edge covers message type filter", "acme.hq.>", "acme.hq.*.*.evt", true},
		{"edge covers itself", "acme.hq.>", "acme.hq.>", true},
		{"star covers literal", "acme.*.>", "acme.hq.>", true},
		{"literal does not cover star", "acme.hq.>", "acme.*.>", false},
		{"star covers star", "acme.*.reader.*.evt", "acme.*.reader.*.evt", true},
		{"thing covers its subjects", "acme.hq.reader.r1.*", "acme.hq.reader.r1.cmd", true},
		{"message type filter does not cover thing", "acme.hq.*.*.evt", "acme.hq.reader.r1.*", false},
		{"thing does not cover message type filter", "acme.hq.reader.r1.*", "acme.hq.*.*.evt", false},

		// '>' versus '*'.
		{"gt covers star at the end", "acme.hq.reader.r1.>", "acme.hq.reader.r1.*", true},
		{"gt covers star-gt", "acme.>", "acme.*.>", true},
		{"star-gt does not cover gt", "*.>", ">", false}, // ">" matches one-token subjects
		{"gt covers star-gt at root", ">", "*.>", true},
		{"gt covers all stars", "acme.>", "acme.*.*.*.*", true},
		{"all stars do not cover gt", "acme.*.*.*.*", "acme.>", false}, // acme.> reaches any depth
		// On Lintel's five-token subjects "a.b.c.d.>" and "a.b.c.d.*" match
		// the same subjects, but NATS permissions apply to every subject, and
		// "a.b.c.d.>" also reaches a.b.c.d.x.y: Covers is exact for NATS.
		{"star does not cover gt at message type", "acme.hq.reader.r1.*", "acme.hq.reader.r1.>", false},
		{"star does not cover shorter gt", "acme.*.>", "acme.>", false},
		{"gt at depth 3 covers gt at depth 4", "acme.hq.>", "acme.hq.reader.>", true},
		{"gt at depth 4 does not cover gt at depth 3", "acme.hq.reader.>", "acme.hq.>", false},
		{"star-star-gt covers deeper gt", "*.*.>", "acme.hq.reader.>", true},
		{"star-star-gt does not cover org", "*.*.>", "acme.>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, g := mustParseFilter(t, tt.f), mustParseFilter(t, tt.g)
			if got := f.Covers(g); got != tt.want {
				t.Errorf("(%s).Covers(%s) = %v, want %v", tt.f, tt.g, got, tt.want)
			}
		})
	}
}

// TestCoversExhaustive compares Covers with its definition, using the
// reference matcher, for every valid filter over a small alphabet and every
// NATS subject of one to six tokens over that alphabet plus one token per
// position that no filter names. Subjects of other depths than five matter: permissions apply
// to all NATS subjects, not only to Lintel's.
func TestCoversExhaustive(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive")
	}
	lits := [topic.NumTokens][]string{{"a", "b"}, {"a", "b"}, {"a", "b"}, {"a", "b"}, {"evt", "tlm"}}
	var filters []string
	var build func(prefix []string)
	build = func(prefix []string) {
		i := len(prefix)
		if i > 0 && prefix[i-1] == topic.Rest {
			filters = append(filters, strings.Join(prefix, "."))
			return
		}
		if i == topic.NumTokens {
			filters = append(filters, strings.Join(prefix, "."))
			return
		}
		for _, tok := range append(slices.Clone(lits[i]), topic.Any, topic.Rest) {
			build(append(slices.Clone(prefix), tok))
		}
	}
	build(nil)

	var subjects []string
	var gen func(prefix []string)
	gen = func(prefix []string) {
		if len(prefix) > 0 {
			subjects = append(subjects, strings.Join(prefix, "."))
		}
		if len(prefix) == topic.NumTokens+1 {
			return
		}
		toks := []string{"z"}
		switch {
		case len(prefix) < topic.NumTokens-1:
			toks = append(slices.Clone(lits[len(prefix)]), "z")
		case len(prefix) == topic.NumTokens-1:
			toks = append(slices.Clone(lits[len(prefix)]), string(topic.Command))
		}
		for _, tok := range toks {
			gen(append(slices.Clone(prefix), tok))
		}
	}
	gen(nil)

	// matched[i] is the set of subjects filter i matches, as a bitset.
	words := (len(subjects) + 63) / 64
	parsed := make([]topic.Filter, len(filters))
	matched := make([][]uint64, len(filters))
	for i, fs := range filters {
		parsed[i] = mustParseFilter(t, fs)
		matched[i] = make([]uint64, words)
		for j, s := range subjects {
			if natsMatch(fs, s) {
				matched[i][j/64] |= 1 << (j % 64)
			}
			if strings.Count(s, ".") == topic.NumTokens-1 {
				if got, want := parsed[i].Matches(mustParse(t, s)), natsMatch(fs, s); got != want {
					t.Fatalf("(%s).Matches(%s) = %v, reference says %v", fs, s, got, want)
				}
			}
		}
	}
	t.Logf("%d filters, %d subjects", len(filters), len(subjects))
	for i := range filters {
		for j := range filters {
			want := true
			for w := range words {
				if matched[j][w]&^matched[i][w] != 0 {
					want = false
					break
				}
			}
			if got := parsed[i].Covers(parsed[j]); got != want {
				t.Errorf("(%s).Covers(%s) = %v, want %v", filters[i], filters[j], got, want)
			}
		}
	}
}

func BenchmarkFilterMatches(b *testing.B) {
	s := subj("acme", "hq", "reader", "door-1", topic.Event)
	benchmarks := []struct {
		name   string
		filter string
	}{
		{"literal", "acme.hq.reader.door-1.evt"},
		{"message type", "acme.hq.*.*.evt"},
		{"edge", "acme.hq.>"},
		{"miss", "acme.b2.>"},
	}
	for _, bm := range benchmarks {
		f, err := topic.ParseFilter(bm.filter)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkBool = f.Matches(s)
			}
		})
	}
}

func BenchmarkFilterCovers(b *testing.B) {
	f, g := mustParseFilter(b, "acme.*.>"), mustParseFilter(b, "acme.hq.reader.r1.*")
	b.ReportAllocs()
	for b.Loop() {
		sinkBool = f.Covers(g)
	}
}

func BenchmarkParseFilter(b *testing.B) {
	const in = "acme.hq.*.*.evt"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := topic.ParseFilter(in); err != nil {
			b.Fatal(err)
		}
	}
}

// natsMatch is a reference implementation of NATS subject matching on wire
// forms: '*' matches exactly one token, a trailing '>' one or more. It
// assumes filter is a valid NATS filter.
func natsMatch(filter, subject string) bool {
	ft := strings.Split(filter, ".")
	st := strings.Split(subject, ".")
	for i, f := range ft {
		switch {
		case f == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case f != "*" && f != st[i]:
			return false
		}
	}
	return len(ft) == len(st)
}

func mustParse(t testing.TB, s string) topic.Subject {
	t.Helper()
	sub, err := topic.Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return sub
}

func mustParseFilter(t testing.TB, s string) topic.Filter {
	t.Helper()
	f, err := topic.ParseFilter(s)
	if err != nil {
		t.Fatalf("ParseFilter(%q): %v", s, err)
	}
	return f
}
