package devicekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

var _ Device = (*Client)(nil)

// Client is a device connected to its edge's NATS server: the NATS
// implementation of [Device]. Make one with [Connect]; its methods are safe
// for concurrent use.
//
// A Client publishes with the edge's JetStream acknowledgement on its own
// inbox (thing.InboxPrefix()), so it needs no permission beyond its own
// subjects: publish on its evt, tlm, state, ack and req subjects, subscribe
// to its cmd and cfg subjects and its inbox. It never uses the JetStream API.
type Client struct {
	cfg   Config
	thing topic.Thing
	log   *slog.Logger
	nc    *nats.Conn
	stamp *message.Stamper
	start time.Time

	evtSubj, tlmSubj, stateSubj, ackSubj, reqSubj, cmdSubj string

	// life ends when Close has finished; background publishes (acks,
	// heartbeats) derive their contexts from it.
	life       context.Context
	cancelLife context.CancelFunc

	hbCancel context.CancelFunc
	hbDone   chan struct{}
	kick     chan struct{} // asks for a heartbeat now, after a reconnect

	box       *outbox       // Config.Outbox, or nil
	resending chan struct{} // held by the outbox's re-send in progress
	boxKick   chan struct{} // asks for a re-send now, after a reconnect
	boxDone   chan struct{} // closed when the background re-send has ended

	history *history // outcomes of recent commands, kept across handlers
	perms   permissionErrors
	stats   counters

	mu       sync.Mutex
	closed   bool
	handling *commandSub    // the running command handler, if any
	inflight sync.WaitGroup // calls in progress; no Add once closed
	closeErr error
	closeCh  chan struct{} // closed when Close has finished
}

// Connect connects a device to its edge's NATS server as cfg.Thing, publishes
// its birth (message.NameThingBirth on its state subject, sequence 1 of a new
// boot) and waits until the edge's stream has stored it, then starts the
// heartbeats. An edge that does not answer yet (not started, restarting)
// is tried again every cfg.ReconnectWait until ctx ends, as a device
// waiting for its edge would. It returns an error wrapping
// [ErrInvalidConfig] for a bad cfg, one wrapping [ErrAuth] (at once, without
// retrying) when the server refuses the credentials, the nats.go error of
// the last attempt wrapped with ctx's error when no server answered before
// ctx ended, or the birth's [*PublishError]; nothing is left running then.
// When ctx has no deadline, cfg.Timeout applies.
//
// With cfg.Outbox set, Connect first locks the outbox directory (an error
// wrapping [ErrOutboxLocked] when another client uses it, or the file
// system's error) and, once connected, sends again what a previous run
// left there, in the order it was written, each waiting for the stream's
// acknowledgement, before the birth. An envelope the edge refuses for good
// ([ErrStreamRejected], [ErrPermissionDenied], [ErrInvalidEnvelope]) is
// logged and set aside; any other failure (such as [ErrNotAcknowledged] or
// [ErrStreamFull]) fails Connect, the envelopes staying in the outbox for
// the next attempt. While the client runs, it sends again what is left in
// the outbox after each reconnection and every cfg.OutboxRetry; see
// docs/devicekit.md, "Surviving a restart: the outbox".
//
// The birth is sent once per boot, that is per Connect. After a lost
// connection the client reconnects on its own, resends what it buffered
// meanwhile (up to cfg.ReconnectBufferSize bytes) and publishes a heartbeat
// at once, so that the edge sees it back without waiting for the next
// interval; the boot, and so the sequence, carry on.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx, cfg.Timeout)
	defer cancel()

	t := cfg.Thing
	c := &Client{
		cfg:       cfg,
		thing:     t,
		log:       cfg.Logger.With(message.LogKeyThing, t.String()),
		stamp:     &message.Stamper{Source: t, BootID: cfg.BootID, Now: cfg.Now, IDs: cfg.IDs},
		start:     cfg.Now(),
		evtSubj:   t.Subject(topic.Event).String(),
		tlmSubj:   t.Subject(topic.Telemetry).String(),
		stateSubj: t.Subject(topic.State).String(),
		ackSubj:   t.Subject(topic.Ack).String(),
		reqSubj:   t.Subject(topic.Request).String(),
		cmdSubj:   t.Subject(topic.Command).String(),
		kick:      make(chan struct{}, 1),
		hbDone:    make(chan struct{}),
		resending: make(chan struct{}, 1),
		boxKick:   make(chan struct{}, 1),
		boxDone:   make(chan struct{}),
		history:   newHistory(cfg.CommandHistory),
		closeCh:   make(chan struct{}),
	}
	c.life, c.cancelLife = context.WithCancel(context.Background())

	if cfg.Outbox != "" {
		if c.box, err = openOutbox(cfg.Outbox, t, c.log); err != nil {
			c.cancelLife()
			return nil, err
		}
	}
	fail := func() {
		if c.nc != nil {
			c.nc.Close()
		}
		if c.box != nil {
			c.box.close()
		}
		c.cancelLife()
	}

	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.UserInfo(cfg.User, string(cfg.Password)),
		nats.CustomInboxPrefix(t.InboxPrefix()),
		nats.MaxReconnects(-1),
		// An edge that restarts refuses devices until it is ready (and a
		// rate-limited device for a while): nats.go would close the
		// connection for good at the second refusal in a row. A device
		// keeps trying every ReconnectWait; the edge throttles failed
		// logins. Only the first dial gives up on refused credentials.
		nats.IgnoreAuthErrorAbort(),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectBufSize(cfg.ReconnectBufferSize),
		nats.DisconnectErrHandler(c.onDisconnect),
		nats.ReconnectHandler(c.onReconnect),
		nats.ErrorHandler(c.onAsyncError),
		nats.PermissionErrOnSubscribe(true),
	}
	opts = append(opts, cfg.NATSOptions...)
	url := strings.Join(cfg.URLs, ",")
	nc, err := dialEdge(ctx, url, cfg.ReconnectWait, opts)
	if err != nil {
		fail()
		if isAuthError(err) {
			return nil, fmt.Errorf("%w: %s as user %q: %w", ErrAuth, url, cfg.User, err)
		}
		return nil, fmt.Errorf("devicekit: connect to %s as user %q: %w", url, cfg.User, err)
	}
	c.nc = nc
	c.log.Debug("connected", logKeyURL, nc.ConnectedUrlRedacted(), message.LogKeyBootID, cfg.BootID.String())

	if c.box != nil {
		if err := c.resendAtConnect(ctx); err != nil {
			fail()
			return nil, err
		}
	}
	if err := c.publishBirth(ctx); err != nil {
		fail()
		return nil, err
	}

	var hbCtx context.Context
	hbCtx, c.hbCancel = context.WithCancel(c.life)
	if cfg.HeartbeatInterval > 0 {
		go c.heartbeats(hbCtx)
	} else {
		close(c.hbDone)
	}
	if c.box != nil {
		go c.resendLoop(hbCtx)
	} else {
		close(c.boxDone)
	}
	return c, nil
}

// Thing returns the thing the device is.
func (c *Client) Thing() topic.Thing { return c.thing }

// BootID returns the ID of the current boot.
func (c *Client) BootID() message.ID { return c.cfg.BootID }

// Publish sends e, stamping it first when its ID is zero; see
// [Device.Publish]. Telemetry is sent without waiting for the stream when
// Config.TelemetryUnacknowledged is set. With Config.Outbox set, an
// acknowledged publish is written to the outbox before it is sent; an error
// writing it is returned, wrapped, and nothing is sent. Envelopes left in
// the outbox by earlier publishes are sent first, in order; when one of
// them cannot be stored yet, e is not sent and the call fails with
// [ErrNotAcknowledged]. A publish that ends with [ErrNotAcknowledged] or
// [ErrClosed] leaves the envelope in the outbox, to be sent again, unchanged,
// by the running client (after a reconnection, every Config.OutboxRetry,
// before a later publish) or by the next Connect; do not publish its
// content again as a new envelope.
func (c *Client) Publish(ctx context.Context, e *message.Envelope) error {
	if err := c.enter(); err != nil {
		return err
	}
	defer c.inflight.Done()
	return c.publish(ctx, e, true)
}

// PublishEvent publishes an event named name with payload and returns its
// envelope ID; see [Device.PublishEvent] and [Client.Publish].
func (c *Client) PublishEvent(ctx context.Context, name string, payload any) (message.ID, error) {
	return c.publishNew(ctx, topic.Event, name, payload)
}

// PublishState publishes a state named name with payload and returns its
// envelope ID; see [Device.PublishState] and [Client.Publish].
func (c *Client) PublishState(ctx context.Context, name string, payload any) (message.ID, error) {
	return c.publishNew(ctx, topic.State, name, payload)
}

// PublishTelemetry publishes a measurement named name with payload and
// returns its envelope ID; see [Device.PublishTelemetry] and [Client.Publish].
func (c *Client) PublishTelemetry(ctx context.Context, name string, payload any) (message.ID, error) {
	return c.publishNew(ctx, topic.Telemetry, name, payload)
}

func (c *Client) publishNew(ctx context.Context, mt topic.MessageType, name string, payload any) (message.ID, error) {
	if err := c.enter(); err != nil {
		return message.ID{}, err
	}
	defer c.inflight.Done()
	e, err := newEnvelope(mt, name, payload)
	if err != nil {
		return message.ID{}, err
	}
	err = c.publish(ctx, e, true)
	return e.ID, err
}

// newEnvelope returns an unstamped envelope of type mt named name with
// payload encoded as msgpack, or an error wrapping ErrInvalidEnvelope.
func newEnvelope(mt topic.MessageType, name string, payload any) (*message.Envelope, error) {
	e := &message.Envelope{Type: mt, Name: name}
	if payload != nil {
		if err := message.SetPayload(e, payload); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
		}
	}
	return e, nil
}

// Request sends a request named name with payload on the device's req
// subject and returns the reply; see [Device.Request].
func (c *Client) Request(ctx context.Context, name string, payload any) (*message.Envelope, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	defer c.inflight.Done()
	e, err := newEnvelope(topic.Request, name, payload)
	if err != nil {
		return nil, err
	}
	c.stamp.Stamp(e)
	msg, err := e.ToMsg(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
	}
	ctx, cancel := withDefaultTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	c.stats.requests.Add(1)
	reply, err := c.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		c.stats.requestErrors.Add(1)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return nil, fmt.Errorf("%w: request %s (id %s): %w", ErrNoResponders, msg.Subject, e.ID, err)
		case errors.Is(err, nats.ErrReconnectBufExceeded):
			return nil, fmt.Errorf("%w: request %s (id %s): %w", ErrBufferFull, msg.Subject, e.ID, err)
		case errors.Is(err, nats.ErrConnectionClosed):
			return nil, fmt.Errorf("%w: request %s (id %s): %w", ErrClosed, msg.Subject, e.ID, err)
		case errors.Is(err, nats.ErrMaxPayload):
			return nil, fmt.Errorf("%w: request %s (id %s): %w", ErrInvalidEnvelope, msg.Subject, e.ID, err)
		}
		return nil, fmt.Errorf("devicekit: request %s (id %s): %w", msg.Subject, e.ID, err)
	}
	r := new(message.Envelope)
	if err := message.DecodeMsg(reply, r, nil); err != nil {
		c.stats.requestErrors.Add(1)
		return nil, fmt.Errorf("%w: request %s (id %s): %w", ErrInvalidReply, msg.Subject, e.ID, err)
	}
	if !r.CorrelationID.IsZero() && r.CorrelationID != e.ID {
		c.stats.requestErrors.Add(1)
		return nil, fmt.Errorf("%w: request %s (id %s): the reply answers %s", ErrInvalidReply, msg.Subject, e.ID, r.CorrelationID)
	}
	return r, nil
}

// Close stops command handling and heartbeats, publishes the device's death
// and closes the connection, all within Config.CloseTimeout; see
// [Device.Close]. Calls still in progress when the time is up fail with
// [ErrClosed]. A second Close waits for the first and returns its result.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.closeCh
		return c.closeErr
	}
	c.closed = true
	h := c.handling
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CloseTimeout)
	defer cancel()

	c.hbCancel()
	<-c.hbDone
	<-c.boxDone
	if h != nil {
		h.cancel(ErrClosed)
		waitOrDone(ctx, h.done)
	}
	// Calls in progress get half the time to finish; the death the rest.
	inflight := make(chan struct{})
	go func() { c.inflight.Wait(); close(inflight) }()
	half, cancelHalf := context.WithTimeout(ctx, c.cfg.CloseTimeout/2)
	waitOrDone(half, inflight)
	cancelHalf()

	err := c.publishDeath(ctx, "shutdown")
	if err != nil {
		c.log.Warn("death not published", message.LogKeyError, err)
		if c.nc.IsConnected() {
			// Deliver at least what is buffered, such as unacknowledged
			// telemetry.
			_ = c.nc.FlushWithContext(ctx)
		}
	}
	if n, _ := c.nc.Buffered(); n > 0 && !c.nc.IsConnected() {
		c.log.Error("closing while disconnected: buffered messages discarded", "bytes", n)
	}
	c.nc.Close()
	if c.box != nil {
		if n := c.box.len(); n > 0 {
			c.log.Warn("closing with unacknowledged envelopes in the outbox; the next Connect sends them again", "count", n)
		}
		c.box.close()
	}
	c.cancelLife()
	c.closeErr = err
	close(c.closeCh)
	return err
}

func waitOrDone(ctx context.Context, ch <-chan struct{}) {
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// enter registers a call in progress, or returns ErrClosed.
func (c *Client) enter() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.inflight.Add(1)
	return nil
}

// withDefaultTimeout applies d to ctx when it has no deadline.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

func (c *Client) onDisconnect(_ *nats.Conn, err error) {
	c.stats.disconnects.Add(1)
	if err != nil {
		c.log.Warn("disconnected", message.LogKeyError, err)
	} else {
		c.log.Debug("disconnected")
	}
}

func (c *Client) onReconnect(nc *nats.Conn) {
	c.stats.reconnects.Add(1)
	c.log.Info("reconnected", logKeyURL, nc.ConnectedUrlRedacted())
	for _, kick := range []chan struct{}{c.kick, c.boxKick} {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

func (c *Client) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	attrs := []any{message.LogKeyError, err}
	if sub != nil {
		attrs = append(attrs, message.LogKeySubject, sub.Subject)
	}
	if errors.Is(err, nats.ErrPermissionViolation) {
		c.perms.record(err)
		c.log.Error("permission violation: the device's NATS permissions do not match its thing", attrs...)
		return
	}
	c.log.Warn("asynchronous error", attrs...)
}

// permissionErrors remembers the permission violations the server reported,
// by subject, so that a publish that is never acknowledged can say why.
type permissionErrors struct {
	mu   sync.Mutex
	last map[string]permissionError
}

type permissionError struct {
	err error
	n   uint64 // how many violations for the subject so far
}

// record notes err, a permission violation, under the subject it names.
func (p *permissionErrors) record(err error) {
	subj := violatedSubject(err.Error())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = make(map[string]permissionError)
	}
	if len(p.last) > 64 { // the device uses a handful of subjects; stay bounded
		clear(p.last)
	}
	pe := p.last[subj]
	p.last[subj] = permissionError{err: err, n: pe.n + 1}
}

// get returns the count of violations for subj and the last one.
func (p *permissionErrors) get(subj string) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pe := p.last[subj]
	return pe.n, pe.err
}

// violatedSubject extracts the subject from a server permission error such
// as `nats: permissions violation: Permissions Violation for Publish to
// "acme.hq.reader.r1.evt"`.
func violatedSubject(s string) string {
	for _, marker := range []string{"Publish to ", "Subscription to "} {
		if i := strings.Index(s, marker); i >= 0 {
			rest := strings.TrimSpace(s[i+len(marker):])
			rest = strings.Trim(rest, "\"'")
			if j := strings.IndexAny(rest, " \"'"); j >= 0 {
				rest = rest[:j]
			}
			return rest
		}
	}
	return ""
}
