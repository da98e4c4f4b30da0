package storage

import (
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Flavor is the way the schema is laid out, chosen once, at the first
// migration of a database, from what the server offers.
type Flavor string

// The flavors.
const (
	// FlavorPostgres is plain PostgreSQL 14 or later: events in daily
	// range partitions, retention by [Store.EnforceRetention].
	FlavorPostgres Flavor = "postgres"
	// FlavorTimescaleApache is TimescaleDB under its Apache-2 license
	// (timescaledb.license = 'apache'): a hypertable, but no compression,
	// no policies and no continuous aggregates; retention by
	// [Store.EnforceRetention] with drop_chunks.
	FlavorTimescaleApache Flavor = "timescaledb-apache"
	// FlavorTimescale is TimescaleDB under its Community license
	// (timescaledb.license = 'timescale'): a hypertable with a compression
	// policy, a retention policy and an hourly continuous aggregate.
	FlavorTimescale Flavor = "timescaledb"
)

// tags returns the migration file tags a flavor applies, beside untagged files.
func (f Flavor) tags() []string {
	switch f {
	case FlavorPostgres:
		return []string{"postgres"}
	case FlavorTimescaleApache:
		return []string{"timescaledb"}
	case FlavorTimescale:
		return []string{"timescaledb", "tsl"}
	}
	return nil
}

// Timescale reports whether f keeps events in a TimescaleDB hypertable.
func (f Flavor) Timescale() bool { return f == FlavorTimescale || f == FlavorTimescaleApache }

// MigrateOptions configures [Migrate]. The zero value detects the flavor.
type MigrateOptions struct {
	// Flavor forces a flavor for a new database; empty means detect:
	// TimescaleDB when the extension exists or can be created, with its
	// license deciding between FlavorTimescale and FlavorTimescaleApache,
	// else FlavorPostgres. A database keeps the flavor of its first
	// migration; asking for another one is an error.
	Flavor Flavor
	// Logger receives a line per applied migration; nil discards.
	Logger *slog.Logger
}

// MigrateResult tells what [Migrate] found and did.
type MigrateResult struct {
	Flavor  Flavor // the database's flavor
	License string // timescaledb.license, or "" without TimescaleDB
	Version int    // schema version after migrating
	Applied []int  // versions applied by this call, in order
}

// migrateLockKey is the advisory lock that serialises migrations of one
// database: two central instances starting together migrate one after the
// other, and the second finds nothing left to do.
const migrateLockKey int64 = 7813425109216948000

// Migrate brings the database behind pool to this build's schema, in schema
// "lintel". It holds a session advisory lock on one connection for the
// whole run, so concurrent calls from any number of processes are safe;
// each migration is applied in its own transaction together with its
// bookkeeping row, so a failure leaves the database at the last complete
// version. Running it again is a no-op.
//
// Migrate returns [ErrSchemaTooNew] when the database has a version this
// build does not know, [ErrChecksum] when an applied migration was edited,
// [ErrFlavor] or [ErrServerVersion] when the server cannot host the
// requested or detected flavor, and a [*MigrationError] when a migration fails.
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts MigrateOptions) (MigrateResult, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	migs, err := loadMigrations()
	if err != nil {
		return MigrateResult{}, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return MigrateResult{}, fmt.Errorf("storage: migrate: %w", err)
	}
	defer conn.Release()
	c := conn.Conn()

	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return MigrateResult{}, fmt.Errorf("storage: migrate: lock: %w", err)
	}
	defer func() {
		if _, err := c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey); err != nil {
			// The lock would outlive us in a pooled session: drop the connection.
			_ = c.Close(context.WithoutCancel(ctx))
		}
	}()

	if _, err := c.Exec(ctx, `
		CREATE SCHEMA IF NOT EXISTS lintel;
		CREATE TABLE IF NOT EXISTS lintel.schema_migrations (
			version    integer     PRIMARY KEY,
			name       text        NOT NULL,
			files      text        NOT NULL,
			checksum   text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		);
		CREATE TABLE IF NOT EXISTS lintel.settings (
			key   text PRIMARY KEY,
			value text NOT NULL
		)`); err != nil {
		return MigrateResult{}, fmt.Errorf("storage: migrate: bookkeeping tables: %w", err)
	}

	res := MigrateResult{}
	if res.Flavor, res.License, err = chooseFlavor(ctx, c, opts.Flavor); err != nil {
		return res, err
	}

	applied := map[int]string{}
	rows, err := c.Query(ctx, "SELECT version, checksum FROM lintel.schema_migrations")
	if err != nil {
		return res, fmt.Errorf("storage: migrate: %w", err)
	}
	var v int
	var sum string
	if _, err := pgx.ForEachRow(rows, []any{&v, &sum}, func() error { applied[v] = sum; return nil }); err != nil {
		return res, fmt.Errorf("storage: migrate: %w", err)
	}
	known := map[int]bool{}
	for _, m := range migs {
		known[m.version] = true
	}
	for v := range applied {
		if !known[v] {
			return res, fmt.Errorf("%w: version %d applied, this build knows up to %d", ErrSchemaTooNew, v, migs[len(migs)-1].version)
		}
	}

	for _, m := range migs {
		files, body, checksum := m.forFlavor(res.Flavor)
		if got, ok := applied[m.version]; ok {
			if got != checksum {
				return res, fmt.Errorf("%w: version %d (%s)", ErrChecksum, m.version, m.name)
			}
			res.Version = m.version
			continue
		}
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if body != "" {
				if _, err := tx.Exec(ctx, body); err != nil {
					return &MigrationError{Version: m.version, File: strings.Join(files, ", "), Err: err}
				}
			}
			_, err := tx.Exec(ctx,
				"INSERT INTO lintel.schema_migrations (version, name, files, checksum) VALUES ($1, $2, $3, $4)",
				m.version, m.name, strings.Join(files, ", "), checksum)
			return err
		})
		if err != nil {
			var me *MigrationError
			if errors.As(err, &me) {
				return res, err
			}
			return res, fmt.Errorf("storage: migrate: version %d: %w", m.version, err)
		}
		log.InfoContext(ctx, "storage: migration applied", "version", m.version, "name", m.name,
			"files", strings.Join(files, ", "), "flavor", string(res.Flavor))
		res.Applied = append(res.Applied, m.version)
		res.Version = m.version
	}
	return res, nil
}

// chooseFlavor returns the database's recorded flavor, or decides and
// records it on the first migration.
func chooseFlavor(ctx context.Context, c *pgx.Conn, want Flavor) (Flavor, string, error) {
	if want != "" && want.tags() == nil {
		return "", "", fmt.Errorf("%w: unknown flavor %q", ErrFlavor, want)
	}
	var recorded string
	err := c.QueryRow(ctx, "SELECT value FROM lintel.settings WHERE key = 'flavor'").Scan(&recorded)
	switch {
	case err == nil:
		f := Flavor(recorded)
		if want != "" && want != f {
			return "", "", fmt.Errorf("%w: database is %q, %q requested", ErrFlavor, f, want)
		}
		lic, err := timescaleLicense(ctx, c, f)
		return f, lic, err
	case !errors.Is(err, pgx.ErrNoRows):
		return "", "", fmt.Errorf("storage: migrate: read flavor: %w", err)
	}

	var version int
	if err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return "", "", fmt.Errorf("storage: migrate: %w", err)
	}
	if version < 140000 {
		return "", "", fmt.Errorf("%w: server is %d", ErrServerVersion, version)
	}

	f, lic := FlavorPostgres, ""
	if want != FlavorPostgres {
		ok, err := createTimescale(ctx, c)
		switch {
		case err != nil && want != "":
			return "", "", fmt.Errorf("%w: %q: %w", ErrFlavor, want, err)
		case ok:
			if err := c.QueryRow(ctx, "SELECT current_setting('timescaledb.license')").Scan(&lic); err != nil {
				return "", "", fmt.Errorf("storage: migrate: timescaledb.license: %w", err)
			}
			f = FlavorTimescaleApache
			if lic == "timescale" {
				f = FlavorTimescale
			}
			if want == FlavorTimescale && f != want {
				return "", "", fmt.Errorf("%w: %q needs timescaledb.license = 'timescale', server has %q", ErrFlavor, want, lic)
			}
			if want == FlavorTimescaleApache {
				f = want // the Apache subset works under either license
			}
		case want != "":
			return "", "", fmt.Errorf("%w: %q: timescaledb extension not available", ErrFlavor, want)
		}
	}
	if _, err := c.Exec(ctx, "INSERT INTO lintel.settings (key, value) VALUES ('flavor', $1)", string(f)); err != nil {
		return "", "", fmt.Errorf("storage: migrate: record flavor: %w", err)
	}
	return f, lic, nil
}

// createTimescale creates the timescaledb extension if the server can load
// it, and reports whether it exists afterwards. A server without the
// extension is not an error; failing to create an available one is.
func createTimescale(ctx context.Context, c *pgx.Conn) (bool, error) {
	var installed, available bool
	if err := c.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),
		       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
		       AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'`).Scan(&installed, &available); err != nil {
		return false, fmt.Errorf("storage: migrate: look for timescaledb: %w", err)
	}
	if installed {
		return true, nil
	}
	if !available {
		return false, nil
	}
	if _, err := c.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS timescaledb"); err != nil {
		return false, fmt.Errorf("storage: migrate: create extension timescaledb: %w", err)
	}
	return true, nil
}

func timescaleLicense(ctx context.Context, c *pgx.Conn, f Flavor) (string, error) {
	if !f.Timescale() {
		return "", nil
	}
	var lic string
	if err := c.QueryRow(ctx, "SELECT current_setting('timescaledb.license')").Scan(&lic); err != nil {
		return "", fmt.Errorf("storage: migrate: timescaledb.license: %w", err)
	}
	return lic, nil
}

// migration is one schema version: an untagged file for every flavor, or
// files tagged with the flavors they apply to.
type migration struct {
	version int
	name    string
	files   []migrationFile // sorted by name
}

type migrationFile struct {
	name string // file name
	tag  string // "" for every flavor
	sql  string
}

// forFlavor returns the files applying to f, their SQL joined, and a
// checksum of both. A version with no file for f is recorded as applied
// with an empty body, so version numbers mean the same on every flavor.
func (m migration) forFlavor(f Flavor) (files []string, body, checksum string) {
	h := sha256.New()
	var b strings.Builder
	for _, mf := range m.files {
		if mf.tag != "" && !slices.Contains(f.tags(), mf.tag) {
			continue
		}
		files = append(files, mf.name)
		b.WriteString(mf.sql)
		b.WriteString("\n")
		fmt.Fprintf(h, "%s\x00%s\x00", mf.name, mf.sql)
	}
	return files, b.String(), hex.EncodeToString(h.Sum(nil))
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)(?:\.([a-z]+))?\.sql$`)

var loadOnce = sync.OnceValues(func() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*migration{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("storage: migration file %q: want NNNN_name.sql or NNNN_name.tag.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if m[3] != "" && !slices.Contains([]string{"postgres", "timescaledb", "tsl"}, m[3]) {
			return nil, fmt.Errorf("storage: migration file %q: unknown tag %q", e.Name(), m[3])
		}
		data, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		mg := byVersion[v]
		if mg == nil {
			mg = &migration{version: v, name: m[2]}
			byVersion[v] = mg
		}
		mg.files = append(mg.files, migrationFile{name: e.Name(), tag: m[3], sql: string(data)})
	}
	migs := make([]migration, 0, len(byVersion))
	for _, m := range byVersion {
		slices.SortFunc(m.files, func(a, b migrationFile) int { return cmp.Compare(a.name, b.name) })
		migs = append(migs, *m)
	}
	slices.SortFunc(migs, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i, m := range migs {
		if m.version != i+1 {
			return nil, fmt.Errorf("storage: migration versions must run 1, 2, 3…: found %d at position %d", m.version, i+1)
		}
	}
	return migs, nil
})

func loadMigrations() ([]migration, error) { return loadOnce() }

// SchemaHash identifies this build's migrations: it changes whenever a
// migration file is added or edited. Test fixtures key their migrated
// template databases by it.
func SchemaHash() string {
	migs, err := loadMigrations()
	h := sha256.New()
	if err != nil {
		h.Write([]byte(err.Error()))
	}
	for _, m := range migs {
		for _, f := range m.files {
			fmt.Fprintf(h, "%s\x00%s\x00", f.name, f.sql)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// isDataError reports whether err is PostgreSQL rejecting the data of a
// row, rather than the connection or the server failing: data exceptions
// (class 22, e.g. "unsupported Unicode escape sequence" for \u0000 in
// jsonb), integrity violations (class 23) and program limits (class 54,
// e.g. a value too large).
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}
