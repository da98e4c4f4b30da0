package message_test

import (
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

func TestStamper(t *testing.T) {
	boot := newTestGenerator(5).New()
	s := message.NewStamper(testThing, boot)
	local := time.FixedZone("CET", 3600)
	s.Now = func() time.Time { return testTime.In(local) }
	s.IDs = newTestGenerator(6)

	e := message.Envelope{Type: topic.Event, Name: message.NameAccessGranted, Seq: 99}
	s.Stamp(&e)
	if e.Seq != 1 || s.Seq() != 1 {
		t.Errorf("first Seq = %d (Stamper.Seq %d), want 1", e.Seq, s.Seq())
	}
	if e.Source != testThing || e.BootID != boot {
		t.Errorf("Source, BootID = %v, %v", e.Source, e.BootID)
	}
	if !e.Time.Equal(testTime) || e.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v in UTC", e.Time, testTime)
	}
	if !e.ID.Time().Equal(testTime.Truncate(time.Millisecond)) {
		t.Errorf("ID time %v does not match the envelope time", e.ID.Time())
	}
	if e.Type != topic.Event || e.Name != message.NameAccessGranted {
		t.Error("Stamp changed Type or Name")
	}
	if err := e.Validate(); err != nil {
		t.Errorf("stamped envelope: %v", err)
	}

	prev := e.ID
	s.Stamp(&e)
	if e.Seq != 2 || e.ID.Compare(prev) <= 0 {
		t.Errorf("second stamp: Seq %d, ID %s after %s", e.Seq, e.ID, prev)
	}
}

func TestStamperConcurrent(t *testing.T) {
	s := message.NewStamper(testThing, message.ID{1})
	const workers, each = 4, 500
	seen := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				var e message.Envelope
				s.Stamp(&e)
				seen[w] = append(seen[w], e.Seq)
			}
		})
	}
	wg.Wait()
	got := make(map[uint64]bool)
	for _, seqs := range seen {
		for _, n := range seqs {
			if got[n] {
				t.Fatalf("sequence %d issued twice", n)
			}
			got[n] = true
		}
	}
	for n := uint64(1); n <= workers*each; n++ {
		if !got[n] {
			t.Fatalf("sequence %d missing", n)
		}
	}
	if s.Seq() != workers*each {
		t.Errorf("Seq() = %d", s.Seq())
	}
}
