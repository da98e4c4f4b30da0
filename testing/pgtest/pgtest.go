package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// setupTimeout bounds finding a server, building a template and creating
	// one database: it covers a container start and a migration.
	setupTimeout = 5 * time.Minute
	// cleanupTimeout bounds dropping a test database.
	cleanupTimeout = 30 * time.Second
	// DefaultMaxConns is the pool size of a test database when
	// [WithMaxConns] is not given: small, because tests run in parallel
	// against one server whose max_connections is shared.
	DefaultMaxConns = 4
)

// Template describes the migrated template database that test databases are
// cloned from. pgtest builds it once per server, process and Hash, under a
// lock that other test processes respect too, and reuses it across runs
// until Hash changes.
type Template struct {
	// Name is a short name for the schema, such as "storage": lower-case
	// letters, digits and '_'. It becomes part of the template's database name.
	Name string
	// Hash identifies the schema version, such as a hash of the migrations.
	// A template whose Hash differs from the current one is stale: it is
	// rebuilt under a new name and the stale one dropped.
	Hash string
	// Migrate brings the empty database behind pool to the schema. It must
	// leave no connection open: pgtest closes pool after it returns.
	Migrate func(ctx context.Context, pool *pgxpool.Pool) error
}

// Option configures [New] and [NewDB]; an invalid option fails the test.
type Option func(*options) error

type options struct {
	tmpl      *Template
	timescale bool
	maxConns  int32
}

// WithTemplate makes the test database a clone of t's template, so that
// it starts migrated. Without it the database starts empty.
func WithTemplate(t Template) Option {
	return func(o *options) error {
		if !validName(t.Name) || len(t.Name) > 20 {
			return fmt.Errorf("pgtest: template name %q: want 1 to 20 of [a-z0-9_]", t.Name)
		}
		if t.Hash == "" {
			return errors.New("pgtest: template hash is empty")
		}
		if t.Migrate == nil {
			return errors.New("pgtest: template Migrate is nil")
		}
		o.tmpl = &t
		return nil
	}
}

// WithTimescale asks for a server with the timescaledb extension available:
// [EnvTimescaleURL], else a container when Docker is available, else the
// ordinary server if it has the extension. When there is none, the test is
// skipped, even with LINTEL_REQUIRE_DB=1, or fails with
// LINTEL_REQUIRE_TIMESCALE=1 ([EnvRequireTimescale]).
func WithTimescale() Option {
	return func(o *options) error {
		o.timescale = true
		return nil
	}
}

// WithMaxConns sets the size of the returned pool; the default is
// [DefaultMaxConns].
func WithMaxConns(n int32) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("pgtest: max conns %d: want at least 1", n)
		}
		o.maxConns = n
		return nil
	}
}

// DB is a fresh database made for one test.
type DB struct {
	// Name is the database's name, unique to the test.
	Name string
	// DSN is a connection string for the database, for code that opens its
	// own connections (or a proxy in front of it: parse it with
	// pgxpool.ParseConfig and change Host and Port).
	DSN string
	// Pool is a pool of connections to the database, closed in cleanup.
	Pool *pgxpool.Pool
	// Source says where the server came from, for messages.
	Source string
	// Timescale reports whether the timescaledb extension can be created.
	Timescale bool
	// Flavor is "pg" without TimescaleDB, "ts" with it under
	// timescaledb.license 'timescale' (compression, policies, continuous
	// aggregates) and "tsa" under 'apache' (hypertables only). It is part
	// of the template's name.
	Flavor string
}

// New returns a pool connected to a fresh database for the test, and drops
// the database in cleanup. See [NewDB] for where the server comes from and
// what happens when there is none.
func New(tb testing.TB, opts ...Option) *pgxpool.Pool {
	tb.Helper()
	return NewDB(tb, opts...).Pool
}

// NewDB creates a fresh database for the test, cloned from the template of
// [WithTemplate] if given, and drops it (closing the pool first) when the
// test ends.
//
// The server is the one named by [EnvDatabaseURL]; else a TimescaleDB
// container when a Docker daemon answers; else PostgreSQL at [DefaultURL].
// When there is none, the test is skipped with a message saying what was
// tried, or fails when [EnvRequireDB] is set. A server configured through
// an environment variable but unusable fails the test.
func NewDB(tb testing.TB, opts ...Option) *DB {
	tb.Helper()
	o := options{maxConns: DefaultMaxConns}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	srv, err := findServer(ctx, o.timescale)
	if err != nil {
		if env := skipUnless(err); env != "" {
			tb.Skipf("%v (set %s=1 to make this a failure)", err, env)
		}
		tb.Fatalf("%v", err)
	}

	tmplName := ""
	if o.tmpl != nil {
		if tmplName, err = ensureTemplate(ctx, srv, *o.tmpl); err != nil {
			tb.Fatalf("%v", err)
		}
	}
	name := newDatabaseName()
	if err := createDatabase(ctx, srv, name, tmplName); err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := dropDatabase(ctx, srv, name); err != nil {
			tb.Errorf("%v", err)
		}
	})

	dsn, err := withDatabase(srv.adminDSN, name)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	cfg.MaxConns = o.maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(pool.Close)
	return &DB{Name: name, DSN: dsn, Pool: pool, Source: srv.source, Timescale: srv.timescale, Flavor: srv.flavor}
}

// skipUnless returns, when err reports a missing server that skips the
// test, the variable that would make it a failure instead; "" when err
// fails the test.
func skipUnless(err error) string {
	switch {
	case errors.Is(err, ErrNoTimescale) && !truthy(EnvRequireTimescale):
		return EnvRequireTimescale
	case errors.Is(err, ErrNoDatabase) && !truthy(EnvRequireDB):
		return EnvRequireDB
	}
	return ""
}

func findServer(ctx context.Context, timescale bool) (*server, error) {
	if timescale {
		return timescaleServer(ctx)
	}
	return plainServer(ctx)
}

// testDBPrefix begins the name of every test database; the Unix time of
// creation follows, so that databases leaked by killed processes can be
// recognised as old and dropped.
const testDBPrefix = "lintel_test_"

func newDatabaseName() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%s%d_%s", testDBPrefix, time.Now().Unix(), hex.EncodeToString(b[:]))
}

// withDatabase returns dsn with its database replaced by db. It handles the
// URL and the keyword/value forms of connection strings.
func withDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("pgtest: parse connection URL: %w", err)
		}
		u.Path = "/" + db
		u.RawPath = ""
		return u.String(), nil
	}
	// In keyword/value form a later keyword wins.
	return dsn + " dbname=" + db, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
