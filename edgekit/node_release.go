package edgekit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// heldStream is one of the edge's streams that keep each message until
// central has stored it (events, telemetry, platform records), and what
// the node has released of it.
type heldStream struct {
	stream   jetstream.Stream
	consumer string // central's durable sourcing consumer
	// interest marks a stream an earlier version created, with interest
	// retention and deny_purge: central's acknowledgements remove its
	// messages, and the node releases nothing.
	interest bool
	released uint64 // last sequence purged
	failing  bool   // the last release failed (logged once per run of failures)
}

// provisionHeld creates or updates the held stream c, sourced by central
// through consumer. A stream an earlier version created keeps interest
// retention and deny_purge, which nats-server never lets an update take
// back; it still holds every message until central has stored it, with the
// per-message removal cost that release avoids (docs/edge-release.md says
// how to move it over).
func (n *Node) provisionHeld(ctx context.Context, c jetstream.StreamConfig, consumer string) error {
	interest := false
	switch s, err := n.js.Stream(ctx, c.Name); {
	case err == nil && s.CachedInfo().Config.DenyPurge:
		c, interest = heldByInterest(c), true
		n.log.Warn("edge stream keeps interest retention from an earlier version; central's acknowledgements remove its messages one at a time",
			"stream", c.Name)
	case err != nil && !errors.Is(err, jetstream.ErrStreamNotFound):
		return err
	}
	s, err := n.js.CreateOrUpdateStream(ctx, c)
	if err != nil {
		return err
	}
	n.held = append(n.held, &heldStream{stream: s, consumer: consumer, interest: interest})
	return nil
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

// release purges each held stream up to the acknowledgement floor of
// central's sourcing consumer: every message at or below it is stored in
// central's stream, as the floor moves only with central's flow-control
// acknowledgements. One purge per stream and tick removes the whole range
// with one write and one fsync, where removal per acknowledgement cost one
// of each per message, on the leaf connection's read loop. A failed purge
// removes nothing and is tried again at the next tick.
func (n *Node) release() {
	ctx, cancel := n.opCtx()
	defer cancel()
	for _, h := range n.held {
		if h.interest {
			continue
		}
		if err := n.releaseOne(ctx, h); err != nil {
			if !h.failing {
				n.log.Warn("edge stream release failed; retrying", "stream", h.stream.CachedInfo().Config.Name, LogKeyNodeErr, err)
			}
			h.failing = true
			continue
		}
		h.failing = false
	}
}

// releaseOne releases what central has stored of h.
func (n *Node) releaseOne(ctx context.Context, h *heldStream) error {
	c, err := h.stream.PushConsumer(ctx, h.consumer)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", h.consumer, err)
	}
	floor := c.CachedInfo().AckFloor.Stream
	if floor <= h.released {
		return nil
	}
	if err := h.stream.Purge(ctx, jetstream.WithPurgeSequence(floor+1)); err != nil {
		return fmt.Errorf("purge up to %d: %w", floor, err)
	}
	n.stats.releases.Add(1)
	h.released = floor
	return nil
}
