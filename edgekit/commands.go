package edgekit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/recent"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reasons of the acks the edge sends on a device's behalf.
const (
	// AckReasonExpired is the Error of an expired ack from the edge: the
	// command's deadline passed before the device could be reached.
	AckReasonExpired = "deadline passed before delivery to the device"
)

// cmdSeenSize is how many delivered or expired command IDs the dispatcher
// remembers, to hand each command out once even when central's stream
// holds it twice.
const cmdSeenSize = 4096

// cmdMaxAckPending bounds the commands the dispatcher holds at once,
// delivered but not yet acknowledged or waiting for their device.
const cmdMaxAckPending = 10000

// cmdPending is a command waiting for its device.
type cmdPending struct {
	msg        jetstream.Msg
	env        *message.Envelope
	cmd        message.Command
	thing      topic.Thing
	progressed time.Time
}

// cmdDispatcher takes commands from the edge's command stream and hands
// them to their devices: at once when the device is connected and
// subscribed to its cmd subject, later when it comes back, or never when
// the deadline passes first, in which case it stores an expired ack on the
// device's ack subject.
type cmdDispatcher struct {
	n  *Node
	cc jetstream.ConsumeContext

	dmu sync.Mutex // serialises deliveries, so that a device gets its commands in order

	mu      sync.Mutex
	pending map[topic.Thing][]*cmdPending
	seen    *recent.Set[message.ID] // handed out or expired
}

func newCmdDispatcher(n *Node) *cmdDispatcher {
	return &cmdDispatcher{n: n, pending: make(map[topic.Thing][]*cmdPending), seen: recent.New[message.ID](cmdSeenSize)}
}

// nodeCommandConsumerConfig returns the dispatcher's durable consumer on
// the edge's command stream.
func nodeCommandConsumerConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       CommandDispatcher,
		Description:   "Lintel edge service: hands commands to devices",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: cmdMaxAckPending,
	}
}

func (d *cmdDispatcher) start(ctx context.Context) error {
	n := d.n
	cons, err := n.js.CreateOrUpdateConsumer(ctx, n.names.CommandStream, nodeCommandConsumerConfig(n.cfg.CommandAckWait))
	if err != nil {
		return fmt.Errorf("consumer %s: %w", CommandDispatcher, err)
	}
	d.cc, err = cons.Consume(d.handle, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			n.log.Debug("command consumer", message.LogKeyError, err)
		}
	}))
	return err
}

func (d *cmdDispatcher) stop() {
	if d.cc != nil {
		d.cc.Stop()
		<-d.cc.Closed()
	}
}

// count returns the number of commands waiting for their device.
func (d *cmdDispatcher) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := 0
	for _, l := range d.pending {
		c += len(l)
	}
	return c
}

// handle takes one command from the stream.
func (d *cmdDispatcher) handle(msg jetstream.Msg) {
	n := d.n
	thing, err := authz.ParseCommandSubject(msg.Subject())
	if err != nil {
		d.drop(msg, nil, topic.Thing{}, fmt.Sprintf("not a command subject: %v", err))
		return
	}
	env := new(message.Envelope)
	if err := message.DecodeJetStream(msg, env, &message.DecodeOptions{SkipSubjectCheck: true}); err != nil {
		d.drop(msg, env, thing, fmt.Sprintf("malformed command: %v", err))
		return
	}
	if env.Type != topic.Command || env.Source != thing {
		d.drop(msg, env, thing, fmt.Sprintf("a command for %s must be an envelope of type %s from the thing itself, got type %q from %s", thing, topic.Command, env.Type, env.Source))
		return
	}
	cmd, err := message.DecodePayload[message.Command](env)
	if err != nil {
		d.drop(msg, env, thing, fmt.Sprintf("malformed command payload: %v", err))
		return
	}
	p := &cmdPending{msg: msg, env: env, cmd: cmd, thing: thing, progressed: n.cfg.Now()}
	d.mu.Lock()
	if d.seen.Has(env.ID) || d.isPendingLocked(thing, env.ID) {
		d.mu.Unlock()
		_ = msg.Ack()
		n.stats.commandsDuplicate.Add(1)
		n.log.Debug("repeated command not handed out again", message.LogKeyThing, thing.String(), message.LogKeyMsgID, env.ID.String())
		return
	}
	if cmd.Expired(n.cfg.Now()) {
		d.mu.Unlock()
		d.expire(p)
		return
	}
	d.pending[thing] = append(d.pending[thing], p)
	d.mu.Unlock()
	n.stats.commandsQueued.Add(1)
	d.deliverTo(thing)
}

func (d *cmdDispatcher) isPendingLocked(t topic.Thing, id message.ID) bool {
	for _, p := range d.pending[t] {
		if p.env.ID == id {
			return true
		}
	}
	return false
}

// remember records id as handed out (or expired).
func (d *cmdDispatcher) remember(id message.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen.Add(id)
}

// deliverTo hands t's waiting commands to t if it is subscribed to its cmd
// subject; expired ones get their expired ack instead.
func (d *cmdDispatcher) deliverTo(t topic.Thing) {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	cmdSubject := t.Subject(topic.Command).String()
	if d.n.connections(t, cmdSubject, 0) == 0 {
		return
	}
	d.mu.Lock()
	list := d.pending[t]
	delete(d.pending, t)
	d.mu.Unlock()
	now := d.n.cfg.Now()
	for i, p := range list {
		if p.cmd.Expired(now) {
			d.expire(p)
			continue
		}
		if err := d.deliver(cmdSubject, p); err != nil {
			d.n.log.Warn("command not handed to device; kept", message.LogKeyThing, t.String(), message.LogKeyMsgID, p.env.ID.String(), message.LogKeyError, err)
			d.mu.Lock()
			d.pending[t] = append(list[i:], d.pending[t]...)
			d.mu.Unlock()
			return
		}
	}
}

// deliver publishes p on the device's cmd subject, as central wrote it,
// then acknowledges it in the command stream.
func (d *cmdDispatcher) deliver(subject string, p *cmdPending) error {
	h := nats.Header{}
	for _, k := range append([]string{message.HeaderMsgID, message.HeaderContentType, message.HeaderSchemaVersion}, commandSignatureHeaders[:]...) {
		if v := p.msg.Headers().Get(k); v != "" {
			h.Set(k, v)
		}
	}
	if err := d.n.nc.PublishMsg(&nats.Msg{Subject: subject, Header: h, Data: p.msg.Data()}); err != nil {
		return err
	}
	if err := d.n.nc.FlushTimeout(d.n.cfg.Timeout); err != nil {
		return err
	}
	d.remember(p.env.ID)
	if err := p.msg.Ack(); err != nil {
		d.n.log.Warn("delivered command not acknowledged in the command stream", message.LogKeyMsgID, p.env.ID.String(), message.LogKeyError, err)
	}
	d.n.stats.commandsDelivered.Add(1)
	d.n.log.Debug("command handed to device", message.LogKeyThing, p.thing.String(), message.LogKeyMsgID, p.env.ID.String())
	return nil
}

// expire stores an expired ack for p on its device's ack subject, then
// acknowledges p in the command stream. If the ack cannot be stored, p is
// redelivered later and expired again.
func (d *cmdDispatcher) expire(p *cmdPending) {
	if err := d.sendAck(p.thing, p.env.ID, message.AckExpired, AckReasonExpired); err != nil {
		d.n.log.Error("expired ack not stored; retrying", message.LogKeyThing, p.thing.String(), message.LogKeyMsgID, p.env.ID.String(), message.LogKeyError, err)
		_ = p.msg.NakWithDelay(d.n.cfg.CheckInterval)
		return
	}
	d.remember(p.env.ID)
	_ = p.msg.Ack()
	d.n.stats.commandsExpired.Add(1)
	d.n.log.Info("command expired before delivery", message.LogKeyThing, p.thing.String(), message.LogKeyMsgID, p.env.ID.String())
}

// drop terminates a command that cannot be delivered, acking it rejected
// when it names a command and a thing.
func (d *cmdDispatcher) drop(msg jetstream.Msg, env *message.Envelope, t topic.Thing, reason string) {
	d.n.stats.commandsRejected.Add(1)
	d.n.log.Warn("command rejected by the edge", message.LogKeySubject, msg.Subject(), "reason", reason)
	if env != nil && !env.ID.IsZero() && t != (topic.Thing{}) {
		if err := d.sendAck(t, env.ID, message.AckRejected, reason); err != nil {
			d.n.log.Error("rejected ack not stored; retrying", message.LogKeyThing, t.String(), message.LogKeyError, err)
			_ = msg.NakWithDelay(d.n.cfg.CheckInterval)
			return
		}
	}
	_ = msg.Term()
}

// sendAck stores an ack of command id with status st on t's ack subject,
// deduplicated by command and status.
func (d *cmdDispatcher) sendAck(t topic.Thing, id message.ID, st message.AckStatus, text string) error {
	now := d.n.cfg.Now()
	e := &message.Envelope{
		ID:            d.n.cfg.IDs.NewAt(now),
		Time:          now.UTC(),
		Source:        t,
		Type:          topic.Ack,
		Name:          message.NameAck,
		CorrelationID: id,
	}
	if err := message.SetPayload(e, message.Ack{CommandID: id, Status: st, Error: text}); err != nil {
		return err
	}
	ctx, cancel := d.n.opCtx()
	defer cancel()
	return d.n.publishEnvelope(ctx, e, "edge-ack."+string(st)+"."+id.String())
}

// tick expires the waiting commands whose deadline passed, keeps the others
// in progress in the command stream, and hands out those whose device is
// back.
func (d *cmdDispatcher) tick() {
	now := d.n.cfg.Now()
	var expired []*cmdPending
	var things []topic.Thing
	d.mu.Lock()
	for t, list := range d.pending {
		keep := list[:0]
		for _, p := range list {
			if p.cmd.Expired(now) {
				expired = append(expired, p)
				continue
			}
			if now.Sub(p.progressed) >= d.n.cfg.CommandAckWait/3 {
				_ = p.msg.InProgress()
				p.progressed = now
			}
			keep = append(keep, p)
		}
		if len(keep) == 0 {
			delete(d.pending, t)
			continue
		}
		d.pending[t] = keep
		things = append(things, t)
	}
	d.mu.Unlock()
	for _, p := range expired {
		d.expire(p)
	}
	for _, t := range things {
		d.deliverTo(t)
	}
}
