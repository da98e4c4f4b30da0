package bench

import (
	"bytes"
	"context"
	"errors"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

func TestFigureGoals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		value    float64
		baseline float64
		kind     goalKind
		bound    float64
		met      *bool
	}{
		{"throughput at 95% of raw", 95, 100, ratioAtLeast, 0.9, ptr(true)},
		{"throughput at 50% of raw", 50, 100, ratioAtLeast, 0.9, ptr(false)},
		{"latency within 1.1x", 10.5, 10, ratioAtMost, 1.1, ptr(true)},
		{"latency over 1.1x", 12, 10, ratioAtMost, 1.1, ptr(false)},
		{"no baseline fails a ratio goal", 12, 0, ratioAtMost, 1.1, ptr(false)},
		{"value under its bound", 30, 20, valueAtMost, 64, ptr(true)},
		{"value over its bound", 70, 20, valueAtMost, 64, ptr(false)},
		{"report only", 1, 2, noGoal, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fig("f", tc.value, "u", tc.baseline, "raw", tc.kind, tc.bound)
			if (f.Met == nil) != (tc.met == nil) || (f.Met != nil && *f.Met != *tc.met) {
				t.Fatalf("met %v, want %v (%+v)", deref(f.Met), deref(tc.met), f)
			}
			if tc.baseline > 0 && f.Ratio != tc.value/tc.baseline {
				t.Fatalf("ratio %v, want %v", f.Ratio, tc.value/tc.baseline)
			}
		})
	}
}

func ptr(b bool) *bool { return &b }

func deref(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func TestQuantile(t *testing.T) {
	var l latencies
	for i := 100; i >= 1; i-- {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	if got := l.quantile(0.5); got != 50*time.Millisecond {
		t.Errorf("p50 %v", got)
	}
	if got := l.quantile(0.99); got != 99*time.Millisecond {
		t.Errorf("p99 %v", got)
	}
	if got := (latencies{}).quantile(0.99); got != 0 {
		t.Errorf("p99 of nothing %v", got)
	}
}

func TestRunRefusesUnknownScenario(t *testing.T) {
	_, err := Run(context.Background(), Config{Scenarios: []string{"warp"}})
	if !errors.Is(err, ErrUnknownScenario) {
		t.Fatalf("err %v, want ErrUnknownScenario", err)
	}
}

func TestWriteTable(t *testing.T) {
	rep := &Report{Machine: ReadMachine(), Command: "lintelctl bench --quick", Scenarios: []Result{{
		Scenario: ScenarioCodec, Figures: []Figure{fig("msgpack round trip", 900, "ns/op", 9000, "encoding/json", valueAtMost, 1000)},
		Notes: []string{"a note"},
	}}}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lintelctl bench --quick", "msgpack round trip", "900 ns/op", "encoding/json", "0.10", "met", "note: codec: a note"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestQuantileNearestRank: the p99 of a few runs is the slowest of them,
// and of 1,000 values the 990th.
func TestQuantileNearestRank(t *testing.T) {
	l := latencies{3 * time.Second, 1 * time.Second, 8 * time.Second}
	if got := l.quantile(0.99); got != 8*time.Second {
		t.Errorf("p99 of 3 runs: %v, want the slowest, 8s", got)
	}
	if got := l.quantile(0.5); got != 3*time.Second {
		t.Errorf("p50 of 3 runs: %v, want 3s", got)
	}
	var many latencies
	for i := range 1000 {
		many = append(many, time.Duration(1000-i))
	}
	if got := many.quantile(0.99); got != 990 {
		t.Errorf("p99 of 1..1000: %d, want 990", got)
	}
	if got := (latencies{}).quantile(0.99); got != 0 {
		t.Errorf("p99 of none: %v", got)
	}
}

func TestCPUSplit(t *testing.T) {
	split, err := startCPUSplit()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	// The spinning goroutine is started by one labelled central, as
	// central's server starts its connections: it inherits the label.
	labelled(context.Background(), partCentral, func(context.Context) {
		go func() {
			defer close(done)
			for c0, x := cpuTime(), 0; cpuTime()-c0 < 400*time.Millisecond; x++ {
				for i := range 100000 {
					x ^= i
				}
			}
		}()
	})
	<-done
	parts, err := split.stop(nil)
	if err != nil {
		t.Fatal(err)
	}
	if parts[partCentral] == 0 || parts[partCentral] <= parts[partEdges] || parts[partCentral] <= parts[""] {
		t.Fatalf("CPU by part %v: the labelled spinner's part should hold most of it", parts)
	}
	if _, err := startCPUSplit(); err != nil {
		t.Fatalf("a second split after stop: %v", err)
	}
	if _, err := startCPUSplit(); err == nil {
		t.Fatal("a split while one runs started")
	}
	pprof.StopCPUProfile()
}
