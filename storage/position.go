package storage

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// txHook queues on b the statements that run last in the transaction
// that stores a batch, in the round trip of the batch's other closing
// statements. An error from their results (errFenced) rolls the
// transaction back.
type txHook func(b *pgx.Batch)

// errFenced reports that the position an ingest read is no longer the
// committed one: another ingest of the same stream committed meanwhile.
// The transaction it was found in is rolled back.
var errFenced = errors.New("storage: ingest position moved under this ingest (another instance took over)")

// IngestPosition is where an ingest stands in its stream, as committed in
// the database with the events ([Store.IngestPosition]).
type IngestPosition struct {
	Stream string // the JetStream stream
	Name   string // the ingest's name ([IngestConfig.Durable])
	// Seq is the last stream sequence whose events are committed; the
	// ingest resumes at Seq+1.
	Seq uint64
	// Gaps and GapMessages count the ranges of stream sequences, and the
	// sequences in them, that the stream no longer held when the ingest
	// read past them (removed by limits, purged or deleted before they
	// were stored): events lost before they reached the database.
	Gaps, GapMessages uint64
	// UpdatedAt is when the position last moved.
	UpdatedAt time.Time
}

// IngestPosition returns the committed position of the ingest name of
// stream; a zero Seq when it has committed nothing yet. It returns
// [ErrNotMigrated] on a database without the ingest_positions table.
func (s *Store) IngestPosition(ctx context.Context, stream, name string) (IngestPosition, error) {
	p := IngestPosition{Stream: stream, Name: name}
	var seq, gaps, gapMsgs int64
	err := s.pool.QueryRow(ctx, `SELECT seq, gaps, gap_messages, updated_at FROM lintel.ingest_positions
		WHERE stream = $1 AND name = $2`, stream, name).Scan(&seq, &gaps, &gapMsgs, &p.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return p, nil
	case isUndefinedTable(err):
		return p, ErrNotMigrated
	case err != nil:
		return p, fmt.Errorf("storage: ingest position of %s/%s: %w", stream, name, err)
	}
	p.Seq, p.Gaps, p.GapMessages = uint64(seq), uint64(gaps), uint64(gapMsgs)
	return p, nil
}

// openPosition makes sure the position row of stream and name exists and
// returns its committed sequence.
func (s *Store) openPosition(ctx context.Context, stream, name string) (uint64, error) {
	var seq int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO lintel.ingest_positions (stream, name) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, stream, name); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT seq FROM lintel.ingest_positions WHERE stream = $1 AND name = $2`,
			stream, name).Scan(&seq)
	})
	if isUndefinedTable(err) {
		return 0, ErrNotMigrated
	}
	if err != nil {
		return 0, fmt.Errorf("storage: ingest position of %s/%s: %w", stream, name, err)
	}
	return uint64(seq), nil
}

// advanceHook returns the hook that moves the position of stream and name
// from from to to, adding gaps, inside the batch's transaction. It fails
// with errFenced, rolling the batch back, when the committed position is
// no longer from.
func advanceHook(stream, name string, from, to uint64, gaps, gapMsgs uint64) txHook {
	return func(b *pgx.Batch) {
		b.Queue(`UPDATE lintel.ingest_positions
			SET seq = $4, gaps = gaps + $5, gap_messages = gap_messages + $6, updated_at = now()
			WHERE stream = $1 AND name = $2 AND seq = $3`,
			stream, name, int64(from), int64(to), int64(gaps), int64(gapMsgs)).Fn = func(br pgx.BatchResults) error {
			tag, err := br.Exec()
			if err != nil {
				return fmt.Errorf("storage: advance ingest position: %w", err)
			}
			if tag.RowsAffected() != 1 {
				return errFenced
			}
			return nil
		}
	}
}

// runHook runs hook in a transaction of its own.
func (s *Store) runHook(ctx context.Context, hook txHook) error {
	return s.inTx(ctx, hook, func(pgx.Tx) error { return nil })
}

// inTx runs fn in a transaction and commits it, as pgx.BeginFunc does,
// but sends the BEGIN in one round trip with the statements first queues
// (none if nil), whose results are read before fn runs.
func (s *Store) inTx(ctx context.Context, first func(b *pgx.Batch), fn func(tx pgx.Tx) error) (err error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	if first != nil {
		first(b)
	}
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer func() {
		if rerr := tx.Rollback(ctx); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) && err == nil {
			err = rerr
		}
	}()
	if err := br.Close(); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// ingestLockKey is the session advisory lock that makes one ingest of
// stream and name active at a time, across processes.
func ingestLockKey(stream, name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("lintel-ingest\x00" + stream + "\x00" + name))
	return int64(h.Sum64())
}

// tryIngestLock takes the ingest's advisory lock on a connection of its
// own, made from the pool's configuration (not taken from the pool, so a
// small pool is not starved). It returns nil, nil when another session
// holds the lock.
func (s *Store) tryIngestLock(ctx context.Context, key int64) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("storage: ingest lock: %w", err)
	}
	var ok bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("storage: ingest lock: %w", err)
	}
	if !ok {
		_ = c.Close(context.WithoutCancel(ctx))
		return nil, nil
	}
	return c, nil
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000")
}
