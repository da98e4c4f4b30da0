package storage_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cutDB is a database reached through a proxy that can cut it.
type cutDB struct {
	admin *pgxpool.Pool // direct, for the test's own queries
	pool  *pgxpool.Pool // through the proxy, for the ingest
	proxy *natstest.Proxy
	app   string
}

func newCutDB(t *testing.T) *cutDB {
	t.Helper()
	db := newDB(t)
	cfg, err := pgxpool.ParseConfig(db.DSN)
	require.NoError(t, err)
	target := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	proxy, err := natstest.NewProxy(target)
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	host, port, err := net.SplitHostPort(proxy.Addr())
	require.NoError(t, err)
	p, _ := strconv.Atoi(port)
	app := "ingest-" + newID().String()[:8]
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return &cutDB{admin: db.Pool, pool: pool, proxy: proxy, app: app}
}

// cut refuses new connections and kills the open ones.
func (d *cutDB) cut(t *testing.T) {
	t.Helper()
	d.proxy.Cut()
	_, err := d.admin.Exec(testContext(t), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", d.app)
	require.NoError(t, err)
}

// publishN publishes n fresh envelopes and returns their ids.
func publishN(t *testing.T, n *natsEnv, k int) map[message.ID]bool {
	t.Helper()
	ids := map[message.ID]bool{}
	now := timeNow()
	for i := range k {
		subj, data, id := envelope(t, now.Add(time.Duration(i)*time.Millisecond), "")
		ids[id] = true
		n.publish(t, subj, data)
	}
	return ids
}

// storedIDs returns the ids of the stored events.
func storedIDs(t *testing.T, pool *pgxpool.Pool) map[message.ID]int {
	t.Helper()
	rows, err := pool.Query(testContext(t), "SELECT id FROM lintel.events")
	require.NoError(t, err)
	defer rows.Close()
	out := map[message.ID]int{}
	for rows.Next() {
		var id message.ID
		require.NoError(t, rows.Scan(&id))
		out[id]++
	}
	require.NoError(t, rows.Err())
	return out
}

// assertExactly checks that the stored events are exactly ids, once each.
func assertExactly(t *testing.T, pool *pgxpool.Pool, ids map[message.ID]bool) {
	t.Helper()
	got := storedIDs(t, pool)
	for id := range ids {
		assert.Equal(t, 1, got[id], "event %s", id)
	}
	assert.Len(t, got, len(ids))
}

// TestIngestGapFound removes stream sequences before the ingest reads
// them, by deleting messages and by purging the head of the stream: the
// ingest reports each missing range in its stats and in the database.
func TestIngestGapFound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		remove    func(t *testing.T, st jetstream.Stream)
		gaps, msg uint64
	}{
		{"deleted", func(t *testing.T, st jetstream.Stream) {
			for seq := uint64(4); seq <= 6; seq++ {
				require.NoError(t, st.DeleteMsg(testContext(t), seq))
			}
			require.NoError(t, st.DeleteMsg(testContext(t), 9))
		}, 2, 4},
		{"purged", func(t *testing.T, st jetstream.Stream) {
			require.NoError(t, st.Purge(testContext(t), jetstream.WithPurgeSequence(5)))
		}, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, storage.Config{})
			n := newNATS(t)
			publishN(t, n, 12)
			st, err := n.js.Stream(testContext(t), eventStream)
			require.NoError(t, err)
			tc.remove(t, st)
			in := runIngest(t, s, n, storage.IngestConfig{})
			waitAcked(t, n)
			waitEvents(t, s.Pool(), int(12-tc.msg))
			stats := in.Stats()
			assert.Equal(t, tc.gaps, stats.Gaps)
			assert.Equal(t, tc.msg, stats.GapMessages)
			pos, err := s.IngestPosition(testContext(t), eventStream, storage.DefaultDurable)
			require.NoError(t, err)
			assert.Equal(t, uint64(12), pos.Seq)
			assert.Equal(t, tc.gaps, pos.Gaps)
			assert.Equal(t, tc.msg, pos.GapMessages)
		})
	}
}

// TestIngestForgedAcksLoseNothing is the delivered-but-uncommitted window
// under attack: the database is down while the ingest holds a batch, an
// attacker on a leaf node of central publishes acknowledgements for
// central's consumers (nats-server passes "$JS.ACK.>" from a leaf whatever
// its permissions), and the ingest is stopped before it could commit.
// A consumer with explicit acks beside it shows that the forged acks do
// arrive; the ingest has nothing they can move, and stores every event
// once the database is back.
func TestIngestForgedAcksLoseNothing(t *testing.T) {
	t.Parallel()
	hl := natstest.RunHubLeaf(t, natstest.HubLeafOptions{})
	nc, err := hl.Hub.Connect()
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := testContext(t)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: eventStream, Subjects: []string{"acme.>"}})
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: deadLetterStream, Subjects: []string{deadLetterSubj}})
	require.NoError(t, err)
	n := &natsEnv{srv: hl.Hub, nc: nc, js: js}
	db := newCutDB(t)
	s := storage.New(db.pool, storage.Config{})

	// The control: a consumer with explicit acks, the old ingest's design.
	control, err := js.CreateOrUpdateConsumer(ctx, eventStream, jetstream.ConsumerConfig{
		Durable: storage.DefaultDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	require.NoError(t, err)

	cfg := storage.IngestConfig{Stream: eventStream, DeadLetterSubject: deadLetterSubj, Origins: storage.AnyOrigin,
		BatchSize: 50, BatchWait: 20 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	in, err := storage.NewIngest(s, js, cfg)
	require.NoError(t, err)
	r, err := in.Start(ctx)
	require.NoError(t, err)
	first := publishN(t, n, 20)
	eventually(t, "first events committed", func() error {
		if p := in.Stats().Position; p != 20 {
			return fmt.Errorf("position %d", p)
		}
		return nil
	})

	db.cut(t)
	retries := in.Stats().Retries
	second := publishN(t, n, 100)
	eventually(t, "a batch held while the database is down", func() error {
		if in.Stats().Retries == retries {
			return errors.New("no failed commit yet")
		}
		return nil
	})
	// The control consumer has the same messages delivered and unacked.
	mb, err := control.Fetch(120, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	delivered := 0
	for range mb.Messages() {
		delivered++
	}
	require.Equal(t, 120, delivered)

	// The attacker, a client of the leaf node, acks every sequence of
	// every consumer of the stream it can name.
	leaf, err := hl.Leaf.Connect()
	require.NoError(t, err)
	t.Cleanup(leaf.Close)
	str, err := js.Stream(ctx, eventStream)
	require.NoError(t, err)
	names := []string{storage.DefaultDurable}
	for name := range str.ConsumerNames(ctx).Name() {
		names = append(names, name)
	}
	require.Greater(t, len(names), 1, "the ingest's reader is a consumer of the stream")
	for _, name := range names {
		for seq := 1; seq <= 120; seq++ {
			for dseq := 1; dseq <= 3; dseq++ {
				subj := fmt.Sprintf("$JS.ACK.%s.%s.1.%d.%d.%d.0", eventStream, name, seq, dseq, time.Now().UnixNano())
				require.NoError(t, leaf.Publish(subj, []byte("+ACK")))
			}
		}
	}
	require.NoError(t, leaf.Flush())
	eventually(t, "the forged acks reach central", func() error {
		info, err := control.Info(testContext(t))
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 {
			return fmt.Errorf("control consumer: %d still pending", info.NumAckPending)
		}
		return nil
	})

	// Central's ingest stops before the database returns: nothing of the
	// second lot is committed, and a new ingest takes over.
	r.Stop()
	assert.Equal(t, uint64(20), in.Stats().Position)
	db.proxy.Restore()
	in2, err := storage.NewIngest(s, js, cfg)
	require.NoError(t, err)
	r2, err := in2.Start(ctx)
	require.NoError(t, err)
	t.Cleanup(r2.Stop)
	eventually(t, "every event stored", func() error {
		if p := in2.Stats().Position; p != 120 {
			return fmt.Errorf("position %d", p)
		}
		return nil
	})
	for id := range second {
		first[id] = true
	}
	assertExactly(t, db.admin, first)
}

// TestIngestCentralRestart crashes central's NATS server while the ingest
// holds a batch the database has not taken: every published event is in
// the database soon after both are back, without waiting out any
// acknowledgement timeout, and a clean stop followed by a new ingest loses
// and duplicates nothing.
func TestIngestCentralRestart(t *testing.T) {
	t.Parallel()
	n := newNATS(t)
	db := newCutDB(t)
	s := storage.New(db.pool, storage.Config{})
	in := runIngest(t, s, n, storage.IngestConfig{BatchSize: 30, BatchWait: 20 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ids := publishN(t, n, 40)
	waitAcked(t, n)

	db.cut(t)
	retries := in.Stats().Retries
	for id := range publishN(t, n, 60) {
		ids[id] = true
	}
	eventually(t, "a batch held while the database is down", func() error {
		if in.Stats().Retries == retries {
			return errors.New("no failed commit yet")
		}
		return nil
	})
	require.NoError(t, n.srv.Restart())
	db.proxy.Restore()
	back := time.Now()
	now := timeNow()
	for i := range 25 { // after the restart, once central's JetStream answers again
		subj, data, id := envelope(t, now.Add(time.Duration(i)*time.Millisecond), "")
		ids[id] = true
		eventually(t, "publish after the restart", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := n.js.Publish(ctx, subj, data, jetstream.WithMsgID(id.String()))
			return err
		})
	}
	waitAcked(t, n)
	t.Logf("all %d events committed %v after central was back", len(ids), time.Since(back).Round(10*time.Millisecond))
	assertExactly(t, db.admin, ids)
}

// TestIngestFailover runs two instances of one ingest, as two central
// nodes do: one is active, the other stands by and takes over when the
// first stops, from the committed position; every event is stored once.
func TestIngestFailover(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	cfg := storage.IngestConfig{Stream: eventStream, DeadLetterSubject: deadLetterSubj, Origins: storage.AnyOrigin,
		BatchSize: 10, BatchWait: 20 * time.Millisecond, TakeoverPoll: 50 * time.Millisecond}
	start := func() (*storage.Ingest, *storage.IngestRun) {
		in, err := storage.NewIngest(s, n.js, cfg)
		require.NoError(t, err)
		r, err := in.Start(testContext(t))
		require.NoError(t, err)
		t.Cleanup(r.Stop)
		return in, r
	}
	a, ra := start()
	eventually(t, "a active", func() error {
		if !a.Stats().Active {
			return errors.New("not active")
		}
		return nil
	})
	b, _ := start()
	ids := publishN(t, n, 50)
	eventually(t, "a commits", func() error {
		if p := a.Stats().Position; p != 50 {
			return fmt.Errorf("position %d", p)
		}
		return nil
	})
	assert.False(t, b.Stats().Active, "two active ingests")
	ra.Stop()
	for id := range publishN(t, n, 50) {
		ids[id] = true
	}
	eventually(t, "b takes over", func() error {
		if p := b.Stats().Position; p != 100 {
			return fmt.Errorf("position %d, active %v", p, b.Stats().Active)
		}
		return nil
	})
	assert.Equal(t, uint64(50), b.Stats().Ingested)
	assertExactly(t, s.Pool(), ids)
}

// logRecorder keeps the log records of a slog.Logger.
type logRecorder struct {
	mu  sync.Mutex
	rec []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rec = append(l.rec, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// warned reports whether a warning containing s was logged.
func (l *logRecorder) warned(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.rec {
		if r.Level == slog.LevelWarn && strings.Contains(r.Message, s) {
			return true
		}
		found := false
		r.Attrs(func(a slog.Attr) bool {
			found = found || (r.Level == slog.LevelWarn && strings.Contains(a.Value.String(), s))
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// TestIngestConfigErrors checks that a configuration mistake is named as
// one.
func TestIngestConfigErrors(t *testing.T) {
	t.Parallel()
	s := storage.New(nil, storage.Config{})
	n := newNATS(t)
	for _, tc := range []struct {
		name string
		cfg  storage.IngestConfig
		want string
	}{
		{"no stream", storage.IngestConfig{DeadLetterSubject: "dl", Origins: storage.AnyOrigin}, "Stream"},
		{"no dead-letter subject", storage.IngestConfig{Stream: "S", Origins: storage.AnyOrigin}, "DeadLetterSubject"},
		{"no origins", storage.IngestConfig{Stream: "S", DeadLetterSubject: "dl"}, "Origins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := storage.NewIngest(s, n.js, tc.cfg)
			require.ErrorIs(t, err, storage.ErrInvalidConfig)
			assert.NotErrorIs(t, err, storage.ErrInvalidQuery)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestIngestStreamMissing points an ingest at a stream that does not exist
// yet: it warns at once and says so in its stats, stores the stream once
// it appears, and an ingest stopped while the stream is still missing
// reports it instead of returning nil.
func TestIngestStreamMissing(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	logs := &logRecorder{}
	cfg := storage.IngestConfig{Stream: "LATE", DeadLetterSubject: deadLetterSubj, Origins: storage.AnyOrigin,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Logger: slog.New(logs)}

	in, err := storage.NewIngest(s, n.js, cfg)
	require.NoError(t, err)
	r, err := in.Start(testContext(t))
	require.NoError(t, err)
	eventually(t, "missing stream reported", func() error {
		if st := in.Stats(); !st.StreamMissing || st.LastError == "" {
			return fmt.Errorf("stats %+v", st)
		}
		if !logs.warned("LATE") {
			return errors.New("no warning")
		}
		return nil
	})
	r.Stop()
	require.ErrorIs(t, r.Err(), jetstream.ErrStreamNotFound)

	// A second ingest finds the stream once it is created.
	cfg.Logger = nil
	in2, err := storage.NewIngest(s, n.js, cfg)
	require.NoError(t, err)
	r2, err := in2.Start(testContext(t))
	require.NoError(t, err)
	eventually(t, "missing stream reported", func() error {
		if !in2.Stats().StreamMissing {
			return errors.New("not yet")
		}
		return nil
	})
	_, err = n.js.CreateStream(testContext(t), jetstream.StreamConfig{Name: "LATE", Subjects: []string{"late.>"}})
	require.NoError(t, err)
	eventually(t, "stream found", func() error {
		if st := in2.Stats(); st.StreamMissing || st.LastError != "" || !st.Active {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
	r2.Drain()
	assert.NoError(t, r2.Err())
}

// TestIngestDrain commits what was read before it stops, and a stop
// while idle returns at once.
func TestIngestDrain(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	in, err := storage.NewIngest(s, n.js, storage.IngestConfig{Stream: eventStream, DeadLetterSubject: deadLetterSubj,
		Origins: storage.AnyOrigin, BatchWait: time.Hour, BatchSize: 1000})
	require.NoError(t, err)
	r, err := in.Start(testContext(t))
	require.NoError(t, err)
	ids := publishN(t, n, 30) // fewer than a batch, which waits an hour
	eventually(t, "the ingest holds the messages", func() error {
		if r := in.Stats().Read; r != 30 {
			return fmt.Errorf("read %d", r)
		}
		return nil
	})
	require.Equal(t, uint64(0), in.Stats().Position, "committed before the batch's time")
	done := make(chan struct{})
	go func() { r.Drain(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("drain did not return")
	}
	require.NoError(t, r.Err())
	pos, err := s.IngestPosition(testContext(t), eventStream, storage.DefaultDurable)
	require.NoError(t, err)
	assert.Equal(t, uint64(30), pos.Seq)
	assertExactly(t, s.Pool(), ids)
}

// TestIngestDrainWhileStreamMissing drains an ingest that is waiting out a
// long backoff for a stream that does not exist: with nothing pulled,
// Drain returns at once instead of waiting for the stream (a clustered
// central stopping without a JetStream quorum is in that state).
func TestIngestDrainWhileStreamMissing(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	in, err := storage.NewIngest(s, n.js, storage.IngestConfig{Stream: "NEVER", DeadLetterSubject: deadLetterSubj,
		Origins: storage.AnyOrigin, MinBackoff: time.Hour, MaxBackoff: time.Hour})
	require.NoError(t, err)
	r, err := in.Start(testContext(t))
	require.NoError(t, err)
	eventually(t, "missing stream reported", func() error {
		if !in.Stats().StreamMissing {
			return errors.New("not yet")
		}
		return nil
	})
	done := make(chan struct{})
	go func() {
		r.Drain()
		close(done)
	}()
	select {
	case <-done:
	case <-testContext(t).Done():
		r.Stop()
		t.Fatal("Drain waited out the backoff of a stream that does not exist")
	}
	require.ErrorIs(t, r.Err(), jetstream.ErrStreamNotFound)
}
