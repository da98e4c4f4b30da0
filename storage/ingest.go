package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for [IngestConfig].
const (
	DefaultDurable        = "lintel-storage"
	DefaultBatchSize      = 1000
	DefaultBatchWait      = 200 * time.Millisecond
	DefaultAckWait        = 2 * time.Minute
	DefaultReplayedHeader = "Lintel-Replayed"
	DefaultReplayedAfter  = 5 * time.Minute
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultMaintainEvery  = time.Hour
)

// Headers of a dead-lettered message, beside the original's own headers.
const (
	HeaderDeadLetterReason = "Lintel-Dead-Letter-Reason"
	HeaderOriginalSubject  = "Lintel-Original-Subject"
	HeaderOriginalStream   = "Lintel-Original-Stream"
	HeaderOriginalSequence = "Lintel-Original-Sequence"
)

// Log keys.
const (
	logSubject = "subject"
	logMsgID   = "msg_id"
	logErr     = "err"
)

// DecodeFunc turns a JetStream message into the event to store. It fills
// every field but Time and Replayed; ReceivedAt may be left zero. An error
// sends the message to the dead-letter subject.
type DecodeFunc func(msg jetstream.Msg) (Event, error)

// IngestConfig configures an [Ingest]. Stream and DeadLetterSubject are
// required; the zero value of every other field means its default.
type IngestConfig struct {
	// Stream is the name of central's event stream. Required.
	Stream string
	// Durable is the name of the durable pull consumer; DefaultDurable if
	// empty. Instances with the same name share the work. Where leaf nodes
	// share the consumer's account, see the package documentation,
	// "Forged acknowledgements".
	Durable string
	// FilterSubjects restricts the consumer to some subjects of the stream.
	FilterSubjects []string
	// DeadLetterSubject is where messages that cannot be stored are
	// published, with the original data and headers and the reason in
	// HeaderDeadLetterReason. A stream must capture it: a message is acked
	// only once JetStream confirmed its dead letter. Required.
	DeadLetterSubject string

	// BatchSize is the most messages stored in one transaction;
	// DefaultBatchSize if zero.
	BatchSize int
	// BatchWait is the longest a partial batch waits for more messages;
	// DefaultBatchWait if zero.
	BatchWait time.Duration
	// AckWait is the consumer's ack wait: comfortably longer than a batch
	// takes to store. While the database is unavailable the held batch is
	// kept from redelivery by progress acks. DefaultAckWait if zero.
	AckWait time.Duration

	// Decode turns a message into an event; nil decodes a Lintel envelope
	// with [DecodeEnvelope].
	Decode DecodeFunc
	// Replayed decides whether an event reached central late; nil means:
	// the message has the ReplayedHeader header (set by the edge when it
	// forwards its buffer after an outage), or it was received more than
	// ReplayedAfter after its device time.
	Replayed func(msg jetstream.Msg, e *Event) bool
	// ReplayedHeader is DefaultReplayedHeader if empty.
	ReplayedHeader string
	// ReplayedAfter is DefaultReplayedAfter if zero.
	ReplayedAfter time.Duration

	// MinBackoff and MaxBackoff bound the wait between retries while NATS
	// or the database fail; the wait doubles from one to the other.
	MinBackoff, MaxBackoff time.Duration
	// MaintainEvery is how often [Store.MaintainPartitions] runs;
	// DefaultMaintainEvery if zero.
	MaintainEvery time.Duration

	// Logger receives the ingest's log; nil discards.
	Logger *slog.Logger
	// Now is the clock, for receive times when the message has no
	// JetStream timestamp; nil means time.Now.
	Now func() time.Time
}

// IngestStats is a snapshot of an [Ingest]'s counters.
type IngestStats struct {
	Ingested     uint64 // events stored
	Duplicates   uint64 // events already stored (redeliveries)
	DeadLettered uint64 // messages sent to the dead-letter subject
	Batches      uint64 // batches committed
	Retries      uint64 // batch attempts that failed and were retried
	// Derived counts rows added to the derived tables (commands, command
	// acks, liveness events, access decisions).
	Derived uint64
	// DerivedSkipped counts events stored without the derived row their
	// kind calls for (each is logged with its reason).
	DerivedSkipped uint64
}

// Ingest stores the messages of a JetStream stream in the database, each
// exactly once, through a durable pull consumer. See the package
// documentation, "Ingest".
type Ingest struct {
	store *Store
	js    jetstream.JetStream
	cfg   IngestConfig
	log   *slog.Logger

	ingested, duplicates, deadLettered, batches, retries atomic.Uint64
	derived, derivedSkipped                              atomic.Uint64
}

// NewIngest returns an ingest of cfg.Stream into store. It does no I/O; it
// returns an error wrapping [ErrInvalidQuery] when cfg lacks Stream or
// DeadLetterSubject.
func NewIngest(store *Store, js jetstream.JetStream, cfg IngestConfig) (*Ingest, error) {
	if cfg.Stream == "" || cfg.DeadLetterSubject == "" {
		return nil, fmt.Errorf("%w: ingest needs Stream and DeadLetterSubject", ErrInvalidQuery)
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
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
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
	if cfg.MaintainEvery <= 0 {
		cfg.MaintainEvery = DefaultMaintainEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Decode == nil {
		cfg.Decode = DecodeEnvelope
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingest{store: store, js: js, cfg: cfg, log: log}, nil
}

// Stats returns a snapshot of the ingest's counters.
func (in *Ingest) Stats() IngestStats {
	return IngestStats{
		Ingested:     in.ingested.Load(),
		Duplicates:   in.duplicates.Load(),
		DeadLettered: in.deadLettered.Load(),
		Batches:      in.batches.Load(),
		Retries:      in.retries.Load(),

		Derived:        in.derived.Load(),
		DerivedSkipped: in.derivedSkipped.Load(),
	}
}

// item is a decoded message waiting to be stored.
type item struct {
	msg jetstream.Msg
	ev  Event
}

// Run creates or updates the durable consumer and stores messages until
// ctx ends, then returns nil once the batch in hand is stored or abandoned
// (an abandoned batch is redelivered later). While NATS or the database
// fail it retries with backoff and pulls nothing new, so a slow or absent
// database never loses a message. It returns an error only for a consumer
// configuration the server refuses.
func (in *Ingest) Run(ctx context.Context) error {
	cons, err := in.consumer(ctx)
	if err != nil || cons == nil {
		return err
	}
	batches := make(chan []item, 1) // one batch decoded ahead of the one being stored
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(batches)
		in.fetchLoop(ctx, cons, batches)
	}()
	go func() {
		defer wg.Done()
		in.maintainLoop(ctx)
	}()
	for b := range batches {
		in.store1(ctx, b)
	}
	wg.Wait()
	return nil
}

// consumer creates or updates the durable consumer, retrying while NATS is
// unreachable. It returns nil, nil when ctx ends first.
func (in *Ingest) consumer(ctx context.Context) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:        in.cfg.Durable,
		Description:    "Lintel storage ingest",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        in.cfg.AckWait,
		MaxDeliver:     -1, // never drop: undecodable messages are dead-lettered instead
		MaxAckPending:  max(4*in.cfg.BatchSize, 1000),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		FilterSubjects: in.cfg.FilterSubjects,
	}
	bo := in.backoff()
	for {
		cons, err := in.js.CreateOrUpdateConsumer(ctx, in.cfg.Stream, cfg)
		if err == nil {
			return cons, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode != jetstream.JSErrCodeStreamNotFound {
			return nil, fmt.Errorf("storage: ingest consumer: %w", err)
		}
		in.log.WarnContext(ctx, "storage: ingest: consumer not ready, retrying", logErr, err)
		if !bo.wait(ctx) {
			return nil, nil
		}
	}
}

// fetchLoop pulls batches, decodes them, dead-letters what cannot be
// decoded and hands the rest to the writer. Sending blocks while the
// writer is busy, so nothing is pulled while the database is slow.
func (in *Ingest) fetchLoop(ctx context.Context, cons jetstream.Consumer, out chan<- []item) {
	bo := in.backoff()
	for ctx.Err() == nil {
		mb, err := cons.Fetch(in.cfg.BatchSize, jetstream.FetchMaxWait(in.cfg.BatchWait))
		if err != nil {
			in.log.WarnContext(ctx, "storage: ingest: fetch failed", logErr, err)
			bo.wait(ctx)
			continue
		}
		batch := make([]item, 0, in.cfg.BatchSize)
		for msg := range mb.Messages() {
			if ev, ok := in.decode(ctx, msg); ok {
				batch = append(batch, item{msg: msg, ev: ev})
			}
		}
		if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			in.log.WarnContext(ctx, "storage: ingest: fetch ended", logErr, err)
			if len(batch) == 0 {
				bo.wait(ctx)
			}
		} else {
			bo.reset()
		}
		if len(batch) == 0 {
			continue
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return // not acked: redelivered after AckWait
		}
	}
}

// decode decodes msg, dead-lettering it when it cannot be.
func (in *Ingest) decode(ctx context.Context, msg jetstream.Msg) (Event, bool) {
	ev, err := in.cfg.Decode(msg)
	if err != nil {
		in.deadLetter(ctx, msg, "decode: "+err.Error())
		return Event{}, false
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = in.cfg.Now()
		if md, err := msg.Metadata(); err == nil && !md.Timestamp.IsZero() {
			// When central's stream stored it: the same on every redelivery.
			ev.ReceivedAt = md.Timestamp
		}
	}
	if in.cfg.Replayed != nil {
		ev.Replayed = in.cfg.Replayed(msg, &ev)
	} else {
		ev.Replayed = msg.Headers().Get(in.cfg.ReplayedHeader) != "" ||
			ev.ReceivedAt.Sub(ev.DeviceTime) > in.cfg.ReplayedAfter
	}
	return ev, true
}

// store1 stores one batch, retrying with backoff until it is stored or ctx
// ends, and acks its messages after the commit. Rows the database rejects
// are dead-lettered.
func (in *Ingest) store1(ctx context.Context, batch []item) {
	events := make([]Event, len(batch))
	for i := range batch {
		events[i] = batch[i].ev
	}
	bo := in.backoff()
	lastProgress := time.Now()
	for {
		res, err := in.store.InsertEvents(ctx, events)
		if err == nil {
			rejected := make(map[int]bool, len(res.Rejected))
			for _, r := range res.Rejected {
				rejected[r.Index] = true
				in.deadLetter(ctx, batch[r.Index].msg, "database: "+r.Err.Error())
			}
			for _, sk := range res.Skipped {
				in.log.WarnContext(ctx, "storage: ingest: event stored without its derived row",
					logSubject, batch[sk.Index].msg.Subject(), logMsgID, batch[sk.Index].ev.ID.String(), "reason", sk.Err.Error())
			}
			for i := range batch {
				if !rejected[i] {
					_ = batch[i].msg.Ack() // a lost ack means a redelivery, which is deduplicated
				}
			}
			in.ingested.Add(uint64(res.Inserted))
			in.duplicates.Add(uint64(res.Duplicates))
			in.derived.Add(uint64(res.Derived))
			in.derivedSkipped.Add(uint64(len(res.Skipped)))
			in.batches.Add(1)
			return
		}
		if ctx.Err() != nil {
			return // not acked: redelivered after AckWait
		}
		in.retries.Add(1)
		in.log.WarnContext(ctx, "storage: ingest: storing batch failed, retrying", "events", len(events), logErr, err)
		if time.Since(lastProgress) > in.cfg.AckWait/3 {
			// Keep the batch ours while the database is away.
			for i := range batch {
				_ = batch[i].msg.InProgress()
			}
			lastProgress = time.Now()
		}
		if !bo.wait(ctx) {
			return
		}
	}
}

// deadLetter publishes msg to the dead-letter subject with the reason and
// acks it once JetStream confirmed the dead letter. If publishing fails
// the message is left unacked, to be redelivered and dead-lettered again:
// never retried forever as an event, never dropped silently.
func (in *Ingest) deadLetter(ctx context.Context, msg jetstream.Msg, reason string) {
	dl := nats.NewMsg(in.cfg.DeadLetterSubject)
	dl.Data = msg.Data()
	for k, vs := range msg.Headers() {
		if k == nats.MsgIdHdr {
			continue // a dead letter is not the original for deduplication
		}
		dl.Header[k] = vs
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	dl.Header.Set(HeaderDeadLetterReason, reason)
	dl.Header.Set(HeaderOriginalSubject, msg.Subject())
	if md, err := msg.Metadata(); err == nil {
		dl.Header.Set(HeaderOriginalStream, md.Stream)
		dl.Header.Set(HeaderOriginalSequence, strconv.FormatUint(md.Sequence.Stream, 10))
		// Redeliveries of the same message make the same dead letter.
		dl.Header.Set(nats.MsgIdHdr, "dl-"+md.Stream+"-"+strconv.FormatUint(md.Sequence.Stream, 10))
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := in.js.PublishMsg(pctx, dl); err != nil {
		in.log.ErrorContext(ctx, "storage: ingest: dead letter not published; message left for redelivery",
			logSubject, msg.Subject(), "reason", reason, logErr, err)
		_ = msg.Nak()
		return
	}
	in.log.WarnContext(ctx, "storage: ingest: message dead-lettered", logSubject, msg.Subject(), "reason", reason)
	_ = msg.Ack()
	in.deadLettered.Add(1)
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

// backoff is an exponential backoff between MinBackoff and MaxBackoff.
type backoff struct {
	min, max, cur time.Duration
}

func (in *Ingest) backoff() *backoff {
	return &backoff{min: in.cfg.MinBackoff, max: in.cfg.MaxBackoff, cur: in.cfg.MinBackoff}
}

// wait sleeps for the current delay and doubles it; false if ctx ended.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.cur)
	defer t.Stop()
	b.cur = min(2*b.cur, b.max)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *backoff) reset() { b.cur = b.min }
