package edgekit

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
)

// resetWait is how long nats-server (v2.15) waits for the answer to the
// consumer reset of a source with a durable consumer before it gives up
// and retries after a back-off (srcDurableConsumerWaitTime).
const resetWait = 5 * time.Second

// resendBefore is how old a lost reset may be when it is sent again: its
// answer must reach nats-server while it still waits, or the answer is
// dropped and the reset only rewinds the edge's consumer once more.
const resendBefore = resetWait - time.Second

// resendPoll is how often the reset watch looks for an edge's link while
// a reset is pending.
const resendPoll = 50 * time.Millisecond

// pendingReset is a consumer reset of a source, sent by nats-server and not
// answered yet.
type pendingReset struct {
	edge string
	msg  *nats.Msg
	seen time.Time
	link uint64 // the edge's leaf connection when it was sent; 0 for none
}

// resetWatch sends again, once, a consumer reset that nats-server sent for
// one of central's sources while the source's edge had no link, as soon as
// the edge's link is back. nats-server waits 5 s for the answer to such a
// lost reset before it tries again, and does not retry a source with a
// reset in flight when a leaf connects, so a catch-up would otherwise wait
// up to 6 s. The edge answers on the reply subject of the original, which
// nats-server still waits on: the source starts as if the first had
// arrived. See docs/edge-release.md, "Lost resets".
type resetWatch struct {
	s     *Supervisor
	links func() map[string]uint64
	subs  []*nats.Subscription
	done  chan struct{}
	stop  chan struct{}

	mu      sync.Mutex
	pending map[string]*pendingReset // request subject → the last reset on it
}

// watchResets subscribes to the consumer resets of the org's sources and
// to their answers, and starts the watch. The hub's connection sees both:
// nats-server sends the resets in the org's account on central, and the
// edges answer there.
func (s *Supervisor) watchResets(links func() map[string]uint64) (*resetWatch, error) {
	w := &resetWatch{s: s, links: links, pending: map[string]*pendingReset{}, done: make(chan struct{}), stop: make(chan struct{})}
	nc := s.h.js.Conn()
	for subject, handle := range map[string]nats.MsgHandler{
		"$JS.*.API.CONSUMER.RESET.*.*": w.onReset,
		"$JSC.R.*.*.*.*.*":             w.onAnswer,
	} {
		sub, err := nc.Subscribe(subject, handle)
		if err != nil {
			w.unsubscribe()
			return nil, fmt.Errorf("edgekit: watch the sources' resets: %w", err)
		}
		w.subs = append(w.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		w.unsubscribe()
		return nil, fmt.Errorf("edgekit: watch the sources' resets: %w", err)
	}
	go w.run()
	return w, nil
}

func (w *resetWatch) unsubscribe() {
	for _, sub := range w.subs {
		_ = sub.Unsubscribe()
	}
}

// close stops the watch and returns once it has.
func (w *resetWatch) close() {
	w.unsubscribe()
	close(w.stop)
	<-w.done
}

// sourceReset returns the edge whose source's reset subject is subject,
// "$JS.{edge}.API.CONSUMER.RESET.{stream}.{consumer}", when it names one of
// the flows of a registered edge of the hub's org.
func (w *resetWatch) sourceReset(subject, reply string) (string, bool) {
	t := strings.Split(subject, ".")
	if len(t) != 7 || t[0] != "$JS" || t[1] == authz.HubDomain || t[2] != "API" || t[3] != "CONSUMER" || t[4] != "RESET" {
		return "", false
	}
	edge, stream, consumer := t[1], t[5], t[6]
	n, err := authz.NamesFor(w.s.h.cfg.Org, edge)
	if err != nil || !w.s.h.known.Load().edges[edge] {
		return "", false
	}
	for _, f := range flows {
		src := f.source(n)
		if src.Name == stream && src.Consumer != nil && src.Consumer.Name == consumer {
			// nats-server's scoped reply: "$JSC.R.{edge}.{hash}.{stream}.{consumer}.{id}".
			r := strings.Split(reply, ".")
			return edge, len(r) == 7 && r[0] == "$JSC" && r[1] == "R" && r[2] == edge && r[4] == stream && r[5] == consumer
		}
	}
	return "", false
}

// onReset records a reset nats-server sent for a source, with the edge's
// leaf connection at the time.
func (w *resetWatch) onReset(m *nats.Msg) {
	edge, ok := w.sourceReset(m.Subject, m.Reply)
	if !ok {
		return
	}
	p := &pendingReset{edge: edge, seen: time.Now(), link: w.links()[edge],
		msg: &nats.Msg{Subject: m.Subject, Reply: m.Reply, Header: m.Header, Data: m.Data}}
	w.mu.Lock()
	w.pending[m.Subject] = p
	w.mu.Unlock()
}

// onAnswer forgets the reset an answer is for.
func (w *resetWatch) onAnswer(m *nats.Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, p := range w.pending {
		if p.msg.Reply == m.Subject {
			delete(w.pending, k)
		}
	}
}

// run checks the pending resets every resendPoll until close.
func (w *resetWatch) run() {
	defer close(w.done)
	t := time.NewTicker(resendPoll)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.check()
	}
}

// check sends again each pending reset that was lost, once: one sent
// while its edge had no leaf link, or on a link since replaced, whose
// edge is linked now. It forgets resets nats-server no longer waits on,
// and leaves alone the edges being kicked (a kick restarts the sources
// itself, and an answer must not reach a source added again).
func (w *resetWatch) check() {
	w.mu.Lock()
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	links := w.links()
	now := time.Now()
	var resend []*pendingReset
	w.mu.Lock()
	for k, p := range w.pending {
		age := now.Sub(p.seen)
		if age >= resendBefore {
			delete(w.pending, k)
			continue
		}
		if _, kicking := w.s.kicking.Load(p.edge); kicking {
			continue
		}
		if l := links[p.edge]; l != 0 && l != p.link {
			resend = append(resend, p)
			delete(w.pending, k)
		}
	}
	w.mu.Unlock()
	nc := w.s.h.js.Conn()
	for _, p := range resend {
		if err := nc.PublishMsg(p.msg); err != nil {
			w.s.h.log.Warn("sending a lost source reset again failed", message.LogKeyEdge, p.edge, message.LogKeySubject, p.msg.Subject, message.LogKeyError, err)
			continue
		}
		w.s.resent.Add(1)
		w.s.h.log.Info("sent a source reset lost while the edge was unlinked again", message.LogKeyEdge, p.edge,
			message.LogKeySubject, p.msg.Subject, "age", now.Sub(p.seen))
	}
}
