package pgtest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewEmptyDatabase(t *testing.T) {
	t.Parallel()
	var name string
	var admin string
	t.Run("inner", func(t *testing.T) {
		db := pgtest.NewDB(t)
		name, admin = db.Name, db.DSN
		var got string
		require.NoError(t, db.Pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&got))
		assert.Equal(t, db.Name, got)
		assert.True(t, strings.HasPrefix(got, "lintel_test_"), got)
		var tables int
		require.NoError(t, db.Pool.QueryRow(t.Context(),
			"SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables))
		assert.Zero(t, tables)
	})
	if t.Skipped() || name == "" {
		return
	}
	// The database is gone after the inner test's cleanup.
	conn, err := pgx.Connect(t.Context(), strings.Replace(admin, name, "postgres", 1))
	if err != nil {
		t.Skipf("cannot reconnect to check the drop: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n))
	assert.Zero(t, n, "test database %s not dropped", name)
}

// TestTemplateBuiltOnce clones many databases in parallel from one template
// with a fresh hash, and checks the migration ran once and every clone has
// its schema and data.
func TestTemplateBuiltOnce(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	tmpl := pgtest.Template{
		Name: "pgtest_once",
		Hash: randomHash(),
		Migrate: func(ctx context.Context, pool *pgxpool.Pool) error {
			calls.Add(1)
			_, err := pool.Exec(ctx, `CREATE TABLE widgets (id int PRIMARY KEY); INSERT INTO widgets VALUES (1), (2)`)
			return err
		},
	}
	names := make(chan string, 6)
	t.Run("group", func(t *testing.T) {
		for i := range 6 {
			t.Run("clone"+string(rune('a'+i)), func(t *testing.T) {
				t.Parallel()
				db := pgtest.NewDB(t, pgtest.WithTemplate(tmpl), pgtest.WithMaxConns(1))
				names <- db.Name
				var n int
				require.NoError(t, db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM widgets").Scan(&n))
				assert.Equal(t, 2, n)
				// Clones are independent.
				_, err := db.Pool.Exec(t.Context(), "INSERT INTO widgets VALUES (3)")
				require.NoError(t, err)
			})
		}
	})
	close(names)
	seen := map[string]bool{}
	for n := range names {
		assert.False(t, seen[n], "database name %s reused", n)
		seen[n] = true
	}
	if len(seen) > 0 {
		assert.Equal(t, int32(1), calls.Load(), "migration must run once per process and hash")
	}
}

func TestTemplateMigrateError(t *testing.T) {
	t.Parallel()
	// A failing migration fails the test; run it in a throwaway TB.
	tb := &fatalTB{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { _ = recover() }()
		pgtest.NewDB(tb, pgtest.WithTemplate(pgtest.Template{
			Name: "pgtest_bad", Hash: randomHash(),
			Migrate: func(ctx context.Context, pool *pgxpool.Pool) error {
				_, err := pool.Exec(ctx, "CREATE TABLE broken (")
				return err
			},
		}))
	}()
	wg.Wait()
	if tb.skipped {
		t.Skip(tb.msg)
	}
	require.True(t, tb.failed, "a failing migration must fail the test")
	assert.Contains(t, tb.msg, "migrate template")
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  pgtest.Option
	}{
		{"template name with dash", pgtest.WithTemplate(pgtest.Template{Name: "a-b", Hash: "x", Migrate: noMigrate})},
		{"template name empty", pgtest.WithTemplate(pgtest.Template{Hash: "x", Migrate: noMigrate})},
		{"template without hash", pgtest.WithTemplate(pgtest.Template{Name: "a", Migrate: noMigrate})},
		{"template without migrate", pgtest.WithTemplate(pgtest.Template{Name: "a", Hash: "x"})},
		{"zero max conns", pgtest.WithMaxConns(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := &fatalTB{TB: t}
			func() {
				defer func() { _ = recover() }()
				pgtest.NewDB(tb, tt.opt)
			}()
			assert.True(t, tb.failed, "invalid option accepted")
			assert.Contains(t, tb.msg, "pgtest:")
		})
	}
}

func TestTimescale(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, pgtest.WithTimescale())
	require.True(t, db.Timescale)
	_, err := db.Pool.Exec(t.Context(), "CREATE EXTENSION IF NOT EXISTS timescaledb")
	require.NoError(t, err)
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func noMigrate(context.Context, *pgxpool.Pool) error { return nil }

func randomHash() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fatalTB records Fatal and Skip instead of ending the test, so that tests
// can check how NewDB fails. Fatal and Skip end the calling goroutine with
// a panic that the caller recovers, as runtime.Goexit would.
type fatalTB struct {
	testing.TB
	mu      sync.Mutex
	failed  bool
	skipped bool
	msg     string
}

func (f *fatalTB) Fatal(args ...any)                 { f.stop(false, args...) }
func (f *fatalTB) Fatalf(format string, args ...any) { f.stopf(false, format, args...) }
func (f *fatalTB) Skipf(format string, args ...any)  { f.stopf(true, format, args...) }
func (f *fatalTB) Errorf(format string, args ...any) { f.TB.Logf("Errorf: "+format, args...) }
func (f *fatalTB) Helper()                           {}

func (f *fatalTB) stop(skip bool, args ...any) {
	f.mu.Lock()
	f.failed, f.skipped = !skip, skip
	for _, a := range args {
		if e, ok := a.(error); ok {
			f.msg += e.Error()
		} else if s, ok := a.(string); ok {
			f.msg += s
		}
	}
	f.mu.Unlock()
	panic(f)
}

func (f *fatalTB) stopf(skip bool, format string, args ...any) {
	f.mu.Lock()
	f.failed, f.skipped = !skip, skip
	f.msg = sprintf(format, args...)
	f.mu.Unlock()
	panic(f)
}
