package message_test

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
)

func TestIDGeneratorMonotonic(t *testing.T) {
	base := testTime
	tests := []struct {
		name  string
		times []time.Duration // clock readings, as offsets from base
	}{
		{"same millisecond", []time.Duration{0, 0, 0, 0, 0}},
		{"same millisecond, different nanoseconds", []time.Duration{0, 1, 500 * time.Microsecond, 999 * time.Microsecond}},
		{"advancing", []time.Duration{0, time.Millisecond, 2 * time.Millisecond, time.Second}},
		{"clock steps back", []time.Duration{time.Second, 0, 0, -time.Hour, time.Second}},
		{"clock stands still then moves", []time.Duration{0, 0, time.Millisecond, time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &message.IDGenerator{Rand: rand.NewPCG(1, 2)}
			var prev message.ID
			for i, d := range tt.times {
				id := g.NewAt(base.Add(d))
				if i > 0 && prev.Compare(id) >= 0 {
					t.Fatalf("ID %d = %s, not after %s", i, id, prev)
				}
				if id.String() <= prev.String() && i > 0 {
					t.Fatalf("text of ID %d does not sort after the previous one", i)
				}
				if id.Version() != 7 || id[8]>>6 != 0b10 {
					t.Fatalf("ID %s lacks version 7 / variant 10", id)
				}
				prev = id
			}
		})
	}
}

func TestIDGeneratorTimestamp(t *testing.T) {
	g := newTestGenerator(3)
	if got := g.New().Time(); !got.Equal(testTime.Truncate(time.Millisecond)) {
		t.Errorf("New().Time() = %v, want the clock's millisecond %v", got, testTime)
	}
	// A clock before 1970 counts as 1970.
	if got := (&message.IDGenerator{}).NewAt(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)).Time(); got.UnixMilli() != 0 {
		t.Errorf("pre-1970 ID time = %v, want the epoch", got)
	}
}

func TestIDGeneratorDeterministic(t *testing.T) {
	a, b := newTestGenerator(9), newTestGenerator(9)
	for range 10 {
		if x, y := a.New(), b.New(); x != y {
			t.Fatalf("same clock and seed gave %s and %s", x, y)
		}
	}
	if newTestGenerator(9).New() == newTestGenerator(10).New() {
		t.Error("different seeds gave the same ID")
	}
}

func TestIDGeneratorDefaults(t *testing.T) {
	var g1, g2 message.IDGenerator // zero values: real clock, random seeds
	before := time.Now().Add(-time.Millisecond)
	a, b := g1.New(), g2.New()
	if a == b {
		t.Fatal("two default generators made the same ID")
	}
	if a.Time().Before(before) || a.Time().After(time.Now()) {
		t.Errorf("ID time %v is not now", a.Time())
	}
}

func TestIDGeneratorConcurrent(t *testing.T) {
	var g message.IDGenerator
	const workers, each = 8, 2000
	results := make([][]message.ID, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ids := make([]message.ID, each)
			for i := range ids {
				ids[i] = g.New()
			}
			results[w] = ids
		})
	}
	wg.Wait()
	var all []message.ID
	for w, ids := range results {
		if !slices.IsSortedFunc(ids, message.ID.Compare) {
			t.Errorf("worker %d saw IDs out of order", w)
		}
		all = append(all, ids...)
	}
	slices.SortFunc(all, message.ID.Compare)
	if n := len(slices.Compact(all)); n != workers*each {
		t.Errorf("%d unique IDs, want %d", n, workers*each)
	}
}
