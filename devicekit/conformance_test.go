package devicekit_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/topic"
)

// TestConformance runs the Device conformance suite for the NATS client.
func TestConformance(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	devicetest.Run(t, edge.Harness())
}

// TestConformanceOutbox runs the conformance suite for the NATS client with
// an outbox per device, and checks that the outboxes end empty: everything
// acknowledged, nothing set aside.
func TestConformanceOutbox(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	dir := t.TempDir()
	h := edge.Harness()
	h.Connect = func(ctx context.Context, thing topic.Thing) (devicekit.Device, error) {
		cfg := edge.Config(thing)
		cfg.Outbox = filepath.Join(dir, thing.String())
		return devicekit.Connect(ctx, cfg)
	}
	devicetest.Run(t, h)
	for _, thing := range edge.Things {
		box := filepath.Join(dir, thing.String())
		if _, err := os.Stat(box); err != nil {
			continue // never connected
		}
		if got := outboxFiles(t, box); !slices.Equal(got, []string{"lock"}) {
			t.Errorf("outbox of %s holds %v, want only the lock", thing, got)
		}
	}
}
