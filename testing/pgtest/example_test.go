package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lintel-io/lintel/testing/pgtest"
)

// ExampleNewDB shows a test that gets its own database cloned from a
// migrated template. pgtest.NewDB needs the test's *testing.T, so the
// example declares the test function rather than running it.
func ExampleNewDB() {
	schema := pgtest.Template{
		Name: "example",
		Hash: "v1", // change it whenever the migration changes
		Migrate: func(ctx context.Context, pool *pgxpool.Pool) error {
			_, err := pool.Exec(ctx, `CREATE TABLE doors (code text PRIMARY KEY)`)
			return err
		},
	}
	testDoors := func(t *testing.T) {
		db := pgtest.NewDB(t, pgtest.WithTemplate(schema))
		if _, err := db.Pool.Exec(t.Context(), `INSERT INTO doors VALUES ('front')`); err != nil {
			t.Fatal(err)
		}
	}
	_ = testDoors
}
