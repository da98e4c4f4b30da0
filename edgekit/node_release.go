package edgekit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// repairAfter is how long central must report the same gap in what it
// holds of a flow before the edge sends the gap again: a message stored
// out of order (nats-server retries a failed store from that sequence)
// leaves a gap that closes by itself.
const repairAfter = 10 * time.Second

// heldStream is one of the edge's streams that keep each message until
// central has stored it (events, telemetry, platform records), and what
// the node has released of it.
type heldStream struct {
	stream   jetstream.Stream
	consumer string // central's durable sourcing consumer
	flow     string // authz.FlowEvents, FlowTelemetry or FlowPlatform
	// hold is the node's own consumer on a stream an earlier version
	// created, with interest retention and deny_purge (nil on this
	// version's streams): such a stream drops a message once every
	// consumer acknowledged it, so the node releases through hold's
	// acknowledgements what it would purge, and central's alone remove
	// nothing. fetched are messages hold delivered beyond the last release,
	// not acknowledged yet.
	hold     jetstream.Consumer
	fetched  []jetstream.Msg
	released uint64 // last sequence released
	failing  bool   // the last release failed (logged once per run of failures)
	// gap is the mark central first reported of the gap it holds while its
	// consumer's acknowledgement floor is past it, and repaired the last
	// sequence this node sent again.
	gap       topology.ReleaseMark
	repaired  uint64
	mark      topology.ReleaseMark // the last mark read, while the link had markEpoch
	markEpoch uint64
}

// provisionHeld creates or updates the held stream c of flow, sourced by
// central through consumer. A stream an earlier version created keeps
// interest retention and deny_purge, which nats-server never lets an
// update take back. Central's acknowledgements alone would remove its
// messages, including those nats-server acknowledges through flow control
// without central's stream storing them; the node's own consumer on it
// (holdConsumer) keeps each message until central's release mark covers
// it, as release does on this version's streams, with the per-message
// removal cost that release avoids (docs/edge-release.md says how to move
// such a stream over).
func (n *Node) provisionHeld(ctx context.Context, c jetstream.StreamConfig, consumer, flow string) error {
	interest := false
	switch s, err := n.js.Stream(ctx, c.Name); {
	case err == nil && s.CachedInfo().Config.DenyPurge:
		c, interest = heldByInterest(c), true
		n.log.Warn("edge stream keeps interest retention from an earlier version; the node releases its messages one at a time",
			"stream", c.Name)
	case err != nil && !errors.Is(err, jetstream.ErrStreamNotFound):
		return err
	}
	s, err := n.js.CreateOrUpdateStream(ctx, c)
	if err != nil {
		return err
	}
	h := &heldStream{stream: s, consumer: consumer, flow: flow}
	if interest {
		if h.hold, err = s.CreateOrUpdateConsumer(ctx, holdConsumerConfig()); err != nil {
			return fmt.Errorf("consumer %s: %w", holdConsumer, err)
		}
	}
	n.held = append(n.held, h)
	return nil
}

// holdConsumer is the node's consumer on each held stream of an earlier
// version (see [Node.provisionHeld]).
const holdConsumer = "edge-hold"

// holdConsumerConfig returns holdConsumer's configuration: it takes every
// message from the stream's first, and one acknowledgement releases all
// before it. A message it delivered and the node has not acknowledged is
// delivered again after AckWait, as after the node's restart.
func holdConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       holdConsumer,
		Description:   "Lintel edge node: holds each message until central's release mark covers it",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    -1,
		MaxAckPending: -1,
	}
}

// releaseLoop releases what central has stored every check interval until
// Stop.
func (n *Node) releaseLoop() {
	t := time.NewTicker(n.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stopping:
			return
		case <-t.C:
			n.release()
		}
	}
}

// release purges each held stream up to what central holds of it: the
// acknowledgement floor of central's sourcing consumer, but never beyond
// the mark central keeps of what its event stream holds without a gap
// (its release tracker, [Hub.Supervise]): nats-server can acknowledge
// through flow control messages that never reached central's stream. One
// purge per stream and tick removes the whole range with one write and one
// fsync, where removal per acknowledgement cost one of each per message,
// on the leaf connection's read loop. A failed purge removes nothing and is
// tried again at the next tick; without a mark (the link down, central not
// reachable) nothing is released.
//
// A gap that central reports for repairAfter while its consumer's floor is
// past it will never be sourced again: the node sends its messages again,
// unchanged, through its platform stream ([authz.HeaderRepairOf]); see
// repair.
func (n *Node) release() {
	ctx, cancel := n.opCtx()
	defer cancel()
	for _, h := range n.held {
		if err := n.releaseOne(ctx, h); err != nil {
			if !h.failing {
				n.log.Warn("edge stream release failed; retrying", "stream", h.stream.CachedInfo().Config.Name, message.LogKeyError, err)
			}
			h.failing = true
			continue
		}
		h.failing = false
	}
}

// releaseOne releases what central has stored of h, and repairs a gap.
func (n *Node) releaseOne(ctx context.Context, h *heldStream) error {
	c, err := h.stream.PushConsumer(ctx, h.consumer)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", h.consumer, err)
	}
	floor := c.CachedInfo().AckFloor.Stream
	if floor <= h.released {
		return nil
	}
	// A mark read since the link last came up that covers the floor needs
	// no new read.
	if epoch := n.LinkEpoch(); floor > h.mark.Stored || epoch != h.markEpoch {
		mark, err := n.releaseMark(ctx, h.flow)
		if err != nil {
			return err
		}
		h.mark, h.markEpoch = mark, epoch
		if err := n.repair(ctx, h, floor, mark); err != nil {
			return err
		}
	}
	upto := min(floor, h.mark.Stored)
	if upto <= h.released {
		return nil
	}
	if h.hold != nil {
		return n.releaseHold(ctx, h, upto)
	}
	if err := h.stream.Purge(ctx, jetstream.WithPurgeSequence(upto+1)); err != nil {
		return fmt.Errorf("purge up to %d: %w", upto, err)
	}
	n.stats.releases.Add(1)
	h.released = upto
	return nil
}

// releaseHold releases h, a stream of an earlier version, up to upto:
// holdConsumer takes messages in order until one lies beyond upto (kept
// for a later release), and one acknowledgement of the last before it
// releases them all.
func (n *Node) releaseHold(ctx context.Context, h *heldStream, upto uint64) error {
	var (
		last    jetstream.Msg
		lastSeq uint64
		ferr    error
	)
loop:
	for {
		if len(h.fetched) == 0 {
			if ferr = n.fetchHold(h); ferr != nil || len(h.fetched) == 0 {
				break
			}
		}
		meta, err := h.fetched[0].Metadata()
		if err != nil {
			ferr = err
			break
		}
		switch seq := meta.Sequence.Stream; {
		case seq > upto:
			break loop
		case seq > h.released:
			last, lastSeq = h.fetched[0], seq
		}
		// A message at or below the last release is one delivered again
		// after AckWait, already acknowledged.
		h.fetched = h.fetched[1:]
	}
	if last != nil {
		if err := last.DoubleAck(ctx); err != nil {
			return fmt.Errorf("release up to %d: %w", lastSeq, err)
		}
		n.stats.releases.Add(1)
		h.released = lastSeq
	}
	if ferr != nil {
		return fmt.Errorf("consumer %s: %w", holdConsumer, ferr)
	}
	return nil
}

// fetchHold takes the next messages h's holdConsumer delivers, without
// waiting for any.
func (n *Node) fetchHold(h *heldStream) error {
	batch, err := h.hold.FetchNoWait(256)
	if err != nil {
		return err
	}
	for m := range batch.Messages() {
		h.fetched = append(h.fetched, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return err
	}
	return nil
}

// errNoMark reports that central did not tell how far it holds a flow.
var errNoMark = errors.New("central's release mark not readable (link down, or central not yet tracking)")

// releaseMark reads central's mark of flow.
func (n *Node) releaseMark(ctx context.Context, flow string) (topology.ReleaseMark, error) {
	var m topology.ReleaseMark
	if n.relc == nil {
		return m, errNoMark
	}
	msg, err := n.relc.RequestWithContext(ctx, n.names.ReleaseGet(flow), nil)
	if err != nil {
		return m, fmt.Errorf("%w: %w", errNoMark, err)
	}
	if st := msg.Header.Get("Status"); st != "" {
		return m, fmt.Errorf("%w: status %s %s", errNoMark, st, msg.Header.Get("Description"))
	}
	if err := json.Unmarshal(msg.Data, &m); err != nil {
		return m, fmt.Errorf("%w: %w", errNoMark, err)
	}
	return m, nil
}

// repair sends again what central holds a gap in while its consumer's
// floor is past it, so that sourcing will never deliver it again: the gap
// Stored+1..Next-1, or, with nothing stored after the gap, Stored+1..floor
// (central dropped a message as a duplicate of one it had, say). It waits
// until the tracker has reported the same mark for repairAfter by its own
// clock: a gap that closes by itself (a store retried from that sequence,
// a tracker behind) is not a gap, and a tracker that stopped rewrites
// nothing.
func (n *Node) repair(ctx context.Context, h *heldStream, floor uint64, mark topology.ReleaseMark) error {
	end := floor
	if mark.Next > 0 {
		end = min(floor, mark.Next-1)
	}
	if end <= mark.Stored {
		h.gap = topology.ReleaseMark{}
		return nil
	}
	if h.gap.Stored != mark.Stored || h.gap.Next != mark.Next || h.gap.At.IsZero() {
		h.gap = mark
		return nil
	}
	if mark.At.Sub(h.gap.At) < repairAfter {
		return nil
	}
	from := max(mark.Stored+1, h.repaired+1)
	if from > end {
		return nil
	}
	n.log.Warn("central holds a gap in an edge stream that it will not source again; sending it again",
		"stream", h.stream.CachedInfo().Config.Name, "from", from, "to", end)
	for seq := from; seq <= end; seq++ {
		m, err := h.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("repair: read %d: %w", seq, err)
		}
		subj, err := topic.Parse(m.Subject)
		if err != nil {
			continue // not a thing's message: nothing central would store
		}
		out := &nats.Msg{Subject: n.names.PlatformSubject(subj.Thing, subj.MessageType), Header: nats.Header{}, Data: m.Data}
		for k, vs := range m.Header {
			out.Header[k] = vs
		}
		out.Header.Set(authz.HeaderRepairOf, h.flow+" "+strconv.FormatUint(seq, 10))
		out.Header.Set(message.HeaderMsgID, m.Header.Get(message.HeaderMsgID)+"/repair/"+h.flow+"/"+strconv.FormatUint(seq, 10))
		if _, err := n.js.PublishMsg(ctx, out, jetstream.WithExpectStream(n.names.PlatformStream)); err != nil {
			return fmt.Errorf("repair: send %d again: %w", seq, err)
		}
		h.repaired = seq
		n.stats.repairs.Add(1)
	}
	return nil
}
