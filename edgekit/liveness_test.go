package edgekit_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
)

// nodeDeviceProxy puts a proxy between devices and the node, to cut their
// connections.
func nodeDeviceProxy(t *testing.T, node *edgekit.Node) *natstest.Proxy {
	t.Helper()
	u, err := url.Parse(node.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	p, err := natstest.NewProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// deaths returns the deaths of th stored at the edge: those the device
// published itself, in the event stream, then those the node declared, in
// the platform stream (no device can write it).
func nodeDeaths(t *testing.T, node *edgekit.Node, th topic.Thing) []message.Death {
	t.Helper()
	var out []message.Death
	subject := th.Subject(topic.State).String()
	for _, e := range append(nodeStreamEnvelopes(t, node.JetStream(), node.Names().EventStream, subject),
		nodeStreamEnvelopes(t, node.JetStream(), node.Names().PlatformStream, subject)...) {
		if e.Name == message.NameThingDeath {
			d, err := message.DecodePayload[message.Death](e)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
	}
	return out
}

func TestNodeLiveness(t *testing.T) {
	tests := []struct {
		name  string
		flap  time.Duration
		cuts  int
		want  int // deaths published by the edge
		final edgekit.DeviceState
	}{
		{name: "connection lost", flap: -1, cuts: 1, want: 1},
		{name: "flapping within the window", flap: time.Hour, cuts: 3, want: 1},
		{name: "no suppression", flap: -1, cuts: 3, want: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newNodeEnv(t, 0)
			cfg := nodeTestConfig(t, env, "")
			cfg.FlapWindow = tc.flap
			node := nodeStart(t, cfg)
			proxy := nodeDeviceProxy(t, node)
			d := nodeConnectDevice(t, env, "nats://"+proxy.Addr(), nodeR1, nil)
			if st := node.DeviceState(nodeR1); st != edgekit.DeviceOnline {
				// The birth is stored before Connect returns, but the edge
				// service sees it on its own subscription.
				nodeWaitFor(t, "online after birth", func() bool { return node.DeviceState(nodeR1) == edgekit.DeviceOnline })
			}
			for i := range tc.cuts {
				proxy.Cut()
				nodeWaitFor(t, "offline after the cut", func() bool { return node.DeviceState(nodeR1) == edgekit.DeviceOffline })
				proxy.Restore()
				// Back with the same boot: its heartbeat makes it online.
				nodeWaitFor(t, "online again", func() bool { return node.DeviceState(nodeR1) == edgekit.DeviceOnline })
				if i == 0 {
					nodeWaitFor(t, "first death", func() bool { return len(nodeDeaths(t, node, nodeR1)) == 1 })
				}
			}
			nodeWaitFor(t, "deaths", func() bool { return node.Stats().DeathsPublished == uint64(tc.want) })
			deaths := nodeDeaths(t, node, nodeR1)
			if len(deaths) != tc.want {
				t.Fatalf("%d deaths stored, want %d", len(deaths), tc.want)
			}
			for _, death := range deaths {
				if death.BootID != d.BootID() || death.Reason != edgekit.DeathReasonConnectionLost {
					t.Fatalf("death %+v, boot %s", death, d.BootID())
				}
			}
			if tc.flap > 0 && node.Stats().DeathsSuppressed != uint64(tc.cuts-1) {
				t.Fatalf("stats %+v", node.Stats())
			}
		})
	}
}

// TestNodeGracefulClose: a device that closes publishes its own death; the
// edge adds none.
func TestNodeGracefulClose(t *testing.T) {
	env := newNodeEnv(t, 0)
	node := nodeStart(t, nodeTestConfig(t, env, ""))
	d := nodeConnectDevice(t, env, node.ClientURL(), nodeR1, nil)
	nodeWaitFor(t, "online", func() bool { return node.DeviceState(nodeR1) == edgekit.DeviceOnline })
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	nodeWaitFor(t, "offline", func() bool { return node.DeviceState(nodeR1) == edgekit.DeviceOffline })
	// Another device's birth is a barrier: the edge service has handled
	// r1's disconnect event by the time it sees r2's birth.
	nodeConnectDevice(t, env, node.ClientURL(), nodeR2, nil)
	nodeWaitFor(t, "r2 online", func() bool { return node.DeviceState(nodeR2) == edgekit.DeviceOnline })
	if deaths := nodeDeaths(t, node, nodeR1); len(deaths) != 1 || deaths[0].Reason != "shutdown" {
		t.Fatalf("deaths %+v", deaths)
	}
	if node.Stats().DeathsPublished != 0 {
		t.Fatalf("stats %+v", node.Stats())
	}
}

// TestNodeStaleDevice: a device whose heartbeats stop while its connection
// stays open becomes stale.
func TestNodeStaleDevice(t *testing.T) {
	env := newNodeEnv(t, 0)
	cfg := nodeTestConfig(t, env, "")
	cfg.HeartbeatMisses = 2
	node := nodeStart(t, cfg)
	proxy := nodeDeviceProxy(t, node)
	nodeConnectDevice(t, env, "nats://"+proxy.Addr(), nodeR1, func(c *devicekit.Config) { c.HeartbeatInterval = 100 * time.Millisecond })
	nodeWaitFor(t, "online", func() bool { return node.DeviceState(nodeR1) == edgekit.DeviceOnline })
	proxy.Stall() // the connection stays open, nothing gets through
	nodeWaitFor(t, "stale", func() bool { return node.DeviceState(nodeR1) == edgekit.DeviceStale })
	proxy.Restore()
	nodeWaitFor(t, "online again", func() bool { return node.DeviceState(nodeR1) == edgekit.DeviceOnline })
}

// TestNodeStatusPublished: the edge publishes its status on its own state
// subject, on start and when a device comes online.
func TestNodeStatusPublished(t *testing.T) {
	env := newNodeEnv(t, 0)
	node := nodeStart(t, nodeTestConfig(t, env, ""))
	nodeConnectDevice(t, env, node.ClientURL(), nodeR1, nil)
	e := nodeWaitEnvelope(t, node.JetStream(), node.Names().PlatformStream, "acme.hq._edge.hq.state", func(e *message.Envelope) bool {
		if e.Name != edgekit.NameEdgeStatus {
			return false
		}
		st, err := message.DecodePayload[edgekit.NodeStatus](e)
		return err == nil && st.DevicesOnline == 1 && st.DevicesOffline == 3 && !st.LinkUp
	})
	if e.Source != (topic.Thing{Org: "acme", Edge: "hq", Type: topic.ThingTypeEdge, Code: "hq"}) {
		t.Fatalf("status from %s", e.Source)
	}
}
