package access_test

import (
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
)

// coreApply applies one entry, failing the test on an unexpected error.
func coreApply(t testing.TB, s *access.Set, key, value string, revision uint64) {
	t.Helper()
	if _, err := s.Apply(key, []byte(value), revision, false); err != nil {
		t.Fatalf("Apply(%s, rev %d): %v", key, revision, err)
	}
}

// decideFixture is a set holding one credential per outcome, at version 100.
type decideFixture struct {
	set *access.Set
	loc *time.Location
	now time.Time // Wednesday 2026-06-10 10:00 in Berlin
	ids map[string]string
}

func newDecideFixture(t testing.TB) *decideFixture {
	t.Helper()
	f := &decideFixture{set: access.NewSet(), loc: loadLocation(t, "Europe/Berlin"), ids: map[string]string{}}
	f.now = time.Date(2026, 6, 10, 10, 0, 0, 0, f.loc)
	creds := []struct{ name, value string }{
		{"alice", `{"holder":"Alice","state":"active","doors":["front"],"groups":["staff"]}`},
		{"revoked", `{"holder":"Rev","state":"revoked","reason":"lost","doors":["front"]}`},
		{"suspended", `{"holder":"Sus","state":"suspended","doors":["front"]}`},
		{"expired", `{"holder":"Exp","state":"active","valid_until":"2026-06-10T08:00:00Z","doors":["front"]}`},
		{"future", `{"holder":"Fut","state":"active","valid_from":"2026-06-10T08:00:00.000000001Z","doors":["front"]}`},
		{"office", `{"holder":"Off","state":"active","doors":["front"],"schedules":["night","office"]}`},
		{"back-only", `{"holder":"Back","state":"active","doors":["back"]}`},
		{"lost-group", `{"holder":"LG","state":"active","groups":["gone"]}`},
		{"lost-schedule", `{"holder":"LS","state":"active","doors":["front"],"schedules":["gone"]}`},
		{"broken", `{"holder":"Brk","state":"active","doors":["front"]}`}, // replaced below
	}
	rev := uint64(0)
	for _, c := range creds {
		rev++
		f.ids[c.name] = coreID(c.name)
		coreApply(t, f.set, access.CredentialKey(f.ids[c.name]), c.value, rev)
	}
	f.ids["nobody"] = coreID("nobody")
	f.ids["master"] = coreID("master")
	coreApply(t, f.set, access.GroupKey("staff"), `{"doors":["lab","front","garage"]}`, 50)
	coreApply(t, f.set, access.ScheduleKey("office"), `{"intervals":[{"days":["mon","tue","wed","thu","fri"],"from":"08:00","until":"18:00"}]}`, 51)
	coreApply(t, f.set, access.ScheduleKey("night"), `{"intervals":[{"days":["mon","tue","wed","thu","fri"],"from":"22:00","until":"06:00"}]}`, 52)
	// A revocation whose value does not parse: the set keeps a broken marker.
	if _, err := f.set.Apply(access.CredentialKey(f.ids["broken"]), []byte(`{"holder":"Brk","state":"revoked",}`), 53, false); err == nil {
		t.Fatal("Apply of a malformed value succeeded")
	}
	if _, err := f.set.Apply("rules", []byte("whatever"), 100, false); err != nil {
		t.Fatalf("Apply(rules): %v", err)
	}
	return f
}

func TestDecide(t *testing.T) {
	f := newDecideFixture(t)
	fresh := access.Situation{Location: f.loc, Available: true}
	listed := access.DoorPolicy{Fallback: access.FallbackAllowListed,
		AlwaysAllowed: []string{f.ids["master"], f.ids["revoked"], f.ids["suspended"], f.ids["broken"], f.ids["alice"]}}
	tests := []struct {
		name     string
		door     string
		cred     string // key of f.ids
		policy   access.DoorPolicy
		now      time.Time     // default f.now
		syncAgo  time.Duration // SyncedAt = now - syncAgo; default 1h
		never    bool          // SyncedAt zero
		down     bool          // !Available
		granted  bool
		reason   message.DenyReason
		fallback bool
		holder   string
	}{
		{name: "grant by door", door: "front", cred: "alice", granted: true, holder: "Alice"},
		{name: "grant by group", door: "lab", cred: "alice", granted: true, holder: "Alice"},
		{name: "door in no list", door: "vault", cred: "alice", reason: message.DenyDoorNotAllowed, holder: "Alice"},
		{name: "door not allowed", door: "front", cred: "back-only", reason: message.DenyDoorNotAllowed, holder: "Back"},
		{name: "missing group", door: "lab", cred: "lost-group", reason: message.DenyDoorNotAllowed, holder: "LG"},
		{name: "unknown", door: "front", cred: "nobody", reason: message.DenyUnknown},
		{name: "broken marker is unknown", door: "front", cred: "broken", reason: message.DenyUnknown},
		{name: "revoked", door: "front", cred: "revoked", reason: message.DenyRevoked, holder: "Rev"},
		{name: "suspended", door: "front", cred: "suspended", reason: message.DenySuspended, holder: "Sus"},
		{name: "expired", door: "front", cred: "expired", reason: message.DenyExpired, holder: "Exp"},
		{name: "expired exactly at valid_until", door: "front", cred: "expired", now: time.Date(2026, 6, 10, 8, 0, 0, 0, time.UTC), reason: message.DenyExpired, holder: "Exp"},
		{name: "valid just before valid_until", door: "front", cred: "expired", now: time.Date(2026, 6, 10, 7, 59, 59, 999999999, time.UTC), granted: true, holder: "Exp"},
		{name: "not yet valid", door: "front", cred: "future", now: time.Date(2026, 6, 10, 8, 0, 0, 0, time.UTC), reason: message.DenyNotYetValid, holder: "Fut"},
		{name: "valid from valid_from", door: "front", cred: "future", now: time.Date(2026, 6, 10, 8, 0, 0, 1, time.UTC), granted: true, holder: "Fut"},
		{name: "inside a schedule", door: "front", cred: "office", granted: true, holder: "Off"},
		{name: "inside the other schedule", door: "front", cred: "office", now: time.Date(2026, 6, 10, 23, 0, 0, 0, f.loc), granted: true, holder: "Off"},
		{name: "outside schedule", door: "front", cred: "office", now: time.Date(2026, 6, 10, 19, 0, 0, 0, f.loc), reason: message.DenyOutsideSchedule, holder: "Off"},
		{name: "outside schedule at weekend", door: "front", cred: "office", now: time.Date(2026, 6, 13, 10, 0, 0, 0, f.loc), reason: message.DenyOutsideSchedule, holder: "Off"},
		{name: "missing schedule never allows", door: "front", cred: "lost-schedule", reason: message.DenyOutsideSchedule, holder: "LS"},
		{name: "revoked before door check", door: "vault", cred: "revoked", reason: message.DenyRevoked, holder: "Rev"},

		{name: "stale", door: "front", cred: "alice", syncAgo: 25 * time.Hour, reason: message.DenyStale, fallback: true, holder: "Alice"},
		{name: "stale exactly at StaleAfter is fresh", door: "front", cred: "alice", syncAgo: access.DefaultStaleAfter, granted: true, holder: "Alice"},
		{name: "stale just past StaleAfter", door: "front", cred: "alice", syncAgo: access.DefaultStaleAfter + time.Nanosecond, reason: message.DenyStale, fallback: true, holder: "Alice"},
		{name: "custom StaleAfter", door: "front", cred: "alice", policy: access.DoorPolicy{StaleAfter: time.Hour}, syncAgo: time.Hour + time.Second, reason: message.DenyStale, fallback: true, holder: "Alice"},
		{name: "never synced is stale", door: "front", cred: "alice", never: true, reason: message.DenyStale, fallback: true, holder: "Alice"},
		{name: "negative StaleAfter never stale", door: "front", cred: "alice", policy: access.DoorPolicy{StaleAfter: -1}, never: true, granted: true, holder: "Alice"},
		{name: "negative StaleAfter still checks the set", door: "front", cred: "revoked", policy: access.DoorPolicy{StaleAfter: -1}, syncAgo: 1000 * time.Hour, reason: message.DenyRevoked, holder: "Rev"},
		{name: "stale is checked before unknown", door: "front", cred: "nobody", syncAgo: 48 * time.Hour, reason: message.DenyStale, fallback: true},
		{name: "unavailable", door: "front", cred: "alice", down: true, reason: message.DenyUnavailable, fallback: true},
		{name: "unavailable beats stale", door: "front", cred: "alice", down: true, never: true, reason: message.DenyUnavailable, fallback: true},

		{name: "fallback allow-listed grant, stale", door: "front", cred: "master", policy: listed, syncAgo: 48 * time.Hour, granted: true, fallback: true},
		{name: "fallback allow-listed grant, active in set", door: "vault", cred: "alice", policy: listed, never: true, granted: true, fallback: true, holder: "Alice"},
		{name: "fallback allow-listed grant, unavailable", door: "front", cred: "master", policy: listed, down: true, granted: true, fallback: true},
		{name: "fallback allow-listed, unavailable set not consulted", door: "front", cred: "revoked", policy: listed, down: true, granted: true, fallback: true},
		{name: "fallback allow-listed but revoked in set", door: "front", cred: "revoked", policy: listed, syncAgo: 48 * time.Hour, reason: message.DenyStale, fallback: true, holder: "Rev"},
		{name: "fallback allow-listed but suspended in set", door: "front", cred: "suspended", policy: listed, syncAgo: 48 * time.Hour, reason: message.DenyStale, fallback: true, holder: "Sus"},
		{name: "fallback allow-listed but broken in set", door: "front", cred: "broken", policy: listed, syncAgo: 48 * time.Hour, reason: message.DenyStale, fallback: true},
		{name: "fallback allow-listed, not listed", door: "front", cred: "nobody", policy: listed, syncAgo: 48 * time.Hour, reason: message.DenyStale, fallback: true},
		{name: "fallback deny ignores the list", door: "front", cred: "master", policy: access.DoorPolicy{Fallback: access.FallbackDeny, AlwaysAllowed: listed.AlwaysAllowed}, down: true, reason: message.DenyUnavailable, fallback: true},
		{name: "allow list not used when fresh", door: "front", cred: "master", policy: listed, reason: message.DenyUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sit := fresh
			sit.Now = f.now
			if !tt.now.IsZero() {
				sit.Now = tt.now
			}
			switch {
			case tt.never:
			case tt.syncAgo != 0:
				sit.SyncedAt = sit.Now.Add(-tt.syncAgo)
			default:
				sit.SyncedAt = sit.Now.Add(-time.Hour)
			}
			sit.Available = !tt.down
			id := f.ids[tt.cred]
			if id == "" {
				t.Fatalf("no credential %q in the fixture", tt.cred)
			}
			got := f.set.Decide(tt.door, tt.policy, id, sit)
			want := message.AccessDecision{
				Granted: tt.granted, Reason: tt.reason, Door: tt.door, Holder: tt.holder,
				CredentialSetVersion: 100, Credential: id, Fallback: tt.fallback, SyncedAt: sit.SyncedAt,
			}
			if got != want {
				t.Errorf("Decide =\n%+v, want\n%+v", got, want)
			}
			if got.Granted != (got.Reason == "") {
				t.Errorf("Granted = %v with Reason %q", got.Granted, got.Reason)
			}
		})
	}
}

func TestDecideNilLocationIsUTC(t *testing.T) {
	s := access.NewSet()
	id := coreID("x")
	coreApply(t, s, access.CredentialKey(id), `{"holder":"X","state":"active","doors":["d"],"schedules":["s"]}`, 1)
	coreApply(t, s, access.ScheduleKey("s"), `{"intervals":[{"days":["wed"],"from":"09:00","until":"10:00"}]}`, 2)
	now := time.Date(2026, 6, 10, 9, 30, 0, 0, time.UTC)
	sit := access.Situation{Now: now, Available: true, SyncedAt: now}
	if d := s.Decide("d", access.DoorPolicy{}, id, sit); !d.Granted {
		t.Errorf("UTC 09:30: %+v", d)
	}
	sit.Location = time.FixedZone("UTC+1", 3600)
	if d := s.Decide("d", access.DoorPolicy{}, id, sit); d.Reason != message.DenyOutsideSchedule {
		t.Errorf("UTC+1 10:30: %+v", d)
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	f := newDecideFixture(t)
	sit := access.Situation{Now: f.now, Location: f.loc, Available: true, SyncedAt: f.now.Add(-time.Minute)}
	for _, c := range []struct{ door, cred string }{{"front", "alice"}, {"lab", "alice"}, {"front", "office"}, {"front", "nobody"}, {"vault", "alice"}} {
		id := f.ids[c.cred]
		if n := testing.AllocsPerRun(100, func() { f.set.Decide(c.door, access.DoorPolicy{}, id, sit) }); n != 0 {
			t.Errorf("Decide(%s, %s) allocates %v times", c.door, c.cred, n)
		}
	}
}
