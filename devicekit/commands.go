package devicekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// errStopped is the cancellation cause of handling stopped by Stop.
var errStopped = errors.New("devicekit: command handling stopped")

// HandleCommands subscribes to the device's cmd subject and handles the
// commands that arrive there with h, one at a time; see
// [Device.HandleCommands] for the acks it sends. It returns once the server
// has registered the subscription, or, when the server is unreachable, after
// Config.AckTimeout (the subscription is registered on reconnection). ctx
// bounds that wait only (an error wrapping ctx's error when it ends
// first): handling runs until [Subscription.Stop] or Close. It returns
// [ErrHandlerRunning] while another handler runs, and [ErrClosed] after
// Close.
//
// The device remembers the outcome of its last Config.CommandHistory
// commands across handlers, for the whole boot. HandleCommands panics if h
// is nil.
//
// Only commands signed for this device by one of Config.CommandKeys reach
// h; anything else on the cmd subject is dropped without an ack (see
// Config.CommandKeys). Without CommandKeys HandleCommands returns an error
// wrapping [ErrInvalidConfig].
func (c *Client) HandleCommands(ctx context.Context, h Handler) (Subscription, error) {
	if h == nil {
		panic("devicekit: HandleCommands: nil Handler")
	}
	if len(c.cfg.CommandKeys) == 0 {
		return nil, fmt.Errorf("%w: no CommandKeys: the device could not tell central's commands from forged ones", ErrInvalidConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("devicekit: handle commands: %w", err)
	}
	// Handling lives as long as the device, until Stop or Close; ctx
	// bounds only the subscription below.
	runCtx, cancelRun := context.WithCancelCause(c.life)
	s := &commandSub{
		cancel: cancelRun,
		done:   make(chan struct{}),
		proc: &processor{
			now:     c.cfg.Now,
			handler: h,
			history: c.history,
			log:     c.log,
			ack:     c.sendAck,
			stats:   &c.stats,
			verify:  commandVerifier(c.cfg.Thing, c.cfg.CommandKeys),
		},
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		cancelRun(nil)
		return nil, ErrClosed
	case c.handling != nil:
		c.mu.Unlock()
		cancelRun(nil)
		return nil, ErrHandlerRunning
	}
	c.handling = s // from now on Close cancels runCtx and waits for s.done
	c.mu.Unlock()

	startCtx, cancelStart := startContext(ctx, runCtx)
	sub, first, err := c.subscribe(startCtx)
	cancelStart()
	if err != nil {
		c.mu.Lock()
		c.handling = nil
		c.mu.Unlock()
		cancelRun(nil)
		close(s.done)
		return nil, err
	}
	go s.run(runCtx, c, sub, first)
	return s, nil
}

// startContext returns the context of a HandleCommands start-up: it ends
// when ctx, the caller's, ends or when run, the handling's, does (Stop or
// Close during the start), with run's cause then.
func startContext(ctx, run context.Context) (context.Context, context.CancelFunc) {
	start, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(run, func() { cancel(context.Cause(run)) })
	return start, func() {
		stop()
		cancel(nil)
	}
}

// subscribe subscribes to the device's commands and waits, for at most
// AckTimeout, until the server has registered the subscription. It returns
// the first command too, when one has already arrived.
func (c *Client) subscribe(ctx context.Context) (*nats.Subscription, *nats.Msg, error) {
	sub, err := c.nc.SubscribeSync(c.cmdSubj)
	if err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil, nil, fmt.Errorf("%w: subscribe to %s: %w", ErrClosed, c.cmdSubj, err)
		}
		return nil, nil, fmt.Errorf("devicekit: subscribe to %s: %w", c.cmdSubj, err)
	}
	// Commands wait in the subscription while one runs; never drop one for
	// lack of room short of 64 MiB.
	_ = sub.SetPendingLimits(-1, 64<<20)

	fctx, cancel := context.WithTimeout(ctx, c.cfg.AckTimeout)
	err = c.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			_ = sub.Unsubscribe()
			if cause := context.Cause(ctx); errors.Is(cause, ErrClosed) {
				return nil, nil, fmt.Errorf("%w: subscribe to %s", ErrClosed, c.cmdSubj)
			}
			return nil, nil, fmt.Errorf("devicekit: subscribe to %s: %w", c.cmdSubj, ctx.Err())
		}
		c.log.Warn("command subscription not confirmed by the server yet", message.LogKeySubject, c.cmdSubj, message.LogKeyError, err)
		return sub, nil, nil
	}
	// The server answers a forbidden subscription before the flush's PONG,
	// so a permission violation is known by now (nats.PermissionErrOnSubscribe).
	first, err := sub.NextMsg(0)
	if errors.Is(err, nats.ErrPermissionViolation) {
		_ = sub.Unsubscribe()
		return nil, nil, fmt.Errorf("%w: subscribe to %s: %w", ErrPermissionDenied, c.cmdSubj, err)
	}
	return sub, first, nil
}

// sendAck publishes an ack of the command with ID id, waiting for the
// stream, for at most Config.Timeout (and no longer than the device lives).
func (c *Client) sendAck(id message.ID, st message.AckStatus, text string) error {
	e, err := newEnvelope(topic.Ack, message.NameAck, message.Ack{CommandID: id, Status: st, Error: text})
	if err != nil {
		return err
	}
	e.CorrelationID = id
	ctx, cancel := context.WithTimeout(c.life, c.cfg.Timeout)
	defer cancel()
	return c.publish(ctx, e, false)
}

// commandSub is the Subscription of a running command handler.
type commandSub struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
	proc   *processor
	err    error // why handling stopped; set before done is closed
}

// run handles first, if any, and then every command that arrives, until ctx
// ends or the subscription does.
func (s *commandSub) run(ctx context.Context, c *Client, sub *nats.Subscription, first *nats.Msg) {
	var endErr error // why the subscription ended, when ctx did not
	defer func() {
		_ = sub.Unsubscribe()
		c.mu.Lock()
		if c.handling == s {
			c.handling = nil
		}
		c.mu.Unlock()
		switch cause := context.Cause(ctx); {
		case endErr != nil:
			s.err = endErr
		case cause == nil:
			s.err = ErrClosed // the connection closed under us
		case errors.Is(cause, errStopped):
			s.err = nil
		default:
			s.err = cause
		}
		close(s.done)
	}()
	if first != nil {
		s.proc.process(ctx, first)
	}
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, nats.ErrSlowConsumer):
				c.log.Error("commands dropped: too many waiting", message.LogKeySubject, sub.Subject, message.LogKeyError, err)
				continue
			case errors.Is(err, nats.ErrPermissionViolation):
				endErr = fmt.Errorf("%w: %w", ErrPermissionDenied, err)
			case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrBadSubscription):
				endErr = fmt.Errorf("%w: %w", ErrClosed, err)
			default:
				endErr = err
			}
			c.log.Error("command handling ended", message.LogKeyError, err)
			return
		}
		s.proc.process(ctx, msg)
	}
}

// Stop stops handling and waits until it has stopped.
func (s *commandSub) Stop() {
	s.cancel(errStopped)
	<-s.done
}

// Done is closed when handling has stopped.
func (s *commandSub) Done() <-chan struct{} { return s.done }

// Err returns why handling stopped; see [Subscription.Err].
func (s *commandSub) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// processor decides what to do with each command and acks it. It is used
// by one goroutine at a time.
type processor struct {
	now     func() time.Time
	handler Handler
	history *history
	log     *slog.Logger
	// ack sends an ack of command id; it bounds its own time.
	ack   func(id message.ID, st message.AckStatus, text string) error
	stats *counters
	// verify checks a command's signature (commandVerifier); nil only in
	// tests of the processor itself.
	verify func(msg *nats.Msg) (signer string, err error)
}

// process handles one command message; ctx ends when handling stops.
func (p *processor) process(ctx context.Context, msg *nats.Msg) {
	p.stats.commands.Add(1)
	if p.verify != nil {
		if signer, err := p.verify(msg); err != nil {
			// Not central's, nor the edge's: a publish-ack or a service's
			// answer steered here, or a forged or replayed command. Its ID
			// is not trusted either, so it is neither acked nor recorded.
			p.stats.commandsRefused.Add(1)
			p.log.Warn("command refused: not signed for the device by a trusted key",
				logKeySecurity, SecurityCommandRefused, message.LogKeySubject, msg.Subject, logKeySigner, signer, message.LogKeyError, err)
			return
		}
	}
	env := new(message.Envelope)
	// Commands travel on the device's own cmd subject, which only the edge
	// service may publish on; the envelope's source is whoever sent it.
	err := message.DecodeMsg(msg, env, &message.DecodeOptions{SkipSubjectCheck: true})
	if err == nil && env.Type != topic.Command {
		err = fmt.Errorf("message type %q is not a command", env.Type)
	}
	var cmd message.Command
	if err == nil {
		cmd, err = message.DecodePayload[message.Command](env)
	}
	if err == nil && cmd.Action == "" {
		err = errors.New("command without an action")
	}
	if err != nil {
		id := env.ID
		if id.IsZero() {
			id, _ = message.ParseID(msg.Header.Get(message.HeaderMsgID))
		}
		if id.IsZero() {
			p.log.Warn("malformed command without an ID dropped", message.LogKeySubject, msg.Subject, message.LogKeyError, err)
			return
		}
		p.finish(id, "", outcome{status: message.AckRejected, text: "malformed command: " + err.Error()})
		return
	}

	log := p.log.With(message.LogKeyMsgID, env.ID.String(), logKeyAction, cmd.Action)
	if o, ok := p.history.lookup(env.ID, cmd.IdempotencyKey); ok {
		log.Info("repeated command not run again", logKeyStatus, o.status)
		p.finish(env.ID, "", o)
		return
	}
	if cmd.Expired(p.now()) {
		log.Warn("expired command not run", "deadline", cmd.Deadline)
		p.finish(env.ID, "", outcome{status: message.AckExpired})
		return
	}
	if err := p.ack(env.ID, message.AckAccepted, ""); err != nil {
		log.Warn("accepted ack not published", message.LogKeyError, err)
	}
	// Sending the accepted ack took time: check the deadline again, so that
	// an unlock never runs late.
	if cmd.Expired(p.now()) {
		log.Warn("command expired before it could run", "deadline", cmd.Deadline)
		p.finish(env.ID, "", outcome{status: message.AckExpired})
		return
	}

	if ctx.Err() != nil {
		// Handling stopped before the command could run. It did not run, so
		// nothing is recorded: the command may be sent again.
		p.send(env.ID, outcome{status: message.AckFailed, text: "not run: command handling stopped"})
		return
	}
	p.stats.commandsRun.Add(1)
	err = p.run(ctx, Command{Command: cmd, ID: env.ID, Envelope: env})
	o := outcome{status: message.AckCompleted}
	switch {
	case errors.Is(err, ErrCommandRejected):
		o = outcome{status: message.AckRejected, text: err.Error()}
	case err != nil:
		o = outcome{status: message.AckFailed, text: err.Error()}
	}
	log.Info("command handled", logKeyStatus, o.status, message.LogKeyError, err)
	p.finish(env.ID, cmd.IdempotencyKey, o)
}

// run runs the handler with a context that ends at the command's deadline,
// turning a panic into an error.
func (p *processor) run(ctx context.Context, cmd Command) (err error) {
	var cancel context.CancelFunc
	if cmd.Deadline.IsZero() {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, cmd.Deadline.Sub(p.now()))
	}
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return p.handler.HandleCommand(ctx, cmd)
}

// finish records the outcome of command id (and of its idempotency key,
// when the command ran) and acks it.
func (p *processor) finish(id message.ID, key string, o outcome) {
	p.history.record(id, key, o)
	p.send(id, o)
}

// send acks command id with o.
func (p *processor) send(id message.ID, o outcome) {
	if err := p.ack(id, o.status, o.text); err != nil {
		p.log.Error("ack not published", message.LogKeyMsgID, id.String(), logKeyStatus, o.status, message.LogKeyError, err)
	}
}

// outcome is how a command ended.
type outcome struct {
	status message.AckStatus
	text   string
}

// history remembers the outcomes of recent commands by ID and by
// idempotency key, forgetting the least recently used beyond its capacity.
type history struct {
	mu  sync.Mutex
	lru *lru[string, outcome]
}

func newHistory(n int) *history { return &history{lru: newLRU[string, outcome](n)} }

func idKey(id message.ID) string { return "id:" + id.String() }
func idemKey(k string) string    { return "key:" + k }

// lookup returns the recorded outcome of the command with ID id, or of
// another command with the same idempotency key (then also recording it
// under id).
func (h *history) lookup(id message.ID, key string) (outcome, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o, ok := h.lru.get(idKey(id)); ok {
		return o, true
	}
	if key == "" {
		return outcome{}, false
	}
	o, ok := h.lru.get(idemKey(key))
	if ok {
		h.lru.put(idKey(id), o)
	}
	return o, ok
}

// record records o under id and, when key is not empty, under key.
func (h *history) record(id message.ID, key string, o outcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lru.put(idKey(id), o)
	if key != "" {
		h.lru.put(idemKey(key), o)
	}
}

// commandVerifier returns the check of commands for t signed by one of keys.
func commandVerifier(t topic.Thing, keys []string) func(*nats.Msg) (string, error) {
	keys = slices.Clone(keys)
	return func(m *nats.Msg) (string, error) { return message.VerifyCommand(m, t, keys) }
}
