package storage_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
	"github.com/stretchr/testify/require"
)

// BenchmarkIngest measures sustained ingest from JetStream into PostgreSQL
// in events/s, beside raw pgx CopyFrom of the same rows (the same events,
// envelopes and payloads) into the events table, with its keys, at the
// same batch size: the ceiling. ingest has telemetry only (no derived
// rows); ingest_mixed has one access decision and one heartbeat in every
// ten events, which fill the derived tables. Each runs on the ordinary
// test server (db=postgres: LINTEL_TEST_DATABASE_URL, or PostgreSQL on
// 127.0.0.1:5432) and on TimescaleDB (db=timescale:
// LINTEL_TEST_TIMESCALE_URL, skipped without it), so that one run gives
// both flavors. Run it with a fixed count:
//
//	go test -run '^$' -bench 'Ingest/db=.*/batch=10000/(raw_copyfrom|ingest$)' -benchtime 100000x ./storage/
func BenchmarkIngest(b *testing.B) {
	for _, db := range []struct {
		name string
		opts []pgtest.Option
	}{
		{"postgres", nil},
		{"timescale", []pgtest.Option{pgtest.WithTimescale()}},
	} {
		b.Run("db="+db.name, func(b *testing.B) {
			newDB := func(b *testing.B) *pgtest.DB {
				return pgtest.NewDB(b, append([]pgtest.Option{pgtest.WithTemplate(template(""))}, db.opts...)...)
			}
			for _, size := range []int{1000, 10000} {
				b.Run(fmt.Sprintf("batch=%d/raw_copyfrom", size), func(b *testing.B) { benchRawCopy(b, newDB(b), size) })
				b.Run(fmt.Sprintf("batch=%d/ingest", size), func(b *testing.B) { benchIngest(b, newDB(b), size, benchEvents(b.N)) })
				b.Run(fmt.Sprintf("batch=%d/ingest_mixed", size), func(b *testing.B) { benchIngest(b, newDB(b), size, benchMixed(b.N)) })
			}
		})
	}
}

// benchMixed returns benchEvents with one access decision and one
// heartbeat in every ten events, which fill the derived tables.
func benchMixed(n int) []storage.Event {
	evs := benchEvents(n)
	for i := range evs {
		e := &evs[i]
		switch i % 10 {
		case 3:
			e.MessageType, e.Name, e.Value = topic.Event, message.NameAccessGranted, nil
			e.Thing.Type = topic.ThingTypeAccess
			e.Payload = []byte(`{"granted": true, "door": "front", "holder": "h` + strconv.Itoa(i%500) + `", "credential_set_version": 7}`)
		case 7:
			e.MessageType, e.Name, e.Value = topic.State, message.NameThingHeartbeat, nil
			e.Payload = []byte(`{"boot_id": "` + bootID.String() + `", "uptime": 1000}`)
		}
	}
	return evs
}

// benchEvents returns n events of 50 things, as a busy site sends them.
func benchEvents(n int) []storage.Event {
	now := timeNow()
	evs := make([]storage.Event, n)
	for i := range evs {
		th := thingA
		th.Code = fmt.Sprintf("s%d", i%50)
		evs[i] = event(th, now.Add(time.Duration(i)*time.Microsecond))
	}
	return evs
}

// benchRawCopy copies the rows the ingest stores of benchEvents (their
// envelopes encoded as the ingest receives them) with pgx CopyFrom, as an
// application would: a fresh []any per row.
func benchRawCopy(b *testing.B, db *pgtest.DB, size int) {
	s := storage.New(db.Pool, storage.Config{})
	evs := benchEvents(b.N)
	for i := range evs {
		encodeEvent(b, &evs[i]) // the envelope column holds the encoded envelope
	}
	prepareEvents(b, s, evs[0])
	cols := []string{"time", "id", "device_time", "received_at", "org", "edge", "thing_type", "thing_code",
		"message_type", "name", "boot_id", "seq", "correlation_id", "replayed", "value", "payload", "envelope"}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for off := 0; off < len(evs); off += size {
		chunk := evs[off:min(off+size, len(evs))]
		_, err := db.Pool.CopyFrom(context.Background(), pgx.Identifier{"lintel", "events"}, cols,
			pgx.CopyFromSlice(len(chunk), func(i int) ([]any, error) {
				e := &chunk[i]
				return []any{e.DeviceTime, [16]byte(e.ID), e.DeviceTime, e.ReceivedAt, e.Thing.Org, e.Thing.Edge, e.Thing.Type,
					e.Thing.Code, string(e.MessageType), e.Name, [16]byte(e.BootID), e.Seq, nil, e.Replayed, e.Value,
					[]byte(e.Payload), e.Envelope}, nil
			}))
		require.NoError(b, err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// prepareEvents makes the events table ready for e's day before the
// clock starts, the same for raw CopyFrom and the ingest: the partitions
// (plain PostgreSQL, those the ingest's maintenance makes at start too) or
// the hypertable chunk (TimescaleDB) exist, and the table is empty.
func prepareEvents(b *testing.B, s *storage.Store, e storage.Event) {
	ctx := context.Background()
	require.NoError(b, s.MaintainPartitions(ctx))
	_, err := s.InsertEvents(ctx, []storage.Event{e})
	require.NoError(b, err)
	_, err = s.Pool().Exec(ctx, "DELETE FROM lintel.events") // TRUNCATE would drop TimescaleDB's chunks
	require.NoError(b, err)
}

func benchIngest(b *testing.B, db *pgtest.DB, size int, evs []storage.Event) {
	s := storage.New(db.Pool, storage.Config{})
	n := newNATS(b)
	ctx := context.Background()
	for i := range evs {
		subj, data := encodeEvent(b, &evs[i])
		if _, err := n.js.PublishAsync(subj, data); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 || i == len(evs)-1 { // a bounded window, so that a loaded machine does not stall it
			select {
			case <-n.js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("publishing did not complete")
			}
		}
	}
	st, err := n.js.Stream(ctx, eventStream)
	require.NoError(b, err)
	info, err := st.Info(ctx)
	require.NoError(b, err)
	require.Equal(b, uint64(b.N), info.State.Msgs)

	prepareEvents(b, s, evs[0])

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	in := runIngest(b, s, n, storage.IngestConfig{BatchSize: size})
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(5 * time.Minute)
	for in.Stats().Ingested < uint64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("ingested %d of %d", in.Stats().Ingested, b.N)
		}
		<-tick.C
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	require.Zero(b, in.Stats().DerivedSkipped)
}

// BenchmarkInsertEvents measures Store.InsertEvents alone, without NATS.
func BenchmarkInsertEvents(b *testing.B) {
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := storage.New(pgtest.NewDB(b, pgtest.WithTemplate(template(""))).Pool, storage.Config{})
			evs := benchEvents(b.N)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for off := 0; off < len(evs); off += size {
				_, err := s.InsertEvents(context.Background(), evs[off:min(off+size, len(evs))])
				require.NoError(b, err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
