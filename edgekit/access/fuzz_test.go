package access_test

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/; the f.Add seeds below
// only keep each fuzzer meaningful if those files go missing.

// checkParseError checks the shape every parse error must have.
func checkParseError(t *testing.T, err error, kind string) {
	t.Helper()
	var fe *access.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Kind != kind {
		t.Errorf("Kind = %q, want %q", fe.Kind, kind)
	}
	n := 0
	for _, s := range []error{access.ErrMalformed, access.ErrUnknownField, access.ErrInvalid} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("error %v wraps %d of the sentinels, want exactly 1", err, n)
	}
}

func FuzzParseCredential(f *testing.F) {
	f.Add([]byte(`{"holder":"Ada","kind":"card","state":"active","valid_from":"2026-01-01T00:00:00Z","valid_until":"2027-01-01T00:00:00+01:00","doors":["front"],"groups":["staff"],"schedules":["office"]}`))
	f.Add([]byte(`{"holder":"x","state":"revoked","reason":"lost"}`))
	id := coreID("fuzz")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := access.ParseCredential(id, data)
		if err != nil {
			if c != nil {
				t.Fatalf("ParseCredential returned %+v with error %v", c, err)
			}
			checkParseError(t, err, "credential")
			return
		}
		if c.ID != id {
			t.Fatalf("ID = %q", c.ID)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed credential does not validate: %v", err)
		}
		// encoding/json is more lenient: what the strict decoder accepts, it
		// must read the same way.
		lenient := access.Credential{ID: id}
		if err := json.Unmarshal(data, &lenient); err != nil {
			t.Fatalf("accepted input that encoding/json rejects: %v", err)
		}
		if !equalCredential(c, &lenient) {
			t.Fatalf("strict and encoding/json decoding differ:\n%+v\n%+v", c, &lenient)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed credential: %v", err)
		}
		back, err := access.ParseCredential(id, out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !equalCredential(c, back) {
			t.Fatalf("round trip changed the credential:\n%+v\n%+v\n%s", c, back, out)
		}
	})
}

func equalCredential(a, b *access.Credential) bool {
	return a.ID == b.ID && a.Holder == b.Holder && a.Kind == b.Kind && a.State == b.State && a.Reason == b.Reason &&
		a.ValidFrom.Equal(b.ValidFrom) && a.ValidUntil.Equal(b.ValidUntil) && a.Changed.Equal(b.Changed) &&
		slices.Equal(a.Doors, b.Doors) && slices.Equal(a.Groups, b.Groups) && slices.Equal(a.Schedules, b.Schedules)
}

func FuzzParseSchedule(f *testing.F) {
	f.Add([]byte(`{"intervals":[{"days":["mon","fri"],"from":"08:00","until":"18:00"},{"days":["sat"],"from":"22:00","until":"06:00"}]}`))
	f.Add([]byte(`{"intervals":[{"days":["sun"],"from":"00:00","until":"24:00"}]}`))
	// Instants around the week and a DST change, read in a zone with DST.
	loc := time.FixedZone("X", -5*3600)
	if l, err := time.LoadLocation("America/New_York"); err == nil {
		loc = l
	}
	var instants []time.Time
	for t := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC); t.Before(time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)); t = t.Add(37 * time.Minute) {
		instants = append(instants, t)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := access.ParseSchedule("fuzz", data)
		if err != nil {
			if s != nil {
				t.Fatalf("ParseSchedule returned %+v with error %v", s, err)
			}
			checkParseError(t, err, "schedule")
			return
		}
		lenient := access.Schedule{Name: "fuzz"}
		if err := json.Unmarshal(data, &lenient); err != nil {
			t.Fatalf("accepted input that encoding/json rejects: %v", err)
		}
		if !equalSchedule(s, &lenient) {
			t.Fatalf("strict and encoding/json decoding differ:\n%+v\n%+v", s, &lenient)
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed schedule: %v", err)
		}
		back, err := access.ParseSchedule("fuzz", out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !equalSchedule(s, back) {
			t.Fatalf("round trip changed the schedule:\n%+v\n%+v", s, back)
		}
		// The same intervals built by hand, never validated, must allow
		// exactly the same moments.
		hand := &access.Schedule{Name: s.Name}
		for _, iv := range s.Intervals {
			hand.Intervals = append(hand.Intervals, access.Interval{Days: iv.Days, From: iv.From, Until: iv.Until})
		}
		for _, at := range instants {
			if got, want := hand.Allows(at, loc), s.Allows(at, loc); got != want {
				t.Fatalf("at %v: unvalidated Allows = %v, validated %v", at.In(loc), got, want)
			}
		}
	})
}

func equalSchedule(a, b *access.Schedule) bool {
	return a.Name == b.Name && slices.EqualFunc(a.Intervals, b.Intervals, func(x, y access.Interval) bool {
		return slices.Equal(x.Days, y.Days) && x.From == y.From && x.Until == y.Until
	})
}

func FuzzParseDoorPolicies(f *testing.F) {
	f.Add([]byte(`{"front":{"stale_after":"24h","fallback":"allow_listed","always_allowed":["` + coreID("m") + `"],"unlock_for":"5s"},"back":{}}`))
	f.Add([]byte(`{"lab":{"stale_after":"-1s","fallback":"deny"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := access.ParseDoorPolicies(data)
		if err != nil {
			if p != nil {
				t.Fatalf("ParseDoorPolicies returned %v with error %v", p, err)
			}
			checkParseError(t, err, "door policy")
			return
		}
		for door, pol := range p {
			if err := pol.Validate(door); err != nil {
				t.Fatalf("parsed policy does not validate: %v", err)
			}
		}
		out, err := access.MarshalDoorPolicies(p)
		if err != nil {
			t.Fatalf("MarshalDoorPolicies of parsed policies: %v", err)
		}
		back, err := access.ParseDoorPolicies(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !maps.EqualFunc(p, back, func(a, b access.DoorPolicy) bool {
			return a.StaleAfter == b.StaleAfter && a.Fallback == b.Fallback && a.UnlockFor == b.UnlockFor && slices.Equal(a.AlwaysAllowed, b.AlwaysAllowed)
		}) {
			t.Fatalf("round trip changed the policies:\n%+v\n%+v\n%s", p, back, out)
		}
	})
}
