package storage_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMigrateConcurrent starts several "instances" at once, each with its
// own pool, against one empty database: all succeed, the migrations are
// applied once, and a later run is a no-op.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, pgtest.WithMaxConns(1))
	ctx := testContext(t)

	const instances = 5
	results := make([]storage.MigrateResult, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, db.DSN)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			results[i], errs[i] = storage.Migrate(ctx, pool, storage.MigrateOptions{})
		}()
	}
	wg.Wait()
	applied := 0
	for i := range instances {
		require.NoError(t, errs[i], "instance %d", i)
		assert.Equal(t, results[0].Version, results[i].Version)
		assert.Equal(t, results[0].Flavor, results[i].Flavor)
		if len(results[i].Applied) > 0 {
			applied++
			assert.Len(t, results[i].Applied, results[i].Version, "the instance that migrates applies every version")
		}
	}
	assert.Equal(t, 1, applied, "exactly one instance applies the migrations")
	assert.GreaterOrEqual(t, results[0].Version, 3)

	again, err := storage.Migrate(ctx, db.Pool, storage.MigrateOptions{})
	require.NoError(t, err)
	assert.Empty(t, again.Applied)
	assert.Equal(t, results[0].Version, again.Version)
	assert.Equal(t, results[0].Version, count(t, db.Pool, "SELECT count(*) FROM lintel.schema_migrations"))
}

func TestMigrateRefusesChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tamper string
		opts   storage.MigrateOptions
		want   error
	}{
		{name: "edited migration", tamper: "UPDATE lintel.schema_migrations SET checksum = 'x' WHERE version = 1", want: storage.ErrChecksum},
		{name: "newer schema", tamper: "INSERT INTO lintel.schema_migrations (version, name, files, checksum) VALUES (9999, 'future', '', '')", want: storage.ErrSchemaTooNew},
		{name: "other flavor", opts: storage.MigrateOptions{Flavor: "oracle"}, want: storage.ErrFlavor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			ctx := testContext(t)
			if tt.tamper != "" {
				_, err := db.Pool.Exec(ctx, tt.tamper)
				require.NoError(t, err)
			}
			_, err := storage.Migrate(ctx, db.Pool, tt.opts)
			require.ErrorIs(t, err, tt.want)
		})
	}

	t.Run("flavor is kept", func(t *testing.T) {
		t.Parallel()
		db := newDB(t)
		ctx := testContext(t)
		f, err := storage.New(db.Pool, storage.Config{}).Flavor(ctx)
		require.NoError(t, err)
		other := storage.FlavorTimescale
		if f == other {
			other = storage.FlavorPostgres
		}
		_, err = storage.Migrate(ctx, db.Pool, storage.MigrateOptions{Flavor: other})
		require.ErrorIs(t, err, storage.ErrFlavor)
	})
}

func TestNotMigrated(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	s := storage.New(pool, storage.Config{})
	_, err := s.Flavor(context.Background())
	require.ErrorIs(t, err, storage.ErrNotMigrated)
	_, err = s.InsertEvents(context.Background(), []storage.Event{event(thingA, timeNow())})
	require.ErrorIs(t, err, storage.ErrNotMigrated)
}

func TestSchemaHashStable(t *testing.T) {
	t.Parallel()
	assert.Equal(t, storage.SchemaHash(), storage.SchemaHash())
	assert.Len(t, storage.SchemaHash(), 64)
}
