package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
)

// Where the live mode keeps history.
const (
	// envDatabaseURL names the PostgreSQL database to use as it is.
	envDatabaseURL = "LINTEL_DATABASE_URL"
	// localAdminURL is the PostgreSQL tried when nothing names one: the
	// demo creates its database demoDatabase there.
	localAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	demoDatabase  = "lintel_demo"
	// noDatabase, as -database, keeps history in JetStream only.
	noDatabase = "none"
	// probeTimeout bounds trying localAdminURL.
	probeTimeout = 2 * time.Second
	// dbTimeout bounds connecting to a database named by the user, and
	// creating demoDatabase.
	dbTimeout = 10 * time.Second
	// dbMaxConns keeps the demo's share of a shared server small.
	dbMaxConns = 4
)

// history is where central keeps its history: a PostgreSQL database, or
// nothing (JetStream only).
type history struct {
	pool *pgxpool.Pool // nil: JetStream only
	// claim holds the demo's advisory lock on the database (see claim).
	claim *pgx.Conn
	url   string // the database's URL, with its password
	// why says why there is no database, when there is none.
	why string
}

// openHistory finds central's database: setting (the -database flag:
// a URL, noDatabase, or "" for the default), else $LINTEL_DATABASE_URL,
// both used as they are, else PostgreSQL at localAdminURL if it answers
// within probeTimeout, where it creates demoDatabase unless it exists. A
// database named by the flag or the variable that cannot be used is an
// error; a local one that cannot, a history without database.
func openHistory(ctx context.Context, setting string) (*history, error) {
	dsn, source := setting, "-database"
	if dsn == "" {
		dsn, source = os.Getenv(envDatabaseURL), "$"+envDatabaseURL
	}
	switch dsn {
	case noDatabase:
		return &history{why: source + " is " + noDatabase}, nil
	case "":
		local, err := createDatabase(ctx, localAdminURL, demoDatabase, probeTimeout)
		if err != nil {
			return &history{why: fmt.Sprintf("no usable PostgreSQL at %s: %v", redact(localAdminURL), err)}, nil
		}
		h, err := useDatabase(ctx, local)
		if err != nil {
			return &history{why: fmt.Sprintf("%s: %v", redact(local), err)}, nil
		}
		return h, nil
	}
	h, err := useDatabase(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("the database of %s, %s: %w", source, redact(dsn), err)
	}
	return h, nil
}

// useDatabase claims the database dsn for this run (see claim) and opens
// a pool on it.
func useDatabase(ctx context.Context, dsn string) (*history, error) {
	c, err := claim(ctx, dsn)
	if err != nil {
		return nil, err
	}
	pool, err := connectPool(ctx, dsn)
	if err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return &history{pool: pool, claim: c, url: dsn}, nil
}

// demoLock is the advisory lock a demo holds on its database while it
// runs: "LINT" "DEMO", in the two-key space, apart from the one-key locks
// of package storage.
const demoLockClass, demoLockID = 0x4c494e54, 0x44454d4f

// errDatabaseBusy reports a database that another demo is using.
var errDatabaseBusy = errors.New("another demo is using it")

// claim makes the database dsn this run's: it takes the demo's advisory
// lock, held by the connection it returns until that is closed, and
// forgets where the ingest of an earlier run stood in its event stream.
// Each run's central has a new stream whose sequences start at 1, which
// the ingest would skip up to the earlier run's position; two runs at
// once would share one ingest position, so a database has one demo at a
// time (errDatabaseBusy).
func claim(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	c, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	var locked bool
	err = c.QueryRow(cctx, "SELECT pg_try_advisory_lock($1, $2)", int32(demoLockClass), int32(demoLockID)).Scan(&locked)
	if err == nil && !locked {
		err = errDatabaseBusy
	}
	if err == nil {
		var stream jetstream.StreamConfig
		if stream, err = authz.CentralEventStreamConfig(org); err == nil {
			err = forgetPosition(cctx, c, stream.Name)
		}
	}
	if err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

// forgetPosition deletes the committed ingest positions of stream (the
// org's event stream at central), if the database has been migrated.
func forgetPosition(ctx context.Context, c *pgx.Conn, stream string) error {
	var migrated bool
	if err := c.QueryRow(ctx, "SELECT to_regclass('lintel.ingest_positions') IS NOT NULL").Scan(&migrated); err != nil {
		return fmt.Errorf("look for the ingest positions: %w", err)
	}
	if !migrated {
		return nil
	}
	if _, err := c.Exec(ctx, "DELETE FROM lintel.ingest_positions WHERE stream = $1", stream); err != nil {
		return fmt.Errorf("reset the ingest position of an earlier run: %w", err)
	}
	return nil
}

// close closes the pool, if any, and releases the database.
func (h *history) close() {
	if h.pool != nil {
		h.pool.Close()
	}
	if h.claim != nil {
		release(h.claim)
	}
}

// release releases the claim c holds and closes it. The lock is released
// explicitly: the server would release it only once the connection's
// backend has exited, after Close returns, and a demo started right
// after would find the database busy.
func release(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	_, _ = c.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", int32(demoLockClass), int32(demoLockID))
	_ = c.Close(ctx)
}

// describe says where history is kept, the URL's password redacted.
func (h *history) describe() string {
	if h.pool == nil {
		return "JetStream only (" + h.why + ")"
	}
	return "PostgreSQL " + redact(h.url)
}

// connectPool opens a small pool on dsn and pings it.
func connectPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	cfg.MaxConns = dbMaxConns
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

// createDatabase connects to adminURL, waiting at most connectTimeout,
// creates database name unless it exists, and returns adminURL naming
// that database instead.
func createDatabase(ctx context.Context, adminURL, name string, connectTimeout time.Duration) (string, error) {
	dsn, err := withDatabase(adminURL, name)
	if err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	conn, err := pgx.Connect(cctx, adminURL)
	cancel()
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	ctx, cancel = context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	for {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			return "", fmt.Errorf("look for database %s: %w", name, err)
		}
		if exists {
			return dsn, nil
		}
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		var pe *pgconn.PgError
		switch {
		case err == nil:
			return dsn, nil
		case errors.As(err, &pe) && pe.Code == "42P04": // duplicate_database: another demo made it
			return dsn, nil
		case errors.As(err, &pe) && pe.Code == "55006": // object_in_use: the template is being copied; try again
		default:
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("create database %s: %w", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// withDatabase returns the connection URL dsn naming database db instead.
func withDatabase(dsn, db string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%s is not a postgres:// URL", redact(dsn))
	}
	u.Path, u.RawPath = "/"+db, ""
	return u.String(), nil
}

// passwordKeyword matches the password of a keyword/value connection string.
var passwordKeyword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redact returns dsn with its password, if any, replaced by "xxxxx".
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return passwordKeyword.ReplaceAllString(dsn, "${1}xxxxx")
}
