package devicekit_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// testTimeout bounds every wait; generous, for loaded CI machines.
const testTimeout = 30 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// connect connects a device as thing on edge, with cfg adjusted by mutate,
// and closes it in cleanup.
func connect(t testing.TB, edge *devicetest.Edge, thing topic.Thing, mutate func(*devicekit.Config)) *devicekit.Client {
	t.Helper()
	cfg := edge.Config(thing)
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := devicekit.Connect(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("Connect(%s): %v", thing, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls cond until it holds, failing t after testTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// stored returns the envelopes stored on subject.
func stored(t testing.TB, edge *devicetest.Edge, subject string) []devicetest.StoredMsg {
	t.Helper()
	msgs, err := devicetest.Stored(testCtx(t), edge.JetStream, edge.Stream, subject)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// storedIDs returns the IDs of the envelopes stored on subject.
func storedIDs(t testing.TB, edge *devicetest.Edge, subject string) []message.ID {
	t.Helper()
	var ids []message.ID
	for _, m := range stored(t, edge, subject) {
		ids = append(ids, m.Envelope.ID)
	}
	return ids
}

// count returns how many times id occurs in ids.
func count(ids []message.ID, id message.ID) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

// subscribe subscribes the edge to subject and returns the channel of its
// messages, after the server has registered the subscription.
func subscribe(t testing.TB, nc *nats.Conn, subject string) <-chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 4096)
	sub, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// next returns the next envelope on ch that satisfies keep.
func next(t testing.TB, ch <-chan *nats.Msg, what string, keep func(*message.Envelope) bool) *message.Envelope {
	t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for {
		select {
		case m := <-ch:
			e, err := message.FromMsg(m)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if keep(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no %s within %v", what, testTimeout)
		}
	}
}

// disconnected reports whether the device's connection is down.
func disconnected(c *devicekit.Client) func() bool {
	return func() bool { return !devicekit.Conn(c).IsConnected() }
}

// syncBuffer is a bytes.Buffer safe for concurrent writers, for loggers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
