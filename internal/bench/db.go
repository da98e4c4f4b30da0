package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lintel-io/lintel/storage"
)

// openDB connects to the database of url, creating it if missing (through
// the server's "postgres" database), drops its lintel schema and migrates
// it again, and returns a pool and the flavor migrated. A server that does
// not answer within a few seconds is an error wrapping errUnreachable.
func openDB(ctx context.Context, url string) (*pgxpool.Pool, storage.Flavor, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, "", fmt.Errorf("bench: database URL: %w", err)
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	admin := cfg.ConnConfig.Copy()
	admin.Database = "postgres"
	c, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %w", errUnreachable, cfg.ConnConfig.Host, err)
	}
	var exists bool
	err = c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cfg.ConnConfig.Database).Scan(&exists)
	if err == nil && !exists {
		_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.ConnConfig.Database}.Sanitize())
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "42P04" || pe.Code == "23505") { // created meanwhile
			err = nil
		}
	}
	_ = c.Close(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("bench: create database %s: %w", cfg.ConnConfig.Database, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("bench: database: %w", err)
	}
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS lintel CASCADE"); err != nil {
		pool.Close()
		return nil, "", fmt.Errorf("bench: reset database: %w", err)
	}
	res, err := storage.Migrate(ctx, pool, storage.MigrateOptions{})
	if err != nil {
		pool.Close()
		return nil, "", fmt.Errorf("bench: migrate: %w", err)
	}
	return pool, res.Flavor, nil
}

// errUnreachable marks a database server that did not answer.
var errUnreachable = errors.New("bench: database server unreachable")

// eventColumns are the columns of lintel.events the ingest writes, as
// storage's ingest benchmark copies them.
var eventColumns = []string{"time", "id", "device_time", "received_at", "org", "edge", "thing_type", "thing_code",
	"message_type", "name", "boot_id", "seq", "correlation_id", "replayed", "value", "payload", "envelope"}

// readRows reads every row of lintel.events, as CopyFrom takes them.
func readRows(ctx context.Context, pool *pgxpool.Pool) ([][]any, error) {
	rows, err := pool.Query(ctx, `SELECT time, id, device_time, received_at, org, edge, thing_type, thing_code,
		message_type, name, boot_id, seq, correlation_id, replayed, value, payload::text, envelope FROM lintel.events`)
	if err != nil {
		return nil, fmt.Errorf("bench: read rows: %w", err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("bench: read rows: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bench: read rows: %w", err)
	}
	return out, nil
}

// copyRows copies rows into lintel.events with pgx CopyFrom, batch rows
// per statement, and returns how long it took.
func copyRows(ctx context.Context, pool *pgxpool.Pool, rows [][]any, batch int) (time.Duration, error) {
	start := time.Now()
	for off := 0; off < len(rows); off += batch {
		chunk := rows[off:min(off+batch, len(rows))]
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"lintel", "events"}, eventColumns, pgx.CopyFromRows(chunk)); err != nil {
			return 0, fmt.Errorf("bench: copy rows: %w", err)
		}
	}
	return time.Since(start), nil
}
