package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Live event stream.
const (
	// streamHeartbeat is how often the live event stream sends a comment
	// to keep proxies from closing an idle connection.
	streamHeartbeat = 15 * time.Second
	// streamBuffer is how many events a live stream may fall behind; a
	// client slower than that is disconnected (EventSource reconnects).
	streamBuffer = 4096
	// streamBatch is how many queued events a stream writes between
	// flushes.
	streamBatch = 64
)

// liveEvent is an event of the live stream, encoded once for every
// listener: its subject and stream sequence, and its EventItem as JSON.
type liveEvent struct {
	subject string
	seq     uint64
	data    []byte
}

// liveListener is one live stream's share of the fan-out.
type liveListener struct {
	match  func(subject string) bool
	events chan liveEvent
	// behind is closed when the listener fell streamBuffer events behind
	// and was dropped.
	behind chan struct{}
}

// liveHub fans central's live events out to the stream handlers: while
// any listens, one ordered consumer reads the org's subjects of central's
// event stream from new messages on, and each event is decoded and
// encoded once, whatever the number of listeners (each of which had its
// own consumer, decoding and encoding every event again, before). The
// zero value is ready; it lives in [Server].
type liveHub struct {
	mu        sync.Mutex
	listeners map[*liveListener]struct{}
	cc        jetstream.ConsumeContext // nil while nobody listens
}

// listen adds a listener of the subjects filter matches, starting the
// consumer for the first one, and returns it with the function that
// removes it (stopping the consumer after the last). ctx bounds the
// consumer's creation only.
func (s *Server) listen(ctx context.Context, filter string) (*liveListener, func(), error) {
	h := &s.live
	l := &liveListener{match: filterMatcher(filter), events: make(chan liveEvent, streamBuffer), behind: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cc == nil {
		hub, err := s.hub()
		if err != nil {
			return nil, nil, err
		}
		cons, err := s.js.OrderedConsumer(ctx, hub.EventStream(), jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subjectFilter(topic.Thing{Org: s.org}, "")}, DeliverPolicy: jetstream.DeliverNewPolicy})
		if err != nil {
			return nil, nil, err
		}
		if h.cc, err = cons.Consume(s.fanOut); err != nil {
			h.cc = nil
			return nil, nil, err
		}
		h.listeners = map[*liveListener]struct{}{}
	}
	h.listeners[l] = struct{}{}
	return l, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.listeners, l)
		if len(h.listeners) == 0 && h.cc != nil {
			h.cc.Stop()
			h.cc = nil
		}
	}, nil
}

// fanOut hands message m of the live consumer to every listener whose
// filter matches it, dropping a listener whose buffer is full.
func (s *Server) fanOut(m jetstream.Msg) {
	h := &s.live
	var ev *liveEvent
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.listeners {
		if !l.match(m.Subject()) {
			continue
		}
		if ev == nil {
			if ev = s.liveEventOf(m); ev == nil {
				return
			}
		}
		select {
		case l.events <- *ev:
		default:
			delete(h.listeners, l)
			close(l.behind)
		}
	}
}

// liveEventOf encodes m as an EventItem, or returns nil for a message
// that does not decode.
func (s *Server) liveEventOf(m jetstream.Msg) *liveEvent {
	md, err := m.Metadata()
	if err != nil {
		return nil
	}
	e, err := message.FromJetStream(m)
	if err != nil {
		return nil
	}
	it := eventItem(&jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: md.Sequence.Stream, Header: m.Headers(),
		Data: m.Data(), Time: md.Timestamp}, e)
	b, err := json.Marshal(it)
	if err != nil {
		return nil
	}
	return &liveEvent{subject: m.Subject(), seq: md.Sequence.Stream, data: b}
}

// streamEvents serves live events as server-sent events: each new message
// of central's event stream (filtered by edge and thing) as an "event"
// whose data is an EventItem. The events come from the server's one live
// consumer (liveHub), from the request on; a client that falls
// streamBuffer events behind is disconnected.
func (s *Server) streamEvents(c *call) (any, error) {
	q := c.r.URL.Query()
	th := topic.Thing{Org: s.org}
	if e := q.Get("edge"); e != "" {
		if err := s.edge(e); err != nil {
			return nil, err
		}
		th.Edge = e
	}
	if ref := q.Get("thing"); ref != "" {
		t, err := s.parseThingRef("thing", ref)
		if err != nil {
			return nil, err
		}
		th = t
	}
	fl, ok := c.w.(http.Flusher)
	if !ok {
		return nil, fmt.Errorf("the response cannot stream")
	}
	ctx := c.r.Context()
	l, leave, err := s.listen(ctx, subjectFilter(th, ""))
	if err != nil {
		return nil, err
	}
	defer leave()
	c.raw = true
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	fmt.Fprint(c.w, ": live events\n\n")
	fl.Flush()
	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	// A stream of a session or an API token ends when the session is
	// logged out or the token revoked.
	var recheck <-chan time.Time
	if c.p != nil && (c.p.session != "" || c.p.token != "") {
		t := time.NewTicker(sessionRecheck)
		defer t.Stop()
		recheck = t.C
	}
	write := func(ev liveEvent) {
		fmt.Fprintf(c.w, "id: %d\nevent: event\ndata: %s\n\n", ev.seq, ev.data)
	}
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-s.closed:
			return nil, nil
		case <-l.behind:
			fmt.Fprint(c.w, ": too far behind: reconnect\n\n")
			fl.Flush()
			return nil, nil
		case <-beat.C:
			fmt.Fprint(c.w, ": beat\n\n")
			fl.Flush()
		case <-recheck:
			if err := s.stillValid(ctx, c.p); errors.Is(err, errSessionEnded) {
				fmt.Fprintf(c.w, "event: ended\ndata: %s\n\n", err)
				fl.Flush()
				return nil, nil
			}
		case ev := <-l.events:
			write(ev)
			// What else is queued goes out with it, in one flush; only
			// this handler receives from l.events.
			for n := 1; n < streamBatch && len(l.events) > 0; n++ {
				write(<-l.events)
			}
			fl.Flush()
		}
	}
}
