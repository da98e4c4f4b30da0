package devicekit_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// withOutboxRetry sets Config.OutboxRetry.
func withOutboxRetry(d time.Duration) func(*devicekit.Config) {
	return func(cfg *devicekit.Config) { cfg.OutboxRetry = d }
}

// stopStoringEvents makes the edge's stream stop capturing the devices'
// events, as an edge whose JetStream does not answer yet: a device's event
// publish finds no responder and is not stored. It returns the function
// that captures them again.
func stopStoringEvents(t *testing.T, edge *devicetest.Edge) (restore func()) {
	t.Helper()
	ctx := testCtx(t)
	s, err := edge.JetStream.Stream(ctx, edge.Stream)
	if err != nil {
		t.Fatal(err)
	}
	orig := s.CachedInfo().Config
	cfg := orig
	cfg.Subjects = slices.DeleteFunc(slices.Clone(orig.Subjects), func(s string) bool {
		return strings.HasSuffix(s, "."+string(topic.Event))
	})
	if _, err := edge.JetStream.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if _, err := edge.JetStream.UpdateStream(testCtx(t), orig); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOutboxResendRunning makes event publishes of a running device fail
// (the acknowledgement lost on a stalled link, the request lost with a cut
// connection, the link cut with the request buffered, the edge's stream
// not answering), then heals the fault: without a new Connect, the device
// sends every kept envelope again on its own (after reconnecting, or at
// its next OutboxRetry), each is stored exactly once, in the order
// published, and the outbox empties.
func TestOutboxResendRunning(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*testing.T, *faults) // breaks the path; returns once it is
		heal  func(*testing.T, *faults)
		// never is set when the edge cannot have received the failed
		// publishes before the heal, so only the re-send delivers them.
		never bool
	}{
		{"acknowledgement lost on a stalled link", func(t *testing.T, f *faults) { f.p.Stall() }, func(t *testing.T, f *faults) { f.p.Restore() }, false},
		{"request lost with the connection", func(t *testing.T, f *faults) { f.p.Stall() }, func(t *testing.T, f *faults) {
			f.p.Cut()
			waitFor(t, "the device to notice the cut", disconnected(f.c))
			f.p.Restore()
		}, false},
		{"link cut, request buffered", func(t *testing.T, f *faults) {
			f.p.Cut()
			waitFor(t, "the device to notice the cut", disconnected(f.c))
		}, func(t *testing.T, f *faults) { f.p.Restore() }, false},
		{"edge not storing", func(t *testing.T, f *faults) { f.restore = stopStoringEvents(t, f.edge) }, func(t *testing.T, f *faults) { f.restore() }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
			thing := edge.Things[0]
			evtSubj := thing.Subject(topic.Event).String()
			dir := t.TempDir()
			p, viaP := viaProxy(t, edge)
			c := connect(t, edge, thing, and(viaP, withOutbox(dir), withOutboxRetry(100*time.Millisecond)))
			f := &faults{edge: edge, p: p, c: c}
			ctx := testCtx(t)

			first, err := c.PublishEvent(ctx, "test.before", nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.fault(t, f)
			var lost []message.ID
			for i := range 4 {
				lost = append(lost, unacknowledged(t, c, "test.failed", i))
			}
			if s := c.Stats(); s.OutboxPending != uint64(len(lost)) || s.OutboxResent != 0 {
				t.Fatalf("Stats %+v during the fault: want the %d failed events pending, none re-sent", s, len(lost))
			}
			if got := storedIDs(t, edge, evtSubj); tt.never && !slices.Equal(got, []message.ID{first}) {
				t.Fatalf("during the fault the edge stores %v, want only %s", got, first)
			}
			tt.heal(t, f)

			waitFor(t, "the outbox to empty", func() bool { return c.Stats().OutboxPending == 0 })
			if s := c.Stats(); s.OutboxResent != uint64(len(lost)) {
				t.Errorf("Stats %+v: want the %d failed events re-sent", s, len(lost))
			}
			if got := outboxFiles(t, dir); !slices.Equal(got, []string{"lock"}) {
				t.Errorf("outbox holds %v, want only the lock", got)
			}
			next, err := c.PublishEvent(ctx, "test.after", nil)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append([]message.ID{first}, lost...), next)
			if got := storedIDs(t, edge, evtSubj); !slices.Equal(got, want) {
				t.Fatalf("stored events %v,\nwant each once, in the order published: %v", got, want)
			}
		})
	}
}

// faults is what a fault of TestOutboxResendRunning acts on.
type faults struct {
	edge *devicetest.Edge
	p    interface {
		Stall()
		Cut()
		Restore()
	}
	c       *devicekit.Client
	restore func()
}

// TestOutboxResendBeforeNew checks the order across a re-send: with no
// periodic re-send to help (OutboxRetry of an hour) and no reconnection,
// a publish after failed ones sends them first, so the edge stores the
// device's events in the order it published them, and the failed ones
// once each.
func TestOutboxResendBeforeNew(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[1]
	evtSubj := thing.Subject(topic.Event).String()
	_, viaP := viaProxy(t, edge)
	c := connect(t, edge, thing, and(viaP, withOutbox(t.TempDir()), withOutboxRetry(time.Hour)))
	ctx := testCtx(t)

	restore := stopStoringEvents(t, edge)
	var want []message.ID
	for i := range 3 {
		want = append(want, unacknowledged(t, c, "test.failed", i))
	}
	restore()
	id, err := c.PublishEvent(ctx, "test.new", nil)
	if err != nil {
		t.Fatalf("PublishEvent after the failed ones = %v", err)
	}
	want = append(want, id)
	if got := storedIDs(t, edge, evtSubj); !slices.Equal(got, want) {
		t.Fatalf("stored events %v,\nwant the failed ones first, each once, then the new one: %v", got, want)
	}
	if s := c.Stats(); s.OutboxResent != 3 || s.OutboxPending != 0 {
		t.Errorf("Stats %+v: want 3 re-sent, nothing pending", s)
	}
}

// TestOutboxResendHoldsBack checks that kept envelopes the edge does not
// store yet hold back a later publish, even on a subject the edge stores:
// it fails with ErrNotAcknowledged and stays in the outbox, behind them;
// once the edge stores events again, all are stored once, in the order
// published.
func TestOutboxResendHoldsBack(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[2]
	_, viaP := viaProxy(t, edge)
	c := connect(t, edge, thing, and(viaP, withOutbox(t.TempDir()), withOutboxRetry(time.Hour)))
	ctx := testCtx(t)

	restore := stopStoringEvents(t, edge)
	var want []message.ID
	for i := range 3 {
		want = append(want, unacknowledged(t, c, "test.failed", i))
	}
	// A state is on another subject the stream still captures: it waits
	// for the events before it all the same.
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	sid, err := c.PublishState(sctx, "test.state", nil)
	cancel()
	if !errors.Is(err, devicekit.ErrNotAcknowledged) || sid.IsZero() {
		t.Fatalf("PublishState behind failed events = %s, %v; want ErrNotAcknowledged", sid, err)
	}
	t.Logf("error: %v", err)
	if got := storedIDs(t, edge, thing.Subject(topic.State).String()); slices.Contains(got, sid) {
		t.Fatalf("the state was stored before the events published before it")
	}
	restore()
	id, err := c.PublishEvent(ctx, "test.new", nil)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, sid, id)
	var got []message.ID
	for _, m := range stored(t, edge, ">") {
		if slices.Contains(want, m.Envelope.ID) {
			got = append(got, m.Envelope.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stored %v,\nwant each once, in the order published: %v", got, want)
	}
	if s := c.Stats(); s.OutboxResent != 4 || s.OutboxPending != 0 {
		t.Errorf("Stats %+v: want 4 re-sent (3 events, the state), nothing pending", s)
	}
}
