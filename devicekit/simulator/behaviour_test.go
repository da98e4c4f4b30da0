package simulator

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
)

// TestBehaviourSeeded checks that a device's behaviour depends only on the
// seed and its index.
func TestBehaviourSeeded(t *testing.T) {
	run := func(seed uint64, i int) []any {
		var out []any
		for _, k := range []Kind{Reader, DoorSensor, EnvSensor} {
			b := newBehaviour(seed, i, k, "x-1")
			for range 5 {
				out = append(out, b.wait(time.Second))
				switch k {
				case Reader:
					out = append(out, string(b.accessRequest().Credential))
				case DoorSensor:
					st, event := b.doorChange()
					out = append(out, st, event)
				case EnvSensor:
					out = append(out, b.reading())
				}
			}
		}
		return out
	}
	if a, b := run(7, 0), run(7, 0); !reflect.DeepEqual(a, b) {
		t.Errorf("same seed and index, different behaviour:\n%v\n%v", a, b)
	}
	if a, b := run(7, 0), run(7, 1); reflect.DeepEqual(a, b) {
		t.Error("two devices behave the same")
	}
	if a, b := run(7, 0), run(8, 0); reflect.DeepEqual(a, b) {
		t.Error("two seeds behave the same")
	}
	for _, w := range run(7, 3) {
		if d, ok := w.(time.Duration); ok && (d < 500*time.Millisecond || d > 1500*time.Millisecond) {
			t.Errorf("wait %v outside [0.5s, 1.5s]", d)
		}
	}
}

// TestBehaviourEvents checks that door contacts report both held-open and
// forced doors, and that readers present the configured cards as well as
// unknown ones.
func TestBehaviourEvents(t *testing.T) {
	door := newBehaviour(1, 0, DoorSensor, "door-1")
	events := map[string]int{}
	for range 2000 {
		st, event := door.doorChange()
		events[event]++
		switch event {
		case message.NameDoorHeldOpen:
			if !st.Open || !st.HeldOpen || st.Forced {
				t.Fatalf("held open: %+v", st)
			}
		case message.NameDoorForcedOpen:
			if !st.Open || !st.Forced || !st.Locked {
				t.Fatalf("forced open: %+v", st)
			}
		case "":
		default:
			t.Fatalf("event %q", event)
		}
	}
	if events[message.NameDoorHeldOpen] == 0 || events[message.NameDoorForcedOpen] == 0 {
		t.Fatalf("events of 1000 openings: %v", events)
	}

	cards := []message.Credential{"0012345678", "0087654321"}
	reader := newBehaviour(1, 0, Reader, "reader-1")
	reader.cards = cards
	known := 0
	for range 200 {
		if slices.Contains(cards, reader.accessRequest().Credential) {
			known++
		}
	}
	if known == 0 || known == 200 {
		t.Fatalf("%d of 200 requests presented a configured card, want some but not all", known)
	}
}
