package storage_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flavorDB returns a fresh database migrated to flavor f: plain
// PostgreSQL on the ordinary server, the TimescaleDB flavors on a
// TimescaleDB server (skipped without one, or failed with
// LINTEL_REQUIRE_TIMESCALE=1). FlavorTimescale needs the server's
// 'timescale' license and is skipped under 'apache'.
func flavorDB(t *testing.T, f storage.Flavor) *pgtest.DB {
	t.Helper()
	if !f.Timescale() {
		return pgtest.NewDB(t, pgtest.WithTemplate(template(f)))
	}
	if f == storage.FlavorTimescale {
		if probe := pgtest.NewDB(t, pgtest.WithTimescale()); probe.Flavor != "ts" {
			t.Skipf("flavor %q needs timescaledb.license 'timescale'; %s has flavor %q", f, probe.Source, probe.Flavor)
		}
	}
	return pgtest.NewDB(t, pgtest.WithTimescale(), pgtest.WithTemplate(template(f)))
}

var allFlavors = []storage.Flavor{storage.FlavorPostgres, storage.FlavorTimescaleApache, storage.FlavorTimescale}

// heartbeat returns a heartbeat of th at t, which also makes a liveness event.
func heartbeat(th topic.Thing, t time.Time) storage.Event {
	e := event(th, t)
	e.MessageType, e.Name, e.Value = topic.State, message.NameThingHeartbeat, nil
	e.Payload = []byte(`{"boot_id": "` + bootID.String() + `", "uptime": 1000}`)
	return e
}

// TestMaintainRetention stores old and recent history and checks that a
// maintenance pass really drops the old and keeps the recent, on every
// flavor.
func TestMaintainRetention(t *testing.T) {
	t.Parallel()
	for _, f := range allFlavors {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			db := flavorDB(t, f)
			s := storage.New(db.Pool, storage.Config{})
			ctx := testContext(t)
			now := timeNow()
			old, recent := now.Add(-100*24*time.Hour), now.Add(-2*time.Hour)
			var batch []storage.Event
			for i := range 50 {
				batch = append(batch, event(thingA, old.Add(time.Duration(i)*time.Minute)), event(thingA, recent.Add(time.Duration(i)*time.Second)))
			}
			batch = append(batch, heartbeat(thingA, old), heartbeat(thingA, recent))
			res, err := s.InsertEvents(ctx, batch)
			require.NoError(t, err)
			require.Equal(t, len(batch), res.Inserted)
			require.Equal(t, 51, count(t, db.Pool, "SELECT count(*) FROM lintel.events WHERE time < $1", now.Add(-30*24*time.Hour)))
			require.Equal(t, 2, count(t, db.Pool, "SELECT count(*) FROM lintel.liveness_events"))

			mr, err := s.Maintain(ctx, storage.MaintenanceConfig{Retention: 30 * 24 * time.Hour})
			require.NoError(t, err)
			assert.True(t, mr.Ran)
			assert.GreaterOrEqual(t, mr.Dropped, 1, "partitions or chunks dropped")
			assert.GreaterOrEqual(t, mr.Deleted, int64(1), "derived rows deleted")
			assert.Zero(t, count(t, db.Pool, "SELECT count(*) FROM lintel.events WHERE time < $1", now.Add(-30*24*time.Hour)))
			assert.Equal(t, 51, count(t, db.Pool, "SELECT count(*) FROM lintel.events"), "recent events kept")
			assert.Equal(t, 1, count(t, db.Pool, "SELECT count(*) FROM lintel.liveness_events"), "recent liveness event kept")
			if f.Timescale() {
				assert.Zero(t, count(t, db.Pool, `SELECT count(*) FROM timescaledb_information.chunks
					WHERE hypertable_schema = 'lintel' AND hypertable_name = 'events' AND range_end <= $1`, now.Add(-30*24*time.Hour)))
			} else {
				assert.Zero(t, count(t, db.Pool, "SELECT count(*) FROM pg_tables WHERE schemaname = 'lintel' AND tablename = $1",
					"events_p"+old.UTC().Format("20060102")))
			}

			h, err := s.Health(ctx)
			require.NoError(t, err)
			require.NoError(t, h.Err())
			assert.Equal(t, f, h.Flavor)
			assert.False(t, h.Maintenance.LastSuccess.IsZero(), "maintenance recorded")
		})
	}
}

// TestMaintainCompressesAndRefreshes checks, where the flavor has them,
// that maintenance really compresses old chunks (they take less space and
// still read back) and refreshes the continuous aggregate, and that it
// unschedules the scheduler's policy jobs it replaces.
func TestMaintainCompressesAndRefreshes(t *testing.T) {
	t.Parallel()
	db := flavorDB(t, storage.FlavorTimescale)
	s := storage.New(db.Pool, storage.Config{})
	ctx := testContext(t)
	now := timeNow()
	old, recent := now.Add(-20*24*time.Hour), now.Add(-3*time.Hour)
	var batch []storage.Event
	for i := range 2000 {
		th := thingA
		th.Code = []string{"s1", "s2", "s3", "s4"}[i%4]
		batch = append(batch, event(th, old.Add(time.Duration(i)*time.Second)))
	}
	for i := range 100 {
		batch = append(batch, event(thingA, recent.Add(time.Duration(i)*time.Second)))
	}
	_, err := s.InsertEvents(ctx, batch)
	require.NoError(t, err)
	matTable := ""
	require.NoError(t, db.Pool.QueryRow(ctx, `
		SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
		FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'lintel' AND view_name = 'events_hourly'`).Scan(&matTable))
	require.Zero(t, count(t, db.Pool, "SELECT count(*) FROM "+matTable), "nothing materialized yet")
	require.Zero(t, count(t, db.Pool, `SELECT count(*) FROM timescaledb_information.chunks
		WHERE hypertable_schema = 'lintel' AND hypertable_name = 'events' AND is_compressed`), "nothing compressed yet")
	policies := count(t, db.Pool, "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_schema = 'lintel' AND scheduled")
	require.Equal(t, 3, policies, "the schema's policy jobs")

	mr, err := s.Maintain(ctx, storage.MaintenanceConfig{})
	require.NoError(t, err)
	assert.True(t, mr.Ran)
	assert.Len(t, mr.Unscheduled, 3, "compression, retention and refresh policies unscheduled")
	assert.Zero(t, count(t, db.Pool, "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_schema = 'lintel' AND scheduled"))
	assert.True(t, mr.Refreshed)
	assert.GreaterOrEqual(t, mr.Compressed, 1)

	// Compressed: the old chunks are, the recent one is not, and they
	// take less space than before.
	assert.Zero(t, count(t, db.Pool, `SELECT count(*) FROM timescaledb_information.chunks
		WHERE hypertable_schema = 'lintel' AND hypertable_name = 'events' AND range_end <= $1 AND NOT is_compressed`, now.Add(-14*24*time.Hour)))
	assert.Equal(t, 1, count(t, db.Pool, `SELECT count(*) FROM timescaledb_information.chunks
		WHERE hypertable_schema = 'lintel' AND hypertable_name = 'events' AND range_start <= $1 AND range_end > $1 AND NOT is_compressed`, recent),
		"the chunk of the recent events is not compressed")
	var before, after int64
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT before_compression_total_bytes, after_compression_total_bytes
		FROM hypertable_compression_stats('lintel.events')`).Scan(&before, &after))
	assert.Less(t, after, before, "compressed chunks are smaller")
	t.Logf("compressed %d chunks: %d bytes before, %d after", mr.Compressed, before, after)
	page, err := s.Events(ctx, storage.EventQuery{Org: "acme", ThingCode: "s2", To: now.Add(-14 * 24 * time.Hour), Limit: 1000})
	require.NoError(t, err)
	assert.Len(t, page.Events, 500, "compressed events read back")

	// Refreshed: the recent hours are materialized.
	assert.Positive(t, count(t, db.Pool, "SELECT count(*) FROM "+matTable+" WHERE bucket >= $1", recent.Truncate(time.Hour)))

	// A second pass finds nothing left to do.
	mr, err = s.Maintain(ctx, storage.MaintenanceConfig{})
	require.NoError(t, err)
	assert.Empty(t, mr.Unscheduled)
	assert.Zero(t, mr.Compressed)
}

// TestMaintainOnceAcrossInstances holds the maintenance lock as another
// central instance would: a pass then does nothing, and runs once the lock
// is free.
func TestMaintainOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	s := storage.New(db.Pool, storage.Config{})
	ctx := testContext(t)
	_, err := s.InsertEvents(ctx, []storage.Event{event(thingA, timeNow().Add(-100*24*time.Hour))})
	require.NoError(t, err)

	other, err := db.Pool.Acquire(ctx)
	require.NoError(t, err)
	defer other.Release()
	_, err = other.Exec(ctx, "SELECT pg_advisory_lock($1)", storage.MaintenanceLockKey)
	require.NoError(t, err)
	mr, err := s.Maintain(ctx, storage.MaintenanceConfig{Retention: 30 * 24 * time.Hour})
	require.NoError(t, err)
	assert.False(t, mr.Ran)
	assert.Equal(t, 1, count(t, db.Pool, "SELECT count(*) FROM lintel.events"), "nothing dropped while another instance maintains")

	_, err = other.Exec(ctx, "SELECT pg_advisory_unlock($1)", storage.MaintenanceLockKey)
	require.NoError(t, err)
	mr, err = s.Maintain(ctx, storage.MaintenanceConfig{Retention: 30 * 24 * time.Hour})
	require.NoError(t, err)
	assert.True(t, mr.Ran)
	assert.Zero(t, count(t, db.Pool, "SELECT count(*) FROM lintel.events"))
}

// TestStartMaintenance runs maintenance through its handle: it runs a pass
// at once, counts it, and stops through Stop, not through the start ctx.
func TestStartMaintenance(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	s := storage.New(db.Pool, storage.Config{})
	_, err := s.InsertEvents(testContext(t), []storage.Event{event(thingA, timeNow().Add(-100*24*time.Hour))})
	require.NoError(t, err)

	startCtx, cancel := context.WithCancel(context.Background())
	m, err := s.StartMaintenance(startCtx, storage.MaintenanceConfig{Retention: 30 * 24 * time.Hour})
	require.NoError(t, err)
	cancel() // bounds the start only
	eventually(t, "first maintenance pass", func() error {
		if st := m.Stats(); st.Runs == 0 {
			return assert.AnError
		}
		return nil
	})
	select {
	case <-m.Done():
		t.Fatal("maintenance stopped with its start ctx")
	default:
	}
	st := m.Stats()
	assert.NoError(t, st.LastErr)
	assert.Zero(t, st.Failures)
	assert.False(t, st.LastSuccess.IsZero())
	assert.GreaterOrEqual(t, st.Dropped, uint64(1))
	assert.Zero(t, count(t, db.Pool, "SELECT count(*) FROM lintel.events"))
	m.Stop()
	<-m.Done()
	m.Stop() // idempotent

	_, err = s.StartMaintenance(testContext(t), storage.MaintenanceConfig{RefreshWindow: time.Hour})
	require.ErrorIs(t, err, storage.ErrInvalidConfig)
	_, err = storage.New(pgtest.New(t), storage.Config{}).StartMaintenance(testContext(t), storage.MaintenanceConfig{})
	require.ErrorIs(t, err, storage.ErrNotMigrated)
}

// TestHealthReportsFailingJobs makes one of Lintel's TimescaleDB jobs fail
// in the real scheduler and checks that Health names it with its error
// text, that TimescaleDB's own jobs are not reported, and that the policy
// jobs maintenance replaces no longer count once it has unscheduled them.
func TestHealthReportsFailingJobs(t *testing.T) {
	t.Parallel()
	db := flavorDB(t, storage.FlavorTimescale)
	s := storage.New(db.Pool, storage.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), schedulerTimeout+waitTimeout)
	defer cancel()
	h, err := s.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, "timescale", h.License)
	require.Len(t, h.Jobs, 3, "the schema's policy jobs")

	_, err = db.Pool.Exec(ctx, `CREATE PROCEDURE lintel.failing_job(job_id int, config jsonb) LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'rollup of % failed', job_id USING ERRCODE = 'P0001'; END $$`)
	require.NoError(t, err)
	var jobID int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT add_job('lintel.failing_job', '1 hour', initial_start => now())").Scan(&jobID))
	// Restart the database's scheduler, so that it reads the new job now:
	// one already running may never see it (seen: a scheduler that started
	// as the database was created ran no added job for 3 minutes).
	_, err = db.Pool.Exec(ctx, "SELECT _timescaledb_functions.restart_background_workers()")
	require.NoError(t, err)
	waitFor(t, schedulerTimeout, "the scheduler runs the failing job", func() error {
		if h, err = s.Health(ctx); err != nil {
			return err
		}
		for _, j := range h.Jobs {
			if j.ID == jobID && j.Failing() {
				return nil
			}
		}
		return assert.AnError
	})
	err = h.Err()
	require.ErrorIs(t, err, storage.ErrUnhealthy)
	assert.Contains(t, err.Error(), "P0001: rollup of")
	for _, j := range h.Jobs {
		assert.GreaterOrEqual(t, j.ID, 1000, "TimescaleDB's own job %d %q reported", j.ID, j.Name)
	}

	_, err = s.Maintain(ctx, storage.MaintenanceConfig{})
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, "SELECT delete_job($1)", jobID)
	require.NoError(t, err)
	h, err = s.Health(ctx)
	require.NoError(t, err)
	require.NoError(t, h.Err(), "policy jobs replaced by maintenance")
	for _, j := range h.Jobs {
		assert.False(t, j.Scheduled, "job %d %q", j.ID, j.Name)
	}
}

// TestHealthApacheNoFalseAlarm has the scheduler fail a job that is not
// Lintel's on an Apache-flavor database (under the 'apache' license
// TimescaleDB's own job 3 fails by design, "functionality not supported
// under the current 'apache' license"): Health reports no job and no
// problem, before and after maintenance.
func TestHealthApacheNoFalseAlarm(t *testing.T) {
	t.Parallel()
	db := flavorDB(t, storage.FlavorTimescaleApache)
	s := storage.New(db.Pool, storage.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), schedulerTimeout+waitTimeout)
	defer cancel()
	// A job of someone else's: the license's own failing job where the
	// server runs 'apache', else one that fails the same way.
	// (The 'apache' license refuses add_job and alter_job: there, wait
	// for TimescaleDB's own jobs to fail.)
	failing := "SELECT count(*) FROM timescaledb_information.job_stats WHERE last_run_status = 'Failed'"
	if db.Flavor != "tsa" {
		_, err := db.Pool.Exec(ctx, `CREATE PROCEDURE public.not_lintels(job_id int, config jsonb) LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'functionality not supported' USING ERRCODE = '0A000'; END $$`)
		require.NoError(t, err)
		var id int
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT add_job('public.not_lintels', '1 hour', initial_start => now())").Scan(&id))
		failing += " AND job_id = " + strconv.Itoa(id)
	}
	// Restart the database's scheduler, so that it reads the new job now:
	// one already running may never see it (seen: a scheduler that started
	// as the database was created ran no added job for 3 minutes).
	_, err := db.Pool.Exec(ctx, "SELECT _timescaledb_functions.restart_background_workers()")
	require.NoError(t, err)
	waitFor(t, schedulerTimeout, "the scheduler fails a job that is not Lintel's", func() error {
		if count(t, db.Pool, failing) == 0 {
			return assert.AnError
		}
		return nil
	})
	h, err := s.Health(ctx)
	require.NoError(t, err)
	assert.Empty(t, h.Jobs)
	require.NoError(t, h.Err())
	_, err = s.Maintain(ctx, storage.MaintenanceConfig{})
	require.NoError(t, err)
	h, err = s.Health(ctx)
	require.NoError(t, err)
	require.NoError(t, h.Err())
}

// TestMaintainFailureReported breaks a table retention deletes from: the
// pass fails naming it, Health reports the failed pass until a later
// pass succeeds.
func TestMaintainFailureReported(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	s := storage.New(db.Pool, storage.Config{})
	ctx := testContext(t)
	_, err := db.Pool.Exec(ctx, "ALTER TABLE lintel.commands RENAME TO commands_away")
	require.NoError(t, err)
	_, err = s.Maintain(ctx, storage.MaintenanceConfig{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lintel.commands")
	h, err := s.Health(ctx)
	require.NoError(t, err)
	err = h.Err()
	require.ErrorIs(t, err, storage.ErrUnhealthy)
	assert.Contains(t, err.Error(), "maintenance failed")
	assert.True(t, h.Maintenance.LastSuccess.IsZero())

	_, err = db.Pool.Exec(ctx, "ALTER TABLE lintel.commands_away RENAME TO commands")
	require.NoError(t, err)
	_, err = s.Maintain(ctx, storage.MaintenanceConfig{})
	require.NoError(t, err)
	h, err = s.Health(ctx)
	require.NoError(t, err)
	require.NoError(t, h.Err())
	assert.False(t, h.Maintenance.LastSuccess.IsZero())
}

// schedulerTimeout bounds the wait for TimescaleDB's scheduler to run a
// job: each database's scheduler and each job it runs need a background
// worker, and with many test databases at once (max_worker_processes is 8
// by default) one may have to wait for another's database to go away.
const schedulerTimeout = 3 * time.Minute

// waitFor calls f until it returns nil or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		<-tick.C
	}
}
