package api_test

import (
	"slices"
	"testing"

	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/testing/pgtest"
)

// TestAPIOnPostgres: with a database, the same routes answer from
// PostgreSQL: events paged both ways and filtered, the things' liveness,
// decisions, and commands with their acks.
func TestAPIOnPostgres(t *testing.T) {
	f := newFixture(t, fixtureOptions{db: pgtest.New(t), edge: true})
	if f.c.Store() == nil {
		t.Fatal("central has no store")
	}
	dev := f.device(t, reader)
	var ids []string
	for i := range 3 {
		id, err := dev.PublishEvent(ctx(t), "pg.event", map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	v := f.prov.Token(t, "vera", "viewer")
	read := func(desc bool) []string {
		items, _ := f.eventPages(t, v, api.PathPrefix+"/events?thing=hq.reader.r1&name=pg.event&since=1h", 2, desc)
		return eventIDs(items)
	}
	waitFor(t, "the events in the database", func() bool { return len(read(false)) == len(ids) })
	if got := read(false); !slices.Equal(got, ids) {
		t.Fatalf("ascending: %v, want %v", got, ids)
	}
	rev := slices.Clone(ids)
	slices.Reverse(rev)
	if got := read(true); !slices.Equal(got, rev) {
		t.Fatalf("descending: %v, want %v", got, rev)
	}
	if res := f.do(t, "GET", api.PathPrefix+"/events?cursor=garbage", v, nil); res.status != 400 || res.problem(t).Field != "cursor" {
		t.Fatalf("bad cursor: %d %s", res.status, res.body)
	}
	var things []api.ThingStatus
	waitFor(t, "the reader online from the database", func() bool {
		f.do(t, "GET", api.PathPrefix+"/things?edge=hq", v, nil).decode(t, &things)
		i := slices.IndexFunc(things, func(x api.ThingStatus) bool { return x.Thing == "hq.reader.r1" })
		return i >= 0 && things[i].State == "online"
	})

	t.Run("Decisions", func(t *testing.T) { testDecisions(t, f) })
	t.Run("EventFilters", func(t *testing.T) { testEventFilters(t, f) })
	t.Run("Commands", func(t *testing.T) { testCommands(t, f) })
}
