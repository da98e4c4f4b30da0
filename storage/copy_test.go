package storage_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInsertEventsColumns checks every column as stored by both COPY paths
// (the events table directly, and the staging table for implausible
// device times): NULLs, sub-microsecond and pre-2000 times, negative and
// extreme numbers, empty and missing payloads and envelopes.
func TestInsertEventsColumns(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	now := time.Now().UTC()
	v, neg := 21.5, math.Inf(-1)
	tests := map[string]storage.Event{
		"every column": {
			ID: newID(), DeviceTime: now.Add(-time.Second).Add(789 * time.Nanosecond), ReceivedAt: now,
			Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "é<1>"}, MessageType: topic.Telemetry,
			Name: "temperature", BootID: newID(), Seq: math.MaxInt64, CorrelationID: newID(), Replayed: true,
			Value: &v, Payload: json.RawMessage(`{"value":21.5,"unit":"\u00b0C"}`), Envelope: []byte{0, 1, 0xff},
		},
		"nulls and empties": {
			ID: newID(), DeviceTime: now.Add(-2 * time.Second), ReceivedAt: now,
			Thing: thingA, MessageType: topic.Event, Seq: -5, Value: nil, Payload: nil, Envelope: []byte{},
		},
		"infinite reading": {
			ID: newID(), DeviceTime: now.Add(-3 * time.Second), ReceivedAt: now,
			Thing: thingA, MessageType: topic.Telemetry, Value: &neg, Payload: json.RawMessage(`null`), Envelope: []byte("e"),
		},
		"before 2000, staged": {
			ID: newID(), DeviceTime: time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC), ReceivedAt: now,
			Thing: thingA, MessageType: topic.Telemetry, Name: "x", Envelope: []byte("e"),
		},
		"before 1970, staged": {
			ID: newID(), DeviceTime: time.Date(1969, 7, 20, 20, 17, 40, 1500, time.UTC), ReceivedAt: now,
			Thing: thingA, MessageType: topic.Telemetry, Name: "y", Envelope: []byte("e"),
		},
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := s.InsertEvents(ctx, []storage.Event{e})
			require.NoError(t, err)
			require.Equal(t, 1, res.Inserted)

			var (
				tm, dt, rt                  time.Time
				org, edge, typ, code, mt, n string
				boot, corr                  pgtype.UUID
				seq                         int64
				replayed                    bool
				value                       *float64
				payload                     []byte
				envelope                    []byte
			)
			require.NoError(t, s.Pool().QueryRow(ctx, `SELECT time, device_time, received_at, org, edge, thing_type, thing_code,
				message_type, name, boot_id, seq, correlation_id, replayed, value, payload, envelope
				FROM lintel.events WHERE id = $1`, e.ID).Scan(&tm, &dt, &rt, &org, &edge, &typ, &code, &mt, &n,
				&boot, &seq, &corr, &replayed, &value, &payload, &envelope))
			want := e.DeviceTime.Truncate(time.Microsecond)
			assert.True(t, dt.Equal(want), "device_time %v, want %v", dt, want)
			if e.DeviceTime.After(now.Add(-time.Hour)) {
				assert.True(t, tm.Equal(want), "time %v, want the device time %v", tm, want)
			} else {
				assert.True(t, tm.Equal(e.ReceivedAt.Truncate(time.Microsecond)), "time %v, want the receive time", tm)
			}
			assert.True(t, rt.Equal(e.ReceivedAt.Truncate(time.Microsecond)))
			assert.Equal(t, []string{e.Thing.Org, e.Thing.Edge, e.Thing.Type, e.Thing.Code, string(e.MessageType), e.Name},
				[]string{org, edge, typ, code, mt, n})
			assert.Equal(t, !e.BootID.IsZero(), boot.Valid)
			assert.Equal(t, !e.CorrelationID.IsZero(), corr.Valid)
			if boot.Valid {
				assert.Equal(t, [16]byte(e.BootID), boot.Bytes)
			}
			if corr.Valid {
				assert.Equal(t, [16]byte(e.CorrelationID), corr.Bytes)
			}
			assert.Equal(t, e.Seq, seq)
			assert.Equal(t, e.Replayed, replayed)
			assert.Equal(t, e.Value, value)
			if e.Payload == nil {
				assert.Nil(t, payload)
			} else {
				assert.JSONEq(t, string(e.Payload), string(payload))
			}
			assert.Equal(t, e.Envelope, envelope)
		})
	}
}
