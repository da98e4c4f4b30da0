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
// in events/s, beside raw pgx CopyFrom of the same rows into the events
// table at the same batch size, the ceiling. ingest has telemetry only (no
// derived rows); ingest_mixed has one access decision and one heartbeat
// in every ten events. Run it with a fixed count:
//
//	go test -run '^$' -bench Ingest -benchtime 100000x ./storage/
func BenchmarkIngest(b *testing.B) {
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d/raw_copyfrom", size), func(b *testing.B) { benchRawCopy(b, size) })
		b.Run(fmt.Sprintf("batch=%d/ingest", size), func(b *testing.B) { benchIngest(b, size, benchEvents(b.N)) })
		b.Run(fmt.Sprintf("batch=%d/ingest_mixed", size), func(b *testing.B) { benchIngest(b, size, benchMixed(b.N)) })
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

func benchRawCopy(b *testing.B, size int) {
	db := pgtest.NewDB(b, pgtest.WithTemplate(template("")))
	s := storage.New(db.Pool, storage.Config{})
	evs := benchEvents(b.N)
	// Partitions exist, as they do for the ingest.
	_, err := s.InsertEvents(context.Background(), evs[:1])
	require.NoError(b, err)
	_, err = db.Pool.Exec(context.Background(), "TRUNCATE lintel.events")
	require.NoError(b, err)
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

func benchIngest(b *testing.B, size int, evs []storage.Event) {
	s := storage.New(pgtest.NewDB(b, pgtest.WithTemplate(template(""))).Pool, storage.Config{})
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
