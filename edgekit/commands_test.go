package edgekit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// nodeCommandRecorder is a device's command handler that records what ran.
type nodeCommandRecorder struct {
	mu  sync.Mutex
	ran []message.ID
}

func (r *nodeCommandRecorder) HandleCommand(_ context.Context, c devicekit.Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, c.ID)
	return nil
}

func (r *nodeCommandRecorder) count(id message.ID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.ran {
		if x == id {
			n++
		}
	}
	return n
}

func (r *nodeCommandRecorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ran)
}

// nodeCommandDevice connects t and handles its commands with a recorder.
func nodeCommandDevice(t *testing.T, env *nodeEnv, node *edgekit.Node, th topic.Thing) *nodeCommandRecorder {
	t.Helper()
	d := nodeConnectDevice(t, env, node.ClientURL(), th, nil)
	rec := &nodeCommandRecorder{}
	sub, err := d.HandleCommands(nodeCtx(t), rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	return rec
}

// waitCentralAck waits until central's event stream holds an ack of
// command id with status st from thing th.
func waitCentralAck(t *testing.T, c *nodeCentral, node *edgekit.Node, th topic.Thing, id message.ID, st message.AckStatus) *message.Envelope {
	t.Helper()
	return nodeWaitEnvelope(t, c.js, node.Names().CentralEventStream, th.Subject(topic.Ack).String(), func(e *message.Envelope) bool {
		return e.CorrelationID == id && nodeAckOf(e).Status == st
	})
}

func TestNodeCommands(t *testing.T) {
	env := newNodeEnv(t, 0)
	central := nodeStartCentral(t, env)
	node := nodeStart(t, nodeTestConfig(t, env, central.hubURL()))
	nodeWaitFor(t, "leaf link", node.LinkUp)

	t.Run("online device runs it and acks", func(t *testing.T) {
		rec := nodeCommandDevice(t, env, node, nodeL1)
		cmd := nodeSendCommand(t, central, nodeL1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k-online"})
		waitCentralAck(t, central, node, nodeL1, cmd.ID, message.AckCompleted)
		if got := rec.count(cmd.ID); got != 1 {
			t.Fatalf("ran %d times", got)
		}
	})

	t.Run("expired command never reaches the device", func(t *testing.T) {
		rec := nodeCommandDevice(t, env, node, nodeR2)
		cmd := nodeSendCommand(t, central, nodeR2, message.Command{Action: "beep", Deadline: time.Now().Add(-time.Second), IdempotencyKey: "k-expired"})
		ack := waitCentralAck(t, central, node, nodeR2, cmd.ID, message.AckExpired)
		if a := nodeAckOf(ack); a.Error != edgekit.AckReasonExpired || ack.Source != nodeR2 {
			t.Fatalf("expired ack %+v from %s", a, ack.Source)
		}
		// A later command still arrives, after the expired one.
		next := nodeSendCommand(t, central, nodeR2, message.Command{Action: "beep", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k-after"})
		waitCentralAck(t, central, node, nodeR2, next.ID, message.AckCompleted)
		if rec.count(cmd.ID) != 0 || rec.total() != 1 {
			t.Fatalf("device ran %v", rec.ran)
		}
	})

	t.Run("offline device gets it when it connects", func(t *testing.T) {
		cmd := nodeSendCommand(t, central, nodeS1, message.Command{Action: "calibrate", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k-offline"})
		nodeWaitFor(t, "command waiting at the edge", func() bool {
			st, err := node.Status(nodeCtx(t))
			return err == nil && st.CommandsPending == 1
		})
		rec := nodeCommandDevice(t, env, node, nodeS1)
		waitCentralAck(t, central, node, nodeS1, cmd.ID, message.AckCompleted)
		if rec.count(cmd.ID) != 1 {
			t.Fatalf("device ran %v", rec.ran)
		}
	})

	t.Run("offline device past the deadline gets an expired ack instead", func(t *testing.T) {
		before := node.Stats().CommandsExpired
		cmd := nodeSendCommand(t, central, nodeR1, message.Command{Action: "beep", Deadline: time.Now().Add(500 * time.Millisecond), IdempotencyKey: "k-late"})
		waitCentralAck(t, central, node, nodeR1, cmd.ID, message.AckExpired)
		if node.Stats().CommandsExpired != before+1 {
			t.Fatalf("stats %+v", node.Stats())
		}
		rec := nodeCommandDevice(t, env, node, nodeR1)
		next := nodeSendCommand(t, central, nodeR1, message.Command{Action: "beep", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k-late-2"})
		waitCentralAck(t, central, node, nodeR1, next.ID, message.AckCompleted)
		if rec.count(cmd.ID) != 0 {
			t.Fatal("expired command ran")
		}
	})

	t.Run("repeated id runs once", func(t *testing.T) {
		// l1 is still connected and handling commands (first subtest's
		// device is cleaned up; connect again).
		rec := nodeCommandDevice(t, env, node, nodeL1)
		before := node.Stats().CommandsDuplicate
		cmd := nodeNewCommand(t, nodeL1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k-repeat"})
		nodeWriteCommand(t, central, cmd, "first")
		nodeWriteCommand(t, central, cmd, "second") // another stream message, same envelope ID
		waitCentralAck(t, central, node, nodeL1, cmd.ID, message.AckCompleted)
		nodeWaitFor(t, "the repeat seen by the edge", func() bool { return node.Stats().CommandsDuplicate == before+1 })
		if got := rec.count(cmd.ID); got != 1 {
			t.Fatalf("ran %d times", got)
		}
	})
}
