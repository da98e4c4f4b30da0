package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for [IngestConfig].
const (
	DefaultDurable        = "lintel-storage"
	DefaultBatchSize      = 1000
	DefaultBatchWait      = 200 * time.Millisecond
	DefaultReplayedHeader = "Lintel-Replayed"
	DefaultReplayedAfter  = 5 * time.Minute
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultMaintainEvery  = time.Hour
	// DefaultTakeoverPoll is how often a standby ingest tries to become
	// the active one.
	DefaultTakeoverPoll = time.Second
)

// Headers of a dead-lettered message, beside the original's own headers.
const (
	HeaderDeadLetterReason = "Lintel-Dead-Letter-Reason"
	HeaderOriginalSubject  = "Lintel-Original-Subject"
	HeaderOriginalStream   = "Lintel-Original-Stream"
	HeaderOriginalSequence = "Lintel-Original-Sequence"
	// HeaderOriginalSource carries the original's Nats-Stream-Source
	// header, which JetStream refuses on a published message.
	HeaderOriginalSource = "Lintel-Original-Source"
)

// Log keys.
const (
	logSubject = "subject"
	logMsgID   = "msg_id"
	logErr     = "err"
	logStream  = "stream"
	logSource  = "source"
	logEdge    = "edge"
	logReason  = "reason"
	logFirst   = "first_seq"
	logLast    = "last_seq"
)

// DecodeFunc turns a JetStream message into the event to store. It fills
// every field but Time and Replayed; ReceivedAt may be left zero. An error
// sends the message to the dead-letter subject.
type DecodeFunc func(msg jetstream.Msg) (Event, error)

// OriginChecker decides whether a message of the ingest's stream may be
// believed, by where it came from: *[authz.SourceTable] checks the
// stream-source header against the edges of an org. An error refuses the
// message.
type OriginChecker interface {
	// Check returns where the message on subject with headers h came
	// from, or an error that refuses it.
	Check(subject string, h nats.Header) (authz.Origin, error)
}

var _ OriginChecker = (*authz.SourceTable)(nil)

// AnyOrigin believes every message. Use it only for a stream that no edge
// feeds (a single site, a test): with sourced edges, use the org's
// *[authz.SourceTable].
var AnyOrigin OriginChecker = anyOrigin{}

type anyOrigin struct{}

func (anyOrigin) Check(string, nats.Header) (authz.Origin, error) { return authz.Origin{}, nil }

// IngestConfig configures an [Ingest]. Stream, DeadLetterSubject and
// Origins are required; the zero value of every other field means its
// default.
type IngestConfig struct {
	// Stream is the name of central's event stream. Required.
	Stream string
	// Durable names the ingest's position in the database (stream and
	// name); DefaultDurable if empty. Instances with the same name share
	// the work: one is active at a time and the others stand by.
	Durable string
	// FilterSubjects restricts the ingest to some subjects of the stream.
	// With a filter, the stream sequences of other subjects are skipped
	// and gaps are not detected.
	FilterSubjects []string
	// DeadLetterSubject is where messages that cannot be stored are
	// published, with the original data and headers and the reason in
	// HeaderDeadLetterReason. A stream must capture it ([Ingest.Start]
	// checks): the ingest moves past a message only once JetStream
	// confirmed its dead letter. Required.
	DeadLetterSubject string
	// Origins decides which messages may be believed (see
	// docs/storage-model.md, "Origins"); a refused message is dead-lettered and
	// never stored. Required: the org's *[authz.SourceTable] for central's
	// event stream, or [AnyOrigin] for a stream no edge feeds.
	Origins OriginChecker

	// BatchSize is the most messages stored in one transaction;
	// DefaultBatchSize if zero.
	BatchSize int
	// BatchWait is the longest a partial batch waits for more messages;
	// DefaultBatchWait if zero.
	BatchWait time.Duration

	// Decode turns a message into an event; nil decodes a Lintel envelope
	// with [DecodeEnvelope].
	Decode DecodeFunc
	// Replayed decides whether an event reached central late; nil means:
	// the message has the ReplayedHeader header (which a producer
	// publishing into the stream directly may set; sourcing from an edge
	// cannot add one), or it was received more than ReplayedAfter after its
	// device time.
	Replayed func(msg jetstream.Msg, e *Event) bool
	// ReplayedHeader is DefaultReplayedHeader if empty.
	ReplayedHeader string
	// ReplayedAfter is DefaultReplayedAfter if zero.
	ReplayedAfter time.Duration

	// MinBackoff and MaxBackoff bound the wait between retries while NATS
	// or the database fail; the wait doubles from one to the other.
	MinBackoff, MaxBackoff time.Duration
	// TakeoverPoll is how often a standby instance tries to become the
	// active one; DefaultTakeoverPoll if zero.
	TakeoverPoll time.Duration
	// MaintainEvery is how often [Store.MaintainPartitions] runs;
	// DefaultMaintainEvery if zero.
	MaintainEvery time.Duration

	// Logger receives the ingest's log; nil discards.
	Logger *slog.Logger
	// Now is the clock, for receive times when the message has no
	// JetStream timestamp; nil means time.Now.
	Now func() time.Time
}

// IngestStats is a snapshot of an [Ingest]'s counters and state.
type IngestStats struct {
	Ingested     uint64 // events stored
	Duplicates   uint64 // events already stored (read again)
	DeadLettered uint64 // messages sent to the dead-letter subject (refused ones included)
	Batches      uint64 // batches committed
	Retries      uint64 // batch attempts that failed and were retried
	// Derived counts rows added to the derived tables (commands, command
	// acks, liveness events, access decisions).
	Derived uint64
	// ByType counts the events of committed batches by message type, and
	// Acks their command acks by status (both including events already
	// stored).
	ByType map[topic.MessageType]uint64
	Acks   map[CommandStatus]uint64 // see ByType
	// DerivedSkipped counts events stored without the derived row their
	// kind calls for (each is logged with its reason).
	DerivedSkipped uint64
	// Refused counts messages whose origin may not write them (an edge
	// writing as another edge, another org or central): dead-lettered,
	// never stored, each logged at warning.
	Refused uint64
	// Gaps and GapMessages count ranges of stream sequences, and the
	// sequences in them, that were never delivered: removed from the
	// stream before the ingest read them. Each is logged at warning and
	// added to the position in the database ([Store.IngestPosition]).
	Gaps, GapMessages uint64
	// Read counts the messages this instance read from the stream; those
	// not yet committed are read again by whichever instance runs next.
	Read uint64
	// Position is the last stream sequence committed, as this instance
	// last read or wrote it.
	Position uint64
	// Active reports that this instance holds the ingest's lock and reads
	// the stream; a standby instance is not active.
	Active bool
	// StreamMissing reports that the stream does not exist (yet): the
	// ingest warned and keeps looking for it.
	StreamMissing bool
	// LastError is the failure the ingest is retrying, "" when healthy.
	LastError string
}

// Ingest stores the messages of a JetStream stream in the database, each
// exactly once, with its position in the stream committed in the same
// transaction as the events. See docs/storage-model.md, "Ingest".
type Ingest struct {
	store *Store
	js    jetstream.JetStream
	cfg   IngestConfig
	log   *slog.Logger
	key   int64

	ingested, duplicates, deadLettered, batches, retries atomic.Uint64
	derived, derivedSkipped, refused, gaps, gapMessages  atomic.Uint64

	kindsMu                        sync.Mutex
	byType                         map[topic.MessageType]uint64 // events of committed batches, by message type
	acks                           map[CommandStatus]uint64     // command acks of committed batches, by status
	position, read                 atomic.Uint64
	active, streamMissing, started atomic.Bool

	mu      sync.Mutex
	lastErr error // the condition being retried, nil when healthy
}

// NewIngest returns an ingest of cfg.Stream into store. It does no I/O; it
// returns an error wrapping [ErrInvalidConfig] that names the field when
// cfg lacks Stream, DeadLetterSubject or Origins.
func NewIngest(store *Store, js jetstream.JetStream, cfg IngestConfig) (*Ingest, error) {
	switch {
	case store == nil || js == nil:
		return nil, fmt.Errorf("%w: ingest needs a store and a JetStream context", ErrInvalidConfig)
	case cfg.Stream == "":
		return nil, fmt.Errorf("%w: ingest needs Stream, the JetStream stream to store", ErrInvalidConfig)
	case cfg.DeadLetterSubject == "":
		return nil, fmt.Errorf("%w: ingest needs DeadLetterSubject, a subject a stream captures, for messages that cannot be stored", ErrInvalidConfig)
	case cfg.Origins == nil:
		return nil, fmt.Errorf("%w: ingest needs Origins: the org's *authz.SourceTable, or storage.AnyOrigin for a stream no edge feeds", ErrInvalidConfig)
	}
	if cfg.Durable == "" {
		cfg.Durable = DefaultDurable
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = DefaultBatchWait
	}
	if cfg.ReplayedHeader == "" {
		cfg.ReplayedHeader = DefaultReplayedHeader
	}
	if cfg.ReplayedAfter <= 0 {
		cfg.ReplayedAfter = DefaultReplayedAfter
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.TakeoverPoll <= 0 {
		cfg.TakeoverPoll = DefaultTakeoverPoll
	}
	if cfg.MaintainEvery <= 0 {
		cfg.MaintainEvery = DefaultMaintainEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(logStream, cfg.Stream)
	return &Ingest{store: store, js: js, cfg: cfg, log: log, key: ingestLockKey(cfg.Stream, cfg.Durable)}, nil
}

func (in *Ingest) kindCounts() map[topic.MessageType]uint64 {
	in.kindsMu.Lock()
	defer in.kindsMu.Unlock()
	return maps.Clone(in.byType)
}

func (in *Ingest) ackCounts() map[CommandStatus]uint64 {
	in.kindsMu.Lock()
	defer in.kindsMu.Unlock()
	return maps.Clone(in.acks)
}

// Stats returns a snapshot of the ingest's counters and state.
func (in *Ingest) Stats() IngestStats {
	st := IngestStats{
		Ingested:     in.ingested.Load(),
		Duplicates:   in.duplicates.Load(),
		DeadLettered: in.deadLettered.Load(),
		Batches:      in.batches.Load(),
		Retries:      in.retries.Load(),

		Derived:        in.derived.Load(),
		ByType:         in.kindCounts(),
		Acks:           in.ackCounts(),
		DerivedSkipped: in.derivedSkipped.Load(),
		Refused:        in.refused.Load(),
		Gaps:           in.gaps.Load(),
		GapMessages:    in.gapMessages.Load(),
		Read:           in.read.Load(),
		Position:       in.position.Load(),
		Active:         in.active.Load(),
		StreamMissing:  in.streamMissing.Load(),
	}
	if err := in.failing(); err != nil {
		st.LastError = err.Error()
	}
	return st
}

func (in *Ingest) failing() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.lastErr
}

// fail records err as the condition being retried and logs it at warning
// the first time it is seen; nil clears it.
func (in *Ingest) fail(ctx context.Context, what string, err error) {
	in.mu.Lock()
	prev := in.lastErr
	in.lastErr = err
	in.mu.Unlock()
	if err == nil {
		if prev != nil {
			in.log.InfoContext(ctx, "storage: ingest: healed", "was", prev.Error())
		}
		return
	}
	if prev == nil || prev.Error() != err.Error() {
		in.log.WarnContext(ctx, "storage: ingest: "+what+", retrying", logErr, err)
	} else {
		in.log.DebugContext(ctx, "storage: ingest: "+what+", retrying", logErr, err)
	}
}

// IngestRun is a started [Ingest], the handle of the running work: stop
// it with [IngestRun.Stop] or [IngestRun.Drain], wait for it with
// [IngestRun.Done], and read why it failed with [IngestRun.Err].
type IngestRun struct {
	in      *Ingest
	cancel  context.CancelFunc
	drain   chan struct{}
	stopped sync.Once
	drained sync.Once
	done    chan struct{}
	err     error
}

// Start checks the dead-letter subject and starts the ingest in the
// background; ctx bounds the check only. This is the primary way to run
// an ingest: it then runs until [IngestRun.Stop] or [IngestRun.Drain],
// whatever becomes of ctx. It stands by until it holds the ingest's lock
// in the database (one active instance per stream and Durable), then
// stores the stream from its committed position on. What
// can heal is retried with backoff, logged at warning at once and shown
// in [Ingest.Stats]: the database down, JetStream unavailable, the stream
// missing (not created yet).
//
// Start returns an error wrapping [ErrInvalidConfig] when no stream
// captures DeadLetterSubject (naming the subject), an error for a second
// Start, or the JetStream error when ctx ends before the check is done.
func (in *Ingest) Start(ctx context.Context) (*IngestRun, error) {
	if err := in.checkDeadLetter(ctx); err != nil {
		return nil, err
	}
	if !in.started.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("%w: ingest of %s already started", ErrInvalidConfig, in.cfg.Stream)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &IngestRun{in: in, cancel: cancel, drain: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = in.run(rctx, r.drain)
	}()
	return r, nil
}

// checkDeadLetter makes sure a stream captures the dead-letter subject,
// retrying while JetStream is unavailable until ctx ends.
func (in *Ingest) checkDeadLetter(ctx context.Context) error {
	bo := in.backoff()
	for {
		name, err := in.js.StreamNameBySubject(ctx, in.cfg.DeadLetterSubject)
		switch {
		case err == nil && name != "":
			return nil
		case err == nil || errors.Is(err, jetstream.ErrStreamNotFound):
			return fmt.Errorf("%w: no stream captures the dead-letter subject %q: create one that does (for example a stream with Subjects [%q])",
				ErrInvalidConfig, in.cfg.DeadLetterSubject, in.cfg.DeadLetterSubject)
		}
		in.fail(ctx, "dead-letter stream lookup failed", err)
		if !bo.wait(ctx) {
			return fmt.Errorf("storage: ingest: looking up the stream of dead-letter subject %q: %w", in.cfg.DeadLetterSubject, err)
		}
	}
}

// Run is a blocking convenience over [Ingest.Start] for a caller that
// has nothing else to do: it starts the ingest, runs it until ctx ends,
// then stops it with [IngestRun.Stop], handing the batch in hand back
// (Start and [IngestRun.Drain] commit it instead). It returns the error
// of [Ingest.Start], or nil after a healthy run, or the failure it was
// retrying when ctx ended (for a stream that never appeared, an error
// wrapping jetstream.ErrStreamNotFound): see [IngestRun.Err].
func (in *Ingest) Run(ctx context.Context) error {
	r, err := in.Start(ctx)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		r.Stop()
	case <-r.Done():
	}
	return r.Err()
}

// Stop stops the ingest at once and returns when it has stopped. The batch
// in hand is not committed: it is handed back, and whichever instance runs
// next reads it again at once from the committed position. Idempotent.
func (r *IngestRun) Stop() {
	r.stopped.Do(r.cancel)
	<-r.done
}

// Drain stops pulling from the stream, commits what was pulled, and
// returns when the ingest has stopped. While the database is down it
// waits for it; call Stop (from another goroutine) to give up. An ingest
// that has pulled nothing yet (standing by, or retrying an unreachable
// stream) stops at once.
func (r *IngestRun) Drain() {
	r.drained.Do(func() { close(r.drain) })
	<-r.done
}

// Done is closed when the ingest has stopped.
func (r *IngestRun) Done() <-chan struct{} { return r.done }

// Err returns, once the ingest has stopped, the failure it was retrying
// when it stopped (nil if it was healthy): an error wrapping
// jetstream.ErrStreamNotFound for a stream that never appeared, the
// database's error if it was down. Before that it returns nil.
func (r *IngestRun) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// run stands by for the lock, runs the active ingest while it holds it,
// and returns the failure being retried when ctx ends or the drain is done.
func (in *Ingest) run(ctx context.Context, drain <-chan struct{}) error {
	bo := in.backoff()
	for ctx.Err() == nil {
		select {
		case <-drain: // nothing read while not active: nothing to commit
			return in.stopErr()
		default:
		}
		lock, err := in.store.tryIngestLock(ctx, in.key)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			in.fail(ctx, "database unavailable for the ingest lock", err)
			bo.wait(ctx)
			continue
		}
		if lock == nil {
			if in.failing() == nil {
				in.log.DebugContext(ctx, "storage: ingest: another instance is active; standing by")
			}
			t := time.NewTimer(in.cfg.TakeoverPoll)
			select {
			case <-t.C:
			case <-drain:
			case <-ctx.Done():
			}
			t.Stop()
			continue
		}
		bo.reset()
		in.active.Store(true)
		in.log.InfoContext(ctx, "storage: ingest: active")
		held := &heldLock{conn: lock}
		drained, err := in.runActive(ctx, held, drain)
		in.active.Store(false)
		held.release(ctx, in.key)
		if drained {
			break
		}
		if err != nil && ctx.Err() == nil {
			in.fail(ctx, "ingest interrupted", err)
			bo.wait(ctx)
		}
	}
	return in.stopErr()
}

// stopErr is what a stopped ingest reports: the failure it was retrying.
func (in *Ingest) stopErr() error {
	err := in.failing()
	if err == nil {
		return nil
	}
	if in.streamMissing.Load() {
		return fmt.Errorf("storage: ingest stopped without finding stream %s: %w", in.cfg.Stream, jetstream.ErrStreamNotFound)
	}
	return fmt.Errorf("storage: ingest stopped while failing: %w", err)
}

// heldLock is the connection whose session holds the ingest's lock.
type heldLock struct {
	mu   sync.Mutex
	conn *pgx.Conn // nil while the session is lost and not taken again
}

func (h *heldLock) get() *pgx.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conn
}

func (h *heldLock) set(c *pgx.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conn = c
}

// release unlocks and closes the session, if any.
func (h *heldLock) release(ctx context.Context, key int64) {
	c := h.get()
	if c == nil {
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = c.Exec(uctx, "SELECT pg_advisory_unlock($1)", key)
	_ = c.Close(uctx)
	h.set(nil)
}

// keepLock watches the lock's session until ctx ends. A session that
// dies (the database restarted, the connection was cut) released the
// lock: it takes the lock again on a new session, retrying while the
// database is unreachable, so that an outage does not interrupt the batch
// in hand. It returns an error when another instance took the lock
// meanwhile: this one must step down (and the guarded position keeps it
// from committing anything in the meantime).
func (in *Ingest) keepLock(ctx context.Context, lock *heldLock) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if c := lock.get(); c != nil {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.Exec(pctx, "SELECT 1")
			cancel()
			if err == nil || ctx.Err() != nil {
				continue
			}
			in.log.WarnContext(ctx, "storage: ingest: lock session lost; taking the lock again", logErr, err)
			_ = c.Close(context.WithoutCancel(ctx))
			lock.set(nil)
		}
		c, err := in.store.tryIngestLock(ctx, in.key)
		switch {
		case err != nil:
			continue // the database is still away
		case c == nil:
			return errors.New("storage: ingest: another instance took the lock")
		}
		lock.set(c)
		in.log.InfoContext(ctx, "storage: ingest: lock taken again")
	}
}

// batch is what the reader hands the writer: the decoded events of a run
// of stream sequences, through last, each beside its message, and the
// gaps found in it.
type batch struct {
	events        []Event
	msgs          []jetstream.Msg
	last          uint64
	gaps, gapMsgs uint64
}

// runActive reads the stream from the committed position and stores it,
// until ctx ends, the drain is done (drained true), the lock's session
// fails, or another instance moved the position (errFenced).
func (in *Ingest) runActive(ctx context.Context, lock *heldLock, drain <-chan struct{}) (drained bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()

	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := in.keepLock(actx, lock); err != nil {
			cancel(err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		in.maintainLoop(actx)
	}()

	// Until the first pull, a drain has nothing to commit: it ends the
	// retries of the set-up (JetStream without a quorum, say) at once.
	sctx, scancel := context.WithCancel(actx)
	go func() {
		select {
		case <-drain:
			scancel()
		case <-sctx.Done():
		}
	}()
	isDrained := func() bool {
		select {
		case <-drain:
			return true
		default:
			return false
		}
	}
	pos, err := in.openPosition(sctx)
	if err != nil {
		scancel()
		if isDrained() && actx.Err() == nil {
			return true, nil
		}
		return false, err
	}
	cons, err := in.consumer(sctx, pos)
	scancel()
	if err != nil {
		if isDrained() && actx.Err() == nil {
			return true, nil
		}
		return false, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * in.cfg.BatchSize))
	if err != nil {
		return false, fmt.Errorf("storage: ingest: read %s: %w", in.cfg.Stream, err)
	}
	defer it.Stop()

	batches := make(chan batch, 1) // one batch decoded ahead of the one being stored
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(batches)
		in.readLoop(actx, it, pos, batches, drain)
	}()
	committed := pos
	for b := range batches {
		if err := in.commit(actx, b, committed); err != nil {
			cancel(err)
			for range batches {
			}
			if cause := context.Cause(actx); cause != nil && !errors.Is(cause, context.Canceled) {
				return false, cause
			}
			return false, err
		}
		committed = b.last
	}
	if cause := context.Cause(actx); cause != nil && !errors.Is(cause, context.Canceled) {
		return false, cause
	}
	if ctx.Err() != nil {
		return false, nil
	}
	select {
	case <-drain:
		return true, nil
	default:
		return false, errors.New("storage: ingest: reading the stream stopped")
	}
}

// openPosition reads the committed position, retrying while the database
// fails.
func (in *Ingest) openPosition(ctx context.Context) (uint64, error) {
	bo := in.backoff()
	for {
		pos, err := in.store.openPosition(ctx, in.cfg.Stream, in.cfg.Durable)
		if err == nil {
			in.position.Store(pos)
			return pos, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		in.fail(ctx, "reading the ingest position failed", err)
		bo.wait(ctx)
	}
}

// consumer opens an ordered consumer (no acknowledgements, see
// docs/storage-model.md, "Forged acknowledgements") from pos+1, retrying
// while the stream is missing or JetStream unavailable. A missing stream
// is logged at warning at once and shown in the stats.
func (in *Ingest) consumer(ctx context.Context, pos uint64) (jetstream.Consumer, error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: in.cfg.FilterSubjects,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    pos + 1,
	}
	bo := in.backoff()
	for {
		str, err := in.js.Stream(ctx, in.cfg.Stream)
		var cons jetstream.Consumer
		if err == nil {
			in.streamMissing.Store(false)
			cons, err = str.OrderedConsumer(ctx, cfg)
			if err == nil {
				in.fail(ctx, "", nil)
				return cons, nil
			}
		} else if errors.Is(err, jetstream.ErrStreamNotFound) {
			in.streamMissing.Store(true)
			err = fmt.Errorf("storage: ingest: stream %s does not exist (yet): %w", in.cfg.Stream, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		in.fail(ctx, "stream not readable", err)
		bo.wait(ctx)
	}
}

// readLoop reads messages in stream order, checks their origin, decodes
// them, dead-letters what cannot be stored and hands the rest to the
// writer in batches. Sending blocks while the writer is busy, so nothing
// is read ahead while the database is slow. It stops when ctx ends or,
// after handing over what it has, on drain.
func (in *Ingest) readLoop(ctx context.Context, it jetstream.MessagesContext, pos uint64, out chan<- batch, drain <-chan struct{}) {
	next := pos + 1
	gapCheck := len(in.cfg.FilterSubjects) == 0
	dec := &envelopeDecoder{chunk: arenaChunk}
	base, stopBase := context.WithCancel(ctx)
	defer stopBase()
	go func() { // a drain ends the wait for the next message too
		select {
		case <-drain:
			stopBase()
		case <-base.Done():
		}
	}()
	for {
		if base.Err() != nil {
			return
		}
		b := batch{events: make([]Event, 0, in.cfg.BatchSize), msgs: make([]jetstream.Msg, 0, in.cfg.BatchSize)}
		var bctx context.Context
		var bcancel context.CancelFunc = func() {}
		wctx := base
		n := 0
		for n < in.cfg.BatchSize {
			msg, err := it.Next(jetstream.NextContext(wctx))
			if err != nil {
				if ctx.Err() != nil {
					bcancel()
					return
				}
				if bctx != nil && bctx.Err() != nil {
					break // the batch's time is up, or a drain: hand over what there is
				}
				if base.Err() != nil {
					bcancel()
					return // drained between batches
				}
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					bcancel()
					return
				}
				in.log.WarnContext(ctx, "storage: ingest: reading failed", logErr, err)
				if !sleep(ctx, in.cfg.MinBackoff) {
					bcancel()
					return
				}
				continue
			}
			if bctx == nil { // the first message starts the batch's clock
				bctx, bcancel = context.WithTimeout(base, in.cfg.BatchWait)
				wctx = bctx
			}
			md, err := msg.Metadata()
			if err != nil {
				in.log.WarnContext(ctx, "storage: ingest: message without metadata", logSubject, msg.Subject(), logErr, err)
				continue
			}
			seq := md.Sequence.Stream
			if seq < next {
				continue // read before
			}
			if seq > next && gapCheck {
				in.gap(ctx, next, seq-1)
				b.gaps++
				b.gapMsgs += seq - next
			}
			next = seq + 1
			b.last = seq
			n++
			in.read.Add(1)
			if ev, ok := in.accept(ctx, msg, md, dec); ok {
				b.events = append(b.events, ev)
				b.msgs = append(b.msgs, msg)
			} else if ctx.Err() != nil {
				bcancel()
				return // its dead letter was not confirmed: not past it
			}
		}
		bcancel()
		if b.last == 0 {
			continue
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return // not committed: read again from the committed position
		}
	}
}

// gap reports the stream sequences first..last, which were never
// delivered: the stream no longer held them.
func (in *Ingest) gap(ctx context.Context, first, last uint64) {
	in.gaps.Add(1)
	in.gapMessages.Add(last - first + 1)
	in.log.WarnContext(ctx, "storage: ingest: stream sequences missing, never stored",
		logFirst, first, logLast, last, "count", last-first+1)
}

// accept checks msg's origin and decodes it (md is its metadata, dec the
// reader's decoder); a message refused or not decodable is dead-lettered
// (false). It returns false without a dead letter only when ctx ended
// first.
func (in *Ingest) accept(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, dec *envelopeDecoder) (Event, bool) {
	if org, err := in.cfg.Origins.Check(msg.Subject(), msg.Headers()); err != nil {
		in.refused.Add(1)
		in.log.WarnContext(ctx, "storage: ingest: message refused by origin",
			logSubject, msg.Subject(), logSource, org.Source, logEdge, org.Edge, logReason, err.Error())
		in.deadLetter(ctx, msg, "origin: "+err.Error())
		return Event{}, false
	}
	return in.decode(ctx, msg, md, dec)
}

// decode decodes msg with Decode, or with dec when Decode is nil,
// dead-lettering it when it cannot be.
func (in *Ingest) decode(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, dec *envelopeDecoder) (Event, bool) {
	var ev Event
	var err error
	if in.cfg.Decode != nil {
		ev, err = in.cfg.Decode(msg)
	} else {
		ev, err = dec.decode(msg)
	}
	if err != nil {
		in.deadLetter(ctx, msg, "decode: "+err.Error())
		return Event{}, false
	}
	if ev.ReceivedAt.IsZero() {
		// When central's stream stored it: the same on every redelivery.
		ev.ReceivedAt = md.Timestamp
		if ev.ReceivedAt.IsZero() {
			ev.ReceivedAt = in.cfg.Now()
		}
	}
	if in.cfg.Replayed != nil {
		e := ev // a copy, so that ev stays off the heap when Replayed is nil
		r := in.cfg.Replayed(msg, &e)
		ev = e
		ev.Replayed = r
	} else {
		ev.Replayed = msg.Headers().Get(in.cfg.ReplayedHeader) != "" ||
			ev.ReceivedAt.Sub(ev.DeviceTime) > in.cfg.ReplayedAfter
	}
	return ev, true
}

// commit stores b and moves the position from committed to b.last in the
// same transaction, retrying with backoff while the database fails. Rows
// the database rejects are dead-lettered before the position passes them.
// It returns errFenced when another instance moved the position, or the
// ctx error when stopped.
func (in *Ingest) commit(ctx context.Context, b batch, committed uint64) error {
	events := b.events
	hook := advanceHook(in.cfg.Stream, in.cfg.Durable, committed, b.last, b.gaps, b.gapMsgs)
	bo := in.backoff()
	var res InsertResult
	for {
		var done bool
		var err error
		if len(events) == 0 {
			err = in.store.runHook(ctx, hook)
			done = err == nil
		} else {
			res, done, err = in.store.insertEvents(ctx, events, hook)
		}
		if err == nil {
			in.fail(ctx, "", nil)
			if !done { // stored in parts: the position follows on its own
				for _, r := range res.Rejected {
					if !in.deadLetter(ctx, b.msgs[r.Index], "database: "+r.Err.Error()) {
						return ctx.Err()
					}
				}
				if err := in.advance(ctx, hook); err != nil {
					return err
				}
			}
			break
		}
		if errors.Is(err, errFenced) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err() // not committed: read again from the committed position
		}
		in.retries.Add(1)
		in.fail(ctx, "storing a batch failed", err)
		if !bo.wait(ctx) {
			return ctx.Err()
		}
	}
	for _, sk := range res.Skipped {
		in.log.WarnContext(ctx, "storage: ingest: event stored without its derived row",
			logSubject, b.msgs[sk.Index].Subject(), logMsgID, events[sk.Index].ID.String(), logReason, sk.Err.Error())
	}
	in.ingested.Add(uint64(res.Inserted))
	in.duplicates.Add(uint64(res.Duplicates))
	in.derived.Add(uint64(res.Derived))
	in.derivedSkipped.Add(uint64(len(res.Skipped)))
	in.countKinds(events, res.Acks)
	in.batches.Add(1)
	in.position.Store(b.last)
	return nil
}

// countKinds adds a committed batch's events to the counts by message type
// and its acks to the counts by status.
func (in *Ingest) countKinds(events []Event, acks map[CommandStatus]int) {
	in.kindsMu.Lock()
	defer in.kindsMu.Unlock()
	if in.byType == nil {
		in.byType, in.acks = make(map[topic.MessageType]uint64), make(map[CommandStatus]uint64)
	}
	for i := range events {
		in.byType[events[i].MessageType]++
	}
	for st, n := range acks {
		in.acks[st] += uint64(n)
	}
}

// advance runs hook on its own, retrying while the database fails.
func (in *Ingest) advance(ctx context.Context, hook txHook) error {
	bo := in.backoff()
	for {
		err := in.store.runHook(ctx, hook)
		if err == nil || errors.Is(err, errFenced) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.retries.Add(1)
		in.fail(ctx, "moving the ingest position failed", err)
		if !bo.wait(ctx) {
			return ctx.Err()
		}
	}
}

// deadLetter publishes msg to the dead-letter subject with the reason,
// retrying until JetStream confirms it: the ingest never moves past a
// message that is neither stored nor dead-lettered. It returns false only
// when ctx ended first. Reading the message again makes the same dead
// letter, which JetStream deduplicates by its Nats-Msg-Id.
func (in *Ingest) deadLetter(ctx context.Context, msg jetstream.Msg, reason string) bool {
	dl := nats.NewMsg(in.cfg.DeadLetterSubject)
	dl.Data = msg.Data()
	for k, vs := range msg.Headers() {
		if k == nats.MsgIdHdr || k == authz.HeaderStreamSource {
			continue // a dead letter is not the original, and JetStream refuses a source header
		}
		dl.Header[k] = vs
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	dl.Header.Set(HeaderDeadLetterReason, reason)
	dl.Header.Set(HeaderOriginalSubject, msg.Subject())
	if src := msg.Headers().Get(authz.HeaderStreamSource); src != "" {
		dl.Header.Set(HeaderOriginalSource, src)
	}
	if md, err := msg.Metadata(); err == nil {
		dl.Header.Set(HeaderOriginalStream, md.Stream)
		dl.Header.Set(HeaderOriginalSequence, strconv.FormatUint(md.Sequence.Stream, 10))
		dl.Header.Set(nats.MsgIdHdr, "dl-"+md.Stream+"-"+strconv.FormatUint(md.Sequence.Stream, 10))
	}
	bo := in.backoff()
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := in.js.PublishMsg(pctx, dl)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		in.fail(ctx, "dead letter not published", fmt.Errorf("storage: dead letter of %s not published: %w", msg.Subject(), err))
		if !bo.wait(ctx) {
			return false
		}
	}
	in.log.WarnContext(ctx, "storage: ingest: message dead-lettered", logSubject, msg.Subject(), logReason, reason)
	in.deadLettered.Add(1)
	return true
}

func (in *Ingest) maintainLoop(ctx context.Context) {
	t := time.NewTicker(in.cfg.MaintainEvery)
	defer t.Stop()
	for {
		if err := in.store.MaintainPartitions(ctx); err != nil && ctx.Err() == nil {
			in.log.WarnContext(ctx, "storage: ingest: partition maintenance failed", logErr, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sleep waits for d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff is an exponential backoff between MinBackoff and MaxBackoff.
type backoff struct {
	min, max, cur time.Duration
}

func (in *Ingest) backoff() *backoff {
	return &backoff{min: in.cfg.MinBackoff, max: in.cfg.MaxBackoff, cur: in.cfg.MinBackoff}
}

// wait sleeps for the current delay and doubles it; false if ctx ended.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	return sleep(ctx, d)
}

func (b *backoff) reset() { b.cur = b.min }
