package storage_test

import (
	"testing"
	"time"

	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTimescale runs where TimescaleDB exists (LINTEL_TEST_TIMESCALE_URL or
// a Docker container) and is skipped elsewhere, except where
// LINTEL_REQUIRE_TIMESCALE=1 makes its absence a failure, as in CI.
func TestTimescale(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, pgtest.WithTimescale(), pgtest.WithTemplate(template("")))
	s := storage.New(db.Pool, storage.Config{})
	ctx := testContext(t)
	f, err := s.Flavor(ctx)
	require.NoError(t, err)
	require.True(t, f.Timescale(), "flavor %q on a TimescaleDB server", f)
	assert.Equal(t, 1, count(t, db.Pool,
		"SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_schema = 'lintel' AND hypertable_name = 'events'"))

	now := timeNow()
	var batch []storage.Event
	for i := range 100 {
		batch = append(batch, event(thingA, now.Add(-time.Duration(i)*time.Hour)))
	}
	res, err := s.InsertEvents(ctx, batch)
	require.NoError(t, err)
	assert.Equal(t, 100, res.Inserted)
	res, err = s.InsertEvents(ctx, batch)
	require.NoError(t, err)
	assert.Equal(t, 100, res.Duplicates)

	buckets, err := s.Aggregate(ctx, storage.AggregateQuery{Org: "acme", From: now.Add(-200 * time.Hour), To: now.Add(time.Hour)})
	require.NoError(t, err)
	var total int64
	for _, b := range buckets {
		total += b.Events
	}
	assert.Equal(t, int64(100), total, "real-time aggregation covers unmaterialized rows")

	if f == storage.FlavorTimescale {
		for _, proc := range []string{"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"} {
			assert.Equal(t, 1, count(t, db.Pool, "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = $1", proc), proc)
		}
		require.NoError(t, s.SetRetentionPolicy(ctx, 30*24*time.Hour))
	} else {
		require.ErrorIs(t, s.SetRetentionPolicy(ctx, time.Hour), storage.ErrFlavor)
	}
	require.NoError(t, s.EnforceRetention(ctx, 50*time.Hour))
	assert.Less(t, count(t, db.Pool, "SELECT count(*) FROM lintel.events"), 100)
}
