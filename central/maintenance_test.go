package central_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// startWithDatabase starts central with one edge in its inventory and
// pool as its database, maintained as maint says.
func startWithDatabase(t *testing.T, pool *pgxpool.Pool, maint *storage.MaintenanceConfig) *central.Central {
	t.Helper()
	d := &deployment{passwords: map[string]authz.Secret{}, dir: t.TempDir(), orgs: map[string]central.OrgSecrets{}}
	d.generate(t, inventory("hq"))
	c, err := central.Start(ctx(t), central.Config{
		Inventory: d.inv, State: d.st, Orgs: d.orgs, Database: pool, Maintenance: maint,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
			StoreDir: t.TempDir(), MaxFileStore: 256 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

var ids message.IDGenerator

// telemetry is a stored temperature reading of th at the given time.
func telemetry(th topic.Thing, at time.Time, seq int64) storage.Event {
	v := float64(seq)
	return storage.Event{
		ID: ids.New(), DeviceTime: at, ReceivedAt: at, Thing: th,
		MessageType: topic.Telemetry, Name: "temperature", BootID: ids.New(), Seq: seq, Value: &v,
		Payload: []byte(fmt.Sprintf(`{"value": %d}`, seq)), Envelope: []byte(fmt.Sprintf("envelope-%d", seq)),
	}
}

// TestMaintenance: with Config.Maintenance, central maintains its database
// itself: an event older than the retention, stored while central runs, is
// dropped by a later pass and a recent one kept; the status reports this
// node's passes and the pass recorded in the database, and central is
// ready. Without it, central runs none.
func TestMaintenance(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	c := startWithDatabase(t, pool, &storage.MaintenanceConfig{Every: 100 * time.Millisecond, Retention: 30 * 24 * time.Hour})
	now := time.Now().UTC()
	res, err := c.Store().InsertEvents(ctx(t), []storage.Event{
		telemetry(hqReader, now.Add(-100*24*time.Hour), 1), telemetry(hqReader, now.Add(-time.Hour), 2)})
	if err != nil || res.Inserted != 2 {
		t.Fatalf("insert: %+v, %v", res, err)
	}
	count := func() (n int) {
		if err := pool.QueryRow(ctx(t), "SELECT count(*) FROM lintel.events WHERE seq = 1").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The pass that drops it counts it once Maintain has returned.
	waitFor(t, "the old event dropped by maintenance, and the pass counted", func() bool {
		m := c.Status(ctx(t)).Maintenance
		return count() == 0 && m != nil && m.Dropped >= 1
	})
	var recent int
	if err := pool.QueryRow(ctx(t), "SELECT count(*) FROM lintel.events WHERE seq = 2").Scan(&recent); err != nil || recent != 1 {
		t.Fatalf("recent event: %d rows, %v; want 1", recent, err)
	}
	st := c.Status(ctx(t))
	if st.Maintenance == nil || st.Maintenance.Runs < 1 || st.Maintenance.Failures != 0 || st.Maintenance.Dropped < 1 {
		t.Fatalf("maintenance status %+v: want runs, a partition dropped, no failure", st.Maintenance)
	}
	if st.Storage == nil || st.Storage.Flavor != storage.FlavorPostgres || st.Storage.Maintenance.LastSuccess.IsZero() {
		t.Fatalf("storage health %+v: want flavor postgres and a successful pass recorded", st.Storage)
	}
	if err := st.Ready(); err != nil {
		t.Fatalf("not ready: %v", err)
	}

	other := startWithDatabase(t, pgtest.New(t), nil)
	if st := other.Status(ctx(t)); st.Maintenance != nil || st.Storage == nil || !st.Storage.Maintenance.LastRun.IsZero() {
		t.Fatalf("without Maintenance: maintenance %+v, storage %+v; want none run", st.Maintenance, st.Storage)
	}
}

// TestReadinessReportsFailingJob: on TimescaleDB, a job of Lintel's that
// the scheduler runs and that fails makes central not ready, the error
// naming the job and its error text; central's maintenance unschedules the
// schema's policy jobs it replaces, so that their failures (TimescaleDB's
// scheduler fails them on some PostgreSQL versions) are not reported.
func TestReadinessReportsFailingJob(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, pgtest.WithTimescale())
	if db.Flavor != "ts" {
		t.Skipf("needs timescaledb.license 'timescale'; %s has flavor %q", db.Source, db.Flavor)
	}
	c := startWithDatabase(t, db.Pool, &storage.MaintenanceConfig{Every: time.Hour})
	st := c.Status(ctx(t))
	if st.Storage == nil || st.Storage.Flavor != storage.FlavorTimescale || len(st.Storage.Jobs) == 0 {
		t.Fatalf("storage health %+v: want flavor timescale and the schema's jobs", st.Storage)
	}
	for _, j := range st.Storage.Jobs {
		if j.Scheduled {
			t.Errorf("job %d %q still scheduled after central's maintenance", j.ID, j.Name)
		}
	}
	if err := st.Ready(); err != nil {
		t.Fatalf("not ready before the failing job: %v", err)
	}

	_, err := db.Pool.Exec(ctx(t), `CREATE PROCEDURE lintel.failing_job(job_id int, config jsonb) LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'rollup of % failed', job_id USING ERRCODE = 'P0001'; END $$`)
	if err != nil {
		t.Fatal(err)
	}
	var id int
	if err := db.Pool.QueryRow(ctx(t), "SELECT add_job('lintel.failing_job', '1 hour', initial_start => now())").Scan(&id); err != nil {
		t.Fatal(err)
	}
	// Restart the database's scheduler, so that it reads the new job now:
	// one already running may never see it (seen: a scheduler that started
	// as the database was created ran no added job for 3 minutes).
	if _, err := db.Pool.Exec(ctx(t), "SELECT _timescaledb_functions.restart_background_workers()"); err != nil {
		t.Fatal(err)
	}
	var ready error
	waitWithin(t, 3*time.Minute, "central not ready for the failing job", func() bool {
		ready = c.Status(ctx(t)).Ready()
		return ready != nil
	})
	for _, want := range []string{"database", fmt.Sprintf("job %d", id), "P0001: rollup of"} {
		if !strings.Contains(ready.Error(), want) {
			t.Errorf("readiness error %q does not name %q", ready, want)
		}
	}
}
