package topology_test

import (
	"testing"

	"github.com/lintel-io/lintel/internal/topology"
)

func TestReleaseBucketConfig(t *testing.T) {
	cfg := topology.ReleaseBucketConfig("acme")
	if cfg.Bucket != "release-acme" || cfg.Bucket != topology.ReleaseBucket("acme") || cfg.History != 1 {
		t.Fatalf("config %+v", cfg)
	}
}

func TestParseRepairOf(t *testing.T) {
	cases := []struct {
		name, v string
		flow    string
		seq     uint64
		ok      bool
	}{
		{"events", "events 12", topology.FlowEvents, 12, true},
		{"telemetry", "telemetry 1", topology.FlowTelemetry, 1, true},
		{"platform", "platform 18446744073709551615", topology.FlowPlatform, 1<<64 - 1, true},
		{"empty", "", "", 0, false},
		{"no sequence", "events", "", 0, false},
		{"empty sequence", "events ", "", 0, false},
		{"zero", "events 0", "", 0, false},
		{"unknown flow", "credentials 3", "", 0, false},
		{"sign", "events +3", "", 0, false},
		{"two spaces", "events  3", "", 0, false},
		{"trailing text", "events 3 x", "", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			flow, seq, ok := topology.ParseRepairOf(c.v)
			if ok != c.ok || (ok && (flow != c.flow || seq != c.seq)) {
				t.Errorf("ParseRepairOf(%q) = %q, %d, %v; want %q, %d, %v", c.v, flow, seq, ok, c.flow, c.seq, c.ok)
			}
		})
	}
}
