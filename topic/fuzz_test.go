package topic_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/topic"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/; the f.Add seeds below
// only keep each fuzzer meaningful if those files go missing.

// FuzzParse checks Parse against an independent statement of the rules: it
// never panics, it accepts exactly what the rules allow, what it accepts
// prints back to the input, and what it rejects comes with a *topic.Error.
func FuzzParse(f *testing.F) {
	f.Add("acme.hq.reader.door-1.evt")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := topic.Parse(in)
		if want := refValidSubject(in); (err == nil) != want {
			t.Fatalf("Parse(%q) error = %v, reference says valid = %v", in, err, want)
		}
		if err != nil {
			if s != (topic.Subject{}) {
				t.Errorf("Parse(%q) returned %#v with an error", in, s)
			}
			checkFuzzErr(t, err)
			return
		}
		if got := s.String(); got != in {
			t.Errorf("Parse(%q).String() = %q", in, got)
		}
		if got := string(topic.AppendSubject(nil, s)); got != in {
			t.Errorf("AppendSubject(Parse(%q)) = %q", in, got)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("Parse(%q) succeeded but Validate: %v", in, err)
		}
		// A subject is also a literal filter that matches itself, and its
		// thing's filter matches it.
		lit, err := topic.ParseFilter(in)
		if err != nil {
			t.Fatalf("ParseFilter(%q) of a valid subject: %v", in, err)
		}
		tf, err := s.Thing.Filter()
		if err != nil {
			t.Fatalf("Thing.Filter of a valid subject %q: %v", in, err)
		}
		if !lit.Matches(s) || !tf.Matches(s) {
			t.Errorf("filters do not match their own subject %q", in)
		}
	})
}

// FuzzRoundTrip builds subjects from fuzzed parts: Parse(s.String()) == s
// exactly when s is valid, and String agrees with AppendSubject.
func FuzzRoundTrip(f *testing.F) {
	f.Add("acme", "hq", "reader", "door-1", "evt")
	f.Fuzz(func(t *testing.T, org, edge, typ, code, mt string) {
		s := topic.Subject{Thing: topic.Thing{Org: org, Edge: edge, Type: typ, Code: code}, MessageType: topic.MessageType(mt)}
		verr := s.Validate()
		str := s.String()
		if got := string(topic.AppendSubject(nil, s)); got != str {
			t.Fatalf("AppendSubject = %q, String = %q", got, str)
		}
		if got := string(topic.AppendSubject([]byte("PUB "), s)); got != "PUB "+str {
			t.Fatalf("AppendSubject with prefix = %q", got)
		}
		if got, want := s.Thing.String(), org+"."+edge+"."+typ+"."+code; got != want {
			t.Fatalf("Thing.String() = %q, want %q", got, want)
		}

		n, nerr := topic.New(org, edge, typ, code, topic.MessageType(mt))
		if errString(nerr) != errString(verr) || n != s {
			t.Fatalf("New = %#v, %v; Validate = %v", n, nerr, verr)
		}

		p, perr := topic.Parse(str)
		if verr != nil {
			checkFuzzErr(t, verr)
			if perr == nil {
				t.Fatalf("Validate(%#v) = %v but Parse(%q) succeeded", s, verr, str)
			}
			// Without a smuggled '.', the parts are the tokens and Parse
			// reports the same problem.
			if !strings.Contains(org+edge+typ+code+mt, ".") && perr.Error() != verr.Error() {
				t.Errorf("Parse error %q, Validate error %q", perr, verr)
			}
		} else {
			if perr != nil {
				t.Fatalf("Parse(%q) of a valid subject: %v", str, perr)
			}
			if p != s {
				t.Fatalf("Parse(String()) = %#v, want %#v", p, s)
			}
			// Every helper filter for s matches it.
			matchHelpers(t, s)
		}

		// ValidateThing is Thing.Validate plus the reserved thing types.
		terr := s.Thing.Validate()
		want := terr == nil && !strings.HasPrefix(typ, "_")
		if got := topic.ValidateThing(s.Thing); (got == nil) != want {
			t.Errorf("ValidateThing(%#v) = %v, Thing.Validate = %v", s.Thing, got, terr)
		}
	})
}

// FuzzFilter checks ParseFilter against an independent statement of the
// filter rules and Matches against a reference NATS matcher.
func FuzzFilter(f *testing.F) {
	f.Add("acme.hq.*.*.evt", "acme.hq.reader.r1.evt")
	f.Fuzz(func(t *testing.T, filter, subject string) {
		fl, err := topic.ParseFilter(filter)
		if want := refValidFilter(filter); (err == nil) != want {
			t.Fatalf("ParseFilter(%q) error = %v, reference says valid = %v", filter, err, want)
		}
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		if got := fl.String(); got != filter {
			t.Fatalf("ParseFilter(%q).String() = %q", filter, got)
		}
		if got := strings.Join(fl.Tokens(), "."); got != filter {
			t.Fatalf("Tokens() joined = %q, want %q", got, filter)
		}
		if !fl.Covers(fl) {
			t.Errorf("%q does not cover itself", filter)
		}

		// A subject built from the filter, wildcards filled in, matches it.
		inst := instantiate(fl, subject)
		s, err := topic.Parse(inst)
		if err != nil {
			t.Fatalf("instantiated subject %q: %v", inst, err)
		}
		if !fl.Matches(s) || !natsMatch(filter, inst) {
			t.Errorf("%q does not match its instance %q", filter, inst)
		}

		s, err = topic.Parse(subject)
		if err != nil {
			return
		}
		if got, want := fl.Matches(s), natsMatch(filter, subject); got != want {
			t.Errorf("(%q).Matches(%q) = %v, reference says %v", filter, subject, got, want)
		}
	})
}

// FuzzCovers checks that f.Covers(g) holds exactly when every NATS subject
// g matches is also matched by f, and that it is consistent with Matches on
// Lintel subjects.
func FuzzCovers(f *testing.F) {
	f.Add("acme.>", "acme.hq.*.*.evt", "acme.hq.reader.r1.evt")
	f.Fuzz(func(t *testing.T, fs, gs, subject string) {
		ff, err := topic.ParseFilter(fs)
		if err != nil {
			return
		}
		gf, err := topic.ParseFilter(gs)
		if err != nil {
			return
		}
		covers := ff.Covers(gf)

		// Consistency with Matches: on the fuzzed subject, and on a subject
		// built from g with the fuzzed subject's tokens in its wildcards.
		if s, err := topic.Parse(subject); err == nil && covers && gf.Matches(s) && !ff.Matches(s) {
			t.Fatalf("(%s).Covers(%s) but %s matches only the latter", fs, gs, subject)
		}
		inst := mustParse(t, instantiate(gf, subject))
		if !gf.Matches(inst) {
			t.Fatalf("%s does not match its instance %v", gs, inst)
		}
		if covers && !ff.Matches(inst) {
			t.Fatalf("(%s).Covers(%s) but %v matches only the latter", fs, gs, inst)
		}

		// Exactness: g ⊄ f iff some subject of g, with every wildcard-matched
		// token replaced by one no filter can name, escapes f.
		witness := ""
		for _, c := range witnesses(gs) {
			if natsMatch(gs, c) && !natsMatch(fs, c) {
				witness = c
				break
			}
		}
		if covers && witness != "" {
			t.Errorf("(%s).Covers(%s) = true, but %q matches only the latter", fs, gs, witness)
		}
		if !covers && witness == "" {
			t.Errorf("(%s).Covers(%s) = false, but no subject of the latter escapes the former", fs, gs)
		}
	})
}

// refToken reports whether tok obeys the token rules, written out without
// the implementation's lookup table.
func refToken(tok string) bool {
	if len(tok) == 0 || len(tok) > 64 {
		return false
	}
	for _, r := range []byte(tok) {
		ok := ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

var refTypes = []string{"evt", "tlm", "state", "cmd", "ack", "cfg", "req"}

func refValidSubject(s string) bool {
	toks := strings.Split(s, ".")
	if len(toks) != 5 {
		return false
	}
	for _, tok := range toks {
		if !refToken(tok) {
			return false
		}
	}
	return toks[0][0] != '_' && toks[1][0] != '_' && slices.Contains(refTypes, toks[4])
}

func refValidFilter(s string) bool {
	toks := strings.Split(s, ".")
	n := len(toks)
	if n > 5 || (n < 5 && toks[n-1] != ">") {
		return false
	}
	for i, tok := range toks {
		switch {
		case tok == "*":
		case tok == ">":
			if i != n-1 {
				return false
			}
		case !refToken(tok):
			return false
		case (i == 0 || i == 1) && tok[0] == '_':
			return false
		case i == 4 && !slices.Contains(refTypes, tok):
			return false
		}
	}
	return true
}

// instantiate returns a valid subject matched by f: f's literal tokens, with
// its wildcards filled from subject's tokens where those are valid in that
// position, and from a default otherwise.
func instantiate(f topic.Filter, subject string) string {
	fill := strings.Split(subject, ".")
	out := make([]string, topic.NumTokens)
	toks := f.Tokens()
	for i := range out {
		tok := topic.Rest
		if i < len(toks) {
			tok = toks[i]
		}
		if tok != topic.Rest && tok != topic.Any {
			out[i] = tok
			continue
		}
		out[i] = "x"
		if i == topic.NumTokens-1 {
			out[i] = "evt"
		}
		if i < len(fill) {
			c := fill[i]
			ok := refToken(c)
			if i < 2 {
				ok = ok && c[0] != '_'
			}
			if i == topic.NumTokens-1 {
				ok = ok && slices.Contains(refTypes, c)
			}
			if ok {
				out[i] = c
			}
		}
	}
	return strings.Join(out, ".")
}

// witnesses returns g's most general subjects: every '*' becomes a token
// that no valid filter can name, and a trailing '>' becomes one or more of
// them, up to six tokens in all (one more than any filter has, so deeper
// subjects behave the same).
func witnesses(g string) []string {
	const fresh = "~"
	toks := strings.Split(g, ".")
	for i, tok := range toks {
		if tok == "*" {
			toks[i] = fresh
		}
	}
	if toks[len(toks)-1] != ">" {
		return []string{strings.Join(toks, ".")}
	}
	prefix := toks[:len(toks)-1]
	var out []string
	for depth := len(toks); depth <= topic.NumTokens+1; depth++ {
		w := slices.Clone(prefix)
		for len(w) < depth {
			w = append(w, fresh)
		}
		out = append(out, strings.Join(w, "."))
	}
	return out
}

// checkFuzzErr checks the shape every rejection must have.
func checkFuzzErr(t *testing.T, err error) {
	t.Helper()
	var te *topic.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *topic.Error", err, err)
	}
	switch te.Part {
	case topic.PartOrg, topic.PartEdge, topic.PartThingType, topic.PartThingCode,
		topic.PartMessageType, topic.PartSubject, topic.PartFilter:
	default:
		t.Errorf("error %v names unknown part %q", err, te.Part)
	}
	if !strings.HasPrefix(err.Error(), "topic: "+string(te.Part)+" ") || te.Reason == "" {
		t.Errorf("error %q does not name its part and reason", err)
	}
	n := 0
	for _, s := range []error{topic.ErrEmpty, topic.ErrTooLong, topic.ErrInvalidChar, topic.ErrTokenCount,
		topic.ErrUnknownMessageType, topic.ErrReserved, topic.ErrWildcard} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("error %v wraps %d sentinels, want 1", err, n)
	}
}

// matchHelpers checks that every helper filter built from valid s matches it.
func matchHelpers(t *testing.T, s topic.Subject) {
	t.Helper()
	org, err := topic.OrgFilter(s.Org)
	if err != nil {
		t.Fatalf("OrgFilter: %v", err)
	}
	edge, err := topic.EdgeFilter(s.Org, s.Edge)
	if err != nil {
		t.Fatalf("EdgeFilter: %v", err)
	}
	mt, err := topic.MessageTypeFilter(s.Org, s.Edge, s.MessageType)
	if err != nil {
		t.Fatalf("MessageTypeFilter: %v", err)
	}
	thing, err := s.Thing.Filter()
	if err != nil {
		t.Fatalf("Thing.Filter: %v", err)
	}
	for _, f := range []topic.Filter{org, edge, mt, thing} {
		if !f.Matches(s) {
			t.Errorf("%v does not match %v", f, s)
		}
		if !org.Covers(f) {
			t.Errorf("%v does not cover %v", org, f)
		}
	}
	if !edge.Covers(thing) || !edge.Covers(mt) {
		t.Errorf("%v does not cover %v and %v", edge, thing, mt)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
