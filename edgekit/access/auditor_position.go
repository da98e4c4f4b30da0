package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The auditor reads central's event stream through an ordered consumer,
// which needs no acknowledgement, and keeps its position (the stream
// sequence through which it processed everything) in its state bucket,
// written after the edges' heads. nats-server lets a leaf node publish on
// "$JS.ACK.>" whatever its permissions say, and the auditor's consumer
// lives in the org's account that the edges' leaf connections are bound
// to: with acknowledgements, an edge could have acknowledged events for
// the auditor, and they would never have been verified. With none, there
// is nothing to forge.
//
// The position is written with the revision it was read at, so two
// auditors of one org (a failover that overlapped) cannot both move it:
// the one that lost reads the bucket again and goes on from there.

// auditorPositionPrefix prefixes the state bucket key of the auditor's
// position: "position.{Durable}". Edge codes hold no ".", so it never
// names an edge.
const auditorPositionPrefix = "position."

// auditorReadAhead is how long a batch waits for more events once it has
// one.
const auditorReadAhead = 10 * time.Millisecond

// auditReader is the auditor's reading state. Used by the run goroutine
// only (and StartAuditor before it).
type auditReader struct {
	iter jetstream.MessagesContext // nil until opened, and after a failure
	pos  uint64                    // persisted position
	rev  uint64                    // its revision in the state bucket, 0 if none
	seen uint64                    // highest stream sequence processed by this auditor
}

// auditPosition is the persisted position.
type auditPosition struct {
	Seq uint64 `json:"seq"`
}

func (a *Auditor) positionKey() string { return auditorPositionPrefix + a.cfg.Durable }

// openConsumer reads the persisted position and opens an ordered consumer
// on the org's events from the sequence after it.
func (a *Auditor) openConsumer(ctx context.Context) error {
	a.closeReader()
	if err := a.loadPosition(ctx); err != nil {
		return err
	}
	str, err := a.js.Stream(ctx, a.stream)
	if err != nil {
		return fmt.Errorf("access: auditor: stream %s: %w", a.stream, err)
	}
	cons, err := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{a.filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    a.rd.pos + 1,
	})
	if err != nil {
		return fmt.Errorf("access: auditor: reader on %s: %w", a.stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(a.cfg.Batch))
	if err != nil {
		return fmt.Errorf("access: auditor: reader on %s: %w", a.stream, err)
	}
	a.rd.iter = it
	return nil
}

// closeReader stops the ordered consumer, if open.
func (a *Auditor) closeReader() {
	if a.rd.iter != nil {
		a.rd.iter.Stop()
		a.rd.iter = nil
	}
}

// loadPosition reads the persisted position.
func (a *Auditor) loadPosition(ctx context.Context) error {
	entry, err := a.state.Get(ctx, a.positionKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		a.rd.pos, a.rd.rev = 0, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("access: auditor: position: %w", err)
	}
	var p auditPosition
	if err := json.Unmarshal(entry.Value(), &p); err != nil {
		// Reading from the start again repeats nothing: every edge's own
		// position guards its chain.
		a.log.Error("audit position unreadable; reading the stream from its start", message.LogKeyError, err)
		p = auditPosition{}
	}
	a.rd.pos, a.rd.rev = p.Seq, entry.Revision()
	return nil
}

// savePosition persists seq as the position, if the bucket still holds
// the revision it was read at.
func (a *Auditor) savePosition(ctx context.Context, seq uint64) error {
	data, _ := json.Marshal(auditPosition{Seq: seq})
	var rev uint64
	var err error
	if a.rd.rev == 0 {
		rev, err = a.state.Create(ctx, a.positionKey(), data)
	} else {
		rev, err = a.state.Update(ctx, a.positionKey(), data, a.rd.rev)
	}
	if err != nil {
		return fmt.Errorf("access: auditor: persist position %d (another auditor may have moved it): %w", seq, err)
	}
	a.rd.pos, a.rd.rev = seq, rev
	return nil
}

// catchUp retires the durable consumer with explicit acknowledgements
// that earlier versions read through, taking over its acknowledged floor
// as the position when there is none yet, and reopens the reader from
// there.
func (a *Auditor) catchUp(ctx context.Context) error {
	legacy, err := a.js.Consumer(ctx, a.stream, a.cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("access: auditor: consumer %s: %w", a.cfg.Durable, err)
	}
	if a.rd.rev == 0 {
		info, err := legacy.Info(ctx)
		if err != nil {
			return fmt.Errorf("access: auditor: consumer %s: %w", a.cfg.Durable, err)
		}
		if info.AckFloor.Stream > 0 {
			if err := a.savePosition(ctx, info.AckFloor.Stream); err != nil {
				return err
			}
			if err := a.openConsumer(ctx); err != nil {
				return err
			}
		}
	}
	if err := a.js.DeleteConsumer(ctx, a.stream, a.cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("access: auditor: retire consumer %s: %w", a.cfg.Durable, err)
	}
	a.log.Info("audit: retired the acknowledging consumer of earlier versions", "consumer", a.cfg.Durable, "position", a.rd.pos)
	return nil
}

// batch reads the events waiting (up to Batch, waiting up to Poll for the
// first), processes them in stream order, then persists the edges' heads
// and the position. On an error it persists what was done, closes the
// reader, to read again from the persisted position, and returns the
// error.
func (a *Auditor) batch() error {
	if a.rd.iter == nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeout)
		err := a.openConsumer(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
	m, err := a.rd.iter.Next(jetstream.NextMaxWait(a.cfg.Poll))
	if errors.Is(err, nats.ErrTimeout) {
		return nil
	}
	if err != nil {
		a.closeReader()
		return fmt.Errorf("access: auditor read: %w", err)
	}
	msgs := []jetstream.Msg{m}
	for len(msgs) < a.cfg.Batch {
		m, err := a.rd.iter.Next(jetstream.NextMaxWait(auditorReadAhead))
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	done := a.rd.pos
	for _, m := range msgs {
		ev, err := toAuditMsg(m)
		if err != nil {
			a.closeReader()
			return errors.Join(err, a.settle(done))
		}
		// Read before by this auditor (then handed back): never an alarm
		// below the head.
		ev.redelivered = ev.streamSeq <= a.rd.seen
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeout)
		_, err = a.process(ctx, ev)
		cancel()
		if err != nil {
			a.closeReader()
			return errors.Join(err, a.settle(done))
		}
		done = ev.streamSeq
		a.rd.seen = max(a.rd.seen, done)
	}
	return a.settle(done)
}

// settle persists the heads changed since the last settle, then the
// position through. If either fails it forgets the edges' state and
// closes the reader, to read both again from the bucket.
func (a *Auditor) settle(through uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeout)
	defer cancel()
	err := a.persist(ctx)
	if err == nil && through > a.rd.pos {
		err = a.savePosition(ctx, through)
	}
	if err != nil {
		a.forgetEdges()
		a.closeReader()
	}
	return err
}
