package e2e_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// pgRestartDevices is how many devices publish during
// TestFaultsPostgresRestart.
const pgRestartDevices = 8

// pgCrashRecoveryLine is what PostgreSQL logs when it starts after a crash.
const pgCrashRecoveryLine = "database system was not properly shut down; automatic recovery in progress"

// TestFaultsPostgresRestart restarts PostgreSQL itself under central's
// ingest, where TestFaults only cuts the connection to it: central and an
// edge as processes, central's database on a server of the test's own
// (pgtest.StartServer), devices publishing with durable outboxes all
// along, while the test restarts the server in fast mode, crashes it
// (immediate shutdown, recovered from the WAL at the next start), and
// stops it for ten seconds. After each it measures how long a new event
// takes to reach the database, and how long the backlog acknowledged
// until then takes. At the end it counts in four places, as TestFaults
// does: the devices' acknowledged ids, the database's rows by id and by
// payload key, and central's stream: nothing lost, nothing duplicated.
//
// It runs only with LINTEL_FAULTS=1 (.ci/run sets it).
func TestFaultsPostgresRestart(t *testing.T) {
	if os.Getenv("LINTEL_FAULTS") == "" {
		t.Skip("the fault suite runs with LINTEL_FAULTS=1")
	}
	build(t) // outside the figures: shared by the package's tests
	t0 := time.Now()
	srv := pgtest.StartServer(t)
	t.Logf("private PostgreSQL ready in %v", time.Since(t0).Round(time.Millisecond))
	// Central migrates the database when it starts.
	s := render(t, srv.DSN(), inventory(pgRestartDevices), func(leaf string) string { return "nats-leaf://" + leaf })
	cen := start(t, filepath.Join(s.bin, "central"), "-config", s.central)
	waitFor(t, "central ready", ready(s.cadmin))
	edg := start(t, filepath.Join(s.bin, "edge"), "-config", s.edge)
	waitFor(t, "edge ready", ready(s.eadmin))
	t.Logf("central and edge ready in %v", time.Since(t0).Round(time.Millisecond))
	pool, err := pgxpool.New(testCtx(t), srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	st, err := authz.LoadState(filepath.Join(s.dir, "edges/acme-hq/state.json"))
	if err != nil {
		t.Fatal(err)
	}
	connect := func(th topic.Thing, outbox string) *devicekit.Client {
		return s.faultDevice(t, st, s.device, th, outbox)
	}

	// The devices publish until the end, each event with a payload key of
	// its own; every acknowledged id is recorded.
	var mu sync.Mutex
	acked := make(map[message.ID]string)
	var failed int
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for i := range pgRestartDevices {
		th := topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s" + strconv.Itoa(i+1)}
		d := connect(th, filepath.Join(t.TempDir(), "outbox"))
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond) // 50 events/s per device
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				key := th.Code + "-" + strconv.Itoa(n)
				id, err := d.PublishEvent(ctx, "door.opened", map[string]string{"key": key})
				mu.Lock()
				if err == nil {
					acked[id] = key
				} else if ctx.Err() == nil { // not the end of the test
					failed++
				}
				mu.Unlock()
			}
		})
	}
	probe := connect(reader, "")

	// running fails the test if central or the edge has exited.
	running := func(when string) {
		t.Helper()
		for _, p := range []struct {
			name string
			proc *process
		}{{"central", cen}, {"edge", edg}} {
			select {
			case <-p.proc.done:
				t.Fatalf("%s exited %s:\n%s", p.name, when, p.proc.log())
			default:
			}
		}
	}
	// stored reports whether every id is in the database.
	stored := func(ids []string) bool {
		var n int
		err := pool.QueryRow(testCtx(t), "SELECT count(DISTINCT id) FROM lintel.events WHERE id = ANY($1::uuid[])", ids).Scan(&n)
		return err == nil && n == len(ids)
	}
	// recovered measures, from back (when the server accepted connections
	// again), how long a new event takes to reach the database, and how
	// long every event acknowledged until then.
	recovered := func(what string, back time.Time) {
		t.Helper()
		mu.Lock()
		backlog := make([]string, 0, len(acked))
		for id := range acked {
			backlog = append(backlog, id.String())
		}
		mu.Unlock()
		var id message.ID
		waitFor(t, "a probe event accepted after "+what, func() bool {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			id, err = probe.PublishEvent(c, "probe", map[string]string{"after": what})
			return err == nil
		})
		waitFor(t, "the probe in the database after "+what, func() bool { return stored([]string{id.String()}) })
		first := time.Since(back)
		waitFor(t, "the events acknowledged until "+what+" in the database", func() bool { return stored(backlog) })
		t.Logf("%s: a new event reached the database %v after the server was back, the %d events acknowledged by then %v after",
			what, first.Round(time.Millisecond), len(backlog), time.Since(back).Round(time.Millisecond))
		running("after " + what)
	}
	recovered("start", time.Now())

	// restart runs fault against the server and returns when the server
	// accepts connections again.
	restart := func(what string, fault func(context.Context) error) time.Time {
		t.Helper()
		time.Sleep(2 * time.Second) // load before each fault
		t0 := time.Now()
		if err := fault(testCtx(t)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: PostgreSQL down and back in %v", what, time.Since(t0).Round(time.Millisecond))
		return time.Now()
	}

	back := restart("fast restart", srv.Restart)
	recovered("fast restart (-m fast)", back)

	logged := len(srv.Log())
	back = restart("crash restart", srv.CrashRestart)
	if !strings.Contains(srv.Log()[logged:], pgCrashRecoveryLine) {
		t.Fatalf("no crash recovery after an immediate shutdown; the server's log:\n%s", srv.Log()[logged:])
	}
	recovered("crash restart (-m immediate, WAL recovery)", back)

	back = restart("10 s stop", func(ctx context.Context) error {
		if err := srv.Stop(ctx); err != nil {
			return err
		}
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		time.Sleep(10 * time.Second)
		running("while PostgreSQL is stopped")
		mu.Lock()
		n = len(acked) - n
		mu.Unlock()
		t.Logf("10 s stop: the devices had %d events acknowledged while PostgreSQL was stopped", n)
		if n == 0 {
			return errors.New("the devices had no event acknowledged while PostgreSQL was stopped")
		}
		return srv.Start(ctx)
	})
	recovered("10 s stop", back)

	time.Sleep(time.Second)
	stop()
	wg.Wait()
	if os.Getenv("LINTEL_FAULT_LOGS") != "" {
		t.Logf("central:\n%s\nedge:\n%s", cen.log(), edg.log())
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d events acknowledged, %d publishes failed before the end", len(acked), failed)
	if len(acked) == 0 {
		t.Fatal("no event acknowledged")
	}
	// 1 and 2: every acknowledged id is in the database exactly once.
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id.String())
	}
	waitFor(t, "every acknowledged event in the database", func() bool { return stored(ids) })
	count := func(what, q string) int {
		t.Helper()
		var n int
		var err error
		waitFor(t, what, func() bool { // a pooled connection may still be one from before a restart
			err = pool.QueryRow(testCtx(t), q).Scan(&n)
			return err == nil
		})
		return n
	}
	dupIDs := count("duplicate ids", `SELECT count(*) FROM (SELECT id FROM lintel.events GROUP BY id HAVING count(*) > 1) d`)
	// 3: by payload key, so that an event re-sent under a new id would show.
	dupKeys := count("duplicate keys", `SELECT count(*) FROM (SELECT payload->>'key' FROM lintel.events
		WHERE name = 'door.opened' GROUP BY payload->>'key' HAVING count(*) > 1) d`)
	rows := count("rows", `SELECT count(*) FROM lintel.events WHERE name = 'door.opened'`)
	if dupIDs != 0 || dupKeys != 0 {
		t.Fatalf("duplicates in the database: %d ids, %d payload keys", dupIDs, dupKeys)
	}
	t.Logf("database: %d events, %d acknowledged, none duplicated", rows, len(acked))

	// 4: central's stream holds each acknowledged event once, each
	// device's in the order it sent them.
	js := s.centralJS(t)
	n, _ := authz.NamesFor("acme", "hq")
	last := make(map[string]int)
	checkCentralStream(t, js, n.CentralEventStream, "acme.hq.sensor.*.evt", acked, func(e *message.Envelope) {
		p, err := message.DecodePayload[map[string]string](e)
		if err == nil && p["key"] != "" {
			dev, num := splitKey(p["key"])
			if prev, ok := last[dev]; ok && num <= prev {
				t.Fatalf("central's stream holds %s's event %d after its event %d", dev, num, prev)
			}
			last[dev] = num
		}
	})
	running("at the end")
	t.Logf("%v in all", time.Since(t0).Round(time.Second))
}
