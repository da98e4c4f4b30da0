package storage_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
	"github.com/stretchr/testify/require"
)

// waitTimeout bounds every condition a test waits for.
const waitTimeout = 30 * time.Second

// template is the migrated schema test databases are cloned from.
func template(flavor storage.Flavor) pgtest.Template {
	// Not "storage": other packages' tests build templates of that name
	// with another hash (no deferred jobs), and each build reaps the
	// other's template as stale.
	name := "storage_test"
	if flavor != "" {
		name = "storage_test_" + map[storage.Flavor]string{
			storage.FlavorPostgres:        "pg",
			storage.FlavorTimescale:       "ts",
			storage.FlavorTimescaleApache: "tsa",
		}[flavor]
	}
	return pgtest.Template{
		Name: name,
		Hash: templateHash,
		Migrate: func(ctx context.Context, pool *pgxpool.Pool) error {
			res, err := storage.Migrate(ctx, pool, storage.MigrateOptions{Flavor: flavor})
			if err != nil || res.Flavor != storage.FlavorTimescale {
				return err
			}
			// TimescaleDB's scheduler runs a new database's policy jobs when
			// it first finds the database, up to a minute after its
			// creation, in the middle of whatever test uses it. Tests
			// that want a job to run ask for it; the jobs stay scheduled.
			_, err = pool.Exec(ctx, `SELECT alter_job(job_id, next_start => now() + interval '1 year')
				FROM timescaledb_information.jobs WHERE hypertable_schema = 'lintel'`)
			return err
		},
	}
}

// templateHash identifies the template's schema and how it is prepared.
var templateHash = func() string {
	h := sha256.Sum256([]byte(storage.SchemaHash() + "\x00policy jobs deferred"))
	return hex.EncodeToString(h[:])
}()

// newDB returns a fresh migrated database of the server's natural flavor.
func newDB(t testing.TB, opts ...pgtest.Option) *pgtest.DB {
	t.Helper()
	return pgtest.NewDB(t, append([]pgtest.Option{pgtest.WithTemplate(template(""))}, opts...)...)
}

// newStore returns a store on a fresh migrated database.
func newStore(t testing.TB, cfg storage.Config) *storage.Store {
	t.Helper()
	return storage.New(newDB(t).Pool, cfg)
}

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

var thingA = topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}

var seqCounter atomic.Int64

var bootID = mustParseID("0190f3a8-7c1e-7d2a-8b3c-4d5e6f708192")

// event returns a telemetry event of th at device time t.
func event(th topic.Thing, t time.Time) storage.Event {
	n := seqCounter.Add(1)
	v := float64(n % 100)
	return storage.Event{
		ID:          newID(),
		DeviceTime:  t,
		ReceivedAt:  t,
		Thing:       th,
		MessageType: topic.Telemetry,
		Name:        "temperature",
		BootID:      bootID,
		Seq:         n,
		Value:       &v,
		Payload:     []byte(fmt.Sprintf(`{"value": %v}`, v)),
		Envelope:    []byte(fmt.Sprintf("envelope-%d", n)),
	}
}

// count returns the number of rows of a query's single count column.
func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// eventually calls f until it returns nil or waitTimeout passes.
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, waitTimeout, err)
		}
		<-tick.C
	}
}

// ids makes the tests' envelope ids.
var ids message.IDGenerator

// newID returns a new envelope id.
func newID() message.ID { return ids.New() }

// mustParseID parses a canonical id or panics.
func mustParseID(s string) message.ID {
	id, err := message.ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}
