package edgekit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
)

// TestNodeLostResetSentAgain cuts the link until the edge's server sends a
// reset of central's command consumer, which the cut loses, and restores
// the link at once: the node sends the lost reset again, so that its
// answer reaches the reply subject the edge's server still waits on
// (without it nats-server gives up after 5 s and sends a new reset with a
// new reply subject: the first is never answered), and a command written
// during the outage reaches the device.
func TestNodeLostResetSentAgain(t *testing.T) {
	env := newNodeEnv(t, 0)
	c := nodeStartCentral(t, env)
	node := nodeStart(t, nodeTestConfig(t, env, c.hubURL()))
	nodeWaitFor(t, "leaf link", node.LinkUp)
	rec := nodeCommandDevice(t, env, node, nodeL1)
	first := nodeSendCommand(t, c, nodeL1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k-before"})
	nodeWaitFor(t, "the command before the outage run", func() bool { return rec.count(first.ID) == 1 })

	// What the edge's server sends and hears, as the edge service sees it.
	user := authz.EdgeServiceUser("acme", "hq")
	nc, err := nats.Connect(node.ClientURL(), nats.UserInfo(user, env.password(user)),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(user)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	n := node.Names()
	resets := make(chan string, 64) // reply subjects of the resets
	var mu sync.Mutex
	answered := map[string]bool{}
	reset := "$JS.hub.API.CONSUMER.RESET." + n.CentralCommandStream + "." + n.CommandConsumer
	if _, err := nc.Subscribe(reset, func(m *nats.Msg) { resets <- m.Reply }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("$JSC.R.hub.*."+n.CentralCommandStream+"."+n.CommandConsumer+".*", func(m *nats.Msg) {
		mu.Lock()
		answered[m.Subject] = true
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// A reset is sent again only while nats-server still waits on it (5 s):
	// on a machine so loaded that the link came back later than that, the
	// outage is repeated.
	var during *message.Envelope
	for attempt := 1; ; attempt++ {
		c.proxy.Cut()
		nodeWaitFor(t, "the link to drop", func() bool { return !node.LinkUp() })
		for len(resets) > 0 {
			<-resets // sent while the link was up
		}
		during = nodeSendCommand(t, c, nodeL1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute),
			IdempotencyKey: fmt.Sprintf("k-during-%d", attempt)})
		// nats-server sends a reset for a source silent for 10 s, on its
		// next check (every 10 s); the cut loses it.
		var lost string
		select {
		case lost = <-resets:
		case <-nodeCtx(t).Done():
			t.Fatal("no consumer reset sent while the link was cut")
		}
		seen := time.Now()
		c.proxy.Restore()
		nodeWaitFor(t, "central's consumer API across the link", func() bool {
			return edgekit.LeafDomains(node.Server(), "acme")[authz.HubDomain] != 0
		})
		if back := time.Since(seen); back > 3*time.Second && attempt < 3 {
			t.Logf("the link came back %v after the reset was sent; again", back)
			continue
		}
		nodeWaitFor(t, "the answer to the reset lost in the cut, on its reply subject", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return answered[lost]
		})
		break
	}
	nodeWaitFor(t, "the command of the outage run", func() bool { return rec.count(during.ID) == 1 })
	if node.Stats().ResetsResent == 0 {
		t.Fatalf("stats %+v: no reset sent again", node.Stats())
	}
}
