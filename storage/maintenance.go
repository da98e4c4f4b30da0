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
)

// Defaults for [MaintenanceConfig].
const (
	// DefaultMaintenanceEvery is how often maintenance runs.
	DefaultMaintenanceEvery = 30 * time.Minute
	// DefaultRetention is how long history is kept: the retention policy
	// the schema creates on FlavorTimescale.
	DefaultRetention = 400 * 24 * time.Hour
	// DefaultCompressAfter is the age at which event chunks are compressed
	// on FlavorTimescale: twice DefaultRefreshWindow, so that events
	// replayed late after an outage normally land in uncompressed chunks.
	DefaultCompressAfter = 14 * 24 * time.Hour
	// DefaultRefreshWindow is how far back the hourly continuous aggregate
	// is refreshed on FlavorTimescale: an edge buffers up to a week, and a
	// refresh recomputes every bucket of the window that changed.
	DefaultRefreshWindow = 7 * 24 * time.Hour
	// refreshEndOffset keeps the current, still-changing hour out of the
	// materialization; real-time aggregation covers it.
	refreshEndOffset = time.Hour
	// refreshConcurrentTries and refreshConcurrentWait bound how long a
	// pass waits for a concurrent refresh of the aggregate to end.
	refreshConcurrentTries = 10
	refreshConcurrentWait  = 500 * time.Millisecond
)

// maintenanceLockKey is the session advisory lock that makes one central
// instance of a cluster run maintenance at a time; the others skip the run.
const maintenanceLockKey int64 = 7813425109216948002

// MaintenanceConfig configures [Store.Maintain] and
// [Store.StartMaintenance]. The zero value means the defaults; a negative
// duration turns its task off (and leaves the scheduler's policy for it
// alone).
type MaintenanceConfig struct {
	// Every is how often [Store.StartMaintenance] runs a pass; zero means
	// DefaultMaintenanceEvery.
	Every time.Duration
	// Retention drops events and derived rows older than this (whole
	// partitions or chunks of events, as [Store.EnforceRetention]); zero
	// means DefaultRetention.
	Retention time.Duration
	// CompressAfter compresses event chunks whose end is older than this,
	// on FlavorTimescale only; zero means DefaultCompressAfter.
	CompressAfter time.Duration
	// RefreshWindow refreshes the hourly continuous aggregate from this
	// long ago up to an hour ago, on FlavorTimescale only; zero means
	// DefaultRefreshWindow. It must cover at least two hours.
	RefreshWindow time.Duration
	// Logger receives a line per pass and its failures; nil discards.
	Logger *slog.Logger
}

func (c MaintenanceConfig) withDefaults() (MaintenanceConfig, error) {
	if c.Every == 0 {
		c.Every = DefaultMaintenanceEvery
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.CompressAfter == 0 {
		c.CompressAfter = DefaultCompressAfter
	}
	if c.RefreshWindow == 0 {
		c.RefreshWindow = DefaultRefreshWindow
	}
	if c.Every < 0 {
		return c, fmt.Errorf("%w: maintenance interval %v must be positive", ErrInvalidConfig, c.Every)
	}
	if c.RefreshWindow > 0 && c.RefreshWindow < 2*time.Hour {
		return c, fmt.Errorf("%w: refresh window %v shorter than two hours", ErrInvalidConfig, c.RefreshWindow)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// MaintenanceResult tells what one pass of [Store.Maintain] did.
type MaintenanceResult struct {
	// Ran is false when another instance held the maintenance lock and
	// this pass did nothing.
	Ran bool
	// Dropped counts the event partitions (plain PostgreSQL) or chunks
	// (TimescaleDB) dropped by retention.
	Dropped int
	// Deleted counts the derived rows (and rows of the default partition)
	// deleted by retention.
	Deleted int64
	// Compressed counts the event chunks compressed.
	Compressed int
	// Refreshed tells whether the continuous aggregate was refreshed.
	Refreshed bool
	// Unscheduled lists the TimescaleDB policy jobs this pass unscheduled
	// because maintenance does their work.
	Unscheduled []int
}

// replacedPolicies maps the TimescaleDB policy procedures that maintenance
// replaces to whether cfg has maintenance do their work.
func (c MaintenanceConfig) replacedPolicies() []string {
	var procs []string
	if c.Retention > 0 {
		procs = append(procs, "policy_retention")
	}
	if c.CompressAfter > 0 {
		procs = append(procs, "policy_compression")
	}
	if c.RefreshWindow > 0 {
		procs = append(procs, "policy_refresh_continuous_aggregate")
	}
	return procs
}

// Maintain runs one maintenance pass now, the same on every flavor and
// instead of TimescaleDB's job scheduler (whose policy jobs fail on
// PostgreSQL 15 with TimescaleDB 2.28 and do not exist under the Apache
// license): on plain PostgreSQL it creates the coming daily partitions;
// everywhere it enforces retention ([Store.EnforceRetention]); on
// FlavorTimescale it refreshes the hourly continuous aggregate over
// RefreshWindow and compresses the event chunks older than CompressAfter,
// one chunk per transaction, and unschedules the scheduler's policy jobs
// for the tasks it does, so that they neither run twice nor report
// failures. It records its outcome in the database for [Store.Health].
//
// Only one instance maintains a database at a time: a pass that finds the
// maintenance advisory lock held by another session returns at once with
// Ran false. ctx bounds the pass; a cancelled pass leaves the database
// consistent (each step is its own transaction) and the next pass resumes.
// Maintain returns [ErrInvalidConfig] for a bad configuration,
// [ErrNotMigrated], or the first step's failure; the steps after a failed
// one are still tried.
func (s *Store) Maintain(ctx context.Context, cfg MaintenanceConfig) (MaintenanceResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return MaintenanceResult{}, err
	}
	f, err := s.Flavor(ctx)
	if err != nil {
		return MaintenanceResult{}, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return MaintenanceResult{}, fmt.Errorf("storage: maintenance: %w", err)
	}
	defer conn.Release()
	c := conn.Conn()
	var locked bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", maintenanceLockKey).Scan(&locked); err != nil {
		return MaintenanceResult{}, fmt.Errorf("storage: maintenance: lock: %w", err)
	}
	if !locked {
		return MaintenanceResult{}, nil
	}
	defer func() {
		if _, err := c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", maintenanceLockKey); err != nil {
			// The lock would outlive us in a pooled session: drop the connection.
			_ = c.Close(context.WithoutCancel(ctx))
		}
	}()

	res := MaintenanceResult{Ran: true}
	now := s.now()
	var errs []error
	// step runs fn unless the pass was cancelled, and keeps its error,
	// prefixed with name unless fn's errors name their step already.
	step := func(name string, fn func() error) {
		if err := ctx.Err(); err != nil {
			if len(errs) == 0 {
				errs = append(errs, fmt.Errorf("storage: maintenance: %w", err))
			}
			return
		}
		if err := fn(); err != nil {
			if name != "" {
				err = fmt.Errorf("storage: maintenance: %s: %w", name, err)
			}
			errs = append(errs, err)
		}
	}
	if f == FlavorTimescale {
		step("unschedule policies", func() (err error) {
			res.Unscheduled, err = unschedulePolicies(ctx, c, cfg.replacedPolicies())
			return err
		})
	}
	if f == FlavorPostgres {
		step("partitions", func() error { return s.MaintainPartitions(ctx) })
	}
	if cfg.Retention > 0 {
		step("", func() (err error) { // retain's errors say "storage: retention: …"
			res.Dropped, res.Deleted, err = s.retain(ctx, c, f, now.Add(-cfg.Retention))
			return err
		})
	}
	if f == FlavorTimescale && cfg.RefreshWindow > 0 {
		step("refresh aggregate", func() error {
			// refresh_continuous_aggregate refuses to run inside a
			// transaction block; the simple protocol sends the CALL alone.
			// A refresh TimescaleDB's own policy job began before the pass
			// unscheduled it makes this one fail at once (55P03,
			// lock_not_available): wait for it to end, a few times.
			var err error
			for try := 0; ; try++ {
				_, err = c.Exec(ctx, "CALL refresh_continuous_aggregate('lintel.events_hourly', $1::timestamptz, $2::timestamptz)",
					pgx.QueryExecModeSimpleProtocol, now.Add(-cfg.RefreshWindow), now.Add(-refreshEndOffset))
				var pe *pgconn.PgError
				if err == nil || !errors.As(err, &pe) || pe.Code != "55P03" || try == refreshConcurrentTries-1 {
					break
				}
				select {
				case <-ctx.Done():
					return err
				case <-time.After(refreshConcurrentWait):
				}
			}
			res.Refreshed = err == nil
			return err
		})
	}
	if f == FlavorTimescale && cfg.CompressAfter > 0 {
		step("compression", func() (err error) {
			res.Compressed, err = compressChunks(ctx, c, now.Add(-cfg.CompressAfter))
			return err
		})
	}
	err = errors.Join(errs...)
	s.recordMaintenance(context.WithoutCancel(ctx), c, now, err)
	return res, err
}

// unschedulePolicies pauses the scheduler's jobs of procs on Lintel's
// relations and returns their ids.
func unschedulePolicies(ctx context.Context, c *pgx.Conn, procs []string) ([]int, error) {
	if len(procs) == 0 {
		return nil, nil
	}
	rows, err := c.Query(ctx, `
		SELECT job_id FROM timescaledb_information.jobs
		WHERE hypertable_schema = 'lintel' AND scheduled AND proc_name = ANY($1)
		ORDER BY job_id`, procs)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	var done []int
	for _, id := range ids {
		if _, err := c.Exec(ctx, "SELECT alter_job($1, scheduled => false)", id); err != nil {
			return done, fmt.Errorf("job %d: %w", id, err)
		}
		done = append(done, int(id))
	}
	return done, nil
}

// compressChunks compresses, oldest first and each in its own transaction,
// the uncompressed event chunks that end at or before cutoff.
func compressChunks(ctx context.Context, c *pgx.Conn, cutoff time.Time) (int, error) {
	rows, err := c.Query(ctx, `
		SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks
		WHERE hypertable_schema = 'lintel' AND hypertable_name = 'events'
		  AND NOT is_compressed AND range_end <= $1
		ORDER BY range_start`, cutoff)
	if err != nil {
		return 0, err
	}
	chunks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ch := range chunks {
		if _, err := c.Exec(ctx, "SELECT compress_chunk($1::regclass, if_not_compressed => true)", ch); err != nil {
			return n, fmt.Errorf("chunk %s: %w", ch, err)
		}
		n++
	}
	return n, nil
}

// execQuerier is what retention needs of a connection or a pool.
type execQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// retain deletes history from before cutoff (see [Store.EnforceRetention])
// and returns the partitions or chunks dropped and the rows deleted.
func (s *Store) retain(ctx context.Context, db execQuerier, f Flavor, cutoff time.Time) (dropped int, deleted int64, err error) {
	if f.Timescale() {
		err = db.QueryRow(ctx, "SELECT count(*) FROM drop_chunks('lintel.events', older_than => $1::timestamptz)", cutoff).Scan(&dropped)
	} else {
		err = db.QueryRow(ctx, "SELECT lintel.drop_event_partitions($1)", cutoff).Scan(&dropped)
		s.forgetDaysBefore(cutoff)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("storage: retention: events: %w", err)
	}
	for _, q := range []string{
		"DELETE FROM lintel.event_time_overrides WHERE time < $1",
		"DELETE FROM lintel.access_decisions WHERE time < $1",
		"DELETE FROM lintel.liveness_events WHERE time < $1",
		"DELETE FROM lintel.command_acks WHERE time < $1",
		"DELETE FROM lintel.commands WHERE requested_at < $1",
	} {
		tag, err := db.Exec(ctx, q, cutoff)
		if err != nil {
			return dropped, deleted, fmt.Errorf("storage: retention: %w", err)
		}
		deleted += tag.RowsAffected()
	}
	return dropped, deleted, nil
}

// Maintenance runs [Store.Maintain] periodically; [Store.StartMaintenance]
// returns it.
type Maintenance struct {
	store *Store
	cfg   MaintenanceConfig

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}

	runs, skipped, failures, dropped, compressed atomic.Uint64
	mu                                           sync.Mutex
	last                                         MaintenanceResult
	lastRun, lastSuccess                         time.Time
	lastErr                                      error
}

// MaintenanceStats is a snapshot of a [Maintenance]'s counters, for
// metrics: storage depends on no metrics library, so apps export these.
type MaintenanceStats struct {
	// Runs counts the passes this instance ran; Skipped the passes that
	// found another instance maintaining; Failures the passes that
	// returned an error.
	Runs, Skipped, Failures uint64
	// Dropped and Compressed total the partitions or chunks dropped and
	// the chunks compressed.
	Dropped, Compressed uint64
	// LastRun and LastSuccess are when the latest pass and the latest
	// successful pass of this instance started; zero before the first.
	LastRun, LastSuccess time.Time
	// LastErr is the latest pass's error, nil when it succeeded.
	LastErr error `json:"-"`
	// Last is the latest pass's result.
	Last MaintenanceResult
}

// StartMaintenance validates cfg, checks that the database is migrated and
// starts running [Store.Maintain] now and then every cfg.Every, until
// [Maintenance.Stop]. ctx bounds the start only. It returns
// [ErrInvalidConfig] or [ErrNotMigrated]. Run it on every central
// instance: the advisory lock makes one of them do each pass.
func (s *Store) StartMaintenance(ctx context.Context, cfg MaintenanceConfig) (*Maintenance, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := s.Flavor(ctx); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	m := &Maintenance{store: s, cfg: cfg, cancel: cancel, done: make(chan struct{})}
	go m.loop(runCtx)
	return m, nil
}

func (m *Maintenance) loop(ctx context.Context) {
	defer close(m.done)
	tick := time.NewTicker(m.cfg.Every)
	defer tick.Stop()
	for {
		m.runOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (m *Maintenance) runOnce(ctx context.Context) {
	start := m.store.now()
	res, err := m.store.Maintain(ctx, m.cfg)
	if ctx.Err() != nil {
		return // stopped: not a failure
	}
	log := m.cfg.Logger
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err != nil:
		m.runs.Add(1)
		m.failures.Add(1)
		m.lastRun, m.lastErr = start, err
		log.Error("storage: maintenance failed", "err", err)
	case !res.Ran:
		m.skipped.Add(1)
		log.Debug("storage: maintenance skipped: another instance holds the lock")
		return
	default:
		m.runs.Add(1)
		m.lastRun, m.lastSuccess, m.lastErr = start, start, nil
		log.Info("storage: maintenance done", "dropped", res.Dropped, "deleted", res.Deleted,
			"compressed", res.Compressed, "refreshed", res.Refreshed, "unscheduled", res.Unscheduled,
			"duration", m.store.now().Sub(start))
	}
	m.last = res
	m.dropped.Add(uint64(res.Dropped))
	m.compressed.Add(uint64(res.Compressed))
}

// Stats returns a snapshot of the maintenance's counters.
func (m *Maintenance) Stats() MaintenanceStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MaintenanceStats{
		Runs: m.runs.Load(), Skipped: m.skipped.Load(), Failures: m.failures.Load(),
		Dropped: m.dropped.Load(), Compressed: m.compressed.Load(),
		LastRun: m.lastRun, LastSuccess: m.lastSuccess, LastErr: m.lastErr, Last: m.last,
	}
}

// Stop stops the maintenance, interrupting a pass in progress (which
// leaves the database consistent), and returns once it has stopped. It is
// idempotent.
func (m *Maintenance) Stop() {
	m.stopOnce.Do(m.cancel)
	<-m.done
}

// Done is closed when the maintenance has stopped.
func (m *Maintenance) Done() <-chan struct{} { return m.done }
