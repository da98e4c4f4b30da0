package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
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
	got := templateName(Template{Name: "storage", Hash: "ABCdef-0123456789abcdef"})
	assert.Equal(t, "lintel_tmpl_storage_abcdef0123456789", got)
	assert.LessOrEqual(t, len(got), 63)
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
	name := templateName(tmpl)
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
