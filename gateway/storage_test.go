package gateway_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

// shrinkDedupWindow sets the deduplication window of stream to d.
func shrinkDedupWindow(tb testing.TB, js jetstream.JetStream, stream string, d time.Duration) {
	tb.Helper()
	ctx := testCtx(tb)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = d
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
}

// countWithID counts the messages of stream whose envelope ID is id.
func countWithID(tb testing.TB, js jetstream.JetStream, stream string, id message.ID) int {
	tb.Helper()
	ctx := testCtx(tb)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil && m.Header.Get(message.HeaderMsgID) == id.String() {
			n++
		}
	}
	return n
}

// TestRetryBeyondDedupWindowStoredOnce retries an event after the streams'
// deduplication windows have passed (shrunk for the test): the edge's and
// central's streams then hold it twice, and storage's key stores it once
// in PostgreSQL. Within the window the stream itself drops the retry
// (TestEventsStored).
func TestRetryBeyondDedupWindowStoredOnce(t *testing.T) {
	db := pgtest.NewDB(t) // skips without PostgreSQL, fails with LINTEL_REQUIRE_DB=1
	ctx := testCtx(t)
	if _, err := storage.Migrate(ctx, db.Pool, storage.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	c := startCentral(t, e)
	n := startNode(t, e, c)
	waitFor(t, "the leaf link", n.LinkUp)
	g := startGateway(t, e, n, nil)
	const window = 100 * time.Millisecond
	shrinkDedupWindow(t, n.JetStream(), n.Names().EventStream, window)
	shrinkDedupWindow(t, c.js, "events-acme", window)

	ev, body := event(t, r1, topic.Event, "door.opened", map[string]string{"door": "front"})
	post := func() gateway.Stored {
		res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", ceHeader(), body)
		var st gateway.Stored
		if res.status != http.StatusOK || json.Unmarshal(res.body, &st) != nil {
			t.Fatalf("%d %s", res.status, res.body)
		}
		return st
	}
	if st := post(); st.Duplicate {
		t.Fatal("first post answered as a duplicate")
	}
	// Retry until the windows have passed: the edge's stream stores it
	// again, and central's, sourcing it, too.
	for deadline := time.Now().Add(wait); countWithID(t, c.js, "events-acme", ev.ID) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("central never stored the retry")
		}
		time.Sleep(window / 2)
		if post().Duplicate {
			continue
		}
		// Stored again at the edge: wait until central has taken it (the
		// edge releases what central acknowledged).
		waitFor(t, "central to take the retry", func() bool {
			return countWithID(t, n.JetStream(), n.Names().EventStream, ev.ID) == 0
		})
	}

	if _, err := c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "deadletter-acme", Subjects: []string{"acme.deadletter"}}); err != nil {
		t.Fatal(err)
	}
	origins, err := authz.NewSourceTableFor(e.inv, "acme")
	if err != nil {
		t.Fatal(err)
	}
	in, err := storage.NewIngest(storage.New(db.Pool, storage.Config{}), c.js, storage.IngestConfig{
		Stream: "events-acme", DeadLetterSubject: "acme.deadletter", Origins: origins,
	})
	if err != nil {
		t.Fatal(err)
	}
	run, err := in.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Stop()
	s, err := c.js.Stream(ctx, "events-acme")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	waitFor(t, "the ingest to commit the stream", func() bool { return in.Stats().Position >= last })
	if st := in.Stats(); st.Duplicates == 0 || st.DeadLettered != 0 {
		t.Errorf("ingest stats %+v: want the second copy counted as a duplicate", st)
	}
	var rows int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM lintel.events WHERE id = $1`, ev.ID.String()).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("event %s stored %d times, want once", ev.ID, rows)
	}
}
