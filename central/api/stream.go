package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// streamHeartbeat is how often the live event stream sends a comment to
// keep proxies from closing an idle connection.
const streamHeartbeat = 15 * time.Second

// streamEvents serves live events as server-sent events: each new message
// of central's event stream (filtered by edge and thing) as an "event"
// whose data is an EventItem. It reads with an ordered consumer from new
// messages on, which ends with the request.
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
	hub, err := s.hub()
	if err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	cons, err := s.js.OrderedConsumer(ctx, hub.EventStream(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjectFilter(th, "")}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, err
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	defer msgs.Stop()
	c.raw = true
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	fmt.Fprint(c.w, ": live events\n\n")
	fl.Flush()
	type next struct {
		m   jetstream.Msg
		err error
	}
	ch := make(chan next)
	go func() {
		for {
			m, err := msgs.Next()
			select {
			case ch <- next{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case <-s.closed:
			return nil, nil
		case <-beat.C:
			fmt.Fprint(c.w, ": beat\n\n")
			fl.Flush()
		case n := <-ch:
			if n.err != nil {
				return nil, nil
			}
			md, err := n.m.Metadata()
			if err != nil {
				continue
			}
			e, err := message.FromJetStream(n.m)
			if err != nil {
				continue
			}
			it := eventItem(&jetstream.RawStreamMsg{Subject: n.m.Subject(), Sequence: md.Sequence.Stream, Header: n.m.Headers(),
				Data: n.m.Data(), Time: md.Timestamp}, e)
			b, err := json.Marshal(it)
			if err != nil {
				continue
			}
			fmt.Fprintf(c.w, "id: %d\nevent: event\ndata: %s\n\n", md.Sequence.Stream, b)
			fl.Flush()
		}
	}
}
