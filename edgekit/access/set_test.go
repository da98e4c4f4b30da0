package access_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
)

// decideAt decides for id at door "front" with a fresh sync at a fixed
// Wednesday noon UTC.
func decideAt(s *access.Set, id string) message.AccessDecision {
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	return s.Decide("front", access.DoorPolicy{}, id, access.Situation{Now: now, Available: true, SyncedAt: now})
}

func TestSetApply(t *testing.T) {
	s := access.NewSet()
	if s.Version() != 0 || s.Len() != 0 {
		t.Fatalf("new set: version %d, len %d", s.Version(), s.Len())
	}
	id := coreID("card-1")
	key := access.CredentialKey(id)
	steps := []struct {
		name     string
		key      string
		value    string
		revision uint64
		deleted  bool
		ours     bool
		errField string // "" for no error; "-" for an error without a field
		reason   message.DenyReason
		stats    access.SetStats
	}{
		{name: "put active", key: key, value: `{"holder":"A","state":"active","doors":["front"]}`, revision: 3, ours: true,
			stats: access.SetStats{Credentials: 1, Version: 3}},
		{name: "foreign key advances the version", key: "rules", value: `not json`, revision: 4,
			stats: access.SetStats{Credentials: 1, Version: 4}},
		{name: "later revision revokes", key: key, value: `{"holder":"A","state":"revoked","doors":["front"]}`, revision: 6, ours: true,
			reason: message.DenyRevoked, stats: access.SetStats{Credentials: 1, Version: 6}},
		{name: "replay of an older revision is ignored", key: key, value: `{"holder":"A","state":"active","doors":["front"]}`, revision: 3, ours: true,
			reason: message.DenyRevoked, stats: access.SetStats{Credentials: 1, Version: 6}},
		{name: "reactivate", key: key, value: `{"holder":"A","state":"active","doors":["front"]}`, revision: 7, ours: true,
			stats: access.SetStats{Credentials: 1, Version: 7}},
		{name: "malformed revocation leaves a broken marker", key: key, value: `{"holder":"A","state":"revoked","doors":["front"]`, revision: 8, ours: true,
			errField: "-", reason: message.DenyUnknown, stats: access.SetStats{Broken: 1, Version: 8}},
		{name: "invalid revocation leaves a broken marker", key: key, value: `{"holder":"A","state":"revokd"}`, revision: 9, ours: true,
			errField: "state", reason: message.DenyUnknown, stats: access.SetStats{Broken: 1, Version: 9}},
		{name: "valid put replaces the marker", key: key, value: `{"holder":"A","state":"active","doors":["front"]}`, revision: 10, ours: true,
			stats: access.SetStats{Credentials: 1, Version: 10}},
		{name: "delete", key: key, revision: 11, deleted: true, ours: true,
			reason: message.DenyUnknown, stats: access.SetStats{Version: 11}},
		{name: "put after delete", key: key, value: `{"holder":"A","state":"active","doors":["front"]}`, revision: 12, ours: true,
			stats: access.SetStats{Credentials: 1, Version: 12}},
		{name: "bad id", key: "cred.NOT-AN-ID", value: `{"holder":"B","state":"active"}`, revision: 13, ours: true,
			errField: "id", stats: access.SetStats{Credentials: 1, Version: 13}},
		{name: "group", key: "group.staff", value: `{"doors":["front"]}`, revision: 14, ours: true,
			stats: access.SetStats{Credentials: 1, Groups: 1, Version: 14}},
		{name: "broken group", key: "group.staff", value: `{"doors":["front"],"x":1}`, revision: 15, ours: true,
			errField: "x", stats: access.SetStats{Credentials: 1, Broken: 1, Version: 15}},
		{name: "bad group name", key: "group.a b", value: `{"doors":[]}`, revision: 16, ours: true,
			errField: "-", stats: access.SetStats{Credentials: 1, Broken: 1, Version: 16}},
		{name: "delete broken group", key: "group.staff", revision: 17, deleted: true, ours: true,
			stats: access.SetStats{Credentials: 1, Version: 17}},
		{name: "schedule", key: "schedule.office", value: `{"intervals":[{"days":["wed"],"from":"08:00","until":"18:00"}]}`, revision: 18, ours: true,
			stats: access.SetStats{Credentials: 1, Schedules: 1, Version: 18}},
		{name: "broken schedule", key: "schedule.office", value: `{"intervals":[{"days":["wed"],"from":"08:00","until":"08:00"}]}`, revision: 19, ours: true,
			errField: "intervals[0].until", stats: access.SetStats{Credentials: 1, Broken: 1, Version: 19}},
		{name: "delete schedule", key: "schedule.office", revision: 20, deleted: true, ours: true,
			stats: access.SetStats{Credentials: 1, Version: 20}},
		{name: "delete of a key never put", key: "schedule.never", revision: 21, deleted: true, ours: true,
			stats: access.SetStats{Credentials: 1, Version: 21}},
		{name: "prefix without a dot is foreign", key: "credentials", value: `{}`, revision: 22,
			stats: access.SetStats{Credentials: 1, Version: 22}},
		{name: "lower revision of a foreign key does not lower the version", key: "rules", revision: 2,
			stats: access.SetStats{Credentials: 1, Version: 22}},
	}
	for _, st := range steps {
		ours, err := s.Apply(st.key, []byte(st.value), st.revision, st.deleted)
		if ours != st.ours {
			t.Errorf("%s: Apply reports ours = %v, want %v", st.name, ours, st.ours)
		}
		switch st.errField {
		case "":
			if err != nil {
				t.Errorf("%s: Apply: %v", st.name, err)
			}
		default:
			var fe *access.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("%s: Apply error = %v, want a *FieldError", st.name, err)
			} else if st.errField != "-" && fe.Field != st.errField {
				t.Errorf("%s: Apply error field %q, want %q (%v)", st.name, fe.Field, st.errField, err)
			}
		}
		if got := s.Stats(); got != st.stats {
			t.Errorf("%s: Stats = %+v, want %+v", st.name, got, st.stats)
		}
		if s.Len() != st.stats.Credentials || s.Version() != st.stats.Version {
			t.Errorf("%s: Len %d, Version %d; want %d, %d", st.name, s.Len(), s.Version(), st.stats.Credentials, st.stats.Version)
		}
		if d := decideAt(s, id); d.Reason != st.reason {
			t.Errorf("%s: Decide = %+v, want reason %q", st.name, d, st.reason)
		}
	}
}

func TestSetCredential(t *testing.T) {
	s := access.NewSet()
	id := coreID("card-1")
	coreApply(t, s, access.CredentialKey(id), `{"holder":"A","state":"active","doors":["front","back"]}`, 42)
	c, ok := s.Credential(id)
	if !ok || c.ID != id || c.Holder != "A" || c.Revision != 42 || len(c.Doors) != 2 {
		t.Fatalf("Credential = %+v, %v", c, ok)
	}
	c.Doors[0] = "vault" // a copy: the set must not change
	if d := decideAt(s, id); !d.Granted {
		t.Errorf("after changing the copy: %+v", d)
	}
	if again, _ := s.Credential(id); again.Doors[0] != "front" {
		t.Errorf("Credential shares its Doors with the set: %v", again.Doors)
	}
	if _, ok := s.Credential(coreID("other")); ok {
		t.Error("Credential reports an absent id")
	}
	s.Apply(access.CredentialKey(id), []byte(`garbage`), 43, false)
	if _, ok := s.Credential(id); ok {
		t.Error("Credential reports a broken marker")
	}
}

func TestSetGroupAndScheduleChanges(t *testing.T) {
	s := access.NewSet()
	id := coreID("card-1")
	coreApply(t, s, access.CredentialKey(id), `{"holder":"A","state":"active","groups":["staff"],"schedules":["day"]}`, 1)
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	sit := access.Situation{Now: now, Available: true, SyncedAt: now}
	decide := func() message.DenyReason { return s.Decide("lab", access.DoorPolicy{}, id, sit).Reason }

	if r := decide(); r != message.DenyDoorNotAllowed {
		t.Errorf("no group yet: %q", r)
	}
	coreApply(t, s, access.GroupKey("staff"), `{"doors":["lab"]}`, 2)
	if r := decide(); r != message.DenyOutsideSchedule {
		t.Errorf("group, no schedule yet: %q", r)
	}
	coreApply(t, s, access.ScheduleKey("day"), `{"intervals":[{"days":["wed"],"from":"06:00","until":"20:00"}]}`, 3)
	if r := decide(); r != "" {
		t.Errorf("group and schedule: %q", r)
	}
	s.Apply(access.ScheduleKey("day"), []byte(`{"intervals":[{"days":["wed"],"from":"06:00","until":"20:00"}]`), 4, false)
	if r := decide(); r != message.DenyOutsideSchedule {
		t.Errorf("broken schedule: %q", r)
	}
	coreApply(t, s, access.ScheduleKey("day"), `{"intervals":[{"days":["wed"],"from":"06:00","until":"20:00"}]}`, 5)
	s.Apply(access.GroupKey("staff"), []byte(`{"doors":"lab"}`), 6, false)
	if r := decide(); r != message.DenyDoorNotAllowed {
		t.Errorf("broken group: %q", r)
	}
	coreApply(t, s, access.GroupKey("staff"), `{"doors":["lab"]}`, 7)
	s.Apply(access.GroupKey("staff"), nil, 8, true)
	if r := decide(); r != message.DenyDoorNotAllowed {
		t.Errorf("deleted group: %q", r)
	}
}

// TestSetConcurrent runs Apply and Decide at once; run with -race.
func TestSetConcurrent(t *testing.T) {
	s := access.NewSet()
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = coreID(fmt.Sprint("card-", i))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, id := range ids {
			s.Apply(access.CredentialKey(id), []byte(`{"holder":"h","state":"active","doors":["front"]}`), uint64(i+1), false)
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range ids {
				d := decideAt(s, id)
				if d.Reason != "" && d.Reason != message.DenyUnknown {
					t.Errorf("Decide = %+v", d)
				}
				_ = s.Stats()
			}
		}()
	}
	wg.Wait()
	if s.Len() != n || s.Version() != n {
		t.Errorf("Len %d, Version %d, want %d", s.Len(), s.Version(), n)
	}
	for _, id := range ids {
		if d := decideAt(s, id); !d.Granted {
			t.Fatalf("after all applies: %+v", d)
		}
	}
}

func TestSetZeroValue(t *testing.T) {
	var s access.Set
	id := coreID("z")
	if d := decideAt(&s, id); d.Reason != message.DenyUnknown {
		t.Errorf("zero set: %+v", d)
	}
	coreApply(t, &s, access.CredentialKey(id), `{"holder":"Z","state":"active","doors":["front"]}`, 1)
	if d := decideAt(&s, id); !d.Granted || d.CredentialSetVersion != 1 {
		t.Errorf("zero set after Apply: %+v", d)
	}
}
