package edgekit

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/message"
)

// resetWait is how long nats-server (v2.15) waits for the answer to the
// consumer reset of a source or mirror with a durable consumer before it
// gives up and retries after a back-off (srcDurableConsumerWaitTime).
const resetWait = 5 * time.Second

// resendBefore is how old a lost reset may be when it is sent again: its
// answer must reach nats-server while it still waits, or the answer is
// dropped and the reset only rewinds the consumer once more. Half a
// second leaves the round trip across the link ample time; a reset older
// than that is left to nats-server, which retries about a second after
// giving up, once it hears the consumer's heartbeat.
const resendBefore = resetWait - 500*time.Millisecond

// resendPoll is how often a reset watch looks for the link while a reset
// is pending.
const resendPoll = 50 * time.Millisecond

// pendingReset is a consumer reset that nats-server sent for a source or
// mirror across the leaf link and that has not been answered yet.
type pendingReset struct {
	peer string // the other end: an edge (at central), or central (at an edge)
	msg  *nats.Msg
	seen time.Time
	link uint64 // the peer's leaf connection when it was sent; 0 for none
}

// resetWatch sends again, once, a consumer reset that nats-server sent for
// a source or mirror across the leaf link while the link was down, as
// soon as the link is back. nats-server waits 5 s for the answer to such a
// lost reset before it tries again, and does not retry a source with a
// reset in flight when a leaf connects, so the flow would stop for up to
// 6 s after the link's return. The peer answers on the reply subject of
// the original, which nats-server still waits on: the source starts as if
// the first had arrived. Central's supervisor runs one for the edges'
// sources, each edge node one for its command source and credential
// mirror. See docs/edge-release.md, "Lost resets".
type resetWatch struct {
	nc      *nats.Conn
	log     *slog.Logger
	peerKey string // the log key of the peer
	// take reports the peer of a reset, when it is one the watch sends
	// again (subject and reply exactly those of one of its flows).
	take func(subject, reply string) (peer string, ok bool)
	// links returns the peers linked now, each with its leaf connection.
	links func() map[string]uint64
	// busy, when set, reports a peer whose resets are left alone.
	busy   func(peer string) bool
	resent *atomic.Uint64

	subs []*nats.Subscription
	done chan struct{}
	stop chan struct{}

	mu      sync.Mutex
	pending map[string]*pendingReset // request subject → the last reset on it
}

// startResetWatch subscribes w to the resets on resets and their answers
// on answers, and starts it.
func startResetWatch(w *resetWatch, resets, answers []string) (*resetWatch, error) {
	w.pending, w.done, w.stop = map[string]*pendingReset{}, make(chan struct{}), make(chan struct{})
	sub := func(subject string, h nats.MsgHandler) error {
		s, err := w.nc.Subscribe(subject, h)
		if err != nil {
			return err
		}
		w.subs = append(w.subs, s)
		return nil
	}
	var err error
	for _, s := range resets {
		if err == nil {
			err = sub(s, w.onReset)
		}
	}
	for _, s := range answers {
		if err == nil {
			err = sub(s, w.onAnswer)
		}
	}
	if err == nil {
		err = w.nc.Flush()
	}
	if err != nil {
		w.unsubscribe()
		return nil, fmt.Errorf("edgekit: watch the consumer resets across the link: %w", err)
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

// scopedReply reports whether reply is nats-server's scoped reply to a
// reset of consumer on stream in domain:
// "$JSC.R.{domain}.{hash}.{stream}.{consumer}.{id}".
func scopedReply(reply, domain, stream, consumer string) bool {
	r := strings.Split(reply, ".")
	return len(r) == 7 && r[0] == "$JSC" && r[1] == "R" && r[2] == domain && r[4] == stream && r[5] == consumer
}

// resetSubject splits "$JS.{domain}.API.CONSUMER.RESET.{stream}.{consumer}".
func resetSubject(subject string) (domain, stream, consumer string, ok bool) {
	t := strings.Split(subject, ".")
	if len(t) != 7 || t[0] != "$JS" || t[2] != "API" || t[3] != "CONSUMER" || t[4] != "RESET" {
		return "", "", "", false
	}
	return t[1], t[5], t[6], true
}

// onReset records a reset nats-server sent, with the peer's leaf
// connection at the time.
func (w *resetWatch) onReset(m *nats.Msg) {
	peer, ok := w.take(m.Subject, m.Reply)
	if !ok {
		return
	}
	p := &pendingReset{peer: peer, seen: time.Now(), link: w.links()[peer],
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
// while its peer had no leaf link, or on a link since replaced, whose peer
// is linked now. It forgets resets nats-server no longer waits on.
func (w *resetWatch) check() {
	w.mu.Lock()
	n := len(w.pending)
	w.mu.Unlock()
	if n == 0 {
		return
	}
	links := w.links()
	now := time.Now()
	var resend []*pendingReset
	w.mu.Lock()
	for k, p := range w.pending {
		if now.Sub(p.seen) >= resendBefore {
			delete(w.pending, k)
			continue
		}
		if w.busy != nil && w.busy(p.peer) {
			continue
		}
		if l := links[p.peer]; l != 0 && l != p.link {
			resend = append(resend, p)
			delete(w.pending, k)
		}
	}
	w.mu.Unlock()
	for _, p := range resend {
		if err := w.nc.PublishMsg(p.msg); err != nil {
			w.log.Warn("sending a consumer reset lost in an outage again failed", w.peerKey, p.peer, message.LogKeySubject, p.msg.Subject, message.LogKeyError, err)
			continue
		}
		w.resent.Add(1)
		w.log.Info("sent a consumer reset lost in an outage again", w.peerKey, p.peer, message.LogKeySubject, p.msg.Subject, "age", now.Sub(p.seen))
	}
}

// LeafDomains returns the JetStream domains whose consumer API srv reaches
// over its leaf connections of account, each with the ID of the leaf
// connection that carries it: a leaf that has told srv of its interest in
// "$JS.{domain}.API.CONSUMER.>". At central, an edge's domain is its code;
// at an edge, central's is [authz.HubDomain]. A consumer reset published
// in account then reaches that domain; central sets HubConfig.LeafLinks
// from it.
func LeafDomains(srv *server.Server, account string) map[string]uint64 {
	lz, err := srv.Leafz(&server.LeafzOptions{Account: account, Subscriptions: true})
	if err != nil {
		return nil
	}
	out := map[string]uint64{}
	for _, l := range lz.Leafs {
		for _, sub := range l.Subs {
			t := strings.Split(sub, ".")
			if len(t) == 5 && t[0] == "$JS" && t[2] == "API" && t[3] == "CONSUMER" && t[4] == ">" {
				out[t[1]] = l.ID
			}
		}
	}
	return out
}
