package edgekit

import (
	"math/rand/v2"
	"testing"
)

// TestFlowTrackAdd feeds flowTrack the sequences of a flow in a random
// order, with some never delivered and some twice, and checks its mark
// against the sequences it was given, one by one.
func TestFlowTrackAdd(t *testing.T) {
	for round := range 200 {
		r := rand.New(rand.NewPCG(uint64(round), 7))
		const n = 300
		first := uint64(1 + r.IntN(50))
		var seqs []uint64
		for s := first; s < first+n; s++ {
			if r.IntN(10) == 0 {
				continue // never stored
			}
			seqs = append(seqs, s)
			if r.IntN(10) == 0 {
				seqs = append(seqs, s) // stored twice
			}
		}
		// Mostly in order, with local shuffles (a retried store).
		for i := range seqs {
			if j := i + r.IntN(4); j < len(seqs) && r.IntN(3) == 0 {
				seqs[i], seqs[j] = seqs[j], seqs[i]
			}
		}
		var f flowTrack
		have := map[uint64]bool{}
		for _, s := range seqs {
			f.add(s)
			have[s] = true
			// The first sequence seen counts as the flow's start.
			want := seqs[0]
			for have[want+1] || (want+1 < seqs[0]) {
				want++
			}
			m := f.mark()
			if m.Stored != want {
				t.Fatalf("round %d after %d: stored %d, want %d (above %v)", round, s, m.Stored, want, f.Above)
			}
			wantNext := uint64(0)
			for x := want + 2; x < first+n; x++ {
				if have[x] {
					wantNext = x
					break
				}
			}
			if m.Next != wantNext {
				t.Fatalf("round %d after %d: next %d, want %d (above %v)", round, s, m.Next, wantNext, f.Above)
			}
			for i := 1; i < len(f.Above); i++ {
				if f.Above[i-1].Hi+1 >= f.Above[i].Lo {
					t.Fatalf("round %d: spans %v overlap or touch", round, f.Above)
				}
			}
		}
	}
}

// TestFlowTrackFromStart: a flow tracked from its start (Next 1) whose
// first sequences central never stored shows them as a gap, not as held,
// until they arrive.
func TestFlowTrackFromStart(t *testing.T) {
	f := flowTrack{Next: 1}
	for _, s := range []uint64{6, 7, 9} {
		f.add(s)
	}
	if m := f.mark(); m.Stored != 0 || m.Next != 6 {
		t.Fatalf("after 6, 7, 9: stored %d, next %d; want 0, 6 (1-5 never stored)", m.Stored, m.Next)
	}
	for s := uint64(1); s <= 5; s++ {
		f.add(s)
	}
	if m := f.mark(); m.Stored != 7 || m.Next != 9 {
		t.Fatalf("after 1-5: stored %d, next %d; want 7, 9", m.Stored, m.Next)
	}
	// Without its start, a flow's first sequence is taken as its start.
	var g flowTrack
	g.add(6)
	if m := g.mark(); m.Stored != 6 {
		t.Fatalf("a flow first seen at 6: stored %d, want 6", m.Stored)
	}
}
