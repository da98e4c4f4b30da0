package devicekit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// JetStream error code of a message the stream failed to store, which is
// what a full stream with the discard-new policy answers (JSStreamStoreFailedF).
const jsStreamStoreFailed = 10077

// JetStream error code of a message refused because the server's JetStream
// storage (max_file_store, the edge's disk) is used up
// (JSInsufficientResourcesErr): to the device, a full store is a full stream.
const jsInsufficientResources = 10023

// JetStream error code of a message refused because the stream's ingest
// queue is full (JSStreamTooManyRequests, HTTP-like 429): transient, so the
// publish is sent again after a pause.
const jsStreamTooManyRequests = 10167

// Pauses between attempts when nobody answers at all (no stream captures the
// subject yet): they start short and double up to the ack timeout.
const minRetryWait = 50 * time.Millisecond

// publish checks and stamps e, then sends it, waiting for the stream's
// acknowledgement unless it is telemetry and the device does not wait for
// those. With keep, an acknowledged publish goes through the outbox, if
// there is one.
func (c *Client) publish(ctx context.Context, e *message.Envelope, keep bool) error {
	switch e.Type {
	case topic.Event, topic.State, topic.Telemetry, topic.Ack:
	default:
		return fmt.Errorf("%w: devices do not publish message type %q", ErrInvalidEnvelope, e.Type)
	}
	if e.ID.IsZero() {
		if e.Source != (topic.Thing{}) && e.Source != c.thing {
			return fmt.Errorf("%w: source %s is not the device %s", ErrInvalidEnvelope, e.Source, c.thing)
		}
		c.stamp.Stamp(e)
	} else if e.Source != c.thing {
		return fmt.Errorf("%w: source %s is not the device %s", ErrInvalidEnvelope, e.Source, c.thing)
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
	}
	if e.Type == topic.Telemetry && c.cfg.TelemetryUnacknowledged {
		return c.publishUnacked(msg, e.ID)
	}
	if keep && c.box != nil {
		return c.publishKept(ctx, msg, e.ID)
	}
	return c.publishAcked(ctx, msg, e.ID)
}

// publishUnacked hands msg to the connection without waiting for anything.
func (c *Client) publishUnacked(msg *nats.Msg, id message.ID) error {
	if err := c.nc.PublishMsg(msg); err != nil {
		c.stats.publishErrors.Add(1)
		return &PublishError{Subject: msg.Subject, MsgID: id, Attempts: 1, Err: sentinelFor(err), Cause: err}
	}
	c.stats.published.Add(1)
	return nil
}

// sentinelFor maps a nats.go publish error to the package's sentinel.
func sentinelFor(err error) error {
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded):
		return ErrBufferFull
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return ErrClosed
	case errors.Is(err, nats.ErrMaxPayload):
		return ErrInvalidEnvelope
	}
	return ErrNotAcknowledged
}

// publishAcked sends msg as a request to the stream and waits for its
// acknowledgement (a PubAck on the device's own inbox), sending it again,
// with the same Nats-Msg-Id, after each AckTimeout without one, until ctx
// ends, or Config.Timeout has passed when ctx has no deadline.
func (c *Client) publishAcked(ctx context.Context, msg *nats.Msg, id message.ID) error {
	// The default timeout is kept as a time rather than a context: one
	// context per attempt is enough.
	var deadline time.Time
	if _, ok := ctx.Deadline(); !ok {
		deadline = time.Now().Add(c.cfg.Timeout)
	}
	pe := &PublishError{Subject: msg.Subject, MsgID: id}
	wait := minRetryWait
	permBefore, _ := c.perms.get(msg.Subject)
	var last error // the last attempt's failure other than the context's
	for {
		pe.Attempts++
		if pe.Attempts > 1 {
			c.stats.retries.Add(1)
		}
		attempt := c.cfg.AckTimeout
		if !deadline.IsZero() {
			attempt = min(attempt, time.Until(deadline))
		}
		actx, cancel := context.WithTimeout(ctx, attempt)
		reply, err := c.nc.RequestMsgWithContext(actx, msg)
		cancel()
		switch {
		case err == nil:
			perr := pe.fromPubAck(reply)
			if perr == nil {
				c.stats.published.Add(1)
				return nil
			}
			if pe.Code != jsStreamTooManyRequests {
				c.stats.publishErrors.Add(1)
				return perr
			}
			// The stream's ingest queue is full (a burst, such as
			// unacknowledged telemetry): nothing was stored, so back
			// off and send again, as for a missing acknowledgement.
			last = fmt.Errorf("stream %q: %s (err_code %d)", pe.Stream, pe.Description, pe.Code)
			pe.Err, pe.Stream, pe.Code, pe.Description = nil, "", 0, ""
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			wait = min(2*wait, c.cfg.AckTimeout)
		case errors.Is(err, nats.ErrNoResponders):
			// Nothing captures the subject (yet): pause before trying again.
			last = err
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			wait = min(2*wait, c.cfg.AckTimeout)
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && attempt == c.cfg.AckTimeout:
			last = fmt.Errorf("no acknowledgement within %v", c.cfg.AckTimeout)
		case !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
			// Refused by the client before sending (buffer full, closed,
			// too large): sending again would not help.
			pe.Err, pe.Cause = sentinelFor(err), err
			c.stats.publishErrors.Add(1)
			return pe
		}
		if n, perr := c.perms.get(msg.Subject); n != permBefore {
			pe.Err, pe.Cause = ErrPermissionDenied, perr
			c.stats.publishErrors.Add(1)
			return pe
		}
		ctxErr := ctx.Err()
		if ctxErr == nil && !deadline.IsZero() && !time.Now().Before(deadline) {
			ctxErr = fmt.Errorf("%w (default timeout %v)", context.DeadlineExceeded, c.cfg.Timeout)
		}
		if ctxErr != nil {
			pe.Err, pe.Cause = ErrNotAcknowledged, ctxErr
			if last != nil {
				pe.Cause = fmt.Errorf("%w; last attempt: %w", ctxErr, last)
			}
			if c.life.Err() != nil {
				pe.Err = ErrClosed
			}
			c.stats.publishErrors.Add(1)
			return pe
		}
		c.log.Debug("publish not acknowledged; sending again", message.LogKeySubject, msg.Subject, message.LogKeyMsgID, id.String(), message.LogKeyError, err)
	}
}

// pubAck is the JetStream publish acknowledgement.
type pubAck struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
}

// fromPubAck reads the stream's answer: nil when the message is stored (or
// was already, as a duplicate), else pe filled in.
func (pe *PublishError) fromPubAck(reply *nats.Msg) error {
	// Fast path: a plain success, {"stream":"…","seq":…}, needs no decoding.
	if bytes.HasPrefix(reply.Data, []byte(`{"stream":`)) && !bytes.Contains(reply.Data, []byte(`"error"`)) {
		return nil
	}
	var ack pubAck
	if err := json.Unmarshal(reply.Data, &ack); err != nil || (ack.Error == nil && ack.Stream == "") {
		pe.Err = ErrNotAcknowledged
		pe.Cause = fmt.Errorf("the reply is not a JetStream acknowledgement: %.80q", reply.Data)
		return pe
	}
	if ack.Error == nil {
		return nil
	}
	pe.Stream, pe.Code, pe.Description = ack.Stream, ack.Error.ErrCode, ack.Error.Description
	pe.Cause = nil
	pe.Err = ErrStreamRejected
	if isStreamFull(ack.Error.ErrCode, ack.Error.Description) {
		pe.Err = ErrStreamFull
	}
	return pe
}

// isStreamFull reports whether a PubAck error says the stream is at one of
// its limits with the discard-new policy, or the server's storage is full.
func isStreamFull(code int, desc string) bool {
	if code == jsInsufficientResources {
		return true
	}
	if code != jsStreamStoreFailed {
		return false
	}
	d := strings.ToLower(desc)
	return strings.Contains(d, "maximum messages") || strings.Contains(d, "maximum bytes")
}

// publishBirth publishes the boot's first message, its birth.
func (c *Client) publishBirth(ctx context.Context) error {
	b := message.Birth{BootID: c.cfg.BootID, Model: c.cfg.Model, Firmware: c.cfg.Firmware}
	if c.cfg.HeartbeatInterval > 0 {
		b.HeartbeatInterval = c.cfg.HeartbeatInterval
	}
	e, err := newEnvelope(topic.State, message.NameThingBirth, b)
	if err != nil {
		return err
	}
	if err := c.publish(ctx, e, false); err != nil {
		return err
	}
	c.log.Info("born", message.LogKeyBootID, c.cfg.BootID.String(), message.LogKeyMsgID, e.ID.String())
	return nil
}

// publishDeath publishes the boot's last message, its death.
func (c *Client) publishDeath(ctx context.Context, reason string) error {
	e := &message.Envelope{Type: topic.State, Name: message.NameThingDeath}
	c.stamp.Stamp(e)
	if err := message.SetPayload(e, message.Death{BootID: c.cfg.BootID, Reason: reason, LastSeq: e.Seq}); err != nil {
		return err
	}
	return c.publish(ctx, e, false)
}

// heartbeats publishes a heartbeat every HeartbeatInterval, and at once
// after a reconnection, until ctx ends.
func (c *Client) heartbeats(ctx context.Context) {
	defer close(c.hbDone)
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		e, err := newEnvelope(topic.State, message.NameThingHeartbeat, message.Heartbeat{
			BootID: c.cfg.BootID,
			Uptime: c.cfg.Now().Sub(c.start),
		})
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, c.cfg.HeartbeatInterval)
			err = c.publish(pctx, e, false)
			cancel()
		}
		if err != nil && ctx.Err() == nil {
			c.log.Warn("heartbeat not published", message.LogKeyError, err)
		}
	}
}
