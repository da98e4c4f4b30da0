package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Extension attributes the gateway adds to every command it hands to an
// HTTP device: the NATS message as the edge sent it, so that the device can
// verify the command's signature and decode it exactly as a NATS device does
// ([message.VerifyCommand]). AttrNATSData is the message's data in base64,
// AttrNATSHeader an object of its headers Content-Type, Nats-Msg-Id,
// Lintel-Schema-Version, Lintel-Signer and Lintel-Signature (those present).
// A command that is not a decodable envelope is handed over with these two
// attributes alone.
const (
	AttrNATSData   = "lintelnatsdata"
	AttrNATSHeader = "lintelnatsheader"
)

// natsHeaders are the headers of a command that travel to the HTTP device.
var natsHeaders = [...]string{message.HeaderContentType, message.HeaderMsgID, message.HeaderSchemaVersion, message.HeaderSigner, message.HeaderSignature}

// watch makes the device present for commands: while at least one poll or
// stream of the device is open, the session's connection, logged in as the
// device, is subscribed to the device's cmd subject, which is what the
// edge's dispatcher looks for before it hands a command out.
func (s *session) watch() (feed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.linger != nil {
		s.linger.Stop()
		s.linger = nil
	}
	if s.sub == nil {
		sub, err := s.nc.Subscribe(s.thing.Subject(topic.Command).String(), s.received)
		if err == nil {
			err = s.nc.FlushTimeout(s.g.cfg.PublishTimeout)
		}
		if err != nil {
			if sub != nil {
				_ = sub.Unsubscribe()
			}
			return feed{}, fmt.Errorf("%w: subscribe to commands: %w", ErrEdgeUnavailable, err)
		}
		s.sub = sub
	}
	s.waiters++
	// This poll or stream supersedes an older one still open.
	s.gen++
	if !s.dead {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return feed{s, s.gen}, nil
}

// feed is one poll or stream of a session. Only the newest takes the
// device's commands; an older one still open is dead. A device has one
// command handler at a time, and one whose handler stopped may open the
// next stream before the gateway notices the first one's connection is
// gone (a write into it can still succeed, into the socket's buffer): the
// old stream must not take a command the new one waits for.
type feed struct {
	s   *session
	gen uint64
}

func (f feed) take() ([]*command, <-chan struct{}, bool) { return f.s.take(f.gen) }

func (f feed) handed(cmds []*command) { f.s.handed(cmds) }

// unwatch ends one poll or stream. When the last one ends, the
// subscription lingers for CommandLinger, so that a device polling again
// at once stays present throughout: the dispatcher never sees it absent
// between two polls, nor hands a command to a subscription that is just
// going away. Commands arriving meanwhile wait for the next poll.
func (s *session) unwatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiters--
	if s.waiters > 0 || s.sub == nil {
		return
	}
	sub := s.sub
	s.linger = time.AfterFunc(s.g.cfg.CommandLinger, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.waiters == 0 && s.sub == sub {
			_ = sub.Unsubscribe()
			s.sub = nil
			s.linger = nil
		}
	})
}

// received queues a command from the edge for the device. One that is
// not a decodable command is queued as it is, for the device to judge as a
// NATS device would (refuse it unsigned, reject it signed); a decodable
// one has its deadline enforced by the gateway.
func (s *session) received(m *nats.Msg) {
	c := &command{msg: m}
	e := new(message.Envelope)
	if err := message.DecodeMsg(m, e, &message.DecodeOptions{SkipSubjectCheck: true}); err == nil && e.Type == topic.Command {
		if cmd, err := message.DecodePayload[message.Command](e); err == nil {
			c.env, c.cmd = e, cmd
		}
	}
	s.mu.Lock()
	if len(s.queue) >= maxQueuedCommands {
		s.mu.Unlock()
		s.g.log.Warn("command dropped: too many waiting for the HTTP device", logKeyThing, s.thing.String())
		if c.env != nil {
			s.ackCommand(c, message.AckFailed, "too many commands waiting for the HTTP device")
		}
		return
	}
	s.queue = append(s.queue, c)
	if !s.dead {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
}

// take returns the queued commands that have not expired, and acks the
// expired ones on the device's behalf: an expired command is never handed
// over. It also returns the channel closed at the next change.
func (s *session) take(gen uint64) ([]*command, <-chan struct{}, bool) {
	s.mu.Lock()
	if gen != s.gen {
		ch := s.changed
		s.mu.Unlock()
		return nil, ch, true
	}
	q := s.queue
	s.queue = nil
	ch, dead := s.changed, s.dead
	s.mu.Unlock()
	now := s.g.cfg.Now()
	live := q[:0]
	for _, c := range q {
		if c.env != nil && c.cmd.Expired(now) {
			s.g.counter.expired.Add(1)
			s.ackCommand(c, message.AckExpired, "deadline passed before the HTTP device polled")
			continue
		}
		live = append(live, c)
	}
	return live, ch, dead
}

// ackCommand stores an ack of c as the device.
func (s *session) ackCommand(c *command, st message.AckStatus, text string) {
	if c.env == nil {
		return // no id the device's acks could name
	}
	now := s.g.cfg.Now()
	e := &message.Envelope{ID: s.ids.NewAt(now), Time: now.UTC(), Source: s.thing, Type: topic.Ack,
		Name: message.NameAck, CorrelationID: c.env.ID}
	if err := message.SetPayload(e, message.Ack{CommandID: c.env.ID, Status: st, Error: text}); err != nil {
		return
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		return
	}
	ctx, cancel := s.g.opCtx(context.Background())
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID("gw-ack."+string(st)+"."+c.env.ID.String())); err != nil {
		s.g.log.Warn("command ack not stored", logKeyThing, s.thing.String(), logKeyErr, err)
	}
}

// appendCommand appends c as a JSON object: its CloudEvents form, when it
// is a decodable command, with the attributes AttrNATSData and
// AttrNATSHeader.
func appendCommand(b []byte, c *command) []byte {
	n := len(b)
	if c.env != nil {
		var err error
		if b, err = c.env.AppendCloudEvent(b); err != nil {
			b = b[:n]
		}
	}
	if len(b) > n {
		b = append(b[:len(b)-1], ',') // reopen the object
	} else {
		b = append(b, '{')
	}
	b = append(b, `"`+AttrNATSData+`":"`...)
	b = base64.StdEncoding.AppendEncode(b, c.msg.Data)
	b = append(b, `","`+AttrNATSHeader+`":{`...)
	first := true
	for _, k := range natsHeaders {
		v := c.msg.Header.Get(k)
		if v == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(v)
		b = append(b, kj...)
		b = append(b, ':')
		b = append(b, vj...)
	}
	return append(b, "}}"...)
}

// commandFeed is where a poll or a stream takes a device's commands from:
// a session's newest poll or stream at the edge (feed), the central
// gateway's dispatcher at central.
type commandFeed interface {
	// take returns the commands to hand over now, the channel closed at
	// the next change, and whether the feed has ended.
	take() ([]*command, <-chan struct{}, bool)
	// handed records that cmds were written to the device's response.
	handed(cmds []*command)
}

// handed: the edge acknowledged the commands in its stream before the
// session received them.
func (s *session) handed([]*command) {}

// getCommands serves a long-poll, or Server-Sent Events when the client
// accepts text/event-stream.
func (g *Gateway) getCommands(w http.ResponseWriter, r *http.Request, s *session) {
	wait, ok := g.pollWait(w, r)
	if !ok || !g.mayReceive(w, s.thing, s.permissions()) {
		return
	}
	f, err := s.watch()
	if err != nil {
		g.problem(w, sessionProblem(err))
		return
	}
	defer s.unwatch()
	g.serveCommands(w, r, wait, f)
}

// pollWait reads the request's wait parameter, bounded by MaxPollWait; it
// answers 400 and returns false for a bad one.
func (g *Gateway) pollWait(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	wait := DefaultPollWait
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			p := newProblem(http.StatusBadRequest, SlugMalformed, "bad wait", fmt.Sprintf("wait=%q is not a non-negative duration such as 25s", v))
			p.Field = "wait"
			g.problem(w, p)
			return 0, false
		}
		wait = d
	}
	return min(wait, g.cfg.MaxPollWait), true
}

// mayReceive checks that perms let thing subscribe to its cmd subject; it
// answers 403 and returns false if not.
func (g *Gateway) mayReceive(w http.ResponseWriter, thing topic.Thing, perms authz.Permissions) bool {
	if subj := thing.Subject(topic.Command).String(); !perms.Allowed(subj, authz.Subscribe) {
		p := newProblem(http.StatusForbidden, SlugSubjectNotAllowed, "subject not allowed",
			fmt.Sprintf("device %s may not receive commands on %s", thing, subj))
		p.Subject = subj
		g.problem(w, p)
		return false
	}
	return true
}

// serveCommands answers a poll of up to wait, or a stream, from f.
func (g *Gateway) serveCommands(w http.ResponseWriter, r *http.Request, wait time.Duration, f commandFeed) {
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		g.stream(w, r, f)
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		cmds, changed, dead := f.take()
		if len(cmds) > 0 || dead {
			g.writeCommands(w, cmds)
			f.handed(cmds)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			g.writeCommands(w, nil)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (g *Gateway) writeCommands(w http.ResponseWriter, cmds []*command) {
	b := []byte{'['}
	for i, c := range cmds {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCommand(b, c)
		g.counter.delivered.Add(1)
	}
	b = append(b, "]\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// stream serves the device's commands as Server-Sent Events, one event
// "command" per command (id the command's id, data its CloudEvents JSON),
// and a comment every DefaultSSEHeartbeat to keep proxies from closing it.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, f commandFeed) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte(": lintel commands\n\n")); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	hb := time.NewTicker(DefaultSSEHeartbeat)
	defer hb.Stop()
	var b []byte
	for {
		cmds, changed, dead := f.take()
		for _, c := range cmds {
			b = append(b[:0], "event: command\n"...)
			if c.env != nil {
				b = append(b, "id: "...)
				b = append(b, c.env.ID.String()...)
				b = append(b, '\n')
			}
			b = append(b, "data: "...)
			b = appendCommand(b, c)
			b = append(b, "\n\n"...)
			if _, err := w.Write(b); err != nil {
				f.handed(cmds)
				return
			}
			g.counter.delivered.Add(1)
		}
		if len(cmds) > 0 {
			err := rc.Flush()
			f.handed(cmds)
			if err != nil {
				return
			}
		}
		if dead {
			return
		}
		select {
		case <-changed:
		case <-hb.C:
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-g.quit:
			return
		}
	}
}
