package devicetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// EdgeThing returns the thing under which the edge service of org's edge
// sends its own messages, such as commands: {org}.{edge}._edge.{edge}.
func EdgeThing(org, edge string) topic.Thing {
	return topic.Thing{Org: org, Edge: edge, Type: topic.ThingTypeEdge, Code: edge}
}

// NewCommand returns a command envelope (message.NameCommand, type
// topic.Command) from the edge service of thing's edge, with a new ID and the
// current time, and cmd as payload.
func NewCommand(thing topic.Thing, cmd message.Command) (*message.Envelope, error) {
	var ids message.IDGenerator
	now := time.Now()
	e := &message.Envelope{
		ID:     ids.NewAt(now),
		Time:   now.UTC(),
		Source: EdgeThing(thing.Org, thing.Edge),
		Type:   topic.Command,
		Name:   message.NameCommand,
	}
	if err := message.SetPayload(e, cmd); err != nil {
		return nil, err
	}
	return e, nil
}

// PublishCommand publishes the command envelope e on thing's cmd subject,
// whatever e's source, as the edge service does, signed for thing with key
// (message.SignCommand); a nil key sends it unsigned, which devices refuse.
func PublishCommand(nc *nats.Conn, thing topic.Thing, e *message.Envelope, key nkeys.KeyPair) error {
	msg, err := e.ToMsg(nil)
	if err != nil {
		return err
	}
	msg.Subject = thing.Subject(topic.Command).String()
	if key != nil {
		if err := message.SignCommand(msg, thing, key); err != nil {
			return err
		}
	}
	return nc.PublishMsg(msg)
}

// AckRecorder records the acks a device publishes, by command ID. Make one
// with [RecordAcks].
type AckRecorder struct {
	thing topic.Thing
	sub   *nats.Subscription

	mu      sync.Mutex
	acks    map[message.ID][]message.Ack
	errs    []error
	changed chan struct{} // closed and replaced at every new ack
}

// RecordAcks subscribes to thing's ack subject on nc and records every ack
// from then on. It returns once the server has registered the subscription.
func RecordAcks(nc *nats.Conn, thing topic.Thing) (*AckRecorder, error) {
	r := &AckRecorder{thing: thing, acks: make(map[message.ID][]message.Ack), changed: make(chan struct{})}
	sub, err := nc.Subscribe(thing.Subject(topic.Ack).String(), r.receive)
	if err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	r.sub = sub
	return r, nil
}

func (r *AckRecorder) receive(m *nats.Msg) {
	a, err := decodeAck(m, r.thing)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
	} else {
		r.acks[a.CommandID] = append(r.acks[a.CommandID], a)
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// decodeAck decodes an ack envelope from thing and checks that it is
// consistent: type, name, source and CorrelationID.
func decodeAck(m *nats.Msg, thing topic.Thing) (message.Ack, error) {
	e, err := message.FromMsg(m)
	if err != nil {
		return message.Ack{}, fmt.Errorf("ack on %s: %w", m.Subject, err)
	}
	a, err := message.DecodePayload[message.Ack](e)
	switch {
	case err != nil:
		return a, fmt.Errorf("ack %s: %w", e.ID, err)
	case e.Type != topic.Ack || e.Name != message.NameAck:
		return a, fmt.Errorf("ack %s: type %q name %q, want %q %q", e.ID, e.Type, e.Name, topic.Ack, message.NameAck)
	case e.Source != thing:
		return a, fmt.Errorf("ack %s: source %s, want %s", e.ID, e.Source, thing)
	case e.CorrelationID != a.CommandID:
		return a, fmt.Errorf("ack %s: CorrelationID %s but command_id %s", e.ID, e.CorrelationID, a.CommandID)
	}
	return a, nil
}

// Acks returns the acks of command id received so far.
func (r *AckRecorder) Acks(id message.ID) []message.Ack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message.Ack(nil), r.acks[id]...)
}

// Err returns the acks that could not be decoded or were inconsistent.
func (r *AckRecorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// Wait waits until command id has received n final acks (see
// message.AckStatus.Final) and returns all its acks. It returns the context's
// error, with the acks received so far, when ctx ends first.
func (r *AckRecorder) Wait(ctx context.Context, id message.ID, n int) ([]message.Ack, error) {
	for {
		r.mu.Lock()
		acks := append([]message.Ack(nil), r.acks[id]...)
		changed := r.changed
		r.mu.Unlock()
		final := 0
		for _, a := range acks {
			if a.Status.Final() {
				final++
			}
		}
		if final >= n {
			return acks, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return acks, fmt.Errorf("devicetest: waiting for %d final acks of command %s, have %v: %w", n, id, Statuses(acks), ctx.Err())
		}
	}
}

// Close stops recording.
func (r *AckRecorder) Close() { _ = r.sub.Unsubscribe() }

// Statuses returns the statuses of acks, in order.
func Statuses(acks []message.Ack) []message.AckStatus {
	s := make([]message.AckStatus, len(acks))
	for i, a := range acks {
		s[i] = a.Status
	}
	return s
}

// StoredMsg is a message stored in a stream.
type StoredMsg struct {
	Seq      uint64            // the stream sequence
	Subject  string            // the subject it was stored on
	Header   nats.Header       // its NATS headers
	Envelope *message.Envelope // its data, decoded
}

// Stored returns the messages stored in stream on subjects matching filter
// (a NATS subject filter, ">" for all), in stream order, with their
// envelopes decoded. It reads the stream message by message, which suits
// the small streams of tests.
func Stored(ctx context.Context, js jetstream.JetStream, stream, filter string) ([]StoredMsg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("devicetest: stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("devicetest: stream %s: %w", stream, err)
	}
	var out []StoredMsg
	if info.State.Msgs == 0 {
		return nil, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("devicetest: stream %s: message %d: %w", stream, seq, err)
		}
		if !subjectMatches(filter, raw.Subject) {
			continue
		}
		m := &nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data}
		e, err := message.FromMsg(m)
		if err != nil {
			return nil, fmt.Errorf("devicetest: stream %s: message %d on %s: %w", stream, seq, raw.Subject, err)
		}
		out = append(out, StoredMsg{Seq: raw.Sequence, Subject: raw.Subject, Header: raw.Header, Envelope: e})
	}
	return out, nil
}

// subjectMatches reports whether subject matches the NATS filter.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, ft := range f {
		if ft == ">" {
			return len(s) > i
		}
		if i >= len(s) || (ft != "*" && ft != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}
