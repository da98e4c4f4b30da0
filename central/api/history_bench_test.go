package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// Environment of the API benchmarks. They skip without LINTEL_API_BENCH=1:
// loading the history takes minutes and the live stream runs for seconds.
const (
	envAPIBench = "LINTEL_API_BENCH"
	// envAPIBenchEvents is the number of events of the generated history;
	// default benchAPIEvents.
	envAPIBenchEvents = "LINTEL_API_BENCH_EVENTS"
	// envAPIBenchKeep keeps the loaded databases for the next run (named
	// lintel_apibench_{flavor}_{events}); without it they are dropped when
	// the benchmark ends, and a kept one is dropped and loaded afresh.
	envAPIBenchKeep = "LINTEL_API_BENCH_KEEP"
)

// Shape of the generated history: 30 days ending an hour before it was
// loaded, 1000 things spread over 10 edges, one round of events in 20 a
// state message, the others telemetry. The first two edges are the
// fixture's, so that the API accepts them as an edge filter.
const (
	benchAPIEvents = 10_000_000
	benchAPIDays   = 30
	benchAPIThings = 1000
	benchAPIPage   = 100
)

var benchAPIEdges = []string{"hq", "lab", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}

func apiBenchEnabled(b *testing.B) {
	if os.Getenv(envAPIBench) != "1" {
		b.Skipf("set %s=1 to run the API benchmarks", envAPIBench)
	}
}

// BenchmarkEventsQuery measures GET /api/v1/events over a history of 10
// million events (LINTEL_API_BENCH_EVENTS) bulk-loaded with CopyFrom into
// the storage schema, on plain PostgreSQL and, with
// LINTEL_TEST_TIMESCALE_URL, on TimescaleDB (its chunks older than 14 days
// compressed, as the maintenance does). Each case sends pages of 100 with
// the common filters (by edge, thing or message type over one of the last
// seven days, a whole day unfiltered, and deep keyset pages: 10,000
// events into an edge's last 7 to 13 days, 5,000 into a thing's 30 days).
// Each query is run once through storage.Store.Events, unmeasured, which
// warms the cache and tells the SQL (a query tracer on the pool captures
// it); then, each first in turn, the API request (api-*, measured from the
// HTTP client, the handler's SQL checked to be the same), the store's call
// (store-*) and the SQL issued directly with pgx with the same arguments,
// its rows read but not decoded (sql-*, the baseline), each reporting p50
// and p99. The TimescaleDB case needs LINTEL_TEST_TIMESCALE_URL. Run:
//
//	LINTEL_API_BENCH=1 LINTEL_API_BENCH_KEEP=1 LINTEL_TEST_TIMESCALE_URL=postgres://postgres@127.0.0.1:5433/postgres \
//	  go test -run '^$' -bench EventsQuery -benchtime 300x -timeout 2h ./central/api/
func BenchmarkEventsQuery(b *testing.B) {
	apiBenchEnabled(b)
	n := benchAPIEvents
	if v := os.Getenv(envAPIBenchEvents); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < benchAPIThings {
			b.Fatalf("%s=%q: want a number of events of at least %d", envAPIBenchEvents, v, benchAPIThings)
		}
	}
	plain := os.Getenv(pgtest.EnvDatabaseURL)
	if plain == "" {
		plain = pgtest.DefaultURL
	}
	servers := []struct{ name, url string }{{"postgres", plain}}
	if ts := os.Getenv(pgtest.EnvTimescaleURL); ts != "" {
		servers = append(servers, struct{ name, url string }{"timescale", ts})
	}
	for _, srv := range servers {
		b.Run("db="+srv.name, func(b *testing.B) {
			tr := &eventsTracer{}
			pool, end := benchAPIDB(b, srv.url, srv.name, n, tr)
			f := newFixture(b, fixtureOptions{db: pool})
			benchEventsQueries(b, f, pool, tr, end, n)
		})
	}
}

// eventsTracer remembers the last events page query its pool sent.
type eventsTracer struct {
	last atomic.Pointer[tracedQuery]
}

type tracedQuery struct {
	sql  string
	args []any
}

func (t *eventsTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, " FROM lintel.events WHERE ") && strings.Contains(d.SQL, " ORDER BY time ") {
		t.last.Store(&tracedQuery{sql: d.SQL, args: slices.Clone(d.Args)})
	}
	return ctx
}

func (t *eventsTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// benchAPIDB returns a pool, traced by tr, on a database of the server at
// adminURL holding n generated events, loading them unless kept from an
// earlier run, and the end of the generated history.
func benchAPIDB(b *testing.B, adminURL, flavor string, n int, tr pgx.QueryTracer) (*pgxpool.Pool, time.Time) {
	ctx := context.Background()
	name := fmt.Sprintf("lintel_apibench_%s_%d", flavor, n)
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	keep := os.Getenv(envAPIBenchKeep) != ""
	exec := func(sql string) {
		if _, err := admin.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	if exists && !keep {
		exec("DROP DATABASE " + name + " WITH (FORCE)")
		exists = false
	}
	if !exists {
		exec("CREATE DATABASE " + name)
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
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.Database = name
	cfg.ConnConfig.Tracer = tr
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	var endStr string
	if err := pool.QueryRow(ctx, "SELECT value FROM lintel.settings WHERE key = 'apibench_end'").Scan(&endStr); err == nil {
		end, err := time.Parse(time.RFC3339, endStr)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: reusing %d events ending %s", name, n, endStr)
		return pool, end
	}
	end := time.Now().Add(-time.Hour).Truncate(time.Hour).UTC()
	benchAPILoad(b, pool, n, end)
	if _, err := pool.Exec(ctx, "INSERT INTO lintel.settings (key, value) VALUES ('apibench_end', $1)", end.Format(time.RFC3339)); err != nil {
		b.Fatal(err)
	}
	return pool, end
}

// benchAPILoad migrates the database and copies n events into it with
// CopyFrom, a million rows a statement on two connections, in time order
// as ingest writes them.
func benchAPILoad(b *testing.B, pool *pgxpool.Pool, n int, end time.Time) {
	ctx := context.Background()
	start := time.Now()
	res, err := storage.Migrate(ctx, pool, storage.MigrateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	from := end.Add(-benchAPIDays * 24 * time.Hour)
	if res.Flavor == storage.FlavorPostgres {
		if _, err := pool.Exec(ctx, "SELECT lintel.ensure_event_partitions($1, $2)", from, end); err != nil {
			b.Fatal(err)
		}
	}
	step := float64(end.Sub(from)) / float64(n)
	cols := []string{"time", "id", "device_time", "received_at", "org", "edge", "thing_type", "thing_code",
		"message_type", "name", "seq", "value", "payload", "envelope"}
	codes := make([]string, benchAPIThings)
	payloads := make([][]byte, 100)
	for i := range codes {
		codes[i] = "s" + strconv.Itoa(i)
	}
	for i := range payloads {
		payloads[i] = []byte(`{"value": ` + strconv.Itoa(i) + `}`)
	}
	const chunk = 1_000_000
	var done atomic.Int64
	copyChunk := func(lo, hi int) error {
		rnd := rand.New(rand.NewPCG(uint64(lo), 7))
		i := lo
		_, err := pool.CopyFrom(ctx, pgx.Identifier{"lintel", "events"}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			if i >= hi {
				return nil, nil
			}
			t := from.Add(time.Duration(float64(i) * step))
			var id [16]byte
			for j := 0; j < 16; j += 8 {
				v := rnd.Uint64()
				for k := range 8 {
					id[j+k] = byte(v >> (8 * k))
				}
			}
			env := make([]byte, 96)
			for j := range env {
				env[j] = byte(rnd.Uint32())
			}
			k := i % benchAPIThings
			mt, name := string(topic.Telemetry), "temperature"
			if i/benchAPIThings%20 == 0 {
				mt, name = string(topic.State), "thing.heartbeat"
			}
			row := []any{t, id, t, t, "acme", benchAPIEdges[k%len(benchAPIEdges)], "sensor", codes[k], mt, name,
				int64(i), float64(i % 100), payloads[i%100], env}
			i++
			return row, nil
		}))
		return err
	}
	chunks := make(chan int)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range chunks {
				hi := min(lo+chunk, n)
				if err := copyChunk(lo, hi); err != nil {
					errs <- err
					return
				}
				b.Logf("copied %d of %d events in %v", done.Add(int64(hi-lo)), n, time.Since(start).Round(time.Second))
			}
		}()
	}
	for lo := 0; lo < n; lo += chunk {
		select {
		case chunks <- lo:
		case err := <-errs:
			b.Fatal(err)
		}
	}
	close(chunks)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	if _, err := pool.Exec(ctx, "ANALYZE lintel.events"); err != nil {
		b.Fatal(err)
	}
	if res.Flavor == storage.FlavorTimescale {
		// What the maintenance does over the whole history: materialize
		// the hourly aggregate, compress what is older than 14 days.
		m, err := storage.New(pool, storage.Config{}).Maintain(ctx, storage.MaintenanceConfig{Retention: -1,
			RefreshWindow: (benchAPIDays + 1) * 24 * time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("maintenance: compressed %d chunks", m.Compressed)
		if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	var size string
	if err := pool.QueryRow(ctx, "SELECT pg_size_pretty(pg_database_size(current_database()))").Scan(&size); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d events (%s, %s) in %v", n, size, res.Flavor, time.Since(start).Round(time.Second))
}

// benchEventsQueries runs the query cases on f, whose central stores into
// pool, against a history of n events ending at end.
func benchEventsQueries(b *testing.B, f *fixture, pool *pgxpool.Pool, tr *eventsTracer, end time.Time, n int) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)
	thing := func() string {
		k := rnd.IntN(benchAPIThings)
		return benchAPIEdges[k%len(benchAPIEdges)] + ".sensor.s" + strconv.Itoa(k)
	}
	// day returns a random whole day among the last seven.
	day := func() (time.Time, time.Time) {
		from := end.Add(-time.Duration(1+rnd.IntN(7)) * 24 * time.Hour)
		return from, from.Add(24 * time.Hour)
	}
	span := func(from, to time.Time) url.Values {
		return url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "limit": {strconv.Itoa(benchAPIPage)}}
	}
	// deep returns the query of edge's or thing's events over [from, end)
	// with the cursor of the page that starts skip events in, found with
	// the store's own largest pages.
	deep := func(edge, th string, from time.Time, skip int) url.Values {
		v := span(from, end)
		q := storage.EventQuery{Org: "acme", Edge: edge, From: from, To: end, Limit: skip}
		if th != "" {
			v.Set("thing", th)
			p := strings.Split(th, ".")
			q.Edge, q.ThingType, q.ThingCode = p[0], p[1], p[2]
		} else {
			v.Set("edge", edge)
		}
		p, err := f.c.Store().Events(ctx, q)
		if err != nil || p.Next == "" {
			b.Fatalf("no page %d events into %+v: %v", skip, q, err)
		}
		v.Set("cursor", p.Next)
		return v
	}
	// scaled scales a number of events into a history of benchAPIEvents
	// to one of n events.
	scaled := func(k int) int { return max(1, k*n/benchAPIEvents) }
	cases := []struct {
		name  string
		query func() url.Values
	}{
		{"edge/first", func() url.Values { v := span(day()); v.Set("edge", "hq"); return v }},
		{"thing/first", func() url.Values { v := span(day()); v.Set("thing", thing()); return v }},
		{"type/first", func() url.Values { v := span(day()); v.Set("type", string(topic.State)); return v }},
		{"range/first", func() url.Values { return span(day()) }},
		{"edge/deep", func() url.Values {
			return deep("hq", "", end.Add(-time.Duration(7+rnd.IntN(7))*24*time.Hour), scaled(10_000))
		}},
		{"thing/deep", func() url.Values { return deep("", thing(), end.Add(-benchAPIDays*24*time.Hour), scaled(5_000)) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// The deep cursors take time to find: a fixed set of them,
			// taken in turn; the first pages are drawn afresh each time.
			deepCase := strings.HasSuffix(c.name, "/deep")
			var queries []url.Values
			if deepCase {
				for range min(b.N, 20) {
					queries = append(queries, c.query())
				}
			}
			var apiLat, storeLat, sqlLat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				var q url.Values
				if deepCase {
					q = queries[i%len(queries)]
				} else {
					q = c.query()
				}
				// Warm up with the store's own call, which tells the SQL.
				eq := benchEventQuery(q)
				tr.last.Store(nil)
				if _, err := f.c.Store().Events(ctx, eq); err != nil {
					b.Fatal(err)
				}
				tq := tr.last.Load()
				if tq == nil {
					b.Fatal("the store sent no events query to the database")
				}
				var got, stored, rowsRead int
				measure := []func(){
					func() {
						tr.last.Store(nil)
						t0 := time.Now()
						got = benchGetEvents(b, client, f, q)
						apiLat = append(apiLat, time.Since(t0))
						if h := tr.last.Load(); h == nil || h.sql != tq.sql {
							b.Fatalf("the handler's SQL is not the store's: %v", h)
						}
					},
					func() {
						t0 := time.Now()
						p, err := f.c.Store().Events(ctx, eq)
						storeLat = append(storeLat, time.Since(t0))
						if err != nil {
							b.Fatal(err)
						}
						stored = len(p.Events)
					},
					func() {
						t0 := time.Now()
						rows, err := pool.Query(ctx, tq.sql, tq.args...)
						if err != nil {
							b.Fatal(err)
						}
						rowsRead = 0
						for rows.Next() {
							rowsRead++
						}
						if err := rows.Err(); err != nil {
							b.Fatal(err)
						}
						sqlLat = append(sqlLat, time.Since(t0))
					},
				}
				// In turn first, so that none always finds the cache the
				// others warmed.
				for k := range measure {
					measure[(i+k)%len(measure)]()
				}
				// Full pages, but for a history too small to fill them.
				if got != min(rowsRead, benchAPIPage) || stored != got || (n == benchAPIEvents && rowsRead != benchAPIPage+1) {
					b.Fatalf("%s %v: %d items by the API, %d by the store, %d rows by SQL; want full pages", c.name, q, got, stored, rowsRead)
				}
			}
			b.StopTimer()
			reportPercentiles(b, "api", apiLat)
			reportPercentiles(b, "store", storeLat)
			reportPercentiles(b, "sql", sqlLat)
		})
	}
}

// benchEventQuery returns the store's query of the API query v.
func benchEventQuery(v url.Values) storage.EventQuery {
	q := storage.EventQuery{Org: "acme", Edge: v.Get("edge"), MessageType: topic.MessageType(v.Get("type")), Cursor: v.Get("cursor"),
		Limit: benchAPIPage}
	q.From, _ = time.Parse(time.RFC3339, v.Get("from"))
	q.To, _ = time.Parse(time.RFC3339, v.Get("to"))
	if th := v.Get("thing"); th != "" {
		p := strings.Split(th, ".")
		q.Edge, q.ThingType, q.ThingCode = p[0], p[1], p[2]
	}
	return q
}

// benchGetEvents gets a page of events with the bootstrap admin token and
// returns how many items it holds.
func benchGetEvents(b *testing.B, client *http.Client, f *fixture, q url.Values) int {
	req, err := http.NewRequest("GET", f.web.URL+api.PathPrefix+"/events?"+q.Encode(), nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.admin)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET events?%s: %d %s", q.Encode(), resp.StatusCode, body)
	}
	var p struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		b.Fatal(err)
	}
	return len(p.Items)
}

// reportPercentiles reports the p50 and p99 of lat in milliseconds, as
// {prefix}-p50-ms and {prefix}-p99-ms.
func reportPercentiles(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), prefix+"-p50-ms")
	b.ReportMetric(pct(0.99), prefix+"-p99-ms")
}
