package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/recent"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Commands at the central gateway (docs/gateway.md, "The central
// gateway"). Central's hub writes a command for a device marked for the
// central gateway on topology.GatewayCommandSubject, which no edge's
// consumer matches; the gateway reads those commands through the consumer
// central made for it (topology.GatewayCommandConsumerConfig) and holds
// each, unacknowledged in the command stream, until a poll or stream of
// its device takes it or its deadline passes. An expired command is never
// handed over: the gateway stores an expired ack as the device instead.

// centralCmdSeenSize is how many handed-over or expired command IDs the
// central gateway remembers, to hand each command out once even when the
// stream delivers it again.
const centralCmdSeenSize = 4096

// centralCommands is the central gateway's dispatcher.
type centralCommands struct {
	c  *Central
	cc jetstream.ConsumeContext

	mu      sync.Mutex
	pending map[topic.Thing][]*command
	changed map[topic.Thing]chan struct{} // closed and replaced when a device's pending commands grow
	seen    *recent.Set[message.ID]       // handed over or expired
	closed  bool
}

// startCommands starts the dispatcher. It binds to the gateway's consumer
// at once if it can (ctx bounds that), and otherwise keeps trying every
// second: central makes the consumer once the inventory marks a device.
func (c *Central) startCommands(ctx context.Context) {
	d := &centralCommands{c: c, pending: map[topic.Thing][]*command{}, changed: map[topic.Thing]chan struct{}{},
		seen: recent.New[message.ID](centralCmdSeenSize)}
	c.cmds = d
	if err := d.bind(ctx); err != nil {
		c.g.log.Warn("central gateway: commands not readable yet; retrying", logKeyErr, err)
	}
	c.g.wg.Go(d.run)
}

// bind starts consuming the gateway's command consumer, unless it is
// consuming already.
func (d *centralCommands) bind(ctx context.Context) error {
	d.mu.Lock()
	bound := d.cc != nil || d.closed
	d.mu.Unlock()
	if bound {
		return nil
	}
	c := d.c
	stream, err := authz.CentralCommandStreamConfig(c.cfg.Org)
	if err != nil {
		return err
	}
	cons, err := c.js.Consumer(ctx, stream.Name, topology.GatewayCommandConsumer)
	if err != nil {
		return fmt.Errorf("command consumer %s on %s: %w", topology.GatewayCommandConsumer, stream.Name, err)
	}
	cc, err := cons.Consume(d.handle, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			c.g.log.Debug("central gateway command consumer", logKeyErr, err)
		}
	}))
	if err != nil {
		return fmt.Errorf("command consumer %s: %w", topology.GatewayCommandConsumer, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		cc.Stop()
		return nil
	}
	d.cc = cc
	c.g.log.Info("central gateway: reading commands", message.LogKeyOrg, c.cfg.Org)
	return nil
}

// stop stops taking commands and ends every open poll and stream; what is
// pending stays unacknowledged in the command stream, for the next start.
func (d *centralCommands) stop() {
	d.mu.Lock()
	d.closed = true
	cc := d.cc
	for _, ch := range d.changed {
		close(ch)
	}
	d.changed = map[topic.Thing]chan struct{}{}
	d.mu.Unlock()
	if cc != nil {
		cc.Stop()
		<-cc.Closed()
	}
}

// handle takes one command from the stream.
func (d *centralCommands) handle(jm jetstream.Msg) {
	thing, err := topology.ParseGatewayCommandSubject(jm.Subject())
	if err != nil || thing.Org != d.c.cfg.Org {
		d.c.g.log.Warn("command on a subject not of the central gateway dropped", message.LogKeySubject, jm.Subject())
		_ = jm.Term()
		return
	}
	c := &command{jm: jm, msg: &nats.Msg{Subject: thing.Subject(topic.Command).String(), Header: jm.Headers(), Data: jm.Data()}}
	e := new(message.Envelope)
	if err := message.DecodeMsg(c.msg, e, &message.DecodeOptions{SkipSubjectCheck: true}); err == nil && e.Type == topic.Command && e.Source == thing {
		if cmd, err := message.DecodePayload[message.Command](e); err == nil {
			c.env, c.cmd = e, cmd
		}
	}
	if c.env == nil {
		// Only central's services write the command stream, and they
		// write commands: nothing to hand over or to ack.
		d.c.g.log.Warn("malformed command dropped", logKeyThing, thing.String())
		_ = jm.Term()
		return
	}
	d.mu.Lock()
	if d.seen.Has(c.env.ID) || d.isPendingLocked(thing, c.env.ID) {
		d.mu.Unlock()
		_ = jm.Ack()
		return
	}
	if d.closed {
		d.mu.Unlock()
		_ = jm.Nak()
		return
	}
	if c.cmd.Expired(d.c.g.cfg.Now()) {
		d.mu.Unlock()
		d.expire(thing, c)
		return
	}
	d.pending[thing] = append(d.pending[thing], c)
	if ch, ok := d.changed[thing]; ok {
		close(ch)
		delete(d.changed, thing)
	}
	d.mu.Unlock()
}

func (d *centralCommands) isPendingLocked(t topic.Thing, id message.ID) bool {
	for _, c := range d.pending[t] {
		if c.env.ID == id {
			return true
		}
	}
	return false
}

// remember records id as handed over or expired.
func (d *centralCommands) remember(id message.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen.Add(id)
}

// take returns t's pending commands that have not expired, acks the
// expired ones as t, and returns the channel closed when more arrive.
func (d *centralCommands) take(t topic.Thing) ([]*command, <-chan struct{}, bool) {
	d.mu.Lock()
	list := d.pending[t]
	delete(d.pending, t)
	ch, ok := d.changed[t]
	if !ok {
		ch = make(chan struct{})
		if d.closed {
			close(ch)
		} else {
			d.changed[t] = ch
		}
	}
	closed := d.closed
	d.mu.Unlock()
	now := d.c.g.cfg.Now()
	live := list[:0]
	for _, c := range list {
		if c.cmd.Expired(now) {
			d.expire(t, c)
			continue
		}
		live = append(live, c)
	}
	return live, ch, closed
}

// handed acknowledges commands written to their device in the command
// stream: each is delivered once to the transport.
func (d *centralCommands) handed(cmds []*command) {
	for _, c := range cmds {
		d.remember(c.env.ID)
		if err := c.jm.Ack(); err != nil {
			d.c.g.log.Warn("handed command not acknowledged in the command stream", logKeyErr, err)
		}
	}
}

// expire stores an expired ack of c as t, then acknowledges c in the
// command stream; if the ack cannot be stored, the stream delivers c again
// later and it is expired then.
func (d *centralCommands) expire(t topic.Thing, c *command) {
	if err := d.c.ack(t, c.env.ID, message.AckExpired, "deadline passed before the HTTP device polled"); err != nil {
		d.c.g.log.Warn("expired ack not stored; retrying", logKeyThing, t.String(), logKeyErr, err)
		_ = c.jm.NakWithDelay(time.Second)
		return
	}
	d.c.g.counter.expired.Add(1)
	d.remember(c.env.ID)
	_ = c.jm.Ack()
}

// run expires pending commands whose deadline passed while their device
// was away, and keeps the others in progress in the command stream.
func (d *centralCommands) run() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	inProgress := topology.GatewayCommandConsumerConfig(d.c.cfg.Org).AckWait / 3
	last := d.c.g.cfg.Now()
	for {
		select {
		case <-d.c.g.quit:
			return
		case <-tick.C:
		}
		ctx, cancel := d.c.g.opCtx(context.Background())
		if err := d.bind(ctx); err != nil {
			d.c.g.log.Debug("central gateway: commands not readable yet", logKeyErr, err)
		}
		cancel()
		now := d.c.g.cfg.Now()
		progress := now.Sub(last) >= inProgress
		if progress {
			last = now
		}
		type exp struct {
			t topic.Thing
			c *command
		}
		var expired []exp
		d.mu.Lock()
		for t, list := range d.pending {
			keep := list[:0]
			for _, c := range list {
				if c.cmd.Expired(now) {
					expired = append(expired, exp{t, c})
					continue
				}
				if progress {
					_ = c.jm.InProgress()
				}
				keep = append(keep, c)
			}
			if len(keep) == 0 {
				delete(d.pending, t)
			} else {
				d.pending[t] = keep
			}
		}
		d.mu.Unlock()
		for _, x := range expired {
			d.expire(x.t, x.c)
		}
	}
}

// ack stores an ack of command id with status st as device t in the
// gateway stream, deduplicated by command and status.
func (c *Central) ack(t topic.Thing, id message.ID, st message.AckStatus, text string) error {
	now := c.g.cfg.Now()
	e := &message.Envelope{ID: c.ids.NewAt(now), Time: now.UTC(), Source: t, Type: topic.Ack,
		Name: message.NameAck, CorrelationID: id}
	if err := message.SetPayload(e, message.Ack{CommandID: id, Status: st, Error: text}); err != nil {
		return err
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		return err
	}
	msg.Subject = topology.GatewaySubject(t, topic.Ack)
	ctx, cancel := c.g.opCtx(context.Background())
	defer cancel()
	_, err = c.js.PublishMsg(ctx, msg, jetstream.WithMsgID("gw-ack."+string(st)+"."+id.String()), jetstream.WithExpectStream(c.stream))
	return err
}

// deviceFeed is a device's view of the dispatcher, for a poll or stream.
type deviceFeed struct {
	d     *centralCommands
	thing topic.Thing
}

func (f deviceFeed) take() ([]*command, <-chan struct{}, bool) { return f.d.take(f.thing) }
func (f deviceFeed) handed(cmds []*command)                    { f.d.handed(cmds) }

// getCommands serves GET /v1/commands at central: a long-poll, or
// Server-Sent Events, of the device's commands, as the edge gateway does.
func (c *Central) getCommands(w http.ResponseWriter, r *http.Request) {
	g := c.g
	d, p := c.authenticate(r)
	if p != nil {
		g.problem(w, p)
		return
	}
	wait, ok := g.pollWait(w, r)
	if !ok || !g.mayReceive(w, d.thing, d.perms) {
		return
	}
	g.serveCommands(w, r, wait, deviceFeed{c.cmds, d.thing})
}
