package pgtest_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lintel-io/lintel/testing/pgtest"
)

// recoveryLine is what PostgreSQL logs when it starts after a crash.
const recoveryLine = "database system was not properly shut down; automatic recovery in progress"

func connectServer(t *testing.T, ctx context.Context, srv *pgtest.Server) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, srv.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// TestServerCrashRestart: a committed row survives an immediate shutdown,
// which the server recovers from its WAL at the next start.
func TestServerCrashRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := pgtest.StartServer(t)

	c := connectServer(t, ctx, srv)
	_, err := c.Exec(ctx, `CREATE TABLE doors (code text PRIMARY KEY)`)
	require.NoError(t, err)
	_, err = c.Exec(ctx, `INSERT INTO doors VALUES ('front')`)
	require.NoError(t, err)
	require.NotContains(t, srv.Log(), recoveryLine)

	before := len(srv.Log())
	require.NoError(t, srv.CrashRestart(ctx))
	assert.Contains(t, srv.Log()[before:], recoveryLine, "an immediate shutdown is a crash")

	_, err = c.Exec(ctx, `SELECT 1`)
	assert.Error(t, err, "a connection from before the crash is gone")
	var code string
	require.NoError(t, connectServer(t, ctx, srv).QueryRow(ctx, `SELECT code FROM doors`).Scan(&code))
	assert.Equal(t, "front", code)
}

// TestServerStopStart: while the server is stopped a connection fails; a
// start fails while another process holds the port; a fast restart keeps
// the data without crash recovery, and ends the connections open before
// it.
func TestServerStopStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := pgtest.StartServer(t)

	c := connectServer(t, ctx, srv)
	_, err := c.Exec(ctx, `CREATE TABLE doors (code text PRIMARY KEY); INSERT INTO doors VALUES ('front')`)
	require.NoError(t, err)

	require.NoError(t, srv.Stop(ctx))
	require.NoError(t, srv.Stop(ctx), "stopping a stopped server does nothing")
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = pgx.Connect(cctx, srv.DSN())
	ccancel()
	require.Error(t, err, "a connection while the server is stopped")
	_, err = c.Exec(ctx, `SELECT 1`)
	require.Error(t, err, "a connection from before the stop")

	// A start fails, rather than hang or find another server, while
	// another process holds the port.
	u, err := url.Parse(srv.DSN())
	require.NoError(t, err)
	l, err := net.Listen("tcp", u.Host)
	require.NoError(t, err)
	err = srv.Start(ctx)
	require.ErrorContains(t, err, "exited while starting")
	require.NoError(t, l.Close())

	require.NoError(t, srv.Start(ctx))
	c = connectServer(t, ctx, srv)
	_, err = c.Exec(ctx, `INSERT INTO doors VALUES ('back')`)
	require.NoError(t, err)
	require.NoError(t, srv.Restart(ctx))
	var n int
	require.NoError(t, connectServer(t, ctx, srv).QueryRow(ctx, `SELECT count(*) FROM doors`).Scan(&n))
	assert.Equal(t, 2, n)
	assert.NotContains(t, srv.Log(), recoveryLine, "a fast shutdown is clean")
	assert.Equal(t, 3, strings.Count(srv.Log(), "database system is ready to accept connections"), "three starts")
}

// ExampleStartServer shows a test that restarts PostgreSQL under the code
// it tests. pgtest.StartServer needs the test's *testing.T, so the example
// declares the test function rather than running it.
func ExampleStartServer() {
	testSurvivesCrash := func(t *testing.T) {
		srv := pgtest.StartServer(t)
		// ... start the code under test with srv.DSN() ...
		if err := srv.CrashRestart(t.Context()); err != nil {
			t.Fatal(err)
		}
		// ... and check it carried on.
	}
	_ = testSurvivesCrash
}
