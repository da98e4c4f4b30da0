package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

const (
	eventStream      = "EVENTS"
	deadLetterStream = "DEADLETTER"
	deadLetterSubj   = "lintel.deadletter"
)

// natsEnv is a NATS server with central's event stream and a dead-letter stream.
type natsEnv struct {
	srv *natstest.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	in  *storage.Ingest // the last ingest runIngest started
}

func newNATS(t testing.TB) *natsEnv {
	t.Helper()
	srv := natstest.Run(t, nil)
	nc, err := srv.Connect()
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := testContext(t)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: eventStream, Subjects: []string{"acme.>"}})
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: deadLetterStream, Subjects: []string{deadLetterSubj}})
	require.NoError(t, err)
	return &natsEnv{srv: srv, nc: nc, js: js}
}

// runIngest runs an ingest until the test ends.
func runIngest(t testing.TB, s *storage.Store, n *natsEnv, cfg storage.IngestConfig) *storage.Ingest {
	t.Helper()
	cfg.Stream = eventStream
	cfg.DeadLetterSubject = deadLetterSubj
	if cfg.Origins == nil {
		cfg.Origins = storage.AnyOrigin
	}
	in, err := storage.NewIngest(s, n.js, cfg)
	require.NoError(t, err)
	r, err := in.Start(testContext(t))
	require.NoError(t, err)
	t.Cleanup(func() {
		stopped := make(chan struct{})
		go func() { r.Stop(); close(stopped) }()
		select {
		case <-stopped:
			assert.NoError(t, r.Err())
		case <-time.After(waitTimeout):
			t.Error("ingest did not stop")
		}
	})
	n.in = in
	return in
}

// envelope returns an encoded envelope of thingA at time at, whose payload
// is the msgpack form of the JSON payload (none if empty).
func envelope(t testing.TB, at time.Time, payload string) (subject string, data []byte, id message.ID) {
	t.Helper()
	id = newID()
	e := storage.Event{ID: id, DeviceTime: at, Thing: thingA, MessageType: topic.Telemetry, Name: "temperature"}
	if payload != "" {
		e.Payload = json.RawMessage(payload)
	}
	subject, data = encodeEvent(t, &e)
	return subject, data, id
}

// encodeEvent encodes e as a Lintel envelope with a msgpack payload made
// from e.Payload, and sets e.Envelope to it.
func encodeEvent(t testing.TB, e *storage.Event) (string, []byte) {
	t.Helper()
	env := message.Envelope{
		ID: e.ID, Time: e.DeviceTime, Source: e.Thing, Type: e.MessageType, Name: e.Name,
		Seq: uint64(e.Seq), BootID: e.BootID,
	}
	if e.Payload != nil {
		var v any
		require.NoError(t, json.Unmarshal(e.Payload, &v))
		p, err := msgpack.Marshal(v)
		require.NoError(t, err)
		env.ContentType, env.Payload = message.ContentTypeMsgpack, p
	}
	data, err := env.MarshalMsgpack()
	require.NoError(t, err)
	e.Envelope = data
	return env.Subject().String(), data
}

func (n *natsEnv) publish(t testing.TB, subject string, data []byte) {
	t.Helper()
	_, err := n.js.Publish(testContext(t), subject, data)
	require.NoError(t, err)
}

func (n *natsEnv) deadLetters(t testing.TB) []rawMsg {
	t.Helper()
	ctx := testContext(t)
	st, err := n.js.Stream(ctx, deadLetterStream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out []rawMsg
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		out = append(out, rawMsg{raw})
	}
	return out
}

// rawMsg is a stored message with the accessors of a jetstream.Msg.
type rawMsg struct{ *jetstream.RawStreamMsg }

func (m rawMsg) Data() []byte         { return m.RawStreamMsg.Data }
func (m rawMsg) Headers() nats.Header { return m.Header }
func (m rawMsg) Subject() string      { return m.RawStreamMsg.Subject }

func waitEvents(t testing.TB, pool *pgxpool.Pool, want int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d events stored", want), func() error {
		if n := count(t, pool, "SELECT count(*) FROM lintel.events"); n != want {
			return fmt.Errorf("%d events stored", n)
		}
		return nil
	})
}

// waitAcked waits until the last ingest runIngest started has committed
// everything the event stream holds.
func waitAcked(t testing.TB, n *natsEnv) {
	t.Helper()
	eventually(t, "stream committed", func() error {
		st, err := n.js.Stream(testContext(t), eventStream)
		if err != nil {
			return err
		}
		info, err := st.Info(testContext(t))
		if err != nil {
			return err
		}
		if pos := n.in.Stats().Position; pos != info.State.LastSeq {
			return fmt.Errorf("committed through %d of %d", pos, info.State.LastSeq)
		}
		return nil
	})
}

func TestIngestRedeliveryStoresOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	now := timeNow()
	subj, data, id := envelope(t, now, `{"value": 21.5}`)
	n.publish(t, subj, data)
	n.publish(t, subj, data) // the same envelope again, as a re-forwarding edge would
	for i := range 10 {
		s2, d2, _ := envelope(t, now.Add(time.Duration(i+1)*time.Second), "")
		n.publish(t, s2, d2)
	}
	in := runIngest(t, s, n, storage.IngestConfig{BatchSize: 5})
	waitAcked(t, n)
	waitEvents(t, s.Pool(), 11)
	st := in.Stats()
	assert.Equal(t, uint64(11), st.Ingested)
	assert.Equal(t, uint64(1), st.Duplicates)
	assert.GreaterOrEqual(t, st.Batches, uint64(3))

	page, err := s.Events(testContext(t), storage.EventQuery{ThingCode: thingA.Code, From: now, To: now.Add(time.Microsecond)})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	got := page.Events[0]
	assert.Equal(t, id, got.ID)
	assert.Equal(t, data, got.Envelope)
	assert.InDelta(t, 21.5, *got.Value, 1e-9)
	assert.False(t, got.ReceivedAt.IsZero())
	assert.False(t, got.Replayed)
}

func TestIngestDeadLettersUndecodable(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	subj, good, _ := envelope(t, timeNow(), "")
	msg := nats.NewMsg(subj)
	msg.Data = []byte("\xc1 not an envelope")
	msg.Header.Set("Trace", "abc")
	_, err := n.js.PublishMsg(testContext(t), msg)
	require.NoError(t, err)
	n.publish(t, subj, good)

	in := runIngest(t, s, n, storage.IngestConfig{})
	waitAcked(t, n)
	waitEvents(t, s.Pool(), 1)
	dls := n.deadLetters(t)
	require.Len(t, dls, 1)
	dl := dls[0]
	assert.Equal(t, msg.Data, dl.Data())
	assert.Equal(t, "abc", dl.Headers().Get("Trace"))
	assert.Equal(t, subj, dl.Headers().Get(storage.HeaderOriginalSubject))
	assert.Equal(t, eventStream, dl.Headers().Get(storage.HeaderOriginalStream))
	assert.Contains(t, dl.Headers().Get(storage.HeaderDeadLetterReason), "decode")
	assert.Equal(t, uint64(1), in.Stats().DeadLettered)
}

func TestIngestDeadLettersRejectedRow(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	now := timeNow()
	var bad []byte
	for i := range 30 {
		payload := `{"value": ` + strconv.Itoa(i) + `}`
		if i == 17 {
			payload = `{"note": "nul \u0000 byte"}`
		}
		subj, data, _ := envelope(t, now.Add(time.Duration(i)*time.Millisecond), payload)
		if i == 17 {
			bad = data
		}
		n.publish(t, subj, data)
	}
	in := runIngest(t, s, n, storage.IngestConfig{BatchSize: 30, BatchWait: time.Second})
	waitAcked(t, n)
	waitEvents(t, s.Pool(), 29)
	dls := n.deadLetters(t)
	require.Len(t, dls, 1)
	assert.Equal(t, bad, dls[0].Data())
	assert.Contains(t, dls[0].Headers().Get(storage.HeaderDeadLetterReason), "database")
	st := in.Stats()
	assert.Equal(t, uint64(29), st.Ingested)
	assert.Equal(t, uint64(1), st.DeadLettered)
}

// TestIngestDeadLetterUnavailable checks that an ingest whose dead-letter
// subject no stream captures does not start, with an error naming the
// subject, and that a message whose dead letter cannot be published
// (the stream went away) is not passed over: the ingest waits for it.
func TestIngestDeadLetterUnavailable(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	require.NoError(t, n.js.DeleteStream(testContext(t), deadLetterStream))
	in, err := storage.NewIngest(s, n.js, storage.IngestConfig{Stream: eventStream, DeadLetterSubject: deadLetterSubj, Origins: storage.AnyOrigin})
	require.NoError(t, err)
	_, err = in.Start(testContext(t))
	require.ErrorIs(t, err, storage.ErrInvalidConfig)
	assert.Contains(t, err.Error(), strconv.Quote(deadLetterSubj))

	// The stream is there at start, and gone when the bad message comes.
	_, err = n.js.CreateStream(testContext(t), jetstream.StreamConfig{Name: deadLetterStream, Subjects: []string{deadLetterSubj}})
	require.NoError(t, err)
	in = runIngest(t, s, n, storage.IngestConfig{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	require.NoError(t, n.js.DeleteStream(testContext(t), deadLetterStream))
	subj, good, _ := envelope(t, timeNow(), "")
	n.publish(t, subj, []byte("garbage"))
	n.publish(t, subj, good)
	eventually(t, "dead letter attempted", func() error {
		if st := in.Stats(); !strings.Contains(st.LastError, "dead letter") {
			return fmt.Errorf("last error %q", st.LastError)
		}
		return nil
	})
	// Nothing moved past the undecodable message without its dead letter.
	assert.Equal(t, uint64(0), in.Stats().Position)
	assert.Equal(t, 0, count(t, s.Pool(), "SELECT count(*) FROM lintel.events"))
	_, err = n.js.CreateStream(testContext(t), jetstream.StreamConfig{Name: deadLetterStream, Subjects: []string{deadLetterSubj}})
	require.NoError(t, err)
	waitAcked(t, n)
	waitEvents(t, s.Pool(), 1)
	require.Len(t, n.deadLetters(t), 1)
}

// TestIngestDatabaseOutage cuts the ingest's database connections for a
// while: nothing is lost or duplicated, and the ingest resumes on its own.
func TestIngestDatabaseOutage(t *testing.T) {
	t.Parallel()
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
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	cfg.ConnConfig.RuntimeParams["application_name"] = "ingest-under-test"
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := storage.New(pool, storage.Config{})

	n := newNATS(t)
	in := runIngest(t, s, n, storage.IngestConfig{BatchSize: 20, BatchWait: 50 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	now := timeNow()
	var mu sync.Mutex
	ids := map[message.ID]bool{}
	pub := func(k int) {
		for i := range k {
			subj, data, id := envelope(t, now.Add(time.Duration(len(ids)+i)*time.Millisecond), "")
			mu.Lock()
			ids[id] = true
			mu.Unlock()
			n.publish(t, subj, data)
		}
	}
	pub(50)
	waitEvents(t, db.Pool, 50)

	// Outage: the proxy refuses connections and the open ones are killed.
	proxy.Cut()
	_, err = db.Pool.Exec(testContext(t),
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ingest-under-test'")
	require.NoError(t, err)
	retriesBefore := in.Stats().Retries
	pub(100)
	eventually(t, "ingest notices the outage", func() error {
		if in.Stats().Retries == retriesBefore {
			return errors.New("no failed attempt yet")
		}
		return nil
	})
	assert.Equal(t, 50, count(t, db.Pool, "SELECT count(*) FROM lintel.events"))

	proxy.Restore()
	waitEvents(t, db.Pool, 150)
	waitAcked(t, n)
	assert.Equal(t, 150, count(t, db.Pool, "SELECT count(DISTINCT id) FROM lintel.events"))
	page, err := s.Events(testContext(t), storage.EventQuery{Limit: 1000})
	require.NoError(t, err)
	for _, e := range page.Events {
		assert.True(t, ids[e.ID], "unexpected event %s", e.ID)
	}
}
