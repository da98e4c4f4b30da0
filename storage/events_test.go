package storage_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func timeNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func TestInsertEventsExactlyOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	now := timeNow()
	batch := make([]storage.Event, 50)
	for i := range batch {
		batch[i] = event(thingA, now.Add(time.Duration(i)*time.Millisecond))
	}
	res, err := s.InsertEvents(ctx, batch)
	require.NoError(t, err)
	assert.Equal(t, storage.InsertResult{Inserted: 50}, res)

	// Redelivery of the whole batch, later, and a batch holding one event twice.
	later := append([]storage.Event(nil), batch...)
	for i := range later {
		later[i].ReceivedAt = now.Add(time.Hour)
	}
	res, err = s.InsertEvents(ctx, later)
	require.NoError(t, err)
	assert.Equal(t, storage.InsertResult{Duplicates: 50}, res)

	e := event(thingA, now)
	res, err = s.InsertEvents(ctx, []storage.Event{e, e})
	require.NoError(t, err)
	assert.Equal(t, storage.InsertResult{Inserted: 1, Duplicates: 1}, res)

	assert.Equal(t, 51, count(t, s.Pool(), "SELECT count(*) FROM lintel.events"))

	// What is stored is what was given.
	page, err := s.Events(ctx, storage.EventQuery{Name: "temperature", From: now, To: now.Add(time.Millisecond)})
	require.NoError(t, err)
	require.NotEmpty(t, page.Events)
	got := page.Events[0]
	want := batch[0]
	if got.ID != want.ID {
		got = page.Events[1]
	}
	assert.Equal(t, want.ID, got.ID)
	assert.True(t, want.DeviceTime.Equal(got.Time))
	assert.True(t, want.DeviceTime.Equal(got.DeviceTime))
	assert.Equal(t, want.Thing, got.Thing)
	assert.Equal(t, want.Envelope, got.Envelope)
	assert.JSONEq(t, string(want.Payload), string(got.Payload))
	assert.Equal(t, *want.Value, *got.Value)
	assert.False(t, got.ClockSkewed())
}

// TestInsertEventsBisect checks that one row PostgreSQL refuses (a \u0000
// escape, which jsonb cannot hold) is reported and the rest is stored.
func TestInsertEventsBisect(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	now := timeNow()
	batch := make([]storage.Event, 37)
	for i := range batch {
		batch[i] = event(thingA, now.Add(time.Duration(i)*time.Second))
	}
	batch[23].Payload = json.RawMessage(`{"text": "nul \u0000 here"}`)
	batch[5].Payload = json.RawMessage(`{"text": "\u0000"}`)
	res, err := s.InsertEvents(ctx, batch)
	require.NoError(t, err)
	assert.Equal(t, 35, res.Inserted)
	require.Len(t, res.Rejected, 2)
	assert.Equal(t, 5, res.Rejected[0].Index)
	assert.Equal(t, 23, res.Rejected[1].Index)
	assert.ErrorContains(t, res.Rejected[0].Err, "Unicode")
	assert.Equal(t, 35, count(t, s.Pool(), "SELECT count(*) FROM lintel.events"))
	assert.Zero(t, count(t, s.Pool(), "SELECT count(*) FROM lintel.events WHERE id = $1", batch[23].ID))
}

// TestPaginationExact pages through events with many equal times in both
// directions and checks that the pages add up to the whole, in order.
func TestPaginationExact(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	base := timeNow().Add(-time.Hour)
	var batch []storage.Event
	for i := range 230 {
		// Groups of up to 9 events share a time: page boundaries fall inside them.
		batch = append(batch, event(thingA, base.Add(time.Duration(i/9)*time.Second)))
	}
	other := topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s2"}
	for i := range 20 {
		batch = append(batch, event(other, base.Add(time.Duration(i)*time.Second)))
	}
	_, err := s.InsertEvents(ctx, batch)
	require.NoError(t, err)

	for _, desc := range []bool{false, true} {
		for _, limit := range []int{1, 7, 9, 100, 229, 230, 231} {
			t.Run(fmt.Sprintf("desc=%v/limit=%d", desc, limit), func(t *testing.T) {
				q := storage.EventQuery{Org: "acme", ThingCode: "s1", Limit: limit, Descending: desc}
				var all []storage.Event
				pages := 0
				for {
					page, err := s.Events(ctx, q)
					require.NoError(t, err)
					require.LessOrEqual(t, len(page.Events), limit)
					all = append(all, page.Events...)
					pages++
					if page.Next == "" {
						break
					}
					q.Cursor = page.Next
					require.Less(t, pages, 300, "pagination does not end")
				}
				require.Len(t, all, 230)
				seen := map[message.ID]bool{}
				for i, e := range all {
					require.False(t, seen[e.ID], "event %s twice", e.ID)
					seen[e.ID] = true
					assert.Equal(t, "s1", e.Thing.Code)
					if i > 0 {
						prev := all[i-1]
						c := e.Time.Compare(prev.Time)
						if c == 0 {
							c = compareID(e.ID, prev.ID)
						}
						if desc {
							c = -c
						}
						require.Positive(t, c, "out of order at %d", i)
					}
				}
			})
		}
	}

	t.Run("bad cursor", func(t *testing.T) {
		_, err := s.Events(ctx, storage.EventQuery{Cursor: "nonsense"})
		require.ErrorIs(t, err, storage.ErrInvalidCursor)
		_, err = s.Events(ctx, storage.EventQuery{Limit: storage.MaxLimit + 1})
		require.ErrorIs(t, err, storage.ErrInvalidQuery)
	})
}

func compareID(a, b message.ID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// TestClockSkew stores events from devices whose clocks are far off: they
// are kept under their receive time, keep their device time, are not
// dropped by retention at once, and stay exactly-once across redeliveries
// that arrive much later.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	now := timeNow()
	cases := []struct {
		name   string
		device time.Time
		skewed bool
	}{
		{"epoch", time.Unix(0, 0).UTC(), true},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"far future", time.Date(2150, 6, 1, 0, 0, 0, 0, time.UTC), true},
		{"two days ahead", now.Add(48 * time.Hour), true},
		{"replayed after an outage", now.Add(-10 * 24 * time.Hour), false},
		{"a little ahead", now.Add(5 * time.Hour), false},
	}
	var batch []storage.Event
	for _, c := range cases {
		e := event(thingA, c.device)
		e.ReceivedAt = now
		batch = append(batch, e)
	}
	res, err := s.InsertEvents(ctx, batch)
	require.NoError(t, err)
	require.Equal(t, len(cases), res.Inserted)

	// Redelivered 29 days later: the replayed event's device time is now
	// 39 days before its receive time, and the future one is plausible.
	redelivered := append([]storage.Event(nil), batch...)
	for i := range redelivered {
		redelivered[i].ReceivedAt = now.Add(29 * 24 * time.Hour)
	}
	res, err = s.InsertEvents(ctx, redelivered)
	require.NoError(t, err)
	assert.Equal(t, storage.InsertResult{Duplicates: len(cases)}, res)

	// Retention by a week keeps them all except none: the far-off ones are
	// stored under their receive time, the replayed one is 10 days old.
	require.NoError(t, s.EnforceRetention(ctx, 7*24*time.Hour))
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page, err := s.Events(ctx, storage.EventQuery{ThingCode: thingA.Code})
			require.NoError(t, err)
			var got *storage.Event
			for j := range page.Events {
				if page.Events[j].ID == batch[i].ID {
					got = &page.Events[j]
				}
			}
			if c.name == "replayed after an outage" {
				assert.Nil(t, got, "a 10-day-old event survives a 7-day retention")
				return
			}
			require.NotNil(t, got, "event lost")
			assert.Equal(t, c.skewed, got.ClockSkewed())
			assert.True(t, c.device.Equal(got.DeviceTime), "device time %v, want %v", got.DeviceTime, c.device)
			if c.skewed {
				assert.True(t, now.Equal(got.Time), "stored under %v, want the receive time %v", got.Time, now)
			}
		})
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	now := timeNow()
	s := newStore(t, storage.Config{Now: func() time.Time { return now }})
	ctx := testContext(t)
	old := event(thingA, now.Add(-20*24*time.Hour))
	old.ReceivedAt = now.Add(-20 * 24 * time.Hour)
	recent := event(thingA, now.Add(-2*24*time.Hour))
	fresh := event(thingA, now)
	_, err := s.InsertEvents(ctx, []storage.Event{old, recent, fresh})
	require.NoError(t, err)
	require.NoError(t, s.RecordAccessDecision(ctx, storage.AccessDecision{ID: newID(), Time: old.DeviceTime, Org: "acme", Edge: "hq", Door: "d1", CredentialHash: "h"}))
	require.NoError(t, s.RecordAccessDecision(ctx, storage.AccessDecision{ID: newID(), Time: now, Org: "acme", Edge: "hq", Door: "d1", CredentialHash: "h"}))
	require.NoError(t, s.RecordCommand(ctx, storage.Command{ID: newID(), Thing: thingA, Action: "unlock", RequestedBy: "u", RequestedAt: old.DeviceTime}))

	require.NoError(t, s.EnforceRetention(ctx, 7*24*time.Hour))
	page, err := s.Events(ctx, storage.EventQuery{})
	require.NoError(t, err)
	var ids []message.ID
	for _, e := range page.Events {
		ids = append(ids, e.ID)
	}
	assert.ElementsMatch(t, []message.ID{recent.ID, fresh.ID}, ids)
	assert.Equal(t, 1, count(t, s.Pool(), "SELECT count(*) FROM lintel.access_decisions"))
	assert.Zero(t, count(t, s.Pool(), "SELECT count(*) FROM lintel.commands"))

	// Idempotent, and inserting after retention still works.
	require.NoError(t, s.EnforceRetention(ctx, 7*24*time.Hour))
	_, err = s.InsertEvents(ctx, []storage.Event{event(thingA, now)})
	require.NoError(t, err)
	require.ErrorIs(t, s.EnforceRetention(ctx, 0), storage.ErrInvalidQuery)
}

func TestLatest(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	now := timeNow()
	var batch []storage.Event
	for i, code := range []string{"d1", "d2", "d3"} {
		th := topic.Thing{Org: "acme", Edge: "hq", Type: "door", Code: code}
		for j := range 5 {
			e := event(th, now.Add(time.Duration(j-i)*time.Minute))
			e.MessageType = topic.State
			e.Name = "door"
			e.Payload = json.RawMessage(fmt.Sprintf(`{"open": %v, "j": %d}`, j%2 == 0, j))
			batch = append(batch, e)
		}
	}
	_, err := s.InsertEvents(ctx, batch)
	require.NoError(t, err)
	latest, err := s.Latest(ctx, storage.LatestQuery{Org: "acme", ThingType: "door"})
	require.NoError(t, err)
	require.Len(t, latest, 3)
	for i, e := range latest {
		assert.Equal(t, batch[i*5+4].ID, e.ID, "thing %s", e.Thing.Code)
	}
	latest, err = s.Latest(ctx, storage.LatestQuery{Org: "acme", Since: now.Add(time.Hour)})
	require.NoError(t, err)
	assert.Empty(t, latest)
}

func TestAggregate(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	// 01:00 UTC two days ago: the day bucket below holds every event.
	hour := timeNow().Truncate(24 * time.Hour).Add(-47 * time.Hour)
	var batch []storage.Event
	add := func(at time.Time, v *float64) {
		e := event(thingA, at)
		e.Value = v
		batch = append(batch, e)
	}
	f := func(v float64) *float64 { return &v }
	add(hour.Add(1*time.Minute), f(10))
	add(hour.Add(2*time.Minute), f(20))
	add(hour.Add(3*time.Minute), nil)
	add(hour.Add(61*time.Minute), f(-5))
	_, err := s.InsertEvents(ctx, batch)
	require.NoError(t, err)

	buckets, err := s.Aggregate(ctx, storage.AggregateQuery{Org: "acme", From: hour, To: hour.Add(2 * time.Hour)})
	require.NoError(t, err)
	require.Len(t, buckets, 2)
	b := buckets[0]
	assert.True(t, hour.Equal(b.Start))
	assert.Equal(t, thingA, b.Thing)
	assert.Equal(t, int64(3), b.Events)
	assert.Equal(t, int64(2), b.Readings)
	assert.InDelta(t, 10, *b.Min, 1e-9)
	assert.InDelta(t, 15, *b.Avg, 1e-9)
	assert.InDelta(t, 20, *b.Max, 1e-9)
	assert.Equal(t, int64(1), buckets[1].Events)

	// One bucket of two hours covers everything.
	buckets, err = s.Aggregate(ctx, storage.AggregateQuery{Org: "acme", From: hour, To: hour.Add(2 * time.Hour), Bucket: 24 * time.Hour})
	require.NoError(t, err)
	require.Len(t, buckets, 1)
	assert.Equal(t, int64(4), buckets[0].Events)
	assert.InDelta(t, 25.0/3, *buckets[0].Avg, 1e-9)

	_, err = s.Aggregate(ctx, storage.AggregateQuery{})
	require.ErrorIs(t, err, storage.ErrInvalidQuery)
}
