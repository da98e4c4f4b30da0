package edgekit_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNodeDeviceEventReachesCentral: a device's event is stored in the
// edge's event stream and reaches central's with the same envelope ID, and
// the edge's stream lets go of it once central has it.
func TestNodeDeviceEventReachesCentral(t *testing.T) {
	env := newNodeEnv(t, 0)
	central := nodeStartCentral(t, env)
	node := nodeStart(t, nodeTestConfig(t, env, central.hubURL()))
	nodeWaitFor(t, "leaf link", node.LinkUp)

	// No heartbeats: once the event is across, the edge goes quiet and
	// central's flow-control acknowledgement catches up with everything.
	d := nodeConnectDevice(t, env, node.ClientURL(), nodeR1, func(c *devicekit.Config) { c.HeartbeatInterval = -1 })
	e := &message.Envelope{Type: topic.Event, Name: message.NameAccessGranted}
	if err := d.Publish(nodeCtx(t), e); err != nil {
		t.Fatalf("publish: %v", err)
	}
	n := node.Names()
	got := nodeWaitEnvelope(t, central.js, n.CentralEventStream, nodeR1.Subject(topic.Event).String(),
		func(g *message.Envelope) bool { return g.ID == e.ID })
	if got.Name != message.NameAccessGranted || got.BootID != d.BootID() {
		t.Fatalf("central has %v", got)
	}
	nodeWaitFor(t, "backlog drained", func() bool {
		st, err := node.Status(nodeCtx(t))
		return err == nil && st.Backlog == 0 && st.LinkUp
	})
}

// TestNodeTelemetryReachesCentral: a device's acknowledged telemetry is
// stored in the edge's telemetry stream (asynchronously persisted, apart
// from the event stream), reaches central's event stream through its own
// source, and the edge lets go of it once central has it.
func TestNodeTelemetryReachesCentral(t *testing.T) {
	env := newNodeEnv(t, 0)
	central := nodeStartCentral(t, env)
	node := nodeStart(t, nodeTestConfig(t, env, central.hubURL()))
	nodeWaitFor(t, "leaf link", node.LinkUp)

	n := node.Names()
	info, err := node.JetStream().Stream(nodeCtx(t), n.TelemetryStream)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Config; c.PersistMode != jetstream.AsyncPersistMode || c.Retention != jetstream.LimitsPolicy ||
		c.Discard != jetstream.DiscardNew || c.MaxBytes <= 0 || !c.DenyDelete || c.DenyPurge {
		t.Fatalf("telemetry stream config %+v", c)
	}
	ev, err := node.JetStream().Stream(nodeCtx(t), n.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	if c := ev.CachedInfo().Config; c.PersistMode == jetstream.AsyncPersistMode || slices.Contains(c.Subjects, "acme.hq.*.*.tlm") {
		t.Fatalf("event stream config %+v", c)
	}

	d := nodeConnectDevice(t, env, node.ClientURL(), nodeR1, func(c *devicekit.Config) { c.HeartbeatInterval = -1 })
	e := &message.Envelope{Type: topic.Telemetry, Name: message.NameSensorReading}
	if err := message.SetPayload(e, map[string]float64{"t": 21.5}); err != nil {
		t.Fatal(err)
	}
	if err := d.Publish(nodeCtx(t), e); err != nil {
		t.Fatalf("publish: %v", err)
	}
	got := nodeWaitEnvelope(t, central.js, n.CentralEventStream, nodeR1.Subject(topic.Telemetry).String(),
		func(g *message.Envelope) bool { return g.ID == e.ID })
	if got.Name != message.NameSensorReading || got.BootID != d.BootID() {
		t.Fatalf("central has %v", got)
	}
	nodeWaitFor(t, "telemetry backlog drained", func() bool {
		st, err := node.Status(nodeCtx(t))
		return err == nil && st.TelemetryBacklog == 0 && st.TelemetryMsgs == 0 && st.TelemetryMaxBytes > 0 && st.LinkUp
	})
}

// TestNodeDevicePermissions: a device may not publish on another device's
// cmd subject, nor on its own: only the edge service hands out commands.
func TestNodeDevicePermissions(t *testing.T) {
	env := newNodeEnv(t, 0)
	node := nodeStart(t, nodeTestConfig(t, env, ""))
	user := authz.DeviceUser(nodeR1)
	errs := make(chan error, 16)
	nc, err := nats.Connect(node.ClientURL(), nats.UserInfo(user, env.password(user)),
		nats.CustomInboxPrefix(nodeR1.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, subj := range []string{nodeL1.Subject(topic.Command).String(), nodeR1.Subject(topic.Command).String()} {
		if err := nc.Publish(subj, []byte("unlock")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation for publish") {
				t.Fatalf("publish on %s: %v", subj, err)
			}
		case <-time.After(nodeWait):
			t.Fatalf("publish on %s: no permission violation", subj)
		}
	}
	// A wrong password is refused.
	if _, err := nats.Connect(node.ClientURL(), nats.UserInfo(user, "wrong"), nats.MaxReconnects(0)); err == nil {
		t.Fatal("wrong password accepted")
	}
}

// TestNodeCentralUnreachable: the edge starts without central, devices
// publish, the edge keeps what they send, and it all reaches central once
// the link comes up.
func TestNodeCentralUnreachable(t *testing.T) {
	env := newNodeEnv(t, 0)
	central := nodeStartCentral(t, env)
	central.proxy.Cut()
	node := nodeStart(t, nodeTestConfig(t, env, central.hubURL()))
	if node.LinkUp() {
		t.Fatal("link up through a cut proxy")
	}
	d := nodeConnectDevice(t, env, node.ClientURL(), nodeR1, nil)
	const events = 20
	sent := make(map[message.ID]bool, events)
	for i := range events {
		e := &message.Envelope{Type: topic.Event, Name: "door.opened"}
		if err := d.Publish(nodeCtx(t), e); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		sent[e.ID] = true
	}
	st, err := node.Status(nodeCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.LinkUp || st.Backlog < events {
		t.Fatalf("status during outage: %+v", st)
	}
	if e := node.LinkEpoch(); e != 0 {
		t.Fatalf("link epoch %d through a cut proxy, want 0", e)
	}
	central.proxy.Restore()
	nodeWaitFor(t, "leaf link", node.LinkUp)
	n := node.Names()
	// Wait until central holds every event, then check it holds each once.
	var got []*message.Envelope
	nodeWaitFor(t, "every event at central", func() bool {
		got = nodeStreamEnvelopes(t, central.js, n.CentralEventStream, nodeR1.Subject(topic.Event).String())
		have := 0
		for _, e := range got {
			if sent[e.ID] {
				have++
			}
		}
		return have >= events
	})
	seen := make(map[message.ID]bool, len(got))
	for _, e := range got {
		if !sent[e.ID] {
			t.Errorf("central holds an event that was never sent: %s", e.ID)
		}
		if seen[e.ID] {
			t.Errorf("central holds event %s twice", e.ID)
		}
		seen[e.ID] = true
	}

	// Each connection of the link has an epoch of its own, so that a link
	// that dropped and came back between two looks is seen to have done so.
	first := node.LinkEpoch()
	central.proxy.Cut()
	nodeWaitFor(t, "the link to drop", func() bool { return !node.LinkUp() })
	central.proxy.Restore()
	nodeWaitFor(t, "leaf link again", node.LinkUp)
	if again := node.LinkEpoch(); first == 0 || again == 0 || again == first {
		t.Fatalf("link epochs %d, then %d after the link came back: want two different non-zero epochs", first, again)
	}
}

// TestNodeStreamFull: a full event stream, or a full JetStream store,
// refuses devices with devicekit.ErrStreamFull, keeps everything it stored
// and raises the fill alarm.
func TestNodeStreamFull(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64 // event stream bound
		store    int64 // JetStream max_file_store
	}{
		{name: "stream bound", maxBytes: 32 << 10, store: 256 << 20},
		{name: "store full", maxBytes: -1, store: 48 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newNodeEnv(t, 0)
			cfg := nodeTestConfig(t, env, "")
			cfg.EventStreamMaxBytes = tc.maxBytes
			cfg.Render.MaxFileStore = tc.store
			node := nodeStart(t, cfg)
			d := nodeConnectDevice(t, env, node.ClientURL(), nodeR1, nil)
			payload := map[string]string{"pad": strings.Repeat("x", 512)}
			var stored []message.ID
			var full error
			alarmed := false
			for i := 0; i < 1000 && full == nil; i++ {
				e := &message.Envelope{Type: topic.Event, Name: "door.opened"}
				if err := message.SetPayload(e, payload); err != nil {
					t.Fatal(err)
				}
				if err := d.Publish(nodeCtx(t), e); err != nil {
					full = err
					break
				}
				stored = append(stored, e.ID)
				if st, err := node.Status(nodeCtx(t)); err != nil {
					t.Fatal(err)
				} else if !alarmed && st.Fill >= 0.8 {
					// The stream fills slowly in real life: the
					// alarm is stored while there is room.
					alarm := nodeWaitEnvelope(t, node.JetStream(), node.Names().PlatformStream, "acme.hq._edge.hq.evt",
						func(e *message.Envelope) bool { return e.Name == edgekit.NameStreamFilling })
					a, err := message.DecodePayload[edgekit.StreamAlarm](alarm)
					if err != nil || a.Threshold != 0.8 || a.Stream != node.Names().EventStream || a.Fill < 0.8 {
						t.Fatalf("alarm %+v, %v", a, err)
					}
					alarmed = true
				}
			}
			if !errors.Is(full, devicekit.ErrStreamFull) {
				t.Fatalf("after %d events: %v, want ErrStreamFull", len(stored), full)
			}
			t.Logf("stored %d events, then: %v", len(stored), full)
			got := nodeStreamEnvelopes(t, node.JetStream(), node.Names().EventStream, nodeR1.Subject(topic.Event).String())
			if len(got) != len(stored) {
				t.Fatalf("stream holds %d events, %d were acknowledged", len(got), len(stored))
			}
			for i := range got {
				if got[i].ID != stored[i] {
					t.Fatalf("event %d: stream has %s, device stored %s", i, got[i].ID, stored[i])
				}
			}
			nodeWaitFor(t, "fill alarm in the status", func() bool {
				st, err := node.Status(nodeCtx(t))
				return err == nil && st.Alarm >= 0.8 && st.Fill >= 0.95
			})
		})
	}
}

// TestNodeRestartKeepsEvents: events stored during an outage survive a
// restart of the edge on the same store.
func TestNodeRestartKeepsEvents(t *testing.T) {
	env := newNodeEnv(t, 0)
	cfg := nodeTestConfig(t, env, "")
	node := nodeStart(t, cfg)
	d := nodeConnectDevice(t, env, node.ClientURL(), nodeR1, nil)
	var ids []message.ID
	for range 10 {
		e := &message.Envelope{Type: topic.Event, Name: "door.opened"}
		if err := d.Publish(nodeCtx(t), e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	_ = d.Close()
	if err := node.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-node.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	again := nodeStart(t, cfg)
	got := nodeStreamEnvelopes(t, again.JetStream(), again.Names().EventStream, nodeR1.Subject(topic.Event).String())
	if len(got) != len(ids) {
		t.Fatalf("after restart the stream holds %d events, want %d", len(got), len(ids))
	}
	for i := range got {
		if got[i].ID != ids[i] {
			t.Fatalf("event %d: %s, want %s", i, got[i].ID, ids[i])
		}
	}
	info, err := again.JetStream().Stream(nodeCtx(t), again.Names().EventStream)
	if err != nil {
		t.Fatal(err)
	}
	c := info.CachedInfo().Config
	if c.Retention != jetstream.LimitsPolicy || c.Discard != jetstream.DiscardNew || !c.DenyDelete || c.DenyPurge {
		t.Fatalf("event stream config %+v", c)
	}
}

// TestNodeUpdateCredentials: a device added to the inventory can log in
// once the node has the new credentials, without a restart; a removed one
// cannot.
func TestNodeUpdateCredentials(t *testing.T) {
	env := newNodeEnv(t, 0)
	node := nodeStart(t, nodeTestConfig(t, env, ""))
	r3 := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r3"}
	inv := nodeInventory(0)
	inv.Things = append(inv.Things[1:], authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r3"}}) // r1 out, r3 in
	res, err := (&authz.Generator{Cost: 4}).Generate(nodeCtx(t), inv, env.st)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.UpdateCredentials(inv, res.State); err != nil {
		t.Fatal(err)
	}
	env.secrets.Passwords[authz.DeviceUser(r3)] = res.Secrets.Passwords[authz.DeviceUser(r3)]
	nodeConnectDevice(t, env, node.ClientURL(), r3, nil)
	user := authz.DeviceUser(nodeR1)
	if _, err := nats.Connect(node.ClientURL(), nats.UserInfo(user, env.password(user)), nats.MaxReconnects(0)); err == nil {
		t.Fatal("removed device logged in")
	}
}
