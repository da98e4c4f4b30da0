package storage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
	"github.com/stretchr/testify/require"
)

// Environment of BenchmarkQueries.
const (
	// envBenchQueryEvents is the number of events to query over; the
	// benchmark skips without it (generating 10 million takes minutes).
	envBenchQueryEvents = "LINTEL_BENCH_QUERY_EVENTS"
	// envBenchQueryKeep keeps the generated databases for the next run
	// (named lintel_bench_q_{flavor}_{events}; drop them by hand).
	envBenchQueryKeep = "LINTEL_BENCH_QUERY_KEEP"
)

// Shape of the generated history: 30 days ending an hour ago, 10 edges of
// 100 things each, one event in 20 a state message, the rest telemetry.
const (
	benchQueryDays   = 30
	benchQueryEdges  = 10
	benchQueryThings = 1000
	// benchTelemetry and benchState are the message types of the
	// generated events. They are spelt out rather than topic.Telemetry
	// and topic.State so that databases kept from earlier runs stay
	// valid; the store takes the message type of a query as given.
	benchTelemetry = "telemetry"
	benchState     = "state"
)

// BenchmarkQueries measures the history queries over a generated history
// of LINTEL_BENCH_QUERY_EVENTS events on every flavor the servers offer:
// keyset paging by thing, message type and a one-day time range (first
// page and the two pages after it, of 100 events, over recent days and,
// compressed on FlavorTimescale, over old ones), and the hourly event rate of one edge over a day and
// over a week (from the continuous aggregate on FlavorTimescale, with
// date_bin or time_bucket at query time elsewhere), each through [Store]
// and beside the same SQL run raw. Each reports p50 and p99 latencies;
// with -v it logs EXPLAIN (ANALYZE, BUFFERS) of every query. Run:
//
//	LINTEL_BENCH_QUERY_EVENTS=10000000 go test -run '^$' -bench Queries -benchtime 200x -timeout 3h -v ./storage/
func BenchmarkQueries(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv(envBenchQueryEvents))
	if n <= 0 {
		b.Skipf("set %s to the number of events, e.g. 10000000", envBenchQueryEvents)
	}
	plain := os.Getenv(pgtest.EnvDatabaseURL)
	if plain == "" {
		plain = pgtest.DefaultURL
	}
	servers := []struct {
		flavor storage.Flavor
		url    string
	}{{storage.FlavorPostgres, plain}}
	if ts := os.Getenv(pgtest.EnvTimescaleURL); ts != "" {
		f := storage.FlavorTimescale
		if timescaleLicense(b, ts) == "apache" {
			f = storage.FlavorTimescaleApache
		}
		servers = append(servers, struct {
			flavor storage.Flavor
			url    string
		}{f, ts})
	}
	for _, srv := range servers {
		b.Run(string(srv.flavor), func(b *testing.B) {
			pool, end := benchQueryDB(b, srv.url, srv.flavor, n)
			benchQueries(b, pool, srv.flavor, end)
		})
	}
}

func timescaleLicense(b *testing.B, url string) string {
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(b, err)
	defer conn.Close(context.Background())
	var lic *string
	require.NoError(b, conn.QueryRow(context.Background(), "SELECT current_setting('timescaledb.license', true)").Scan(&lic))
	if lic == nil {
		return "timescale"
	}
	return *lic
}

// benchQueryDB returns a pool on a database holding n generated events of
// flavor f, creating it unless kept from an earlier run, and the end of
// the generated history.
func benchQueryDB(b *testing.B, adminURL string, f storage.Flavor, n int) (*pgxpool.Pool, time.Time) {
	ctx := context.Background()
	name := fmt.Sprintf("lintel_bench_q_%s_%d", strings.ReplaceAll(string(f), "-", "_"), n)
	admin, err := pgx.Connect(ctx, adminURL)
	require.NoError(b, err)
	defer admin.Close(ctx)
	keep := os.Getenv(envBenchQueryKeep) != ""
	var exists bool
	require.NoError(b, admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	if exists && !keep {
		_, err = admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
		require.NoError(b, err)
		exists = false
	}
	if !exists {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
		require.NoError(b, err)
	}
	if !keep {
		b.Cleanup(func() {
			if c, err := pgx.Connect(context.Background(), adminURL); err == nil {
				_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
				_ = c.Close(context.Background())
			}
		})
	}
	cfg, err := pgxpool.ParseConfig(adminURL)
	require.NoError(b, err)
	cfg.ConnConfig.Database = name
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)

	var endStr string
	err = pool.QueryRow(ctx, "SELECT value FROM lintel.settings WHERE key = 'bench_end'").Scan(&endStr)
	if err == nil {
		end, err := time.Parse(time.RFC3339, endStr)
		require.NoError(b, err)
		b.Logf("%s: reusing %d events ending %s", name, n, endStr)
		return pool, end
	}
	end := time.Now().Add(-time.Hour).Truncate(time.Hour).UTC()
	benchGenerate(b, pool, f, n, end)
	_, err = pool.Exec(ctx, "INSERT INTO lintel.settings (key, value) VALUES ('bench_end', $1)", end.Format(time.RFC3339))
	require.NoError(b, err)
	return pool, end
}

// benchGenerate fills the events table with generate_series, a million
// rows per statement, in time order as ingest writes them.
func benchGenerate(b *testing.B, pool *pgxpool.Pool, f storage.Flavor, n int, end time.Time) {
	ctx := context.Background()
	start := time.Now()
	_, err := storage.Migrate(ctx, pool, storage.MigrateOptions{Flavor: f})
	require.NoError(b, err)
	from := end.Add(-benchQueryDays * 24 * time.Hour)
	if f == storage.FlavorPostgres {
		_, err = pool.Exec(ctx, "SELECT lintel.ensure_event_partitions($1, $2)", from, end)
		require.NoError(b, err)
	}
	step := float64(benchQueryDays*24*time.Hour/time.Microsecond) / float64(n)
	const chunk = 1_000_000
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		_, err := pool.Exec(ctx, `
			INSERT INTO lintel.events (time, id, device_time, received_at, org, edge, thing_type, thing_code,
			                           message_type, name, seq, value, payload, envelope)
			SELECT t, gen_random_uuid(), t, t, 'acme', 'e' || (i % $5), 'sensor', 's' || (i % $6),
			       CASE WHEN i / $6 % 20 = 0 THEN $7 ELSE $8 END,
			       CASE WHEN i / $6 % 20 = 0 THEN 'thing.heartbeat' ELSE 'temperature' END,
			       i, (i % 100)::float8, jsonb_build_object('value', i % 100),
			       decode(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text), 'hex')
			FROM generate_series($1::bigint, $2::bigint) AS i,
			     LATERAL (SELECT $3::timestamptz + make_interval(secs => i * $4::float8 / 1e6)) AS x(t)`,
			lo, hi, from, step, benchQueryEdges, benchQueryThings, benchState, benchTelemetry)
		require.NoError(b, err)
		b.Logf("generated %d of %d events in %v", hi, n, time.Since(start).Round(time.Second))
	}
	_, err = pool.Exec(ctx, "ANALYZE lintel.events")
	require.NoError(b, err)
	if f == storage.FlavorTimescale {
		// What the maintenance does, over the whole history: materialize
		// the aggregate and compress what is older than 14 days.
		s := storage.New(pool, storage.Config{})
		res, err := s.Maintain(ctx, storage.MaintenanceConfig{Retention: -1, RefreshWindow: (benchQueryDays + 1) * 24 * time.Hour})
		require.NoError(b, err)
		b.Logf("maintenance: refreshed %v, compressed %d chunks", res.Refreshed, res.Compressed)
		_, err = pool.Exec(ctx, "ANALYZE")
		require.NoError(b, err)
	}
	var size string
	require.NoError(b, pool.QueryRow(ctx, "SELECT pg_size_pretty(pg_database_size(current_database()))").Scan(&size))
	b.Logf("generated %d events (%s) in %v", n, size, time.Since(start).Round(time.Second))
}

// benchQueries runs the query benchmarks on a generated database.
func benchQueries(b *testing.B, pool *pgxpool.Pool, f storage.Flavor, end time.Time) {
	s := storage.New(pool, storage.Config{})
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	thing := func() topic.Thing {
		i := rnd.IntN(benchQueryThings)
		return topic.Thing{Org: "acme", Edge: "e" + strconv.Itoa(i%benchQueryEdges), Type: "sensor", Code: "s" + strconv.Itoa(i)}
	}
	// day returns a random whole day among the last days [lo, hi).
	day := func(lo, hi int) time.Time {
		return end.Add(-time.Duration(lo+rnd.IntN(hi-lo)+1) * 24 * time.Hour)
	}
	pageQuery := func(th topic.Thing, from time.Time) storage.EventQuery {
		return storage.EventQuery{Org: th.Org, Edge: th.Edge, ThingType: th.Type, ThingCode: th.Code,
			MessageType: benchTelemetry, From: from, To: from.Add(24 * time.Hour), Limit: 100}
	}
	paging := func(lo, hi int) func(b *testing.B) {
		return func(b *testing.B) {
			q := pageQuery(thing(), day(lo, hi))
			explain(b, pool, "events page", eventsSQL, q.Org, q.Edge, q.ThingType, q.ThingCode, string(q.MessageType), q.From, q.To)
			var first, next []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				q := pageQuery(thing(), day(lo, hi))
				for p := range 3 {
					t0 := time.Now()
					page, err := s.Events(ctx, q)
					d := time.Since(t0)
					require.NoError(b, err)
					require.NotEmpty(b, page.Events, "page %d of %s on %s", p, q.ThingCode, q.From)
					if p == 0 {
						first = append(first, d)
					} else {
						next = append(next, d)
					}
					q.Cursor = page.Next
				}
			}
			b.StopTimer()
			reportPercentiles(b, "first", first)
			reportPercentiles(b, "next", next)
		}
	}
	b.Run("page/recent", paging(0, 7))
	if f == storage.FlavorTimescale {
		b.Run("page/compressed", paging(15, benchQueryDays-1))
	} else {
		b.Run("page/old", paging(15, benchQueryDays-1))
	}
	b.Run("page/raw_sql", func(b *testing.B) {
		var lat []time.Duration
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			q := pageQuery(thing(), day(0, 7))
			t0 := time.Now()
			rows, err := pool.Query(ctx, eventsSQL, q.Org, q.Edge, q.ThingType, q.ThingCode, string(q.MessageType), q.From, q.To)
			require.NoError(b, err)
			n := 0
			for rows.Next() {
				n++
			}
			require.NoError(b, rows.Err())
			lat = append(lat, time.Since(t0))
			require.Equal(b, 101, n)
		}
		b.StopTimer()
		reportPercentiles(b, "first", lat)
	})

	for _, span := range []struct {
		name string
		d    time.Duration
	}{{"day", 24 * time.Hour}, {"week", 7 * 24 * time.Hour}} {
		b.Run("rate_by_edge/"+span.name, func(b *testing.B) {
			edge := func() string { return "e" + strconv.Itoa(rnd.IntN(benchQueryEdges)) }
			sql, args := rateSQL(f, edge(), end.Add(-span.d), end)
			explain(b, pool, "edge rate over a "+span.name, sql, args...)
			var lat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				buckets, err := s.Aggregate(ctx, storage.AggregateQuery{Org: "acme", Edge: edge(), From: end.Add(-span.d), To: end})
				require.NoError(b, err)
				perHour := map[time.Time]int64{}
				for _, bk := range buckets {
					perHour[bk.Start] += bk.Events
				}
				lat = append(lat, time.Since(t0))
				require.Len(b, perHour, int(span.d/time.Hour))
			}
			b.StopTimer()
			reportPercentiles(b, "", lat)
		})
		b.Run("rate_by_edge/"+span.name+"/raw_sql", func(b *testing.B) {
			var lat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				sql, args := rateSQL(f, "e"+strconv.Itoa(rnd.IntN(benchQueryEdges)), end.Add(-span.d), end)
				t0 := time.Now()
				rows, err := pool.Query(ctx, sql, args...)
				require.NoError(b, err)
				n := 0
				for rows.Next() {
					n++
				}
				require.NoError(b, rows.Err())
				lat = append(lat, time.Since(t0))
				require.Equal(b, int(span.d/time.Hour), n)
			}
			b.StopTimer()
			reportPercentiles(b, "", lat)
		})
	}
}

// eventsSQL is the first-page query Store.Events sends for a thing,
// message type and time range.
const eventsSQL = "SELECT time, id, device_time, received_at, org, edge, thing_type, thing_code, message_type, name," +
	" boot_id, seq, correlation_id, replayed, value, payload, envelope FROM lintel.events" +
	" WHERE org = $1 AND edge = $2 AND thing_type = $3 AND thing_code = $4 AND message_type = $5 AND time >= $6 AND time < $7" +
	" ORDER BY time ASC, id ASC LIMIT 101"

// rateSQL returns the hourly event rate of one edge as one SQL query: from
// the continuous aggregate on FlavorTimescale, else bucketed at query time.
func rateSQL(f storage.Flavor, edge string, from, to time.Time) (string, []any) {
	args := []any{"acme", edge, from, to}
	switch f {
	case storage.FlavorTimescale:
		return "SELECT bucket, sum(events) FROM lintel.events_hourly" +
			" WHERE org = $1 AND edge = $2 AND bucket >= $3 AND bucket < $4 GROUP BY bucket ORDER BY bucket", args
	case storage.FlavorTimescaleApache:
		return "SELECT time_bucket(INTERVAL '1 hour', time) AS b, count(*) FROM lintel.events" +
			" WHERE org = $1 AND edge = $2 AND time >= $3 AND time < $4 GROUP BY b ORDER BY b", args
	}
	return "SELECT date_bin(INTERVAL '1 hour', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS b, count(*) FROM lintel.events" +
		" WHERE org = $1 AND edge = $2 AND time >= $3 AND time < $4 GROUP BY b ORDER BY b", args
}

// explain logs the plan of sql with EXPLAIN (ANALYZE, BUFFERS), run twice
// so that the logged one reads a warm cache as the benchmark does.
func explain(b *testing.B, pool *pgxpool.Pool, what, sql string, args ...any) {
	b.Helper()
	if b.N > 1 {
		return // logged on the first round already
	}
	var plan []string
	for range 2 {
		rows, err := pool.Query(context.Background(), "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
		require.NoError(b, err)
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(b, err)
	}
	b.Logf("EXPLAIN (ANALYZE, BUFFERS) %s:\n%s", what, strings.Join(plan, "\n"))
}

// reportPercentiles reports the p50 and p99 of lat in milliseconds.
func reportPercentiles(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	if prefix != "" {
		prefix += "-"
	}
	b.ReportMetric(pct(0.50), prefix+"p50-ms")
	b.ReportMetric(pct(0.99), prefix+"p99-ms")
}
