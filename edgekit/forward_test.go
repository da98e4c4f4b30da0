package edgekit_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
)

// TestSupervisorStartContext: the context given to Supervise bounds its
// start only. The supervisor goes on kicking a stuck source after that
// context ends, and stops with Stop.
func TestSupervisorStartContext(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{devices: 1, noSupervisor: true, hubConfig: func(c *edgekit.HubConfig) {
		c.PollInterval = 100 * time.Millisecond
		c.StallAfter = 2 * time.Second
		c.StuckAfter = 3 * time.Second
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

	// The telemetry flow gets stuck while the link stays up: its consumer
	// on the edge is gone, so the edge answers its resets with an error,
	// and the event flow goes on being heard.
	e := h.edges["hq"]
	n := e.names
	if err := e.js.DeleteConsumer(hubCtx(t), n.TelemetryStream, n.TelemetryConsumer); err != nil {
		t.Fatal(err)
	}
	hubWaitFor(t, "a kick of the stuck source after the start's context ended", func() bool { return sup.Stats().Kicks > 0 })
	select {
	case <-sup.Done():
		t.Fatal("the supervisor stopped when the start's context ended")
	default:
	}
	if st := sup.Stats(); st.Stalls == 0 || st.Polls < 2 {
		t.Errorf("stats %+v: want polls that found the source stalled", st)
	}
	if _, err := e.js.CreateOrUpdatePushConsumer(hubCtx(t), n.TelemetryStream, n.TelemetryConsumerConfig()); err != nil {
		t.Fatal(err)
	}
	hubWaitFor(t, "the telemetry source running again", func() bool { return flowHeard(t, h, edgekit.FlowTelemetry) })

	sup.Stop()
	select {
	case <-sup.Done():
	default:
		t.Fatal("Done not closed once Stop returned")
	}
	sup.Stop() // idempotent
}

// TestSupervisorWaitsOutOutage: with HubConfig.EdgeNodes, a source silent
// because the link is down is not kicked however long the outage lasts
// (central's event stream keeps its sources), and sourcing resumes on its
// own once the link is back. (The edges here are plain servers, which
// cannot send again what nats-server's source-restart race may make
// central skip, so the test checks that every flow runs again, not the
// count: edge nodes' tests and the fault suites check exactly once.)
func TestSupervisorWaitsOutOutage(t *testing.T) {
	const stuckAfter = 3 * time.Second
	h := startHubTopo(t, hubTopoOptions{devices: 2, hubConfig: func(c *edgekit.HubConfig) {
		c.PollInterval = 100 * time.Millisecond
		c.StallAfter = 2 * time.Second
		c.StuckAfter = stuckAfter
		c.EdgeNodes = true
	}})
	e := h.edges["hq"]
	devs := h.devices(e)
	hubPublishEvents(t, devs, 5)
	h.waitForwarded()
	// Every flow ran before the outage (the supervisor kicks a source it
	// has never heard as it would without EdgeNodes).
	for _, flow := range []string{edgekit.FlowEvents, edgekit.FlowTelemetry, edgekit.FlowPlatform} {
		hubWaitFor(t, "the "+flow+" source running", func() bool { return flowHeard(t, h, flow) })
	}
	heardAt := h.sup.Stats().Polls
	hubWaitFor(t, "supervisor polls that hear them too", func() bool { return h.sup.Stats().Polls >= heardAt+3 })

	e.proxy.Cut()
	hubWaitFor(t, "the link to drop", func() bool { return e.srv.Server().NumLeafNodes() == 0 })
	hubPublishEvents(t, devs, 100)
	// Each poll counts the three flows stalled; wait for polls spanning
	// twice StuckAfter (polls are at least PollInterval apart).
	polls := int(2 * stuckAfter / (100 * time.Millisecond))
	base := h.sup.Stats().Stalls
	hubWaitFor(t, "the sources stalled for several times StuckAfter", func() bool {
		st, err := h.hub.Sources(hubCtx(t))
		if err != nil {
			return false
		}
		for _, src := range st {
			if src.Missing {
				t.Fatalf("source %s/%s removed during the outage (supervisor %+v)", src.Edge, src.Flow, h.sup.Stats())
			}
		}
		return h.sup.Stats().Stalls >= base+uint64(3*polls)
	})
	if st := h.sup.Stats(); st.Kicks != 0 || st.KickErrors != 0 || st.Repairs != 0 {
		t.Fatalf("supervisor %+v during the outage: want no kick and no repair", st)
	}

	e.proxy.Restore()
	for _, flow := range []string{edgekit.FlowEvents, edgekit.FlowTelemetry, edgekit.FlowPlatform} {
		hubWaitFor(t, "the "+flow+" source running again", func() bool { return flowHeard(t, h, flow) })
	}
	if st := h.sup.Stats(); st.Kicks != 0 {
		t.Fatalf("supervisor %+v after the outage: want no kick", st)
	}
}

// flowHeard reports whether central has heard the flow of edge hq lately.
func flowHeard(t *testing.T, h *hubTopo, flow string) bool {
	st, err := h.hub.Sources(hubCtx(t))
	if err != nil {
		return false
	}
	for _, src := range st {
		if src.Edge == "hq" && src.Flow == flow {
			return src.Active >= 0 && src.Active <= 2*time.Second
		}
	}
	return false
}

// TestSupervisorKicksUnstartedSource: with HubConfig.EdgeNodes, a source
// that does not run after a restart while its edge is evidently linked (its
// consumer on the edge is gone; the event flow is heard) is kicked once
// StuckAfter has passed: nats-server would retry its setup only after a
// growing back-off.
func TestSupervisorKicksUnstartedSource(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{devices: 1, hubConfig: func(c *edgekit.HubConfig) {
		c.PollInterval = 100 * time.Millisecond
		c.StallAfter = 2 * time.Second
		c.StuckAfter = 5 * time.Second
		c.EdgeNodes = true
	}})
	e := h.edges["hq"]
	n := e.names
	if err := e.js.DeleteConsumer(hubCtx(t), n.TelemetryStream, n.TelemetryConsumer); err != nil {
		t.Fatal(err)
	}
	// A restart of the sources: nats-server sets them up again, and the
	// telemetry flow's setup finds no consumer on the edge.
	if err := h.hub.Kick(hubCtx(t), "hq"); err != nil {
		t.Fatal(err)
	}
	hubWaitFor(t, "the supervisor's kick of the unstarted source", func() bool { return h.sup.Stats().Kicks > 0 })
	if _, err := e.js.CreateOrUpdatePushConsumer(hubCtx(t), n.TelemetryStream, n.TelemetryConsumerConfig()); err != nil {
		t.Fatal(err)
	}
	hubWaitFor(t, "the telemetry source running again", func() bool { return flowHeard(t, h, edgekit.FlowTelemetry) })
}

// TestSupervisorLeavesAbsentEdge: with HubConfig.EdgeNodes, the sources of
// an edge that is registered but never links are kicked while central is
// starting (8 times StuckAfter), and then left alone (each kick of them
// scans central's whole stream), while a linked edge's flows run on.
func TestSupervisorLeavesAbsentEdge(t *testing.T) {
	const stuckAfter = time.Second
	var logs logBuffer
	h := startHubTopo(t, hubTopoOptions{devices: 1, absent: []string{"lab"}, hubConfig: func(c *edgekit.HubConfig) {
		c.PollInterval = 100 * time.Millisecond
		c.StallAfter = time.Second
		c.StuckAfter = stuckAfter
		c.MinKickInterval = 200 * time.Millisecond
		c.FastKickFor = time.Second
		c.MaxKickInterval = time.Second
		c.EdgeNodes = true
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	}})
	started := time.Now()
	labKicks := func() int { return len(logs.records(t, "kicked a stuck source", message.LogKeyEdge, "lab")) }
	hubWaitFor(t, "kicks of the absent edge while central starts", func() bool { return labKicks() > 0 })
	// Past the span (the supervisor started before started): a poll that
	// began within it may still decide a kick. Once two more polls have
	// begun it has ended (polls run one after another), and its kick is
	// counted as in progress until it ends and is logged.
	hubWaitFor(t, "the end of the start-up span", func() bool { return time.Since(started) > 8*stuckAfter })
	polls := h.sup.Stats().Polls
	hubWaitFor(t, "two polls after the span, and no kick in progress", func() bool {
		st := h.sup.Stats()
		return st.Polls >= polls+2 && st.Kicking == 0
	})
	labPresent := func() bool {
		st, err := h.hub.Sources(hubCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range st {
			if src.Edge == "lab" && src.Missing {
				return false
			}
		}
		return true
	}
	hubWaitFor(t, "the absent edge's sources in place (a kick that failed half-way is repaired)", labPresent)
	// Then they stay in place over polls spanning several kick intervals.
	// (The linked edge hq may be kicked on a loaded machine: its idle
	// flows are heard by heartbeats only as often as StallAfter here.)
	kicks, polls := labKicks(), h.sup.Stats().Polls
	for h.sup.Stats().Polls < polls+150 {
		if !labPresent() {
			t.Fatalf("supervisor %+v: the absent edge's sources kicked after the start-up span", h.sup.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	hubWaitFor(t, "no kick in progress", func() bool { return h.sup.Stats().Kicking == 0 })
	if n := labKicks(); n != kicks {
		t.Fatalf("supervisor %+v: %d kicks of the absent edge after the start-up span", h.sup.Stats(), n-kicks)
	}
	hubPublishEvents(t, h.devices(h.edges["hq"]), 5)
	h.waitForwarded()
}

// TestSupervisorKicksFlowControlStall: a source heard (its edge consumer's
// heartbeats arrive) but stalled on flow control, because central's
// replies do not reach the edge, moves nothing while nats-server, hearing
// it, never restarts it: after StuckAfter the supervisor kicks it.
func TestSupervisorKicksFlowControlStall(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{devices: 2, hubConfig: func(c *edgekit.HubConfig) {
		c.PollInterval = 100 * time.Millisecond
		c.StallAfter = 2 * time.Second
		c.StuckAfter = 3 * time.Second
		c.EdgeNodes = true
	}, edgeServer: func(o *server.Options) {
		for _, r := range o.LeafNode.Remotes {
			r.DenyImports = append(r.DenyImports, "$JS.FC.>")
		}
	}})
	e := h.edges["hq"]
	hubWaitFor(t, "the events source running", func() bool { return flowHeard(t, h, edgekit.FlowEvents) })
	stalled := func() bool {
		st, err := h.hub.Sources(hubCtx(t))
		if err != nil {
			return false
		}
		for _, src := range st {
			if src.Flow == edgekit.FlowEvents && strings.Contains(src.Error, "flow control") {
				return true
			}
		}
		return false
	}
	devs := h.devices(e)
	hubWaitFor(t, "the events source stalled on flow control", func() bool {
		hubPublishEvents(t, devs, 200)
		return stalled()
	})
	hubWaitFor(t, "the supervisor's kick of the stalled source", func() bool { return h.sup.Stats().Kicks > 0 })
}
