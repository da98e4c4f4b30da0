package edgekit

import (
	"context"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

// Commands in history and their outcome. See docs/command-outcomes.md.

// CommandRecordCode is the code of the system thing of each edge on whose
// event subject central records the commands it sends to the edge's things
// ([CommandRecordThing]).
const CommandRecordCode = "commands"

// CommandRecordThing returns the system thing "{org}.{edge}._sys.commands"
// on whose event subject [Hub.SendCommand] records each command it sends
// to a thing of edge, as a [message.NameCommandSent] event: central's own
// subject ([authz.CentralEventSubjects]), which central's event stream
// captures and no edge or device can write, so storage records the command
// from there (and trusts it as central's, as the origin of any "_sys"
// message without a sourcing header).
func CommandRecordThing(org, edge string) topic.Thing {
	return topic.Thing{Org: org, Edge: edge, Type: topic.ThingTypeSystem, Code: CommandRecordCode}
}

// commandLookBack is how far before a command's own time (its ID's
// timestamp) [Hub.CommandStatus] starts reading central's event stream, to
// allow for a hub clock ahead of central's.
const commandLookBack = time.Minute

// CommandOutcome is where a command stands, as the acks of its thing that
// reached central's event stream tell.
type CommandOutcome struct {
	// ID is the command's envelope ID, and Thing the thing it was sent to.
	ID    message.ID
	Thing topic.Thing // see ID
	// Status is the status of the first final ack central received
	// (completed, failed, rejected or expired), or accepted when an ack
	// accepted the command and none has ended it yet; empty while no ack
	// has arrived (pending).
	Status message.AckStatus
	// Error is the deciding ack's error, if any.
	Error string
	// AckedAt is the time of the deciding ack, as its sender's clock said;
	// zero while pending.
	AckedAt time.Time
	// Acks counts the acks of the command central received, and AckList
	// holds them, in the order central's streams hold them.
	Acks    int
	AckList []CommandAck // see Acks
}

// CommandAck is one ack of a command, as central's stream holds it.
type CommandAck struct {
	ID         message.ID        // the ack's envelope ID
	Time       time.Time         // when it was sent, by its sender's clock, in UTC
	Status     message.AckStatus // what it says of the command
	Error      string            // its error, if any
	ReceivedAt time.Time         // when central's stream stored it, in UTC
}

// Pending reports whether no ack of the command has arrived yet.
func (o CommandOutcome) Pending() bool { return o.Status == "" }

// Final reports whether the command's life has ended: an ack completed,
// failed, rejected or expired it. No later ack changes a final outcome.
func (o CommandOutcome) Final() bool { return o.Status.Final() }

// apply folds ack a of envelope e, stored by central's stream at
// received, into o, and reports whether it changed o's status.
func (o *CommandOutcome) apply(e *message.Envelope, a message.Ack, received time.Time) bool {
	o.Acks++
	o.AckList = append(o.AckList, CommandAck{ID: e.ID, Time: e.Time.UTC(), Status: a.Status, Error: a.Error, ReceivedAt: received.UTC()})
	switch {
	case o.Final():
		return false
	case a.Status.Final(), a.Status == message.AckAccepted && o.Pending():
		o.Status, o.Error, o.AckedAt = a.Status, a.Error, e.Time
		return true
	}
	return false
}

// CommandResult is the outcome, still to come, of a command sent with
// [Hub.SendCommand], in the spirit of jetstream.PubAckFuture: [CommandResult.Wait]
// waits for the command to end, [CommandResult.WaitAccepted] for its first
// ack. The acks are read from central's event stream, where the edge's
// event stream delivers them by acknowledged sourcing, so a wait survives
// any outage of the link, of the edge or of the hub's own connection: an
// ack that arrives after the link is back ends the wait then. A caller that
// gave up can ask again later, with the same CommandResult or with
// [Hub.CommandStatus] and the command's thing and ID. A CommandResult is
// safe for concurrent use; it holds no resource while nobody waits.
type CommandResult struct {
	h     *Hub
	id    message.ID
	thing topic.Thing
	cmd   message.Command
	from  uint64 // first sequence of central's event stream that can hold an ack
}

// ID returns the command's envelope ID, the CorrelationID of its acks.
func (r *CommandResult) ID() message.ID { return r.id }

// Thing returns the thing the command was sent to.
func (r *CommandResult) Thing() topic.Thing { return r.thing }

// Command returns the command as sent (with RequestedBy set).
func (r *CommandResult) Command() message.Command { return r.cmd }

// Wait waits until the command's outcome is final (completed, failed,
// rejected or expired) and returns it. An edge that cannot reach the
// device acks the command expired once its deadline has passed; an edge
// that is cut off sends that ack when its link is back, so Wait can last
// beyond the deadline. Waiting is what Wait is for: it applies no default
// timeout, so ctx alone bounds it. When ctx ends first, Wait returns the
// outcome so far (pending or accepted) with an error wrapping ctx.Err(); it
// returns the JetStream error if central's event stream cannot be read.
func (r *CommandResult) Wait(ctx context.Context) (CommandOutcome, error) {
	return r.h.followCommand(ctx, r.thing, r.id, r.from, CommandOutcome.Final)
}

// WaitAccepted waits until the first ack of the command arrives (accepted,
// or at once final) and returns the outcome; errors as [CommandResult.Wait].
func (r *CommandResult) WaitAccepted(ctx context.Context) (CommandOutcome, error) {
	return r.h.followCommand(ctx, r.thing, r.id, r.from, func(o CommandOutcome) bool { return !o.Pending() })
}

// Status returns the command's outcome as of now, without waiting for
// acks still to come. It returns the JetStream error, or an error wrapping
// ctx.Err() when ctx ends before the acks received so far are read.
func (r *CommandResult) Status(ctx context.Context) (CommandOutcome, error) {
	ctx, cancel := r.h.ctx(ctx)
	defer cancel()
	out, _, err := r.h.readCommand(ctx, r.thing, r.id, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: r.from})
	return out, err
}

// CommandStatus returns the outcome, as of now, of the command id sent to
// thing, from central's event stream: for a caller that no longer holds the
// [CommandResult], such as another process after a restart. It reads the
// thing's acks and central's records of the commands to its edge from
// shortly before the command's time (its ID's timestamp), or from the start
// of the stream when the command is not there. It returns an error wrapping
// [ErrUnknownCommand] when central's event stream holds neither the record
// of the command nor an ack of it (never sent, sent to another thing, or
// dropped by the stream's retention limits), a
// [*topic.Error] for an invalid thing, an error wrapping [ErrWrongOrg],
// or the JetStream error.
func (h *Hub) CommandStatus(ctx context.Context, thing topic.Thing, id message.ID) (CommandOutcome, error) {
	if err := thing.Validate(); err != nil {
		return CommandOutcome{}, err
	}
	if thing.Org != h.cfg.Org {
		return CommandOutcome{}, fmt.Errorf("%w: %s is not of org %s", ErrWrongOrg, thing, h.cfg.Org)
	}
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	from := id.Time().Add(-commandLookBack)
	out, seen, err := h.readCommand(ctx, thing, id, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from})
	if err == nil && !seen {
		// A hub clock far off central's: look through the whole stream.
		out, seen, err = h.readCommand(ctx, thing, id, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	}
	if err == nil && !seen {
		return out, fmt.Errorf("%w: %s to %s is not in central's event stream %s", ErrUnknownCommand, id, thing, h.eventStream)
	}
	return out, err
}

// commandFilters are the subjects of central's event stream that tell
// about the commands of thing: its acks, and central's records of the
// commands sent to its edge.
func commandFilters(thing topic.Thing) []string {
	return []string{thing.Subject(topic.Ack).String(), CommandRecordThing(thing.Org, thing.Edge).Subject(topic.Event).String()}
}

// readCommand reads what central's event stream holds now about command id
// of thing, from where cfg says, and reports whether it saw the command or
// an ack of it.
func (h *Hub) readCommand(ctx context.Context, thing topic.Thing, id message.ID, cfg jetstream.OrderedConsumerConfig) (CommandOutcome, bool, error) {
	out := CommandOutcome{ID: id, Thing: thing}
	seen := false
	seenHit := func(hit bool) bool {
		seen = seen || hit
		return false
	}
	err := h.scanCommand(ctx, h.eventStream, commandFilters(thing), thing, id, cfg, &out, true, seenHit)
	if err == nil && h.viaGateway(thing) {
		err = h.scanCommand(ctx, topology.GatewayStream(h.cfg.Org), []string{thing.Subject(topic.Ack).String()},
			thing, id, gatewayAckFrom(id), &out, true, seenHit)
	}
	return out, seen, err
}

// gatewayAckFrom is where the acks of command id can begin in the org's
// gateway stream: shortly before the command's time.
func gatewayAckFrom(id message.ID) jetstream.OrderedConsumerConfig {
	from := id.Time().Add(-commandLookBack)
	return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from}
}

// followCommand reads the acks of command id of thing as they arrive, from
// sequence from of central's event stream (or, for a device of the central
// gateway, from shortly before the command's time in the org's gateway
// stream), until done holds.
func (h *Hub) followCommand(ctx context.Context, thing topic.Thing, id message.ID, from uint64, done func(CommandOutcome) bool) (CommandOutcome, error) {
	out := CommandOutcome{ID: id, Thing: thing}
	stop := func(bool) bool { return done(out) }
	if h.viaGateway(thing) {
		err := h.scanCommand(ctx, topology.GatewayStream(h.cfg.Org), []string{thing.Subject(topic.Ack).String()},
			thing, id, gatewayAckFrom(id), &out, false, stop)
		return out, err
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
	err := h.scanCommand(ctx, h.eventStream, commandFilters(thing), thing, id, cfg, &out, false, stop)
	return out, err
}

// scanCommand reads the messages on filters in stream with an ordered
// consumer configured by cfg and folds the acks of command id of thing into
// out. It stops when stop, called after each message with whether it was
// about id, returns true, when ctx ends, or, if drain is set, when it has
// read every message the stream holds now.
func (h *Hub) scanCommand(ctx context.Context, stream string, filters []string, thing topic.Thing, id message.ID, cfg jetstream.OrderedConsumerConfig, out *CommandOutcome, drain bool, stop func(hit bool) bool) error {
	cfg.FilterSubjects = filters
	cfg.InactiveThreshold = max(h.cfg.Timeout, 30*time.Second)
	cons, err := h.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return h.commandErr(id, thing, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return h.commandErr(id, thing, err)
	}
	defer it.Stop()
	if info := cons.CachedInfo(); drain && info != nil && info.NumPending == 0 {
		return nil
	}
	recSubject := CommandRecordThing(thing.Org, thing.Edge).Subject(topic.Event).String()
	// The records are per edge: one is of id only if it names thing's
	// command subject, else a command of another thing of the same edge
	// would count as sent to thing.
	cmdSubject := thing.Subject(topic.Command).String()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("edgekit: command %s to %s: %w", id, thing, ctx.Err())
			}
			return h.commandErr(id, thing, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return h.commandErr(id, thing, err)
		}
		var e message.Envelope
		hit := false
		if m.Subject() == recSubject {
			// Central's own subject; a copy sourced from an edge is not
			// central's record.
			if m.Headers().Get(authz.HeaderStreamSource) == "" && message.DecodeJetStream(m, &e, nil) == nil && e.Name == message.NameCommandSent {
				rec, err := message.DecodePayload[message.CommandSent](&e)
				hit = err == nil && rec.CommandID == id && rec.Subject == cmdSubject
			}
		} else if message.DecodeJetStream(m, &e, nil) == nil && e.Type == topic.Ack {
			// The ack subject is the thing's own: only its device and its
			// edge's service may publish there.
			if a, err := message.DecodePayload[message.Ack](&e); err == nil && (e.CorrelationID == id || a.CommandID == id) {
				hit = true
				if out.apply(&e, a, md.Timestamp) {
					h.log.Debug("command outcome", message.LogKeyThing, thing.String(), message.LogKeyMsgID, id.String(), "status", string(out.Status))
				}
			}
		}
		if stop(hit) || (drain && md.NumPending == 0) {
			return nil
		}
	}
}

func (h *Hub) commandErr(id message.ID, thing topic.Thing, err error) error {
	return h.explain(fmt.Errorf("edgekit: outcome of command %s to %s: %w", id, thing, err))
}

// recordCommand stores central's record of command envelope e (cmd for
// e.Source) in central's event stream, deduplicated by command, and returns
// the sequence after the record's: the first that can hold an ack of the
// command.
func (h *Hub) recordCommand(ctx context.Context, e *message.Envelope, cmd message.Command) (uint64, error) {
	rec := &message.Envelope{
		ID:     h.cfg.IDs.NewAt(e.Time),
		Time:   e.Time,
		Source: CommandRecordThing(e.Source.Org, e.Source.Edge),
		Type:   topic.Event,
		Name:   message.NameCommandSent,
	}
	err := message.SetPayload(rec, message.CommandSent{
		CommandID: e.ID, Subject: e.Source.Subject(topic.Command).String(), Time: e.Time, Command: cmd})
	if err != nil {
		return 0, err
	}
	msg, err := rec.ToMsg(nil)
	if err != nil {
		return 0, err
	}
	msg.Header.Set(message.HeaderMsgID, "command-sent."+e.ID.String())
	ack, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(h.eventStream))
	if err != nil {
		return 0, h.explain(fmt.Errorf("edgekit: record in %s: %w", h.eventStream, err))
	}
	return ack.Sequence + 1, nil
}
