package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// templatePrefix begins the name of every template database.
	templatePrefix = "lintel_tmpl_"
	// templateLockKey is the advisory lock, taken in the admin database,
	// that serialises template building and reaping across processes.
	templateLockKey int64 = 0x6c696e74656c7001 // "lintelp\x01"
	// staleAfter is the age after which a leftover test database, from a
	// process that was killed before its cleanup ran, is dropped.
	staleAfter = 3 * time.Hour
	// createRetryFor bounds retries of CREATE DATABASE while the template is
	// briefly in use (SQLSTATE 55006).
	createRetryFor = 30 * time.Second
)

// templates caches, per server and template database name, the outcome of
// building the template, so that each process builds it at most once.
var templates struct {
	mu sync.Mutex
	m  map[string]*templateOnce
}

type templateOnce struct {
	once sync.Once
	err  error
}

// templateName returns the database name of t's template on a server of
// the given flavor (see server.flavor).
func templateName(t Template, flavor string) string {
	h := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return -1
	}, t.Hash)
	if len(h) > 16 {
		h = h[:16]
	}
	return templatePrefix + t.Name + "_" + flavor + "_" + h
}

// ensureTemplate builds t's template on srv unless it exists, and returns its name.
func ensureTemplate(ctx context.Context, srv *server, t Template) (string, error) {
	name := templateName(t, srv.flavor)
	key := srv.adminDSN + "\x00" + name
	templates.mu.Lock()
	if templates.m == nil {
		templates.m = make(map[string]*templateOnce)
	}
	o := templates.m[key]
	if o == nil {
		o = &templateOnce{}
		templates.m[key] = o
	}
	templates.mu.Unlock()
	o.once.Do(func() { o.err = buildTemplate(ctx, srv, t, name) })
	return name, o.err
}

// buildTemplate makes the template database name from t, under an advisory
// lock so that concurrent test processes build it once between them. A
// template is complete once it is marked IS_TEMPLATE, which happens only
// after Migrate succeeded; an incomplete one, left by a killed process, is
// dropped and built again.
//
// Advisory locks hold per database, so the lock is taken in the server's
// maintenance database "postgres" whatever database the admin connection
// string names: two connection strings for one server (one naming "test",
// one "postgres", say) then serialise on the same lock. Only when that
// database cannot be reached is the lock taken in the admin database.
func buildTemplate(ctx context.Context, srv *server, t Template, name string) (err error) {
	admin, err := connectLockDB(ctx, srv)
	if err != nil {
		return err
	}
	defer func() { _ = admin.Close(context.WithoutCancel(ctx)) }()
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return fmt.Errorf("pgtest: lock templates: %w", err)
	}
	// Closing the connection releases the lock too; unlock explicitly so a
	// pooled server-side session never keeps it.
	defer func() {
		_, _ = admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLockKey)
	}()

	reapStale(ctx, admin, t.Name, srv.flavor, name)

	var isTemplate bool
	err = admin.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		return nil // built by an earlier run or another process
	case err == nil:
		if err := dropDB(ctx, admin, name); err != nil {
			return err
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("pgtest: look up template %s: %w", name, err)
	}

	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("pgtest: create template %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = dropDB(context.WithoutCancel(ctx), admin, name)
		}
	}()
	if err := migrateTemplate(ctx, srv, t, name); err != nil {
		return err
	}
	for _, q := range []string{
		"ALTER DATABASE " + ident(name) + " WITH ALLOW_CONNECTIONS false",
		// Background workers (TimescaleDB's scheduler) may still be
		// connected; a template in use cannot be cloned.
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "' AND pid <> pg_backend_pid()",
		"ALTER DATABASE " + ident(name) + " WITH IS_TEMPLATE true",
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return fmt.Errorf("pgtest: seal template %s: %w", name, err)
		}
	}
	return nil
}

// lockDB is the database in which template locks are taken: the
// maintenance database that initdb creates on every server.
const lockDB = "postgres"

// connectLockDB connects to srv's lockDB, or to its admin database when
// lockDB cannot be reached.
func connectLockDB(ctx context.Context, srv *server) (*pgx.Conn, error) {
	if dsn, err := withDatabase(srv.adminDSN, lockDB); err == nil {
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			return c, nil
		}
	}
	c, err := pgx.Connect(ctx, srv.adminDSN)
	if err != nil {
		return nil, fmt.Errorf("pgtest: connect to %s: %w", srv.source, err)
	}
	return c, nil
}

func migrateTemplate(ctx context.Context, srv *server, t Template, name string) error {
	dsn, err := withDatabase(srv.adminDSN, name)
	if err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	cfg.MaxConns = DefaultMaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer pool.Close()
	if err := t.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("pgtest: migrate template %s: %w", name, err)
	}
	return nil
}

// reapStale drops, best effort, the templates of the same Name and server
// flavor as current whose hash is not current, and test databases older
// than staleAfter. A template of another Name that merely begins alike
// ("storage_pg" beside "storage") is left alone: after the Name only the
// flavor and the hash may follow. It runs under the template lock.
func reapStale(ctx context.Context, admin *pgx.Conn, tmplName, flavor, current string) {
	rows, err := admin.Query(ctx, `
		SELECT datname FROM pg_database
		WHERE (datname ~ $1 AND datname <> $2) OR starts_with(datname, $3)`,
		"^"+templatePrefix+tmplName+"_"+flavor+"_[a-z0-9]{1,16}$", current, testDBPrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-staleAfter).Unix()
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, testDBPrefix); ok {
			ts, _, _ := strings.Cut(rest, "_")
			if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || sec > cutoff {
				continue // recent: probably in use by a running test
			}
		}
		_ = dropDB(ctx, admin, n)
	}
}

// createDatabase creates name on srv as a clone of tmpl, or empty when tmpl is "".
func createDatabase(ctx context.Context, srv *server, name, tmpl string) error {
	if tmpl == "" {
		tmpl = "template0"
	}
	admin, err := pgx.Connect(ctx, srv.adminDSN)
	if err != nil {
		return fmt.Errorf("pgtest: connect to %s: %w", srv.source, err)
	}
	defer func() { _ = admin.Close(context.WithoutCancel(ctx)) }()
	deadline := time.Now().Add(createRetryFor)
	for {
		_, err := admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tmpl))
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("pgtest: create database %s from %s: %w", name, tmpl, err)
			}
			return nil
		}
		// The template is in use for a moment (another CREATE DATABASE
		// from template0 in PostgreSQL < 15, or a closing connection).
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: create database %s: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// dropDatabase drops name from srv, closing any connection left to it.
func dropDatabase(ctx context.Context, srv *server, name string) error {
	admin, err := pgx.Connect(ctx, srv.adminDSN)
	if err != nil {
		return fmt.Errorf("pgtest: connect to %s to drop %s: %w", srv.source, name, err)
	}
	defer func() { _ = admin.Close(context.WithoutCancel(ctx)) }()
	return dropDB(ctx, admin, name)
}

func dropDB(ctx context.Context, admin *pgx.Conn, name string) error {
	// A template cannot be dropped; clear the flag first. Only then: ALTER
	// DATABASE of a database left invalid by an interrupted DROP is a
	// FATAL error, which closes the connection.
	var isTemplate bool
	err := admin.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&isTemplate)
	if err == nil && isTemplate {
		_, _ = admin.Exec(ctx, "ALTER DATABASE "+ident(name)+" WITH IS_TEMPLATE false")
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }
