package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lintel-io/lintel/internal/bench"
)

// init makes the test binary act as lintelctl when bench starts it as a
// child process (bench's children re-run the executable).
func init() {
	if os.Getenv(benchChildEnv) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// benchDatabase returns the URL of a new database name on the server of
// base's host and port, dropped at the end of the test; it skips the test
// when the server does not answer and required is false.
func benchDatabase(t *testing.T, server string, required bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, server+"/postgres")
	if err != nil {
		switch {
		case required && os.Getenv("LINTEL_REQUIRE_DB") == "1":
			t.Fatalf("no PostgreSQL at %s and LINTEL_REQUIRE_DB=1: %v", server, err)
		case required:
			t.Skipf("no PostgreSQL at %s (LINTEL_REQUIRE_DB=1 makes this a failure): %v", server, err)
		case os.Getenv("LINTEL_REQUIRE_TIMESCALE") == "1":
			t.Fatalf("no TimescaleDB at %s and LINTEL_REQUIRE_TIMESCALE=1: %v", server, err)
		}
		return "off"
	}
	_ = c.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "lintel_bench_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server+"/postgres")
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return server + "/" + name
}

func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every bench scenario: about a minute")
	}
	db := benchDatabase(t, "postgres://postgres@127.0.0.1:5432", true)
	tsdb := benchDatabase(t, "postgres://postgres@127.0.0.1:5433", false)
	logFile := filepath.Join(t.TempDir(), "bench.log")
	r := mustRun(t, "bench", "--quick", "--output", "json", "--database", db, "--timescale", tsdb, "--log", logFile)
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, r.stdout)
	}
	if !rep.Quick || rep.Machine.NProc < 1 || !strings.Contains(rep.Command, "--quick") {
		t.Errorf("report header: quick %v, machine %+v, command %q", rep.Quick, rep.Machine, rep.Command)
	}
	got := map[string]bench.Result{}
	for _, s := range rep.Scenarios {
		got[s.Scenario] = s
	}
	for _, name := range bench.Scenarios() {
		s, ok := got[name]
		if !ok {
			t.Errorf("scenario %s: not in the report", name)
			continue
		}
		if s.Error != "" {
			t.Errorf("scenario %s: %s", name, s.Error)
		}
		measured := false
		for _, f := range s.Figures {
			if f.Value > 0 && f.Baseline > 0 && f.BaselineName != "" {
				measured = true
			}
		}
		if !measured {
			t.Errorf("scenario %s: no figure with a value and a baseline: %+v", name, s.Figures)
		}
	}
	// The scale scenario takes goroutines and the heap at start, half time
	// and end; the decision scenario measures a bare request round trip
	// beside the floor; the stream scenario a bare HTTP front end; and the
	// backlog scenario times each catch-up's phases.
	for scenario, wants := range map[string][]string{
		"scale":    {"goroutines at start", "goroutines at half time", "goroutines at end", "live heap at start", "live heap at half time", "live heap at end"},
		"decision": {"1 reader request round trip p99 (no disk)", "10 readers request round trip p99 (no disk)"},
		"stream":   {"raw HTTP front end events/s", "HTTP devices events/s, against raw HTTP"},
	} {
		for _, want := range wants {
			found := false
			for _, f := range got[scenario].Figures {
				found = found || (f.Name == want && f.Value > 0)
			}
			if !found {
				t.Errorf("%s: no %q: %+v", scenario, want, got[scenario].Figures)
			}
		}
	}
	if notes := strings.Join(got["backlog"].Notes, "\n"); !strings.Contains(notes, "the longest pause after that") {
		t.Errorf("backlog: no catch-up phases in its notes: %s", notes)
	}
	// --log holds central's log and the edges', nats-server's included.
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"msg":"central started","side":"central"`, `"msg":"edge node started"`, `"component":"nats-server"`} {
		if !strings.Contains(string(logs), want) {
			t.Errorf("--log %s: no %s", logFile, want)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", r.stderr)
	}
}

func TestBenchRefusesUnknownScenario(t *testing.T) {
	r := lintelctl(t, "bench", "--scenario", "stream,warp")
	if r.code != exitUsage || !strings.Contains(r.stderr, `--scenario "warp"`) {
		t.Fatalf("exit %d, stderr %q: want a usage error naming the scenario", r.code, r.stderr)
	}
}
