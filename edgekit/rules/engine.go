package rules

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// NATS headers of every message the engine publishes, by which it
// recognises its own outputs when they come back as inputs.
const (
	// HeaderRule names the rule whose firing produced the message.
	HeaderRule = "Lintel-Rule"
	// HeaderRuleChain lists, comma-separated and oldest first, the rules
	// whose firings led to the message, ending with HeaderRule's: "a,b"
	// for an output of rule b triggered by an output of rule a.
	HeaderRuleChain = "Lintel-Rule-Chain"
	// HeaderRuleDepth is the length of that chain: one more than the depth
	// of the message that triggered the firing, which is 0 for anything
	// not published by the engine.
	HeaderRuleDepth = "Lintel-Rule-Depth"
)

// Defaults applied by Start to the zero fields of a Config.
const (
	// DefaultMaxDepth is the deepest chain of firings: a message of the
	// edge at this depth (HeaderRuleDepth) triggers nothing.
	DefaultMaxDepth = 4
	// DefaultMaxKeys is how many episodes a rule with For tracks at once.
	DefaultMaxKeys = 10000
	// DefaultTimeout bounds each JetStream publish of an event.
	DefaultTimeout = 5 * time.Second
	// DefaultLogInterval is the least time between two log records about
	// the drops or errors of one rule.
	DefaultLogInterval = time.Minute
	// DefaultSeenSize is how many recent input envelope IDs the engine
	// remembers, so that a message delivered twice (a device's retried
	// publish) triggers the rules once.
	DefaultSeenSize = 4096
)

// Keys of the engine's log records besides the shared ones of package
// message (message.LogKeyOrg, LogKeyEdge, LogKeySubject, LogKeyMsgID and
// LogKeyError).
const (
	logKeyRule  = "rule"
	logKeyKey   = "key"
	logKeyCount = "count"
	logKeyDepth = "depth"
)

// Config configures an [Engine]. Org, Edge and Conn are required; the zero
// value of every other field means its default.
type Config struct {
	// Org and Edge name the edge. The engine looks at "{Org}.{Edge}.>" and
	// publishes its events as the edge itself, on
	// "{Org}.{Edge}._edge.{Edge}.evt".
	Org, Edge string
	// Conn is the edge service's connection (edgekit.Node.Conn): it must
	// be allowed to subscribe to "{Org}.{Edge}.>" and to publish there,
	// device cmd subjects included.
	Conn *nats.Conn
	// JetStream publishes the events, so that they are stored in the edge's
	// event stream like any event (edgekit.Node.JetStream). Nil means
	// jetstream.New(Conn).
	JetStream jetstream.JetStream
	// SignCommand signs each command the engine sends for its target with
	// the edge's command key (edgekit.Node.SignCommand): devices act only
	// on signed commands. Nil leaves the engine unable to command devices:
	// every command action fails and is counted as an error.
	SignCommand func(msg *nats.Msg, target topic.Thing) error
	// MaxDepth is the deepest chain of firings; see HeaderRuleDepth. Zero
	// means DefaultMaxDepth.
	MaxDepth int
	// MaxKeys is how many episodes each rule with For tracks at once;
	// beyond it new keys are refused and counted as errors. Zero means
	// DefaultMaxKeys.
	MaxKeys int
	// Timeout bounds each JetStream publish. Zero means DefaultTimeout.
	Timeout time.Duration
	// LogInterval is the least time between two log records about the
	// drops or the errors of one rule. Zero means DefaultLogInterval.
	LogInterval time.Duration
	// Logger receives the engine's records; nil discards them.
	Logger *slog.Logger
	// Now is the engine's clock: for rate limits, command deadlines and
	// envelope times. Nil means time.Now. The durations of rules with For
	// are measured by real timers.
	Now func() time.Time
	// IDs makes the envelope IDs of the outputs. Nil means a generator of
	// the engine's own, reading Now.
	IDs *message.IDGenerator
}

// Engine is a running rules engine: it subscribes to everything of its
// edge, evaluates its [RuleSet] on each message in order, and publishes
// the actions of the rules that fire. Make one with [Start] and stop it
// with [Engine.Stop]; its methods are safe for concurrent use.
type Engine struct {
	cfg   Config
	scope Scope
	log   *slog.Logger
	js    jetstream.JetStream
	self  topic.Thing
	sub   *nats.Subscription
	rules atomic.Pointer[RuleSet]

	mu       sync.Mutex // guards everything below, and the evaluation scratch
	stopped  bool
	state    map[string]*ruleState
	in       Input
	env      message.Envelope
	seen     idRing
	totals   counters
	depthLog logGate
	outs     []output // the subscription callback's outputs, reused

	wg       sync.WaitGroup // firings being published
	done     chan struct{}
	stopOnce sync.Once
}

// counters are the engine's totals.
type counters struct {
	received, ignored, duplicates, inputs, droppedDepth uint64
	fired, droppedRate, droppedLoop, errors             uint64
	publishErrors                                       uint64
	loads, reloadErrors                                 uint64
}

// ruleState is what the engine keeps per rule name across reloads.
type ruleState struct {
	r       *rule
	limiter *rate.Limiter
	held    map[string]*episode // episodes of a rule with For, by key
	stats   RuleStats
	logs    [numDropKinds]logGate
}

// episode is one key's run of a rule with For: pending until its timer
// fires, then fired until the condition stops holding.
type episode struct {
	timer *time.Timer
	fired bool
	trig  trigger
}

// trigger is what an output needs to know of the message that caused it.
type trigger struct {
	subject string
	id      message.ID
	chain   []string
	depth   int
	key     string
}

// output is one firing to publish: every action of r.
type output struct {
	st   *ruleState
	r    *rule
	trig trigger
}

// Start starts an engine for cfg's edge with the rules of initial (nil
// means none): it subscribes to "{Org}.{Edge}.>" on cfg.Conn, with one
// subscription whose messages are handled in order, and returns once the
// server has registered it. ctx bounds the start only (with
// Config.Timeout): the engine runs until [Engine.Stop], whatever becomes
// of ctx.
//
// It returns an error wrapping ErrInvalidConfig for a bad cfg, ErrScope
// when initial is for another edge, or the error of subscribing.
func Start(ctx context.Context, cfg Config, initial *RuleSet) (*Engine, error) {
	scope := Scope{Org: cfg.Org, Edge: cfg.Edge}
	edge, err := scope.filter()
	if err != nil {
		return nil, err
	}
	if cfg.Conn == nil {
		return nil, fmt.Errorf("%w: no connection", ErrInvalidConfig)
	}
	if cfg.MaxDepth < 0 || cfg.MaxKeys < 0 || cfg.Timeout < 0 || cfg.LogInterval < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.LogInterval == 0 {
		cfg.LogInterval = DefaultLogInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IDs == nil {
		cfg.IDs = &message.IDGenerator{Now: cfg.Now}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	js := cfg.JetStream
	if js == nil {
		if js, err = jetstream.New(cfg.Conn); err != nil {
			return nil, fmt.Errorf("rules: jetstream: %w", err)
		}
	}
	e := &Engine{
		cfg:   cfg,
		scope: scope,
		log:   log.With(message.LogKeyOrg, cfg.Org, message.LogKeyEdge, cfg.Edge),
		js:    js,
		self:  topic.Thing{Org: cfg.Org, Edge: cfg.Edge, Type: topic.ThingTypeEdge, Code: cfg.Edge},
		state: make(map[string]*ruleState),
		seen:  newIDRing(DefaultSeenSize),
		done:  make(chan struct{}),
	}
	if err := e.Load(initial); err != nil {
		return nil, err
	}
	sub, err := cfg.Conn.Subscribe(edge.String(), e.handle)
	if err != nil {
		return nil, fmt.Errorf("rules: subscribe %s: %w", edge, err)
	}
	e.sub = sub
	fctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	err = cfg.Conn.FlushWithContext(fctx)
	cancel()
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("rules: subscribe %s: %w", edge, err)
	}
	e.log.Info("rules engine started", logKeyCount, e.Rules().Len())
	return e, nil
}

// Rules returns the rule set in force.
func (e *Engine) Rules() *RuleSet { return e.rules.Load() }

// Load puts rs in force (nil means no rules), at once: the next message is
// evaluated with it. Per rule name, the engine keeps its statistics and
// its rate limiter (a new limiter, full, only when the rule's rate
// changed). Episodes of rules with For are kept when the rule is unchanged
// (the same definition) and dropped, their timers stopped, when it changed,
// was disabled or removed: a changed rule starts afresh with the next
// message on which its condition holds.
//
// It returns an error wrapping ErrScope, and changes nothing, when rs was
// parsed for another edge.
func (e *Engine) Load(rs *RuleSet) error {
	if rs == nil {
		rs = empty(e.scope)
	}
	if rs.scope != e.scope {
		return fmt.Errorf("%w: rules for %s.%s, engine of %s.%s", ErrScope, rs.scope.Org, rs.scope.Edge, e.scope.Org, e.scope.Edge)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	next := make(map[string]*ruleState, len(rs.rules))
	for _, r := range rs.rules {
		st := e.state[r.name]
		switch {
		case st == nil:
			st = &ruleState{r: r, limiter: rate.NewLimiter(r.limit, r.burst), held: make(map[string]*episode)}
		default:
			if st.r.fp != r.fp || !r.enabled {
				st.dropEpisodes()
			}
			if st.r.limit != r.limit || st.r.burst != r.burst {
				st.limiter = rate.NewLimiter(r.limit, r.burst)
			}
			st.r = r
		}
		next[r.name] = st
	}
	for name, st := range e.state {
		if _, ok := next[name]; !ok {
			st.dropEpisodes()
		}
	}
	e.state = next
	e.rules.Store(rs)
	e.totals.loads++
	return nil
}

// Reload parses data for the engine's edge and puts it in force, as Parse
// and Load do. An invalid document leaves the rules in force as they are
// and returns Parse's error.
func (e *Engine) Reload(data []byte) error {
	rs, err := Parse(data, e.scope)
	if err != nil {
		e.mu.Lock()
		e.totals.reloadErrors++
		e.mu.Unlock()
		return err
	}
	if err := e.Load(rs); err != nil {
		return err
	}
	e.log.Info("rules reloaded", logKeyCount, rs.Len())
	return nil
}

// Stop stops the engine: it unsubscribes, stops the timers of rules with
// For, and returns once the firings being published are out (each bounded
// by Config.Timeout). Stop is the only way to stop the engine, and is
// idempotent.
func (e *Engine) Stop() {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.stopped = true
		for _, st := range e.state {
			st.dropEpisodes()
		}
		e.mu.Unlock()
		if e.sub != nil {
			_ = e.sub.Unsubscribe()
		}
		e.wg.Wait()
		close(e.done)
		e.log.Info("rules engine stopped")
	})
}

// Done returns a channel that is closed once the engine has stopped.
func (e *Engine) Done() <-chan struct{} { return e.done }

// handle is the subscription's callback: messages arrive one at a time, in
// order.
func (e *Engine) handle(msg *nats.Msg) {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return
	}
	outs := e.process(msg, e.outs[:0])
	e.outs = outs[:0]
	if len(outs) > 0 {
		e.wg.Add(1)
	}
	e.mu.Unlock()
	if len(outs) > 0 {
		defer e.wg.Done()
		for i := range outs {
			e.publish(&outs[i])
		}
		clear(outs) // let go of the triggers until the next message
	}
}

// process evaluates msg and returns the firings to publish, appended to
// outs. e.mu is held.
func (e *Engine) process(msg *nats.Msg, outs []output) []output {
	e.totals.received++
	if strings.HasSuffix(msg.Subject, "."+string(topic.Command)) {
		e.totals.ignored++ // commands are never inputs
		return outs
	}
	env := &e.env
	if err := message.DecodeMsg(msg, env, nil); err != nil {
		e.totals.ignored++
		e.log.Debug("not an envelope; ignored", message.LogKeySubject, msg.Subject, message.LogKeyError, err)
		return outs
	}
	if env.Type == topic.Command {
		e.totals.ignored++
		return outs
	}
	if !e.seen.add(env.ID) {
		e.totals.duplicates++
		return outs
	}
	chain, depth := e.loopInfo(msg, env)
	now := e.cfg.Now()
	if depth >= e.cfg.MaxDepth {
		e.totals.droppedDepth++
		if n, ok := e.depthLog.due(now, e.cfg.LogInterval); ok {
			e.log.Warn("message at the deepest chain of firings; no rule evaluated", message.LogKeySubject, msg.Subject,
				message.LogKeyMsgID, env.ID.String(), logKeyDepth, depth, HeaderRuleChain, strings.Join(chain, ","), logKeyCount, n)
		}
		return outs
	}
	e.totals.inputs++
	in := &e.in
	in.Envelope, in.Subject, in.Chain, in.Payload = env, msg.Subject, chain, nil
	rs := e.rules.Load()
	for _, f := range rs.Evaluate(in) {
		st := e.state[f.Rule]
		if st == nil || st.r != f.rule {
			continue // cannot happen: Load swaps rules and state together under e.mu
		}
		trig := trigger{subject: msg.Subject, id: env.ID, chain: chain, depth: depth, key: f.Key}
		switch f.Outcome {
		case Looped:
			st.stats.DroppedLoop++
			e.totals.droppedLoop++
			e.logDrop(st, dropLoop, now, "rule not fired: the message stems from its own firing", message.LogKeySubject, msg.Subject, HeaderRuleChain, strings.Join(chain, ","))
		case Failed:
			st.stats.Errors++
			e.totals.errors++
			e.logDrop(st, dropError, now, "rule not evaluated", message.LogKeySubject, msg.Subject, message.LogKeyMsgID, env.ID.String(), message.LogKeyError, f.Err)
		case Matched:
			if f.rule.forDur == 0 {
				if e.allow(st, now) {
					outs = append(outs, output{st: st, r: f.rule, trig: trig})
				}
				continue
			}
			e.arm(st, trig, now)
		case Unmatched:
			if ep := st.held[f.Key]; ep != nil {
				ep.stop()
				delete(st.held, f.Key)
			}
		}
	}
	in.Envelope, in.Chain, in.Payload = nil, nil, nil
	return outs
}

// loopInfo returns the chain and depth of msg: from its headers when it
// comes from the edge itself, which only the edge service and central's
// services may publish as; anything else is depth 0, whatever its headers
// say, so that a device cannot silence a rule by claiming to be its
// output.
func (e *Engine) loopInfo(msg *nats.Msg, env *message.Envelope) ([]string, int) {
	if env.Source != e.self || msg.Header == nil {
		return nil, 0
	}
	var chain []string
	if s := msg.Header.Get(HeaderRuleChain); s != "" {
		chain = strings.Split(s, ",")
	}
	depth := len(chain)
	if d, err := strconv.Atoi(msg.Header.Get(HeaderRuleDepth)); err == nil && d > depth {
		depth = d
	}
	return chain, depth
}

// allow takes a token from st's bucket, counting and logging a drop when
// there is none. e.mu is held.
func (e *Engine) allow(st *ruleState, now time.Time) bool {
	if st.limiter.AllowN(now, 1) {
		st.stats.Fired++
		e.totals.fired++
		return true
	}
	st.stats.DroppedRate++
	e.totals.droppedRate++
	e.logDrop(st, dropRate, now, "rule not fired: over its rate limit")
	return false
}

// arm starts the episode of trig.key of st's rule unless one runs. e.mu is
// held.
func (e *Engine) arm(st *ruleState, trig trigger, now time.Time) {
	if _, ok := st.held[trig.key]; ok {
		return // pending, or fired already in this episode
	}
	if len(st.held) >= e.cfg.MaxKeys {
		st.stats.Errors++
		e.totals.errors++
		e.logDrop(st, dropError, now, "rule not armed: too many keys", logKeyKey, trig.key)
		return
	}
	ep := &episode{trig: trig}
	st.held[trig.key] = ep
	ep.timer = time.AfterFunc(st.r.forDur, func() { e.expire(st, ep) })
}

// expire fires the episode ep of st's rule once its condition has held
// long enough, unless the episode has ended or the rule changed meanwhile.
func (e *Engine) expire(st *ruleState, ep *episode) {
	e.mu.Lock()
	if e.stopped || e.state[st.r.name] != st || st.held[ep.trig.key] != ep || ep.fired {
		e.mu.Unlock()
		return
	}
	ep.fired, ep.timer = true, nil
	ok := e.allow(st, e.cfg.Now())
	if ok {
		e.wg.Add(1)
	}
	o := output{st: st, r: st.r, trig: ep.trig}
	e.mu.Unlock()
	if ok {
		defer e.wg.Done()
		e.publish(&o)
	}
}

// stop stops ep's timer, if it runs.
func (ep *episode) stop() {
	if ep.timer != nil {
		ep.timer.Stop()
		ep.timer = nil
	}
}

// dropEpisodes ends every episode of st. e.mu is held.
func (st *ruleState) dropEpisodes() {
	for k, ep := range st.held {
		ep.stop()
		delete(st.held, k)
	}
}

// Kinds of drops and errors, each logged at most once per LogInterval per
// rule.
const (
	dropRate = iota
	dropLoop
	dropError
	dropPublish
	numDropKinds
)

// logGate lets one log record through per interval and counts the events
// in between.
type logGate struct {
	last  time.Time
	count int
}

// due counts one event and reports whether to log it now, with the number
// of events since the last record.
func (g *logGate) due(now time.Time, interval time.Duration) (int, bool) {
	g.count++
	if !g.last.IsZero() && now.Sub(g.last) < interval && now.Sub(g.last) >= 0 {
		return 0, false
	}
	n := g.count
	g.last, g.count = now, 0
	return n, true
}

// logDrop logs a drop or an error of st's rule, at most once per interval.
// e.mu is held.
func (e *Engine) logDrop(st *ruleState, kind int, now time.Time, msg string, args ...any) {
	n, ok := st.logs[kind].due(now, e.cfg.LogInterval)
	if !ok {
		return
	}
	level := slog.LevelWarn
	if kind == dropPublish {
		level = slog.LevelError
	}
	e.log.Log(context.Background(), level, msg, append([]any{logKeyRule, st.r.name, logKeyCount, n}, args...)...)
}

// idRing remembers the last n IDs added.
type idRing struct {
	set  map[message.ID]struct{}
	ring []message.ID
	next int
}

func newIDRing(n int) idRing {
	return idRing{set: make(map[message.ID]struct{}, n), ring: make([]message.ID, 0, n)}
}

// add adds id and reports whether it was new.
func (r *idRing) add(id message.ID) bool {
	if _, ok := r.set[id]; ok {
		return false
	}
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, id)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % len(r.ring)
	}
	r.set[id] = struct{}{}
	return true
}
