package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults for [Config].
const (
	// DefaultClockPast is how far before its receive time an event's device
	// time may lie and still be believed: longer than any outage an edge
	// buffers through, so that replayed events keep their device time.
	DefaultClockPast = 30 * 24 * time.Hour
	// DefaultClockFuture is how far after its receive time an event's
	// device time may lie and still be believed: covers clocks set to the
	// wrong time zone, not clocks set to another year.
	DefaultClockFuture = 24 * time.Hour
)

// Config configures a [Store]. The zero value means the defaults.
type Config struct {
	// ClockPast and ClockFuture bound the plausible device times around
	// the receive time; an event outside is stored under its receive time
	// instead (see docs/storage-model.md, "Time"). Zero means
	// DefaultClockPast and DefaultClockFuture.
	ClockPast, ClockFuture time.Duration
	// Logger receives the store's warnings; nil discards.
	Logger *slog.Logger
	// Now is the clock, for retention cutoffs; nil means time.Now.
	Now func() time.Time
}

// Store reads and writes Lintel's history in a database migrated by
// [Migrate]. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	past   time.Duration
	future time.Duration
	log    *slog.Logger
	now    func() time.Time

	fastPause atomic.Int32 // batches left before the insert fast path is tried again

	mu     sync.Mutex
	flavor Flavor
	days   map[int64]bool // days (since the Unix epoch, UTC) known to have a partition
}

// New returns a store on pool. It does no I/O: the database's flavor is
// read on first use, and a database that [Migrate] has not run on makes
// every call fail with [ErrNotMigrated].
func New(pool *pgxpool.Pool, cfg Config) *Store {
	s := &Store{
		pool:   pool,
		past:   cfg.ClockPast,
		future: cfg.ClockFuture,
		log:    cfg.Logger,
		now:    cfg.Now,
		days:   map[int64]bool{},
	}
	if s.past <= 0 {
		s.past = DefaultClockPast
	}
	if s.future <= 0 {
		s.future = DefaultClockFuture
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Pool returns the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Flavor returns the database's flavor, recorded by [Migrate]. It returns
// [ErrNotMigrated] when there is none.
func (s *Store) Flavor(ctx context.Context) (Flavor, error) {
	s.mu.Lock()
	f := s.flavor
	s.mu.Unlock()
	if f != "" {
		return f, nil
	}
	var v string
	err := s.pool.QueryRow(ctx, "SELECT value FROM lintel.settings WHERE key = 'flavor'").Scan(&v)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000"):
		return "", ErrNotMigrated
	case err != nil:
		return "", fmt.Errorf("storage: read flavor: %w", err)
	}
	s.mu.Lock()
	s.flavor = Flavor(v)
	s.mu.Unlock()
	return Flavor(v), nil
}

// EnforceRetention deletes history older than olderThan: events (on plain
// PostgreSQL by dropping the daily partitions that end before the cutoff
// and deleting older rows of the default partition; on TimescaleDB with
// drop_chunks), access decisions, liveness events, command acks and
// commands requested before the cutoff. Whole partitions and chunks go at
// once, so events are kept at least olderThan and at most a day more.
//
// Call it periodically (say hourly) on every flavor, or let
// [Store.StartMaintenance] do it: on FlavorTimescale the retention policy
// drops event chunks too, but the other tables have no policy. Several
// instances may call it at once.
func (s *Store) EnforceRetention(ctx context.Context, olderThan time.Duration) error {
	if olderThan <= 0 {
		return fmt.Errorf("%w: retention %v must be positive", ErrInvalidQuery, olderThan)
	}
	f, err := s.Flavor(ctx)
	if err != nil {
		return err
	}
	_, _, err = s.retain(ctx, s.pool, f, s.now().Add(-olderThan))
	return err
}

// SetRetentionPolicy replaces the TimescaleDB retention policy on events,
// which drops chunks older than olderThan in the background. It returns
// [ErrFlavor] on other flavors, which have no policies: call
// [Store.EnforceRetention] there. [Store.Maintain] unschedules the policy
// when it does retention itself (set [MaintenanceConfig.Retention]
// instead).
func (s *Store) SetRetentionPolicy(ctx context.Context, olderThan time.Duration) error {
	f, err := s.Flavor(ctx)
	if err != nil {
		return err
	}
	if f != FlavorTimescale {
		return fmt.Errorf("%w: retention policies need %q, database is %q", ErrFlavor, FlavorTimescale, f)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT remove_retention_policy('lintel.events', if_exists => true)"); err != nil {
			return fmt.Errorf("storage: remove retention policy: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT add_retention_policy('lintel.events', drop_after => $1::interval)", olderThan); err != nil {
			return fmt.Errorf("storage: add retention policy: %w", err)
		}
		return nil
	})
}

// MaintainPartitions creates, on plain PostgreSQL, the daily event
// partitions from yesterday to the end of the plausible future (see
// [Config]), moving any of their rows out of the default partition. Other
// flavors need no maintenance; it returns nil there. Inserts create the
// partitions they need on their own, so this only keeps them ahead of
// time; [Ingest] calls it hourly.
func (s *Store) MaintainPartitions(ctx context.Context) error {
	f, err := s.Flavor(ctx)
	if err != nil || f != FlavorPostgres {
		return err
	}
	now := s.now()
	return s.ensureDays(ctx, dayOf(now.Add(-24*time.Hour)), dayOf(now.Add(s.future+24*time.Hour)))
}

// ensureDays makes sure every day from first to last has its partition.
func (s *Store) ensureDays(ctx context.Context, first, last int64) error {
	s.mu.Lock()
	missing := false
	for d := first; d <= last; d++ {
		if !s.days[d] {
			missing = true
			break
		}
	}
	s.mu.Unlock()
	if !missing {
		return nil
	}
	from, to := time.Unix(first*86400, 0).UTC(), time.Unix(last*86400, 0).UTC()
	if _, err := s.pool.Exec(ctx, "SELECT lintel.ensure_event_partitions($1, $2)", from, to); err != nil {
		return fmt.Errorf("storage: create partitions: %w", err)
	}
	s.mu.Lock()
	for d := first; d <= last; d++ {
		s.days[d] = true
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) forgetDaysBefore(cutoff time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for d := range s.days {
		if d < dayOf(cutoff) {
			delete(s.days, d)
		}
	}
}

// dayOf returns the UTC day of t, in days since the Unix epoch.
func dayOf(t time.Time) int64 {
	sec := t.Unix()
	d := sec / 86400
	if sec < 0 && sec%86400 != 0 {
		d--
	}
	return d
}
