package devicekit_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
)

// viaProxy starts a proxy in front of the edge's server, and returns it with
// a config adjustment that connects devices through it, quickly detecting
// and retrying.
func viaProxy(t *testing.T, edge *devicetest.Edge) (*natstest.Proxy, func(*devicekit.Config)) {
	t.Helper()
	p, err := natstest.NewProxy(edge.Server.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, func(cfg *devicekit.Config) {
		cfg.URLs = []string{"nats://" + p.Addr()}
		cfg.ReconnectWait = 20 * time.Millisecond
		cfg.AckTimeout = 200 * time.Millisecond
		cfg.HeartbeatInterval = time.Hour
	}
}

func and(fs ...func(*devicekit.Config)) func(*devicekit.Config) {
	return func(cfg *devicekit.Config) {
		for _, f := range fs {
			f(cfg)
		}
	}
}

// TestOutageRecovered publishes while the link is cut, then restores it: the
// publish succeeds, the event is stored once, and the device announces
// itself with a heartbeat.
func TestOutageRecovered(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[0]
	states := subscribe(t, edge.Conn, thing.Subject(topic.State).String())
	p, viaP := viaProxy(t, edge)
	c := connect(t, edge, thing, viaP)

	p.Cut()
	waitFor(t, "the device to notice the cut", disconnected(c))
	e := &message.Envelope{Type: topic.Event, Name: "test.during_outage"}
	errc := make(chan error, 1)
	go func() { errc <- c.Publish(testCtx(t), e) }()
	waitFor(t, "an unacknowledged attempt during the outage", func() bool { return c.Stats().Retries >= 1 })
	p.Restore()

	if err := <-errc; err != nil {
		t.Fatalf("Publish across the outage = %v, want nil", err)
	}
	if n := count(storedIDs(t, edge, thing.Subject(topic.Event).String()), e.ID); n != 1 {
		t.Errorf("the event is stored %d times, want 1", n)
	}
	hb := next(t, states, "heartbeat after reconnecting", func(e *message.Envelope) bool {
		return e.Name == message.NameThingHeartbeat && e.BootID == c.BootID()
	})
	if hb.Seq <= e.Seq {
		t.Errorf("heartbeat seq %d, want after the event's %d", hb.Seq, e.Seq)
	}
	if s := c.Stats(); s.Disconnects < 1 || s.Reconnects < 1 {
		t.Errorf("Stats %+v: want the disconnection and reconnection counted", s)
	}
}

// TestOutageNotAcknowledged publishes with a short context while the link is
// cut: a clear error, and publishing the same envelope again after the link
// is back stores it exactly once.
func TestOutageNotAcknowledged(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[0]
	p, viaP := viaProxy(t, edge)
	c := connect(t, edge, thing, viaP)

	p.Cut()
	waitFor(t, "the device to notice the cut", disconnected(c))
	e := &message.Envelope{Type: topic.Event, Name: "test.outage_timeout"}
	ctx, cancel := context.WithTimeout(testCtx(t), 500*time.Millisecond)
	defer cancel()
	err := c.Publish(ctx, e)
	var pe *devicekit.PublishError
	if !errors.Is(err, devicekit.ErrNotAcknowledged) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &pe) || pe.MsgID != e.ID {
		t.Fatalf("Publish during the outage = %v, want a *PublishError for %s wrapping ErrNotAcknowledged and the deadline", err, e.ID)
	}
	t.Logf("error: %v", err)

	p.Restore()
	if err := c.Publish(testCtx(t), e); err != nil {
		t.Fatalf("publishing the same envelope again = %v", err)
	}
	if n := count(storedIDs(t, edge, thing.Subject(topic.Event).String()), e.ID); n != 1 {
		t.Errorf("the event is stored %d times, want 1", n)
	}
}

// TestServerRestart keeps publishing while the edge's server restarts: every
// publish succeeds, and every event is stored exactly once. Publishes sent
// while the device has not yet noticed the restart are lost on the dead
// connection and must be sent again.
func TestServerRestart(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[1]
	c := connect(t, edge, thing, func(cfg *devicekit.Config) {
		cfg.ReconnectWait = 20 * time.Millisecond
		cfg.AckTimeout = 200 * time.Millisecond
	})
	ctx := testCtx(t)

	var (
		mu  sync.Mutex
		ids []message.ID
	)
	published := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(ids)
	}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			e := &message.Envelope{Type: topic.Event, Name: "test.restart"}
			if err := c.Publish(ctx, e); err != nil {
				errc <- err
				return
			}
			mu.Lock()
			ids = append(ids, e.ID)
			mu.Unlock()
		}
	}()
	waitFor(t, "a first event", func() bool { return published() > 0 })
	if err := edge.Server.Restart(); err != nil {
		t.Fatal(err)
	}
	after := published()
	waitFor(t, "events after the restart", func() bool { return published() >= after+10 })
	close(stop)
	if err := <-errc; err != nil {
		t.Fatalf("Publish across a server restart = %v", err)
	}
	if c.Stats().Reconnects < 1 {
		t.Errorf("Stats %+v: want a reconnection", c.Stats())
	}
	// The edge's own connection must have noticed the restart too, or its
	// first request goes to the dead connection.
	waitFor(t, "the edge to reconnect", func() bool { return edge.Conn.Stats().Reconnects >= 1 })
	storedNow := storedIDs(t, edge, thing.Subject(topic.Event).String())
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if k := count(storedNow, id); k != 1 {
			t.Errorf("event %s stored %d times, want 1", id, k)
		}
	}
	t.Logf("%d events, %d of them after the restart", len(ids), len(ids)-after)
}

// TestReconnectBufferFull fills the reconnect buffer during an outage:
// ErrBufferFull, and what was buffered is delivered once the link is back.
func TestReconnectBufferFull(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[4]
	p, viaP := viaProxy(t, edge)
	c := connect(t, edge, thing, and(viaP, func(cfg *devicekit.Config) {
		cfg.ReconnectBufferSize = 8 << 10
		cfg.TelemetryUnacknowledged = true
	}))
	ctx := testCtx(t)

	p.Cut()
	waitFor(t, "the device to notice the cut", disconnected(c))
	big := map[string]string{"blob": strings.Repeat("x", 3000)}
	buffered := 0
	var err error
	for range 10 {
		if _, err = c.PublishTelemetry(ctx, "test.buffered", big); err != nil {
			break
		}
		buffered++
	}
	var pe *devicekit.PublishError
	if !errors.Is(err, devicekit.ErrBufferFull) || !errors.As(err, &pe) || pe.Subject != thing.Subject(topic.Telemetry).String() {
		t.Fatalf("after %d buffered publishes: %v, want a *PublishError wrapping ErrBufferFull", buffered, err)
	}
	t.Logf("error after %d buffered: %v", buffered, err)
	if buffered == 0 {
		t.Fatal("nothing was buffered")
	}
	if _, err := c.PublishEvent(ctx, "test.no_room", nil); !errors.Is(err, devicekit.ErrBufferFull) {
		t.Errorf("PublishEvent with a full buffer = %v, want ErrBufferFull", err)
	}

	p.Restore()
	waitFor(t, "the buffered telemetry to be stored", func() bool {
		return len(stored(t, edge, thing.Subject(topic.Telemetry).String())) == buffered
	})
}

func TestReconnectBufferDisabled(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[4]
	p, viaP := viaProxy(t, edge)
	c := connect(t, edge, thing, and(viaP, func(cfg *devicekit.Config) { cfg.ReconnectBufferSize = -1 }))
	p.Cut()
	waitFor(t, "the device to notice the cut", disconnected(c))
	if _, err := c.PublishEvent(testCtx(t), "test.unbuffered", nil); !errors.Is(err, devicekit.ErrBufferFull) {
		t.Errorf("PublishEvent while disconnected without a buffer = %v, want ErrBufferFull", err)
	}
}

// TestCloseDuringOutage closes a device that cannot reach its edge: Close
// returns within its timeout with the reason the death was not published,
// and a publish still in progress ends with ErrClosed.
func TestCloseDuringOutage(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[0]
	p, viaP := viaProxy(t, edge)
	c := connect(t, edge, thing, and(viaP, func(cfg *devicekit.Config) { cfg.CloseTimeout = 500 * time.Millisecond }))

	p.Cut()
	waitFor(t, "the device to notice the cut", disconnected(c))
	errc := make(chan error, 1)
	go func() { _, err := c.PublishEvent(testCtx(t), "test.in_flight", nil); errc <- err }()
	waitFor(t, "an attempt during the outage", func() bool { return c.Stats().Retries >= 1 })

	err := c.Close()
	if !errors.Is(err, devicekit.ErrNotAcknowledged) && !errors.Is(err, devicekit.ErrClosed) {
		t.Errorf("Close during an outage = %v, want the death's publish error", err)
	}
	t.Logf("Close: %v", err)
	if err := <-errc; !errors.Is(err, devicekit.ErrClosed) {
		t.Errorf("the publish in progress ended with %v, want ErrClosed", err)
	}
	if _, err := c.PublishEvent(testCtx(t), "test.after", nil); !errors.Is(err, devicekit.ErrClosed) {
		t.Errorf("PublishEvent after Close = %v, want ErrClosed", err)
	}
}
