package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dsn, want string
	}{
		{"url", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"},
		{"url without database", "postgresql://u:p@h:1", "postgresql://u:p@h:1/x"},
		{"keyword form", "host=127.0.0.1 user=postgres dbname=test", "host=127.0.0.1 user=postgres dbname=test dbname=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withDatabase(tt.dsn, "x")
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			cfg, err := pgxpool.ParseConfig(got)
			require.NoError(t, err)
			assert.Equal(t, "x", cfg.ConnConfig.Database)
		})
	}
}

func TestTemplateName(t *testing.T) {
	t.Parallel()
	got := templateName(Template{Name: "storage", Hash: "ABCdef-0123456789abcdef"}, "tsa")
	assert.Equal(t, "lintel_tmpl_storage_tsa_abcdef0123456789", got)
	assert.LessOrEqual(t, len(templateName(Template{Name: strings.Repeat("x", 20), Hash: strings.Repeat("f", 64)}, "tsa")), 63)
}

// TestRequireVariables checks which variable turns which missing server
// from a skip into a failure.
func TestRequireVariables(t *testing.T) {
	noTS := fmt.Errorf("%w: none here", ErrNoTimescale)
	noDB := fmt.Errorf("%w: none here", ErrNoDatabase)
	t.Setenv(EnvRequireDB, "")
	t.Setenv(EnvRequireTimescale, "")
	assert.Equal(t, EnvRequireTimescale, skipUnless(noTS))
	assert.Equal(t, EnvRequireDB, skipUnless(noDB))
	t.Setenv(EnvRequireDB, "1")
	assert.Equal(t, EnvRequireTimescale, skipUnless(noTS), "LINTEL_REQUIRE_DB is about plain PostgreSQL")
	assert.Empty(t, skipUnless(noDB))
	t.Setenv(EnvRequireTimescale, "1")
	assert.Empty(t, skipUnless(noTS))
	assert.Empty(t, skipUnless(errors.New("pgtest: LINTEL_TEST_TIMESCALE_URL is set but unusable")))
}

func TestServerFlavor(t *testing.T) {
	t.Parallel()
	apache, timescale := "apache", "timescale"
	assert.Equal(t, "pg", serverFlavor(false, nil))
	assert.Equal(t, "pg", serverFlavor(false, &timescale))
	assert.Equal(t, "ts", serverFlavor(true, &timescale))
	assert.Equal(t, "tsa", serverFlavor(true, &apache))
}

// TestDockerPingNeverHangs checks that a missing socket fails at once and
// a socket whose daemon never answers fails within the ping timeout.
func TestDockerPingNeverHangs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	err := dockerPing(context.Background(), "", []string{filepath.Join(dir, "missing.sock")})
	require.Error(t, err)

	sock := filepath.Join(dir, "silent.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer ln.Close()
	var conns sync.WaitGroup
	conns.Add(1)
	go func() { // accept and never answer
		defer conns.Done()
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			buf := make([]byte, 1024)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- dockerPing(context.Background(), "", []string{sock}) }()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("dockerPing hangs on a silent daemon")
	}
	_ = ln.Close()
	conns.Wait()

	for _, host := range []string{"unix://" + filepath.Join(dir, "nope.sock"), "ssh://example", "tcp://127.0.0.1:1"} {
		require.Error(t, dockerPing(context.Background(), host, nil), host)
	}
}

// TestBuildTemplateConcurrent builds one template from several goroutines
// at once, bypassing the per-process cache, as separate test processes
// would: the advisory lock lets exactly one of them migrate.
func TestBuildTemplateConcurrent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := plainServer(ctx)
	if errors.Is(err, ErrNoDatabase) && !truthy(EnvRequireDB) {
		t.Skip(err)
	}
	require.NoError(t, err)

	var calls atomic.Int32
	tmpl := Template{
		Name: "pgtest_conc",
		Hash: fmt.Sprintf("%x", time.Now().UnixNano()),
		Migrate: func(ctx context.Context, pool *pgxpool.Pool) error {
			calls.Add(1)
			_, err := pool.Exec(ctx, "CREATE TABLE t (id int)")
			return err
		},
	}
	name := templateName(tmpl, srv.flavor)
	t.Cleanup(func() { _ = dropDatabase(context.Background(), srv, name) })
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = buildTemplate(ctx, srv, tmpl, name)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), calls.Load())
}

// testServer returns the plain test server, or skips.
func testServer(t *testing.T, ctx context.Context) *server {
	t.Helper()
	srv, err := plainServer(ctx)
	if errors.Is(err, ErrNoDatabase) && !truthy(EnvRequireDB) {
		t.Skip(err)
	}
	require.NoError(t, err)
	return srv
}

// TestTemplatePerFlavor builds one Template on one server as it is seen
// with and without TimescaleDB: each flavor gets a template of its own,
// migrated on its own, so a template built before the server changed is
// never cloned for it afterwards.
func TestTemplatePerFlavor(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := testServer(t, ctx)
	var migrated []string
	var mu sync.Mutex
	var flavor string // the flavor whose template is being built
	tmpl := Template{
		Name: "pgtest_flv",
		Hash: fmt.Sprintf("%x", time.Now().UnixNano()),
		Migrate: func(ctx context.Context, pool *pgxpool.Pool) error {
			mu.Lock()
			migrated = append(migrated, flavor)
			mu.Unlock()
			_, err := pool.Exec(ctx, "CREATE TABLE built_for AS SELECT "+quote(flavor)+"::text AS flavor")
			return err
		},
	}
	for _, f := range []string{"pg", "ts", "tsa"} {
		s := *srv
		s.flavor = f
		flavor = f
		name, err := ensureTemplate(ctx, &s, tmpl)
		require.NoError(t, err)
		t.Cleanup(func() { _ = dropDatabase(context.Background(), srv, name) })
		clone := newDatabaseName()
		require.NoError(t, createDatabase(ctx, srv, clone, name))
		t.Cleanup(func() { _ = dropDatabase(context.Background(), srv, clone) })
		dsn, err := withDatabase(srv.adminDSN, clone)
		require.NoError(t, err)
		pool, err := pgxpool.New(ctx, dsn)
		require.NoError(t, err)
		var got string
		err = pool.QueryRow(ctx, "SELECT flavor FROM built_for").Scan(&got)
		pool.Close()
		require.NoError(t, err)
		assert.Equal(t, f, got, "clone of the %s template", f)
	}
	assert.Equal(t, []string{"pg", "ts", "tsa"}, migrated)
	// Building the "pg" template again reaped none of the others: they
	// share the Name but not the flavor.
	for _, f := range []string{"ts", "tsa"} {
		var n int
		require.NoError(t, pgxConnQueryInt(ctx, srv, "SELECT count(*) FROM pg_database WHERE datname = $1", templateName(tmpl, f), &n))
		assert.Equal(t, 1, n, "template of flavor %s", f)
	}
}

// TestReapKeepsOtherNames builds a template whose Name begins like an
// existing template's Name: the existing one must survive.
func TestReapKeepsOtherNames(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := testServer(t, ctx)
	hash := fmt.Sprintf("%x", time.Now().UnixNano())
	long := Template{Name: "pgtest_reap_pg", Hash: hash, Migrate: func(context.Context, *pgxpool.Pool) error { return nil }}
	short := Template{Name: "pgtest_reap", Hash: hash + "1", Migrate: long.Migrate}
	for _, tm := range []Template{long, short} {
		name := templateName(tm, srv.flavor)
		require.NoError(t, buildTemplate(ctx, srv, tm, name))
		t.Cleanup(func() { _ = dropDatabase(context.Background(), srv, name) })
	}
	var n int
	require.NoError(t, pgxConnQueryInt(ctx, srv, "SELECT count(*) FROM pg_database WHERE datname = $1", templateName(long, srv.flavor), &n))
	assert.Equal(t, 1, n, "template %s reaped by the build of %s", long.Name, short.Name)
}

// TestTemplateLockAcrossAdminDatabases builds one template through two
// connection strings of one server that name different databases, as
// LINTEL_TEST_DATABASE_URL and LINTEL_TEST_TIMESCALE_URL may. Advisory
// locks hold per database, so a lock taken in each admin database would
// not exclude the other; the first builder's migration waits until the
// second is seen waiting for the same lock, which it never would be if
// the two did not share it.
func TestTemplateLockAcrossAdminDatabases(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srvA := testServer(t, ctx)
	other := newDatabaseName()
	require.NoError(t, createDatabase(ctx, srvA, other, ""))
	t.Cleanup(func() { _ = dropDatabase(context.Background(), srvA, other) })
	dsnB, err := withDatabase(srvA.adminDSN, other)
	require.NoError(t, err)
	srvB := *srvA
	srvB.adminDSN = dsnB

	lockKey := uint64(templateLockKey)
	var calls, running, overlap atomic.Int32
	secondStarted := make(chan struct{})
	tmpl := Template{
		Name: "pgtest_xdb",
		Hash: fmt.Sprintf("%x", time.Now().UnixNano()),
		Migrate: func(ctx context.Context, pool *pgxpool.Pool) error {
			calls.Add(1)
			if running.Add(1) > 1 {
				overlap.Add(1)
			}
			defer running.Add(-1)
			<-secondStarted
			// Wait until some session waits for the template lock.
			for {
				var waiting bool
				err := pool.QueryRow(ctx, `
					SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
					   AND classid = $1 AND objid = $2 AND objsubid = 1)`,
					uint32(lockKey>>32), uint32(lockKey&0xffffffff)).Scan(&waiting)
				if err != nil {
					return err
				}
				if waiting {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("no builder waits for the template lock: %w", ctx.Err())
				case <-time.After(10 * time.Millisecond):
				}
			}
		},
	}
	name := templateName(tmpl, srvA.flavor)
	t.Cleanup(func() { _ = dropDatabase(context.Background(), srvA, name) })
	errA := make(chan error, 1)
	go func() { errA <- buildTemplate(ctx, srvA, tmpl, name) }()
	// Start the second builder once the first holds the lock and migrates.
	for calls.Load() == 0 {
		select {
		case err := <-errA:
			t.Fatalf("first builder returned before migrating: %v", err)
		case <-ctx.Done():
			t.Fatal("first builder never migrated")
		case <-time.After(5 * time.Millisecond):
		}
	}
	errB := make(chan error, 1)
	go func() { errB <- buildTemplate(ctx, &srvB, tmpl, name) }()
	close(secondStarted)
	require.NoError(t, <-errA)
	require.NoError(t, <-errB)
	assert.Equal(t, int32(1), calls.Load(), "migrations")
	assert.Zero(t, overlap.Load(), "overlapping migrations")
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func pgxConnQueryInt(ctx context.Context, srv *server, sql string, arg any, n *int) error {
	c, err := connectLockDB(ctx, srv)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.WithoutCancel(ctx)) }()
	return c.QueryRow(ctx, sql, arg).Scan(n)
}

// TestStartContainerThroughStarter: pgtest starts no container without a
// registered starter (the pgdocker module), and probes what a starter
// returns: the image it was asked for, its errors wrapped, a server
// without TimescaleDB refused. The starter here hands back the local
// PostgreSQL, as a container would its own.
func TestStartContainerThroughStarter(t *testing.T) {
	t.Cleanup(func() { UseContainers(nil) })
	UseContainers(nil)
	_, err := startContainer(context.Background())
	require.ErrorContains(t, err, "pgdocker")

	boom := errors.New("no such image")
	var asked string
	UseContainers(func(_ context.Context, image string) (string, error) { asked = image; return "", boom })
	t.Setenv(EnvTimescaleImage, "example/timescaledb:test")
	_, err = startContainer(context.Background())
	require.ErrorIs(t, err, boom)
	assert.Equal(t, "example/timescaledb:test", asked)

	if _, err := probe(context.Background(), DefaultURL, "local"); err != nil {
		if truthy(EnvRequireDB) {
			t.Fatalf("no PostgreSQL on %s: %v", DefaultURL, err)
		}
		t.Skipf("no PostgreSQL on %s for the rest: %v", DefaultURL, err)
	}
	UseContainers(func(context.Context, string) (string, error) { return DefaultURL, nil })
	s, err := startContainer(context.Background())
	if err == nil {
		assert.True(t, s.timescale, "a server without TimescaleDB was accepted as the container")
		assert.Equal(t, "container example/timescaledb:test", s.source)
	} else {
		assert.ErrorContains(t, err, "no timescaledb extension")
	}
}
