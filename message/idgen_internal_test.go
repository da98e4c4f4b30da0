package message

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestIDGeneratorCounterOverflow(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	g := &IDGenerator{Rand: rand.NewPCG(1, 1)}
	first := g.NewAt(now)
	g.counter = 1<<counterBits - 1 // the counter is full
	second := g.NewAt(now)
	if first.Compare(second) >= 0 {
		t.Fatalf("%s not after %s", second, first)
	}
	if got, want := second.Time(), now.Add(time.Millisecond); !got.Equal(want) {
		t.Errorf("after overflow the ID time is %v, want the next millisecond %v", got, want)
	}
	if g.counter >= 1<<(counterBits-1) {
		t.Errorf("reseeded counter %#x has its top bit set", g.counter)
	}
}

func TestUnixNano(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		ok   bool
	}{
		{"epoch", time.Unix(0, 0), true},
		{"min", time.Unix(0, -1<<63), true},
		{"max", time.Unix(0, 1<<63-1), true},
		{"min - 1ns", time.Unix(0, -1<<63).Add(-1), false},
		{"max + 1ns", time.Unix(0, 1<<63-1).Add(1), false},
		{"year 1", time.Time{}, false},
		{"negative fraction", time.Unix(-1, 5), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, ok := unixNano(tt.t)
			if ok != tt.ok {
				t.Fatalf("unixNano(%v) ok = %v, want %v", tt.t, ok, tt.ok)
			}
			if ok && ns != tt.t.UnixNano() {
				t.Errorf("unixNano(%v) = %d, want %d", tt.t, ns, tt.t.UnixNano())
			}
		})
	}
}
