package edgekit_test

import (
	"errors"
	"strings"
	"testing"
	"time"

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
