package natstest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// sides connects one client to each side of hl.
type sides struct {
	hub, leaf *nats.Conn
}

func connectSides(t *testing.T, hl *natstest.HubLeaf) sides {
	t.Helper()
	return sides{hub: connect(t, hl.Hub), leaf: connect(t, hl.Leaf)}
}

// requireBothWays checks that messages cross the link in both directions.
func requireBothWays(t *testing.T, hl *natstest.HubLeaf, c sides, subject string) {
	t.Helper()
	requireDelivered(t, hl.Leaf, c.leaf, c.hub, subject+".up")
	requireDelivered(t, hl.Hub, c.hub, c.leaf, subject+".down")
}

func TestHubLeafPubSub(t *testing.T) {
	t.Parallel()
	hl := natstest.RunHubLeaf(t, natstest.HubLeafOptions{})
	if !hl.LeafConnected() {
		t.Fatal("RunHubLeaf returned before the leaf connected")
	}
	if hl.HubDomain != "hub" || hl.LeafDomain != "edge1" {
		t.Errorf("domains = %q, %q; want hub, edge1", hl.HubDomain, hl.LeafDomain)
	}
	if hl.Proxy.Target() != hl.Hub.LeafNodeAddr() {
		t.Errorf("proxy target %s, hub leafnode listener %s", hl.Proxy.Target(), hl.Hub.LeafNodeAddr())
	}
	c := connectSides(t, hl)

	tests := []struct {
		name     string
		pubSrv   *natstest.Server
		pub, sub *nats.Conn
	}{
		{"leaf to hub", hl.Leaf, c.leaf, c.hub},
		{"hub to leaf", hl.Hub, c.hub, c.leaf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireDelivered(t, tt.pubSrv, tt.pub, tt.sub, "pubsub")
		})
	}
}

func TestHubLeafJetStreamDomains(t *testing.T) {
	t.Parallel()
	hl := natstest.RunHubLeaf(t, natstest.HubLeafOptions{})
	c := connectSides(t, hl)
	ctx := testContext(t)

	tests := []struct {
		name   string
		domain string
		// local is a client of the server that must own the stream.
		local *nats.Conn
	}{
		{"leaf domain", hl.LeafDomain, c.leaf},
		{"hub domain", hl.HubDomain, c.hub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.domain == hl.LeafDomain {
				// The leaf's interest in its domain's API reaches the hub
				// shortly after the link comes up. (The hub serves its own
				// domain through a subject mapping, which has no interest.)
				noErr(t, hl.Hub.WaitInterest(ctx, "$JS."+tt.domain+".API.INFO"), "wait for domain API")
			}
			js, err := jetstream.NewWithDomain(c.hub, tt.domain)
			noErr(t, err, "jetstream")
			name := "S_" + tt.domain
			subject := tt.domain + ".orders"
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}})
			noErr(t, err, "create stream")
			// The stream's subscription is interest the hub learns about
			// too when the stream lives on the leaf.
			noErr(t, hl.Hub.WaitInterest(ctx, subject), "wait for stream interest")
			ack, err := js.Publish(ctx, subject, []byte("order"))
			noErr(t, err, "publish")
			if ack.Domain != tt.domain {
				t.Errorf("ack from domain %q, want %q", ack.Domain, tt.domain)
			}

			// The stream is local to the server of its domain.
			local, err := jetstream.New(tt.local)
			noErr(t, err, "local jetstream")
			s, err := local.Stream(ctx, name)
			noErr(t, err, "stream on its own server")
			info, err := s.Info(ctx)
			noErr(t, err, "stream info")
			if info.State.Msgs != 1 {
				t.Errorf("stream has %d messages, want 1", info.State.Msgs)
			}
		})
	}
}

func TestHubLeafCutRestore(t *testing.T) {
	t.Parallel()
	hl := natstest.RunHubLeaf(t, natstest.HubLeafOptions{})
	c := connectSides(t, hl)
	ctx := testContext(t)

	// Twice: after the first reconnect the link must still run through
	// the proxy, so the second cut takes it down too.
	for i := range 2 {
		hl.Proxy.Cut()
		noErr(t, hl.WaitLeafDisconnected(ctx), fmt.Sprintf("after Cut %d", i+1))
		hl.Proxy.Restore()
		noErr(t, hl.WaitLeafConnected(ctx), fmt.Sprintf("after Restore %d", i+1))
		requireBothWays(t, hl, c, fmt.Sprintf("cut%d", i+1))
	}
}

func TestHubLeafStallRestore(t *testing.T) {
	t.Parallel()
	hl := natstest.RunHubLeaf(t, natstest.HubLeafOptions{})
	c := connectSides(t, hl)
	ctx := testContext(t)

	// A responder on the leaf, called from the hub.
	sub, err := c.leaf.Subscribe("stall.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	noErr(t, err, "subscribe")
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	noErr(t, hl.Hub.WaitInterest(ctx, "stall.echo"), "wait for interest")
	_, err = c.hub.RequestWithContext(ctx, "stall.echo", []byte("before"))
	noErr(t, err, "request before Stall")

	hl.Proxy.Stall()
	// The link stays open but silent; both servers notice when their pings
	// go unanswered.
	noErr(t, hl.WaitLeafDisconnected(ctx), "after Stall")
	if _, err := c.hub.Request("stall.echo", []byte("stalled"), 100*time.Millisecond); err == nil {
		t.Fatal("request crossed a stalled link")
	}

	hl.Proxy.Restore()
	noErr(t, hl.WaitLeafConnected(ctx), "after Restore")
	noErr(t, hl.Hub.WaitInterest(ctx, "stall.echo"), "wait for interest after Restore")
	msg, err := c.hub.RequestWithContext(ctx, "stall.echo", []byte("after"))
	noErr(t, err, "request after Restore")
	if string(msg.Data) != "after" {
		t.Errorf("reply %q, want %q", msg.Data, "after")
	}
	requireBothWays(t, hl, c, "stall")
}

func TestHubLeafHubRestart(t *testing.T) {
	t.Parallel()
	hl := natstest.RunHubLeaf(t, natstest.HubLeafOptions{})
	ctx := testContext(t)

	c := connectSides(t, hl)
	js, err := jetstream.New(c.hub)
	noErr(t, err, "jetstream")
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "HUB", Subjects: []string{"hub.>"}})
	noErr(t, err, "create stream")
	_, err = js.Publish(ctx, "hub.x", nil)
	noErr(t, err, "publish")

	first := hl.Hub.Server()
	noErr(t, hl.Hub.Restart(), "restart hub")
	noErr(t, hl.WaitLeafConnected(ctx), "leaf reconnect")
	if first.NumLeafNodes() != 0 || hl.Hub.Server() == first {
		t.Fatal("leaf link still on the old hub instance")
	}

	// Fresh connections, so the test does not depend on client reconnects.
	c = connectSides(t, hl)
	requireBothWays(t, hl, c, "restart")
	js, err = jetstream.New(c.hub)
	noErr(t, err, "jetstream")
	var info *jetstream.StreamInfo
	eventually(t, func() error {
		s, err := js.Stream(ctx, "HUB")
		if err != nil {
			return err
		}
		info, err = s.Info(ctx)
		return err
	})
	if info.State.Msgs != 1 {
		t.Errorf("hub stream has %d messages after restart, want 1", info.State.Msgs)
	}
}

func TestHubLeafLeafRestart(t *testing.T) {
	t.Parallel()
	hl := natstest.RunHubLeaf(t, natstest.HubLeafOptions{})
	ctx := testContext(t)

	noErr(t, hl.Leaf.Restart(), "restart leaf")
	noErr(t, hl.WaitLeafConnected(ctx), "leaf reconnect")
	requireBothWays(t, hl, connectSides(t, hl), "leafrestart")
}

func TestHubLeafRefusesUnknownLeaf(t *testing.T) {
	t.Parallel()
	other, err := nkeys.CreateUser()
	noErr(t, err, "create nkey")
	otherSeed, err := other.Seed()
	noErr(t, err, "seed")

	tests := []struct {
		name string
		seed string // the leaf's remote nkey seed
	}{
		{"unregistered seed", string(otherSeed)},
		{"no credentials", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hl := natstest.RunHubLeaf(t, natstest.HubLeafOptions{
				NoWait: true,
				Leaf: func(o *server.Options) {
					o.LeafNode.Remotes[0].Nkey = tt.seed
				},
			})
			// Each attempt after the first proves the previous one failed.
			// The hub must never register the leaf meanwhile.
			const attempts = 3
			eventually(t, func() error {
				if n := hl.Hub.Server().NumLeafNodes(); n != 0 {
					t.Fatalf("hub accepted the leaf (%d leafnode connections)", n)
				}
				if st := hl.Proxy.Stats(); st.Accepted < attempts {
					return errors.New("leaf has not retried enough yet")
				}
				return nil
			})
			if hl.LeafConnected() {
				t.Fatal("leaf connected")
			}
		})
	}
}

func TestNewHubLeafNoLeafListener(t *testing.T) {
	t.Parallel()
	hl, err := natstest.NewHubLeaf(natstest.HubLeafOptions{
		Hub: func(o *server.Options) { o.LeafNode.Port = 0 },
	})
	if !errors.Is(err, natstest.ErrNoLeafNodeListener) || hl != nil {
		t.Fatalf("NewHubLeaf = %v, %v; want nil, ErrNoLeafNodeListener", hl, err)
	}
}
