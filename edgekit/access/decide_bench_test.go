package access_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
)

// benchEntry is one pre-encoded bucket entry.
type benchEntry struct {
	key   string
	value []byte
}

// benchEntries returns the entries of a realistic bucket of n credentials,
// each with 2 doors, 1 group and 1 schedule, plus the groups and schedules
// they name; ids[i] is the id of credential i.
func benchEntries(n int) (entries []benchEntry, ids []string) {
	const groups, schedules = 20, 5
	for g := range groups {
		entries = append(entries, benchEntry{access.GroupKey(fmt.Sprint("group-", g)),
			fmt.Appendf(nil, `{"doors":["lab-%d","store-%d","garage"]}`, g, g)})
	}
	for s := range schedules {
		entries = append(entries, benchEntry{access.ScheduleKey(fmt.Sprint("shift-", s)),
			fmt.Appendf(nil, `{"intervals":[{"days":["mon","tue","wed","thu","fri"],"from":"0%d:00","until":"18:00"},{"days":["sat"],"from":"09:00","until":"13:00"}]}`, 6+s%4)})
	}
	ids = make([]string, n)
	for i := range n {
		ids[i] = coreID(fmt.Sprint("card-", i))
		entries = append(entries, benchEntry{access.CredentialKey(ids[i]), fmt.Appendf(nil,
			`{"holder":"Holder %d","kind":"card","state":"active","valid_from":"2026-01-01T00:00:00Z","valid_until":"2028-01-01T00:00:00Z",`+
				`"doors":["front","door-%d"],"groups":["group-%d"],"schedules":["shift-%d"],"changed":"2026-01-01T00:00:00Z"}`,
			i, i%50, i%groups, i%schedules)})
	}
	return entries, ids
}

func BenchmarkDecide(b *testing.B) {
	const n = 100_000
	entries, ids := benchEntries(n)
	set := access.NewSet()
	for i, e := range entries {
		if _, err := set.Apply(e.key, e.value, uint64(i+1), false); err != nil {
			b.Fatal(err)
		}
	}
	if set.Len() != n {
		b.Fatalf("Len = %d", set.Len())
	}
	loc := loadLocation(b, "Europe/Berlin")
	noon := time.Date(2026, 6, 10, 12, 0, 0, 0, loc) // Wednesday
	night := time.Date(2026, 6, 10, 21, 0, 0, 0, loc)
	cases := []struct {
		name    string
		door    string
		id      string
		now     time.Time
		granted bool
	}{
		{"grant", "front", ids[n/2], noon, true},
		{"grant-by-group", "lab-7", ids[7], noon, true},
		{"deny-unknown", "front", coreID("nobody"), noon, false},
		{"outside-schedule", "front", ids[n/3], night, false},
	}
	for _, c := range cases {
		sit := access.Situation{Now: c.now, Location: loc, Available: true, SyncedAt: c.now.Add(-time.Minute)}
		if d := set.Decide(c.door, access.DoorPolicy{}, c.id, sit); d.Granted != c.granted {
			b.Fatalf("%s: %+v", c.name, d)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				set.Decide(c.door, access.DoorPolicy{}, c.id, sit)
			}
		})
	}
	// The same grant for credentials all over the set, so each decision
	// misses the CPU caches as on a busy edge with many readers.
	b.Run("grant-spread", func(b *testing.B) {
		sit := access.Situation{Now: noon, Location: loc, Available: true, SyncedAt: noon}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			set.Decide("front", access.DoorPolicy{}, ids[i%n], sit)
			i += 7919
		}
	})
	b.Run("grant-spread-parallel", func(b *testing.B) {
		sit := access.Situation{Now: noon, Location: loc, Available: true, SyncedAt: noon}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				set.Decide("front", access.DoorPolicy{}, ids[i%n], sit)
				i += 7919
			}
		})
	})
}

func BenchmarkSetLoad100k(b *testing.B) {
	entries, _ := benchEntries(100_000)
	b.ReportAllocs()
	for b.Loop() {
		set := access.NewSet()
		for i, e := range entries {
			if _, err := set.Apply(e.key, e.value, uint64(i+1), false); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(entries)*b.N)/b.Elapsed().Seconds(), "entries/s")
}
