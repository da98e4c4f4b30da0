package edgekit_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// nodeDuplicateWindows returns the deduplication window of each stream the
// node holds for central.
func nodeDuplicateWindows(t *testing.T, n *edgekit.Node) map[string]time.Duration {
	t.Helper()
	got := make(map[string]time.Duration)
	for _, name := range []string{n.Names().EventStream, n.Names().TelemetryStream, n.Names().PlatformStream} {
		s, err := n.JetStream().Stream(nodeCtx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		got[name] = s.CachedInfo().Config.Duplicates
	}
	return got
}

// TestNodeDedupAcrossRestart: the edge's duplicate window is a setting of
// the node, applied to its streams when it starts (the default first, then
// a new value on the existing streams), and an envelope sent again after a
// restart of the node on the same store, within the window, is
// acknowledged and stored once: nats-server rebuilds the window from the
// stored messages. Central is unreachable, so the edge still holds them.
func TestNodeDedupAcrossRestart(t *testing.T) {
	env := newNodeEnv(t, 0)
	cfg := nodeTestConfig(t, env, "")
	node := nodeStart(t, cfg)
	for name, w := range nodeDuplicateWindows(t, node) {
		if w != edgekit.DefaultDuplicateWindow {
			t.Errorf("stream %s: duplicate window %v, want the default %v", name, w, edgekit.DefaultDuplicateWindow)
		}
	}
	d := nodeConnectDevice(t, env, node.ClientURL(), nodeR1, nil)
	var sent []*message.Envelope
	for _, mt := range []topic.MessageType{topic.Event, topic.Telemetry} {
		e := &message.Envelope{Type: mt, Name: "door.opened"}
		if err := d.Publish(nodeCtx(t), e); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e)
	}
	_ = d.Close()
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.DuplicateWindow = 5 * time.Minute
	again := nodeStart(t, cfg)
	for name, w := range nodeDuplicateWindows(t, again) {
		if w != cfg.DuplicateWindow {
			t.Errorf("stream %s after the restart: duplicate window %v, want the new setting %v", name, w, cfg.DuplicateWindow)
		}
	}
	d = nodeConnectDevice(t, env, again.ClientURL(), nodeR1, nil)
	for _, e := range sent {
		// The same envelope, unchanged, as a device's outbox sends it again.
		if err := d.Publish(nodeCtx(t), e); err != nil {
			t.Fatalf("%s sent again after the restart: %v", e.Type, err)
		}
	}
	streams := map[topic.MessageType]string{topic.Event: again.Names().EventStream, topic.Telemetry: again.Names().TelemetryStream}
	for _, e := range sent {
		n := 0
		for _, got := range nodeStreamEnvelopes(t, again.JetStream(), streams[e.Type], nodeR1.Subject(e.Type).String()) {
			if got.ID == e.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s %s is stored %d times after being sent again across the restart, want once", e.Type, e.ID, n)
		}
	}
}

// TestNodeDuplicateWindowInvalid: a duplicate window that is negative or
// longer than MaxDuplicateWindow is refused with an error naming it.
func TestNodeDuplicateWindowInvalid(t *testing.T) {
	env := newNodeEnv(t, 0)
	for _, w := range []time.Duration{-time.Second, edgekit.MaxDuplicateWindow + time.Second} {
		cfg := nodeTestConfig(t, env, "")
		cfg.DuplicateWindow = w
		n, err := edgekit.NewNode(cfg)
		if err == nil {
			n.Stop()
		}
		if !errors.Is(err, edgekit.ErrInvalidConfig) || !strings.Contains(err.Error(), "DuplicateWindow") {
			t.Errorf("NewNode with DuplicateWindow %v = %v, want ErrInvalidConfig naming DuplicateWindow", w, err)
		}
		t.Logf("%v: %v", w, err)
	}
}

// TestNodeRepeatAfterRelease: a restart of the node forgets the IDs of the
// messages it released, so an envelope a device sends again after central
// stored it and the edge restarted is stored again at the edge and
// forwarded: central's stream holds it twice (sourcing does not apply the
// stream's duplicate window), the database once (keyed on the envelope
// ID: gateway TestRetryBeyondDedupWindowStoredOnce). RELIABILITY.md, "The
// duplicate window and the outbox". The repeat holds nothing up: the edge
// releases it and what follows, and the next event reaches central.
func TestNodeRepeatAfterRelease(t *testing.T) {
	env := newNodeEnv(t, 0)
	central := nodeStartCentral(t, env)
	cfg := nodeTestConfig(t, env, central.hubURL())
	node := nodeStart(t, cfg)
	nodeWaitFor(t, "leaf link", node.LinkUp)
	n := node.Names()
	subject := nodeR1.Subject(topic.Event).String()
	// count reads central's stream, which only grows; the edge's stream is
	// purged as the node releases, so it is checked by its count alone.
	const centralStream = "events-acme"
	count := func(id message.ID) int {
		k := 0
		for _, got := range nodeStreamEnvelopes(t, central.js, centralStream, subject) {
			if got.ID == id {
				k++
			}
		}
		return k
	}
	edgeHolds := func(node *edgekit.Node) uint64 {
		st, err := node.JetStream().Stream(nodeCtx(t), n.EventStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(nodeCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	d := nodeConnectDevice(t, env, node.ClientURL(), nodeR1, func(c *devicekit.Config) { c.HeartbeatInterval = -1 })
	e := &message.Envelope{Type: topic.Event, Name: "door.opened"}
	if err := d.Publish(nodeCtx(t), e); err != nil {
		t.Fatal(err)
	}
	nodeWaitFor(t, "central to store the event and the edge to release it", func() bool {
		return count(e.ID) == 1 && edgeHolds(node) == 0
	})
	_ = d.Close()
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}

	again := nodeStart(t, cfg)
	d = nodeConnectDevice(t, env, again.ClientURL(), nodeR1, func(c *devicekit.Config) { c.HeartbeatInterval = -1 })
	// The same envelope, unchanged, as a device's outbox sends it again.
	if err := d.Publish(nodeCtx(t), e); err != nil {
		t.Fatalf("sent again after the restart: %v", err)
	}
	next := &message.Envelope{Type: topic.Event, Name: "door.closed"}
	if err := d.Publish(nodeCtx(t), next); err != nil {
		t.Fatal(err)
	}
	nodeWaitFor(t, "the next event at central and the edge holding nothing", func() bool {
		return count(next.ID) == 1 && edgeHolds(again) == 0
	})
	if k := count(e.ID); k != 2 {
		t.Errorf("central's stream holds the repeated envelope %d times, want twice: the restarted edge stored it again", k)
	}
}
