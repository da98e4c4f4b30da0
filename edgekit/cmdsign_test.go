package edgekit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// TestSignedCommands runs commands from central's hub through a real edge
// node to a devicekit lock, and delivers to the lock's cmd subject what a
// steered reply or a forger would: a JetStream publish-ack, an unsigned
// command, a command signed by an unknown key, and one central signed for
// another thing, replayed to the lock. The lock runs central's commands
// and the edge's own, and refuses the rest without acking them.
func TestSignedCommands(t *testing.T) {
	env := newNodeEnv(t, 0)
	central := nodeStartCentral(t, env)
	hub, err := edgekit.NewHub(central.js, edgekit.HubConfig{Org: "acme", Inventory: env.inv, CommandKey: env.secrets.CommandSeeds["acme"]})
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Provision(nodeCtx(t), "hq"); err != nil {
		t.Fatal(err)
	}
	sup, err := hub.Supervise(nodeCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sup.Stop)
	node := nodeStart(t, nodeTestConfig(t, env, central.hubURL()))
	nodeWaitFor(t, "leaf link", node.LinkUp)

	lock := nodeConnectDevice(t, env, node.ClientURL(), nodeL1, nil)
	rec := &nodeCommandRecorder{}
	sub, err := lock.HandleCommands(nodeCtx(t), rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)

	send := func(key string) message.ID {
		t.Helper()
		res, err := hub.SendCommand(nodeCtx(t), nodeL1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: key}, "operator:alice")
		if err != nil {
			t.Fatalf("SendCommand: %v", err)
		}
		return res.ID()
	}
	first := send("k-first")
	waitCentralAck(t, central, node, nodeL1, first, message.AckCompleted)

	// What the attacks deliver, on the edge service's connection, which
	// may publish on every cmd subject of the edge.
	cmdSubject := nodeL1.Subject(topic.Command).String()
	forged := func(sign func(*nats.Msg) error) (message.ID, *nats.Msg) {
		t.Helper()
		e := nodeNewCommand(t, nodeL1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k-forged-" + time.Now().String()})
		m, err := e.ToMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Subject = cmdSubject
		if sign != nil {
			if err := sign(m); err != nil {
				t.Fatal(err)
			}
		}
		return e.ID, m
	}
	stranger, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	unsignedID, unsigned := forged(nil)
	strangerID, byStranger := forged(func(m *nats.Msg) error { return message.SignCommand(m, nodeL1, stranger) })
	// Central's real signature, but for reader r1: replayed to the lock.
	replayID, replayed := forged(func(m *nats.Msg) error { return message.SignCommand(m, nodeR1, central.cmdKey) })
	for _, m := range []*nats.Msg{
		{Subject: cmdSubject, Data: []byte(`{"stream":"events-acme-hq","domain":"hq","seq":7}`)},
		{Subject: cmdSubject, Header: nats.Header{"Lintel-Error": {"malformed access request"}}},
		unsigned, byStranger, replayed,
	} {
		if err := node.Conn().PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}

	// A command of the edge itself, signed with the edge's key, runs.
	edgeID, edgeCmd := forged(func(m *nats.Msg) error { return node.SignCommand(m, nodeL1) })
	if err := node.Conn().PublishMsg(edgeCmd); err != nil {
		t.Fatal(err)
	}
	// And central's next command: commands run in order, so by its ack
	// everything above has been dealt with.
	last := send("k-last")
	waitCentralAck(t, central, node, nodeL1, last, message.AckCompleted)
	nodeWaitFor(t, "the edge's own command to complete", func() bool { return rec.count(edgeID) == 1 })

	if st := lock.Stats(); st.CommandsRefused != 5 {
		t.Errorf("the lock refused %d messages, want 5 (stats %+v)", st.CommandsRefused, st)
	}
	for name, id := range map[string]message.ID{"unsigned": unsignedID, "unknown key": strangerID, "replayed": replayID} {
		if n := rec.count(id); n != 0 {
			t.Errorf("the %s command ran %d times", name, n)
		}
		for _, e := range nodeStreamEnvelopes(t, central.js, node.Names().CentralEventStream, nodeL1.Subject(topic.Ack).String()) {
			if e.CorrelationID == id {
				t.Errorf("the %s command was acked %+v", name, nodeAckOf(e))
			}
		}
	}
	if rec.count(first) != 1 || rec.count(last) != 1 || rec.total() != 3 {
		t.Errorf("the lock ran %v, want central's two commands and the edge's", rec.ran)
	}
	if _, err := edgekit.NewHub(central.js, edgekit.HubConfig{Org: "acme", Inventory: env.inv, CommandKey: authz.NewSecret("SUnot-a-seed")}); !errors.Is(err, edgekit.ErrInvalidHubConfig) {
		t.Errorf("a hub with a malformed command key: %v, want ErrInvalidHubConfig", err)
	}
	keyless, err := edgekit.NewHub(central.js, edgekit.HubConfig{Org: "acme", Inventory: env.inv})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyless.SendCommand(nodeCtx(t), nodeL1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k-keyless"}, ""); !errors.Is(err, edgekit.ErrNoCommandKey) {
		t.Errorf("SendCommand without a command key: %v, want ErrNoCommandKey", err)
	}
}
