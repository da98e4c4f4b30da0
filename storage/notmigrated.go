package storage

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// undefinedObject reports whether err is PostgreSQL missing a table
// (SQLSTATE 42P01, undefined_table) or the schema (3F000,
// invalid_schema_name): the database has not been migrated.
func undefinedObject(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000")
}

// queryErr wraps err, the failure of the query what, as
// "storage: {what}: {err}", or, when the database lacks the table or the
// schema, as an error wrapping [ErrNotMigrated].
func queryErr(what string, err error) error {
	if undefinedObject(err) {
		return fmt.Errorf("%w (run storage.Migrate): %s: %w", ErrNotMigrated, what, err)
	}
	return fmt.Errorf("storage: %s: %w", what, err)
}
