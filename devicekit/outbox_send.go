package devicekit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/nats-io/nats.go"
)

// The outbox's envelopes are stored in the order they were written, as far
// as the calls that wrote them did not overlap. An envelope whose publish
// ended without an answer is queued; a later publish sends every envelope
// queued before its own first (resendQueued), and the background
// (resendLoop) sends them after a reconnection and every
// Config.OutboxRetry. One re-send runs at a time (Client.resending), each
// in the order the envelopes were written, so a queued envelope is never
// overtaken by one written after it.

// publishKept writes msg to the outbox, sends first what is queued there
// from before, then msg as publishAcked does. msg leaves the outbox once
// stored, or refused; when the outcome is unknown (no acknowledgement, or
// cut short by Close) it is queued for the re-send. When an older envelope
// cannot be stored yet, msg is not sent: it is queued behind it, and the
// call fails with ErrNotAcknowledged.
func (c *Client) publishKept(ctx context.Context, msg *nats.Msg, id message.ID) error {
	k, err := c.box.put(id, msg)
	if err != nil {
		c.stats.publishErrors.Add(1)
		return fmt.Errorf("devicekit: publish %s (id %s): not sent: write to the outbox %s: %w", msg.Subject, id, c.box.path, err)
	}
	if c.box.queuedBefore(k.seq) {
		ctx, cancel := withDefaultTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		if err := c.resendQueued(ctx, k.seq); err != nil {
			c.box.queue(k)
			c.stats.publishErrors.Add(1)
			pe := &PublishError{Subject: msg.Subject, MsgID: id, Err: ErrNotAcknowledged,
				Cause: fmt.Errorf("not sent yet, queued in the outbox behind envelopes kept from earlier publishes: %w", err)}
			if c.life.Err() != nil {
				pe.Err = ErrClosed
			}
			return pe
		}
	}
	err = c.publishAcked(ctx, msg, id)
	if err == nil || !(errors.Is(err, ErrNotAcknowledged) || errors.Is(err, ErrClosed)) {
		c.box.remove(id)
	} else {
		c.box.queue(k)
	}
	return err
}

// resendQueued sends the queued envelopes written before seq (all of them
// with math.MaxUint64), in the order they were written, each waiting for
// its acknowledgement, once it has its turn: one re-send runs at a time.
// An envelope refused for good is set aside; any other failure stops it
// and is returned, the envelope staying queued.
func (c *Client) resendQueued(ctx context.Context, seq uint64) error {
	select {
	case c.resending <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("devicekit: outbox %s: waiting for the re-send in progress: %w", c.box.path, ctx.Err())
	}
	defer func() { <-c.resending }()
	for {
		ks := c.box.queuedUpTo(seq)
		if len(ks) == 0 {
			return nil
		}
		for _, k := range ks {
			err := c.publishAcked(ctx, k.msg, k.id)
			switch {
			case err == nil:
				c.box.remove(k.id)
				c.stats.outboxResent.Add(1)
			case errors.Is(err, ErrStreamRejected), errors.Is(err, ErrPermissionDenied), errors.Is(err, ErrInvalidEnvelope):
				c.box.refused(k.id, fmt.Errorf("refused by the edge when sent again: %w", err))
			default:
				return fmt.Errorf("devicekit: outbox %s: send again %s: %w", c.box.path, c.box.file(k.id), err)
			}
		}
	}
}

// resendAtConnect sends again, before the birth, what a previous run left
// in the outbox.
func (c *Client) resendAtConnect(ctx context.Context) error {
	if n := c.box.queuedLen(); n > 0 {
		c.log.Info("outbox: sending again what the previous run left", "count", n)
	}
	return c.resendQueued(ctx, math.MaxUint64)
}

// resendLoop sends the queued envelopes again after each reconnection and
// every Config.OutboxRetry while connected, until ctx ends. A pass that
// fails leaves the rest queued for the next one.
func (c *Client) resendLoop(ctx context.Context) {
	defer close(c.boxDone)
	t := time.NewTicker(c.cfg.OutboxRetry)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.boxKick:
		}
		n := c.box.queuedLen()
		if n == 0 || !c.nc.IsConnected() {
			continue
		}
		before := c.stats.outboxResent.Load()
		pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		err := c.resendQueued(pctx, math.MaxUint64)
		cancel()
		resent := c.stats.outboxResent.Load() - before
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			failing = false
			if resent > 0 {
				c.log.Info("outbox: kept envelopes sent again and stored", "count", resent)
			}
		case !failing:
			failing = true
			c.log.Warn("outbox: kept envelopes not stored yet; trying again", "pending", c.box.len(), "stored", resent, message.LogKeyError, err)
		default:
			c.log.Debug("outbox: kept envelopes not stored yet; trying again", "pending", c.box.len(), "stored", resent, message.LogKeyError, err)
		}
	}
}
