package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors of the package; compare with [errors.Is].
var (
	// ErrSchemaTooNew reports a database migrated by a newer build than
	// this one: a migration version it does not know is applied.
	ErrSchemaTooNew = errors.New("storage: database schema is newer than this build")
	// ErrChecksum reports an applied migration whose SQL differs from the
	// one embedded in this build: migrations must never be edited once
	// released.
	ErrChecksum = errors.New("storage: applied migration differs from this build's")
	// ErrFlavor reports a flavor that cannot be used on this server, or a
	// request to change the flavor of an already migrated database.
	ErrFlavor = errors.New("storage: unusable flavor")
	// ErrServerVersion reports a PostgreSQL server older than 14.
	ErrServerVersion = errors.New("storage: PostgreSQL 14 or later required")
	// ErrInvalidCursor reports a page cursor that was not made by this package.
	ErrInvalidCursor = errors.New("storage: invalid cursor")
	// ErrInvalidQuery reports a query with contradictory or missing fields.
	ErrInvalidQuery = errors.New("storage: invalid query")
	// ErrNotMigrated reports a database on which [Migrate] has not run.
	ErrNotMigrated = errors.New("storage: database not migrated")
	// ErrUnhealthy reports what [Health.Err] found wrong: a failing
	// TimescaleDB job of Lintel's or a failed maintenance pass.
	ErrUnhealthy = errors.New("storage: unhealthy")
)

// MigrationError reports the migration that failed to apply.
type MigrationError struct {
	Version int    // migration version
	File    string // the file that failed
	Err     error  // what PostgreSQL said
}

// Error returns "storage: migration {Version} ({File}): {Err}".
func (e *MigrationError) Error() string {
	return fmt.Sprintf("storage: migration %d (%s): %v", e.Version, e.File, e.Err)
}

// Unwrap returns the underlying error.
func (e *MigrationError) Unwrap() error { return e.Err }

// ErrInvalidConfig reports a configuration that cannot work, such as an
// [IngestConfig] without a required field or a dead-letter subject that
// no stream captures; the message names what is wrong.
var ErrInvalidConfig = errors.New("storage: invalid configuration")
