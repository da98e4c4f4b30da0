package access_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/nats-io/nats.go/jetstream"
)

// bucketEntry returns the latest entry of key in edge's bucket on central,
// delete markers included.
func (s *site) bucketEntry(edge, key string) jetstream.KeyValueEntry {
	s.tb.Helper()
	n, _ := authz.NamesFor("acme", edge)
	kv, err := s.cjs.KeyValue(siteCtx(s.tb), n.CredentialBucket)
	if err != nil {
		s.tb.Fatal(err)
	}
	hist, err := kv.History(siteCtx(s.tb), key)
	if err != nil {
		s.tb.Fatalf("history of %s at %s: %v", key, edge, err)
	}
	return hist[len(hist)-1]
}

// version returns the edge's credential set version at central.
func (s *site) version(m *access.Manager, edge string) uint64 {
	s.tb.Helper()
	v, err := m.Version(siteCtx(s.tb), edge)
	if err != nil {
		s.tb.Fatal(err)
	}
	return v
}

func TestManagerPutGet(t *testing.T) {
	s := newSite(t, siteOptions{noNode: true})
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	m, err := access.NewManager(s.cjs, s.hub, access.ManagerConfig{HashKey: s.key, Inventory: s.inv, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := siteCtx(t)
	id, err := m.Hash("0012345678")
	if err != nil {
		t.Fatal(err)
	}
	if id != s.id("0012345678") {
		t.Fatalf("Hash %s, want the keyed hash", id)
	}
	if _, err := m.PutGroup(ctx, "hq", &access.DoorGroup{Name: "all", Doors: []string{"front", "back"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.PutSchedule(ctx, "hq", &access.Schedule{Name: "office", Intervals: []access.Interval{
		{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "07:00", Until: "19:00"}}}); err != nil {
		t.Fatal(err)
	}
	c := &access.Credential{ID: id, Holder: "alice", Kind: message.CredentialCard, State: access.StateActive,
		ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(365 * 24 * time.Hour),
		Doors: []string{"front"}, Groups: []string{"all"}, Schedules: []string{"office"}}
	rev, err := m.Put(ctx, "hq", c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision != rev || !c.Changed.Equal(now) {
		t.Fatalf("Put stamped revision %d changed %v; want %d and %v", c.Revision, c.Changed, rev, now)
	}
	if v := s.version(m, "hq"); v != rev {
		t.Fatalf("version %d after put at revision %d", v, rev)
	}
	got, err := m.Get(ctx, "hq", id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Holder != "alice" || got.State != access.StateActive || got.Revision != rev || !got.Changed.Equal(now) ||
		!slices.Equal(got.Groups, []string{"all"}) || !slices.Equal(got.Schedules, []string{"office"}) || !got.ValidUntil.Equal(c.ValidUntil) {
		t.Fatalf("Get returned %+v, stored %+v", got, c)
	}
	if _, err := m.Get(ctx, "lab", id); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("Get at an edge without it: %v, want ErrNotFound", err)
	}
	if _, err := m.Get(ctx, "nowhere", id); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("Get at an unregistered edge: %v, want ErrBucketNotFound", err)
	}
	bob := &access.Credential{ID: s.id("0099"), Holder: "bob", Kind: message.CredentialPIN, State: access.StateRevoked, Reason: "left"}
	if _, err := m.Put(ctx, "hq", bob); err != nil {
		t.Fatal(err)
	}
	// List: the credentials only (not the group or schedule), revoked
	// ones too, by holder.
	list, err := m.List(ctx, "hq")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != id || list[0].Revision != rev || list[1].ID != bob.ID || list[1].State != access.StateRevoked {
		t.Fatalf("List: %d credentials %+v", len(list), list)
	}
	if list, err := m.List(ctx, "lab"); err != nil || len(list) != 0 {
		t.Fatalf("List of an empty bucket: %v, %v", list, err)
	}
	if _, err := m.List(ctx, "nowhere"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("List at an unregistered edge: %v, want ErrBucketNotFound", err)
	}
	rules := []byte(`{"rules": []}`)
	rrev, err := m.PutRules(ctx, "hq", rules)
	if err != nil {
		t.Fatal(err)
	}
	if e := s.bucketEntry("hq", access.KeyRules); e.Revision() != rrev || string(e.Value()) != string(rules) {
		t.Fatalf("rules entry %d %q", e.Revision(), e.Value())
	}
	if doc, r, err := m.Rules(ctx, "hq"); err != nil || r != rrev || string(doc) != string(rules) {
		t.Fatalf("Rules: %q %d %v", doc, r, err)
	}
	if _, _, err := m.Rules(ctx, "lab"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("Rules of an edge without: %v, want ErrNotFound", err)
	}

	noKey, err := access.NewManager(s.cjs, s.hub, access.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noKey.Hash("1"); !errors.Is(err, access.ErrNoHashKey) {
		t.Fatalf("Hash without key: %v", err)
	}
	if _, err := access.NewManager(s.cjs, s.hub, access.ManagerConfig{Org: "other"}); !errors.Is(err, access.ErrManagerConfig) {
		t.Fatalf("NewManager for another org: %v", err)
	}
	if _, err := access.NewManager(s.cjs, s.hub, access.ManagerConfig{HashKey: []byte("short")}); !errors.Is(err, access.ErrInvalid) {
		t.Fatalf("NewManager with a short key: %v", err)
	}
}

func TestManagerPutInvalid(t *testing.T) {
	s := newSite(t, siteOptions{noNode: true})
	m := s.manager()
	ctx := siteCtx(t)
	if _, err := m.PutGroup(ctx, "hq", &access.DoorGroup{Name: "all", Doors: []string{"front"}}); err != nil {
		t.Fatal(err)
	}
	id := s.id("42")
	valid := func() *access.Credential {
		return &access.Credential{ID: id, Holder: "bob", State: access.StateActive, Doors: []string{"front"}}
	}
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		edge    string
		change  func(*access.Credential)
		field   string
		unknown bool // wraps ErrUnknownReference
	}{
		{name: "bad id", change: func(c *access.Credential) { c.ID = "ABC" }, field: "id"},
		{name: "upper-case id", change: func(c *access.Credential) { c.ID = "A" + id[1:] }, field: "id"},
		{name: "missing holder", change: func(c *access.Credential) { c.Holder = "" }, field: "holder"},
		{name: "missing state", change: func(c *access.Credential) { c.State = "" }, field: "state"},
		{name: "unknown door", change: func(c *access.Credential) { c.Doors = []string{"front", "cellar"} }, field: "doors[1]", unknown: true},
		{name: "door of another edge", edge: "lab", change: func(c *access.Credential) {}, field: "doors[0]", unknown: true},
		{name: "unknown group", change: func(c *access.Credential) { c.Groups = []string{"all", "night"} }, field: "groups[1]", unknown: true},
		{name: "unknown schedule", change: func(c *access.Credential) { c.Schedules = []string{"office"} }, field: "schedules[0]", unknown: true},
		{name: "valid_until before valid_from", change: func(c *access.Credential) {
			c.ValidFrom, c.ValidUntil = from, from.Add(-time.Second)
		}, field: "valid_until"},
	}
	before := s.version(m, "hq")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edge := tt.edge
			if edge == "" {
				edge = "hq"
			}
			c := valid()
			tt.change(c)
			for _, put := range []struct {
				how string
				do  func() error
			}{
				{"Put", func() error { _, err := m.Put(ctx, edge, c); return err }},
				{"PutMany", func() error { _, err := m.PutMany(ctx, edge, []*access.Credential{valid(), c}); return err }},
			} {
				err := put.do()
				var fe *access.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%s: %v, want a *FieldError", put.how, err)
				}
				if fe.Field != tt.field || !errors.Is(err, access.ErrInvalid) || errors.Is(err, access.ErrUnknownReference) != tt.unknown {
					t.Fatalf("%s: %v (field %q), want field %q, unknown reference %v", put.how, err, fe.Field, tt.field, tt.unknown)
				}
			}
		})
	}
	if v := s.version(m, "hq"); v != before {
		t.Fatalf("version %d after rejected puts, was %d: something was stored", v, before)
	}
	if _, err := m.PutGroup(ctx, "hq", &access.DoorGroup{Name: "bad", Doors: []string{"front", "cellar"}}); !errors.Is(err, access.ErrUnknownReference) {
		t.Fatalf("group with an unknown door: %v", err)
	}
	if _, err := m.PutRules(ctx, "hq", nil); !errors.Is(err, access.ErrInvalid) {
		t.Fatalf("empty rules: %v", err)
	}
}

func TestManagerRevoke(t *testing.T) {
	s := newSite(t, siteOptions{noNode: true})
	clock := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	m, err := access.NewManager(s.cjs, s.hub, access.ManagerConfig{Inventory: s.inv, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := siteCtx(t)
	lost, kept := s.id("lost"), s.id("kept")
	before := map[string]uint64{}
	for _, edge := range []string{"hq", "lab"} {
		door := map[string]string{"hq": "front", "lab": "lab"}[edge]
		for _, id := range []string{lost, kept} {
			rev, err := m.Put(ctx, edge, &access.Credential{ID: id, Holder: "carol", State: access.StateActive, Doors: []string{door}})
			if err != nil {
				t.Fatal(err)
			}
			before[edge] = rev
		}
	}

	clock = clock.Add(time.Hour)
	revs, err := m.Revoke(ctx, lost, "reported lost")
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 {
		t.Fatalf("revoked at %v, want hq and lab", revs)
	}
	for edge, rev := range revs {
		if rev <= before[edge] || s.version(m, edge) != rev {
			t.Fatalf("edge %s: revocation at revision %d, version %d, before %d", edge, rev, s.version(m, edge), before[edge])
		}
		e := s.bucketEntry(edge, access.CredentialKey(lost))
		if e.Operation() != jetstream.KeyValuePut || e.Revision() != rev {
			t.Fatalf("edge %s: latest entry is a %s at %d, want a put at %d", edge, e.Operation(), e.Revision(), rev)
		}
		c, err := access.ParseCredential(lost, e.Value())
		if err != nil {
			t.Fatal(err)
		}
		if c.State != access.StateRevoked || c.Reason != "reported lost" || !c.Changed.Equal(clock) || c.Holder != "carol" {
			t.Fatalf("edge %s: stored %+v", edge, c)
		}
	}
	again, err := m.Revoke(ctx, lost, "reported lost")
	if err != nil || again["hq"] != revs["hq"] || again["lab"] != revs["lab"] {
		t.Fatalf("revoking again: %v %v, want the same revisions %v", again, err, revs)
	}

	// A revoked credential stays revoked.
	for name, do := range map[string]func() error{
		"Reinstate": func() error { _, err := m.Reinstate(ctx, lost); return err },
		"Suspend":   func() error { _, err := m.Suspend(ctx, lost, "why not"); return err },
		"SetState":  func() error { _, err := m.SetState(ctx, lost, access.StateActive, ""); return err },
		"Put": func() error {
			_, err := m.Put(ctx, "hq", &access.Credential{ID: lost, Holder: "carol", State: access.StateActive, Doors: []string{"front"}})
			return err
		},
	} {
		if err := do(); !errors.Is(err, access.ErrInvalid) {
			t.Fatalf("%s of a revoked credential: %v, want ErrInvalid", name, err)
		}
	}
	if v := s.version(m, "hq"); v != revs["hq"] {
		t.Fatalf("version %d after refused changes, want %d", v, revs["hq"])
	}

	// Suspend and reinstate.
	sus, err := m.Suspend(ctx, kept, "on leave")
	if err != nil || len(sus) != 2 {
		t.Fatalf("suspend: %v %v", sus, err)
	}
	if c, _ := m.Get(ctx, "lab", kept); c.State != access.StateSuspended || c.Reason != "on leave" {
		t.Fatalf("suspended: %+v", c)
	}
	back, err := m.Reinstate(ctx, kept)
	if err != nil || back["hq"] <= sus["hq"] {
		t.Fatalf("reinstate: %v %v", back, err)
	}
	if c, _ := m.Get(ctx, "hq", kept); c.State != access.StateActive || c.Reason != "" {
		t.Fatalf("reinstated: %+v", c)
	}

	// SetState does as Suspend and Reinstate do, by state, and refuses a
	// state that is none of the three.
	if _, err := m.SetState(ctx, kept, access.StateSuspended, "on leave again"); err != nil {
		t.Fatalf("SetState suspended: %v", err)
	}
	if c, _ := m.Get(ctx, "hq", kept); c.State != access.StateSuspended || c.Reason != "on leave again" {
		t.Fatalf("suspended by SetState: %+v", c)
	}
	if _, err := m.SetState(ctx, kept, access.StateActive, "ignored"); err != nil {
		t.Fatalf("SetState active: %v", err)
	}
	if c, _ := m.Get(ctx, "hq", kept); c.State != access.StateActive || c.Reason != "" {
		t.Fatalf("reinstated by SetState: %+v", c)
	}
	if _, err := m.SetState(ctx, kept, "lost", "why"); !errors.Is(err, access.ErrInvalid) {
		t.Fatalf("SetState to an unknown state: %v, want ErrInvalid", err)
	}

	// Remove is a deletion at one edge, unlike a revocation.
	if err := m.Remove(ctx, "lab", kept); err != nil {
		t.Fatal(err)
	}
	if e := s.bucketEntry("lab", access.CredentialKey(kept)); e.Operation() != jetstream.KeyValueDelete {
		t.Fatalf("after Remove the latest entry is a %s", e.Operation())
	}
	if _, err := m.Get(ctx, "lab", kept); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("Get after Remove: %v", err)
	}
	if err := m.Remove(ctx, "lab", kept); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("Remove twice: %v", err)
	}
	if only, err := m.Suspend(ctx, kept, "again"); err != nil || len(only) != 1 || only["hq"] == 0 {
		t.Fatalf("suspend after removal at lab: %v %v, want hq only", only, err)
	}
	if _, err := m.Revoke(ctx, s.id("never"), "x"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("revoking an unknown credential: %v, want ErrNotFound", err)
	}
	if _, err := m.Revoke(ctx, "not-an-id", "x"); !errors.Is(err, access.ErrInvalid) {
		t.Fatalf("revoking a bad id: %v, want ErrInvalid", err)
	}
}

// manyCredentials returns n active credentials for door front.
func manyCredentials(key []byte, n int) []*access.Credential {
	cs := make([]*access.Credential, n)
	for i := range cs {
		cs[i] = &access.Credential{
			ID:     message.Credential(fmt.Sprintf("card-%08d", i)).Hash(key),
			Holder: fmt.Sprintf("holder-%08d", i), Kind: message.CredentialCard,
			State: access.StateActive, Doors: []string{"front"},
		}
	}
	return cs
}

func TestManagerPutMany(t *testing.T) {
	s := newSite(t, siteOptions{noNode: true})
	m := s.manager()
	ctx := siteCtx(t)
	const n = 20000 // BenchmarkPutMany100k loads 100,000, with the edge's mirror
	cs := manyCredentials(s.key, n)

	// Validation is all or nothing.
	bad := slices.Clone(cs)
	bad[n/2] = &access.Credential{ID: cs[n/2].ID, State: access.StateActive}
	if _, err := m.PutMany(ctx, "hq", bad); !errors.Is(err, access.ErrInvalid) {
		t.Fatalf("PutMany with a bad credential: %v", err)
	}
	if v := s.version(m, "hq"); v != 0 {
		t.Fatalf("version %d after a rejected bulk load", v)
	}

	start := time.Now()
	last, err := m.PutMany(ctx, "hq", cs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d credentials in %v", n, time.Since(start))
	if last != n || s.version(m, "hq") != last {
		t.Fatalf("last revision %d, version %d, want %d", last, s.version(m, "hq"), n)
	}
	n2, _ := authz.NamesFor("acme", "hq")
	kv, err := s.cjs.KeyValue(ctx, n2.CredentialBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Values() != n {
		t.Fatalf("bucket holds %d values, want %d", st.Values(), n)
	}
	for _, i := range []int{0, n / 3, n - 1} {
		c, err := m.Get(ctx, "hq", cs[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Holder != cs[i].Holder || c.Revision != cs[i].Revision || c.Revision == 0 {
			t.Fatalf("credential %d: %+v, loaded %+v", i, c, cs[i])
		}
	}

	// A revocation is final: loading the credential again as active, in a
	// large or a small bulk load, is refused with the state named, and
	// stores nothing.
	if _, err := m.Revoke(ctx, cs[7].ID, "lost"); err != nil {
		t.Fatal(err)
	}
	before := s.version(m, "hq")
	for _, load := range [][]*access.Credential{cs, cs[:10]} {
		again := make([]*access.Credential, len(load))
		for i, c := range load {
			cp := *c
			again[i] = &cp
		}
		_, err := m.PutMany(ctx, "hq", again)
		var fe *access.FieldError
		if !errors.As(err, &fe) || fe.Field != "state" || fe.Name != cs[7].ID {
			t.Errorf("bulk load of %d un-revoking a credential: %v", len(load), err)
		}
	}
	if v := s.version(m, "hq"); v != before {
		t.Errorf("version %d after refused bulk loads, want %d", v, before)
	}
}
