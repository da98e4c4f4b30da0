package simulator

import (
	"reflect"
	"testing"
	"time"
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
					st, held := b.doorChange()
					out = append(out, st, held)
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
