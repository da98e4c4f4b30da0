package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Health is what [Store.Health] found: the database's flavor, the state of
// Lintel's TimescaleDB jobs and of the last maintenance pass. Apps export
// it as metrics and base readiness on [Health.Err].
type Health struct {
	Flavor  Flavor // the schema's flavor
	License string // timescaledb.license, or "" without TimescaleDB
	// Jobs are the TimescaleDB scheduler's jobs on Lintel's relations
	// (and procedures in schema lintel), in id order. TimescaleDB's own
	// jobs (telemetry, job history retention) are not Lintel's and are left
	// out: under the Apache license one of them fails by design.
	Jobs []Job
	// Maintenance is the outcome of the latest [Store.Maintain] pass of any
	// instance; zero when maintenance never ran.
	Maintenance MaintenanceRecord
}

// Job is one TimescaleDB scheduler job and its latest outcome.
type Job struct {
	ID        int    // TimescaleDB's job id
	Name      string // application_name, e.g. "Columnstore Policy [1000]"
	Proc      string // procedure, e.g. "policy_compression"
	Relation  string // the hypertable or continuous aggregate, e.g. "lintel.events"
	Scheduled bool   // false once paused, e.g. by [Store.Maintain]
	// LastStatus is "Success" or "Failed", "" before the first run.
	LastStatus string
	// LastRun and LastSuccess are when the latest run started and the
	// latest successful run finished; zero when none.
	LastRun, LastSuccess time.Time
	// Runs and Failures count the job's runs and failed runs, as
	// TimescaleDB's job_stats has them (total_runs, total_failures); zero
	// before the first run.
	Runs, Failures int64
	// LastError is the latest recorded error ("SQLSTATE: message"), ""
	// when none.
	LastError string
}

// Failing reports whether the job is scheduled and its latest run failed.
// A paused job's failures are history, not a current problem.
func (j Job) Failing() bool { return j.Scheduled && j.LastStatus == "Failed" }

// MaintenanceRecord is the outcome of the latest maintenance pass, as
// recorded in the database by whichever instance ran it.
type MaintenanceRecord struct {
	// LastRun and LastSuccess are when the latest pass and the latest
	// successful pass started; zero when none.
	LastRun, LastSuccess time.Time
	// LastError is the latest pass's error, "" when it succeeded.
	LastError string
}

// Err returns nil when nothing is wrong, else an error wrapping
// [ErrUnhealthy] that names every failing job (with its error text) and a
// failed latest maintenance pass. It does not judge how recent the last
// successful maintenance is: compare Maintenance.LastSuccess with the
// interval the app configured.
func (h Health) Err() error {
	var errs []error
	for _, j := range h.Jobs {
		if j.Failing() {
			msg := j.LastError
			if msg == "" {
				msg = "no error recorded"
			}
			errs = append(errs, fmt.Errorf("%w: job %d %q (%s on %s) failed at %s: %s",
				ErrUnhealthy, j.ID, j.Name, j.Proc, j.Relation, j.LastRun.UTC().Format(time.RFC3339), msg))
		}
	}
	if m := h.Maintenance; m.LastError != "" {
		errs = append(errs, fmt.Errorf("%w: maintenance failed at %s: %s", ErrUnhealthy, m.LastRun.UTC().Format(time.RFC3339), m.LastError))
	}
	return errors.Join(errs...)
}

// Health reads the database's flavor, Lintel's TimescaleDB jobs with their
// latest status and error (timescaledb_information.job_stats and
// job_errors), and the latest maintenance pass. The returned error is about
// reading these (including [ErrNotMigrated]); what they say is judged by
// [Health.Err], so a readiness check is
//
//	h, err := store.Health(ctx)
//	if err == nil {
//		err = h.Err()
//	}
func (s *Store) Health(ctx context.Context) (Health, error) {
	f, err := s.Flavor(ctx)
	if err != nil {
		return Health{}, err
	}
	h := Health{Flavor: f}
	if f.Timescale() {
		if err := s.pool.QueryRow(ctx, "SELECT current_setting('timescaledb.license')").Scan(&h.License); err != nil {
			return h, fmt.Errorf("storage: health: timescaledb.license: %w", err)
		}
		rows, err := s.pool.Query(ctx, `
			SELECT j.job_id, j.application_name, j.proc_name,
			       coalesce(j.hypertable_schema || '.' || j.hypertable_name, j.proc_schema || '.' || j.proc_name),
			       j.scheduled, coalesce(st.last_run_status, ''),
			       CASE WHEN isfinite(st.last_run_started_at) THEN st.last_run_started_at END,
			       CASE WHEN isfinite(st.last_successful_finish) THEN st.last_successful_finish END,
			       coalesce(st.total_runs, 0), coalesce(st.total_failures, 0),
			       coalesce((SELECT coalesce(e.sqlerrcode || ': ', '') || coalesce(e.err_message, '')
			                 FROM timescaledb_information.job_errors e
			                 WHERE e.job_id = j.job_id ORDER BY e.start_time DESC LIMIT 1), '')
			FROM timescaledb_information.jobs j
			LEFT JOIN timescaledb_information.job_stats st ON st.job_id = j.job_id
			WHERE j.hypertable_schema = 'lintel' OR j.proc_schema = 'lintel'
			ORDER BY j.job_id`)
		if err != nil {
			return h, fmt.Errorf("storage: health: jobs: %w", err)
		}
		h.Jobs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Job, error) {
			var j Job
			var lastRun, lastOK *time.Time
			err := row.Scan(&j.ID, &j.Name, &j.Proc, &j.Relation, &j.Scheduled, &j.LastStatus,
				&lastRun, &lastOK, &j.Runs, &j.Failures, &j.LastError)
			if lastRun != nil {
				j.LastRun = *lastRun
			}
			if lastOK != nil {
				j.LastSuccess = *lastOK
			}
			return j, err
		})
		if err != nil {
			return h, fmt.Errorf("storage: health: jobs: %w", err)
		}
	}
	h.Maintenance, err = s.maintenanceRecord(ctx)
	return h, err
}

// Keys of the maintenance record in lintel.settings.
const (
	settingMaintenanceRun     = "maintenance_last_run"
	settingMaintenanceSuccess = "maintenance_last_success"
	settingMaintenanceError   = "maintenance_last_error"
)

// recordMaintenance records a pass that started at start and ended with
// err, best effort: failing to record it is logged, not returned.
func (s *Store) recordMaintenance(ctx context.Context, db execQuerier, start time.Time, err error) {
	at := start.UTC().Format(time.RFC3339Nano)
	set := map[string]string{settingMaintenanceRun: at, settingMaintenanceError: ""}
	if err != nil {
		set[settingMaintenanceError] = err.Error()
	} else {
		set[settingMaintenanceSuccess] = at
	}
	for k, v := range set {
		if _, err := db.Exec(ctx, `INSERT INTO lintel.settings (key, value) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, k, v); err != nil {
			s.log.WarnContext(ctx, "storage: record maintenance", "err", err)
			return
		}
	}
}

func (s *Store) maintenanceRecord(ctx context.Context) (MaintenanceRecord, error) {
	rows, err := s.pool.Query(ctx, "SELECT key, value FROM lintel.settings WHERE key = ANY($1)",
		[]string{settingMaintenanceRun, settingMaintenanceSuccess, settingMaintenanceError})
	if err != nil {
		return MaintenanceRecord{}, fmt.Errorf("storage: health: maintenance: %w", err)
	}
	var m MaintenanceRecord
	var k, v string
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		switch k {
		case settingMaintenanceError:
			m.LastError = v
		case settingMaintenanceRun, settingMaintenanceSuccess:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("setting %s: %w", k, err)
			}
			if k == settingMaintenanceRun {
				m.LastRun = t
			} else {
				m.LastSuccess = t
			}
		}
		return nil
	})
	if err != nil {
		return MaintenanceRecord{}, fmt.Errorf("storage: health: maintenance: %w", err)
	}
	return m, nil
}
