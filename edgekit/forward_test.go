package edgekit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit"
)

// TestSupervisorStartContext: the context given to Supervise bounds its
// start only. The supervisor goes on kicking a stalled source after that
// context ends, and stops with Stop.
func TestSupervisorStartContext(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{devices: 1, noSupervisor: true, hubConfig: func(c *edgekit.HubConfig) {
		c.PollInterval = 100 * time.Millisecond
		c.StallAfter = time.Second
	}})

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if sup, err := h.hub.Supervise(ended); !errors.Is(err, context.Canceled) || sup != nil {
		t.Fatalf("Supervise with an ended context: %v, %v; want no supervisor and context.Canceled", sup, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sup, err := h.hub.Supervise(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sup.Stop)
	cancel()

	e := h.edges["hq"]
	e.proxy.Cut()
	hubWaitFor(t, "a kick of the stalled sources after the start's context ended", func() bool { return sup.Stats().Kicks > 0 })
	select {
	case <-sup.Done():
		t.Fatal("the supervisor stopped when the start's context ended")
	default:
	}
	if st := sup.Stats(); st.Stalls == 0 || st.Polls < 2 {
		t.Errorf("stats %+v: want polls that found the sources stalled", st)
	}
	e.proxy.Restore()

	sup.Stop()
	select {
	case <-sup.Done():
	default:
		t.Fatal("Done not closed once Stop returned")
	}
	sup.Stop() // idempotent
}
