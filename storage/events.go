package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Event is one message as stored in the events table.
type Event struct {
	// Time is the time the event is stored, ordered, paginated, aggregated
	// and retained under: DeviceTime when that is plausible, else the
	// receive time of its first delivery (see docs/storage-model.md,
	// "Time"). It is set by the store; [Store.InsertEvents] ignores it.
	Time time.Time
	// ID is the envelope's id. (Time, ID) is the event's unique key.
	ID message.ID
	// DeviceTime is the envelope's time, as the device's clock said.
	DeviceTime time.Time
	// ReceivedAt is when central received the message.
	ReceivedAt time.Time
	// Thing and MessageType come from the subject.
	Thing       topic.Thing
	MessageType topic.MessageType // see Thing
	// Name is the event's name, such as "access.granted" or "temperature".
	Name string
	// BootID and Seq identify the device's boot and the message's place in
	// it; CorrelationID is the id of the message this one answers, such as
	// the command of an ack. Zero ids are stored as NULL.
	BootID        message.ID
	Seq           int64      // see BootID
	CorrelationID message.ID // see BootID
	// Replayed marks events that reached central late, for example
	// forwarded from an edge's buffer after an outage.
	Replayed bool
	// Value is the numeric reading of the payload, if it has one; the
	// hourly aggregates are made of it.
	Value *float64
	// Payload is the envelope's payload as JSON, for querying; nil is NULL.
	Payload json.RawMessage
	// Envelope is the envelope exactly as received.
	Envelope []byte
}

// ClockSkewed reports whether the event is stored under a time other than
// its device time, because that was implausible.
func (e Event) ClockSkewed() bool { return !e.Time.IsZero() && !e.Time.Equal(e.DeviceTime) }

// InsertResult tells what [Store.InsertEvents] did with a batch.
type InsertResult struct {
	// Inserted counts events stored by this call.
	Inserted int
	// Duplicates counts events already stored (same envelope id and time),
	// which were left alone.
	Duplicates int
	// Rejected lists the events PostgreSQL refused, such as a payload with
	// a \u0000 escape, which jsonb cannot hold. The rest of the batch is
	// stored.
	Rejected []Rejected
	// Derived counts the rows this call added to the derived tables
	// (commands, command acks, liveness events, access decisions).
	Derived int
	// Acks counts the command acks of the events by status, stored or
	// duplicates.
	Acks map[CommandStatus]int
	// Skipped lists events that were stored (or were duplicates) without
	// the derived row their kind calls for, because their payload does not
	// make one or the database refused it. Their reasons wrap no sentinel;
	// they are for the log.
	Skipped []Skipped
}

// Rejected is an event of a batch that the database refused.
type Rejected struct {
	Index int   // its index in the batch
	Err   error // why, as PostgreSQL said
}

// stagingColumns are the columns copied into the staging table, in order.
var stagingColumns = []string{
	"id", "device_time", "received_at", "org", "edge", "thing_type", "thing_code",
	"message_type", "name", "boot_id", "seq", "correlation_id", "replayed", "value",
	"payload", "envelope",
}

const createStaging = `
CREATE TEMP TABLE IF NOT EXISTS lintel_staging (
    id             uuid             NOT NULL,
    device_time    timestamptz      NOT NULL,
    received_at    timestamptz      NOT NULL,
    org            text             NOT NULL,
    edge           text             NOT NULL,
    thing_type     text             NOT NULL,
    thing_code     text             NOT NULL,
    message_type   text             NOT NULL,
    name           text             NOT NULL,
    boot_id        uuid,
    seq            bigint           NOT NULL,
    correlation_id uuid,
    replayed       boolean          NOT NULL,
    value          double precision,
    payload        jsonb,
    envelope       bytea            NOT NULL
) ON COMMIT DELETE ROWS`

// plausible is the SQL condition for a staged device time to be believed.
const plausible = `s.device_time BETWEEN s.received_at - $1::interval AND s.received_at + $2::interval`

// insertOverrides records, for staged events whose device time is not
// plausible and which are not stored under it already, the receive time
// as the time they are stored under, once and for all.
const insertOverrides = `
INSERT INTO lintel.event_time_overrides (id, time)
SELECT s.id, min(s.received_at) FROM pg_temp.lintel_staging s
WHERE NOT (` + plausible + `)
  AND NOT EXISTS (SELECT 1 FROM lintel.events e WHERE e.time = s.device_time AND e.id = s.id)
GROUP BY s.id
ON CONFLICT (id) DO NOTHING`

const insertEvents = `
INSERT INTO lintel.events (time, id, device_time, received_at, org, edge, thing_type, thing_code,
    message_type, name, boot_id, seq, correlation_id, replayed, value, payload, envelope)
SELECT COALESCE((SELECT o.time FROM lintel.event_time_overrides o WHERE o.id = s.id), s.device_time),
    s.id, s.device_time, s.received_at, s.org, s.edge, s.thing_type, s.thing_code,
    s.message_type, s.name, s.boot_id, s.seq, s.correlation_id, s.replayed, s.value, s.payload, s.envelope
FROM pg_temp.lintel_staging s
ON CONFLICT DO NOTHING`

// InsertEvents stores a batch of events exactly once: an event whose
// envelope id is already stored, from an earlier delivery or earlier in the
// same batch, is counted as a duplicate and left alone. The batch is copied
// into a temporary staging table and moved into events with INSERT …
// SELECT … ON CONFLICT DO NOTHING in one transaction.
//
// Acks, commands, births, heartbeats, deaths and access decisions among
// the events also fill the derived tables, in the same transaction and
// just as idempotently (see docs/storage-model.md, "Derived tables").
// An event whose derived row cannot be made is stored all the same and
// listed in [InsertResult.Skipped].
//
// When PostgreSQL rejects the data of the batch, InsertEvents splits it in
// halves and retries each, down to the single rows at fault, which it
// reports in [InsertResult.Rejected]; everything else is stored. Any other
// error (the connection, the server) is returned as is; parts of the batch
// may then be stored already, which is harmless because retrying the
// whole batch stores each event once.
func (s *Store) InsertEvents(ctx context.Context, events []Event) (InsertResult, error) {
	res, _, err := s.insertEvents(ctx, events, nil)
	return res, err
}

// insertEvents is InsertEvents with hook, which runs in the transaction
// that stores the whole batch when the batch is stored in one; committed
// reports whether it was (not when the batch had to be bisected: the
// caller then runs the hook itself once it has dealt with the rejected
// rows).
func (s *Store) insertEvents(ctx context.Context, events []Event, hook txHook) (res InsertResult, committed bool, err error) {
	if len(events) == 0 {
		return res, false, nil
	}
	f, err := s.Flavor(ctx)
	if err != nil {
		return res, false, err
	}
	for i := range events {
		if events[i].ReceivedAt.IsZero() {
			// Fill in the receive time on a copy, leaving the caller's slice alone.
			events = append([]Event(nil), events...)
			now := s.now()
			for j := range events {
				if events[j].ReceivedAt.IsZero() {
					events[j].ReceivedAt = now
				}
			}
			break
		}
	}
	if f == FlavorPostgres {
		if err := s.ensurePartitionsFor(ctx, events); err != nil {
			return res, false, err
		}
	}
	derived, skipped := s.derive(events)
	committed, err = s.insertBisect(ctx, events, derived, 0, &res, hook)
	if err == nil {
		for _, r := range derived {
			if r.ack != nil {
				if res.Acks == nil {
					res.Acks = make(map[CommandStatus]int)
				}
				res.Acks[r.ack.Status]++
			}
		}
		res.Skipped = append(res.Skipped, skipped...)
		slices.SortFunc(res.Skipped, func(a, b Skipped) int { return a.Index - b.Index })
	}
	return res, committed, err
}

// insertBisect stores events, whose first one is the batch's event at
// offset, with their derived rows. When the database refuses the data it
// splits the events in halves, down to single events; a single event
// refused with its derived row is stored without it, and one refused
// alone is rejected. hook, if any, runs in the transaction of the first
// attempt, which stores all of events; it reports whether that
// transaction committed.
func (s *Store) insertBisect(ctx context.Context, events []Event, derived []derivedRow, offset int, res *InsertResult, hook txHook) (bool, error) {
	derived = derivedIn(derived, offset, offset+len(events))
	n, d, err := s.insertOnce(ctx, events, derived, offset == 0 && len(res.Rejected) == 0 && len(res.Skipped) == 0, hook)
	if err == nil {
		res.Inserted += n
		res.Duplicates += len(events) - n
		res.Derived += d
		return hook != nil, nil
	}
	if !isDataError(err) {
		return false, err
	}
	return false, s.bisect(ctx, events, derived, offset, res, err)
}

// bisect stores events, which the database refused together with err, in
// halves.
func (s *Store) bisect(ctx context.Context, events []Event, derived []derivedRow, offset int, res *InsertResult, err error) error {
	if len(events) == 1 {
		if len(derived) > 0 {
			if n, _, err2 := s.insertOnce(ctx, events, nil, false, nil); err2 == nil {
				res.Inserted += n
				res.Duplicates += len(events) - n
				res.Skipped = append(res.Skipped, Skipped{Index: offset, Err: fmt.Errorf("%w: %w", errDerived, err)})
				return nil
			} else if !isDataError(err2) {
				return err2
			}
		}
		res.Rejected = append(res.Rejected, Rejected{Index: offset, Err: err})
		return nil
	}
	mid := len(events) / 2
	if _, err := s.insertBisect(ctx, events[:mid], derived, offset, res, nil); err != nil {
		return err
	}
	_, err = s.insertBisect(ctx, events[mid:], derived, offset+mid, res, nil)
	return err
}

// fastPathPause is how many batches skip the fast path after it met a
// duplicate: redeliveries come in runs (after an outage, a replay).
const fastPathPause = 20

// insertOnce stores events and their derived rows in one transaction and returns how many events and derived
// rows were new. With fast set, it first tries the fast path. hook, if
// any, runs last in the transaction.
func (s *Store) insertOnce(ctx context.Context, events []Event, derived []derivedRow, fast bool, hook txHook) (int, int, error) {
	if fast && s.fastPathOK(events) {
		n, d, err := s.insertDirect(ctx, events, derived, hook)
		if err == nil {
			return n, d, nil
		}
		var pgErr *pgconn.PgError
		switch {
		case errors.Is(err, errSlowPath):
		case errors.As(err, &pgErr) && pgErr.Code == "23505": // a duplicate: take the exact path
			s.fastPause.Store(fastPathPause)
		case isDataError(err): // let the exact path find the bad rows
		case errors.Is(err, errFenced):
			return 0, 0, err
		default:
			return 0, 0, err
		}
	}
	var inserted int64
	var written int
	createTable := func(b *pgx.Batch) {
		b.Queue(createStaging).Fn = execFn("storage: staging table", nil)
	}
	err := s.inTx(ctx, createTable, func(tx pgx.Tx) error {
		if err := copyEvents(ctx, tx, copyStagingSQL, events, false); err != nil {
			return fmt.Errorf("storage: copy events: %w", err)
		}
		// The rest in one round trip: each statement runs only if those
		// before it succeeded.
		b := &pgx.Batch{}
		b.Queue(insertOverrides, s.past, s.future).Fn = execFn("storage: event time overrides", nil)
		b.Queue(insertEvents).Fn = execFn("storage: insert events", func(tag pgconn.CommandTag) { inserted = tag.RowsAffected() })
		queueDerived(b, derived, &written)
		if hook != nil {
			hook(b)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	return int(inserted), written, err
}

// execFn is a batch callback that reads an Exec result, wrapping its error
// with what, and passes its tag to done (if any).
func execFn(what string, done func(pgconn.CommandTag)) func(pgx.BatchResults) error {
	return func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if done != nil {
			done(tag)
		}
		return nil
	}
}

// storedTime estimates the time e will be stored under, for partitioning.
func (s *Store) storedTime(e *Event) time.Time {
	if e.DeviceTime.Before(e.ReceivedAt.Add(-s.past)) || e.DeviceTime.After(e.ReceivedAt.Add(s.future)) {
		return e.ReceivedAt
	}
	return e.DeviceTime
}

// ensurePartitionsFor creates the daily partitions the batch needs, so
// that its rows do not pile up in the default partition.
func (s *Store) ensurePartitionsFor(ctx context.Context, events []Event) error {
	var days []int64
	for i := range events {
		d := dayOf(s.storedTime(&events[i]))
		if !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	for _, d := range days {
		if err := s.ensureDays(ctx, d, d); err != nil {
			return err
		}
	}
	return nil
}

// The COPY statements of the fast path (lintel.events, stored under the
// device time) and of the exact path (the staging table).
var (
	copyEventsSQL  = copySQL(pgx.Identifier{"lintel", "events"}, eventColumnList)
	copyStagingSQL = copySQL(pgx.Identifier{"lintel_staging"}, stagingColumns)
)

func copySQL(table pgx.Identifier, columns []string) string {
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	return "COPY " + table.Sanitize() + " (" + strings.Join(quoted, ", ") + ") FROM STDIN (FORMAT binary)"
}

// copyEvents runs sql, a COPY of eventColumnList (withTime: the device
// time as the stored time) or of stagingColumns, with the rows of events.
// It writes PostgreSQL's binary COPY format itself, each row straight into
// the stream, in the encodings pgx's CopyFrom uses for these column types:
// CopyFrom looks up an encode plan for every value, which costs more than
// the encoding.
func copyEvents(ctx context.Context, tx pgx.Tx, sql string, events []Event, withTime bool) error {
	_, err := tx.Conn().PgConn().CopyFrom(ctx, &copyStream{events: events, withTime: withTime}, sql)
	return err
}

// copyStream is the binary COPY data of events, as an io.Reader.
type copyStream struct {
	events   []Event
	withTime bool
	next     int // the next event to encode
	buf      []byte
	off      int // what of buf was read
	started  bool
	ended    bool
}

func (c *copyStream) Read(p []byte) (int, error) {
	if c.off == len(c.buf) {
		if c.ended {
			return 0, io.EOF
		}
		c.fill(len(p))
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	return n, nil
}

// fill encodes rows into buf until it holds want bytes or the rows end.
func (c *copyStream) fill(want int) {
	c.buf, c.off = c.buf[:0], 0
	if !c.started {
		c.started = true
		c.buf = append(c.buf, "PGCOPY\n\xff\r\n\x00"...)
		c.buf = append(c.buf, 0, 0, 0, 0, 0, 0, 0, 0) // flags, header extension length
	}
	for len(c.buf) < want && c.next < len(c.events) {
		c.buf = appendEventRow(c.buf, &c.events[c.next], c.withTime)
		c.next++
	}
	if c.next == len(c.events) && len(c.buf) < want {
		c.buf = append(c.buf, 0xff, 0xff) // the trailer
		c.ended = true
	}
}

// microsecFromUnixEpochToY2K is PostgreSQL's timestamp epoch, 2000-01-01,
// in microseconds since the Unix epoch.
const microsecFromUnixEpochToY2K = 946684800 * 1000000

// appendEventRow appends e as one binary COPY row: a field count, then
// each field's length (-1 for NULL) and value.
func appendEventRow(b []byte, e *Event, withTime bool) []byte {
	if withTime {
		b = binary.BigEndian.AppendUint16(b, uint16(len(eventColumnList)))
		b = appendTimestamptz(b, e.DeviceTime)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(stagingColumns)))
	}
	b = appendField(b, e.ID[:])
	b = appendTimestamptz(b, e.DeviceTime)
	b = appendTimestamptz(b, e.ReceivedAt)
	b = appendText(b, e.Thing.Org)
	b = appendText(b, e.Thing.Edge)
	b = appendText(b, e.Thing.Type)
	b = appendText(b, e.Thing.Code)
	b = appendText(b, string(e.MessageType))
	b = appendText(b, e.Name)
	b = appendNullID(b, e.BootID)
	b = binary.BigEndian.AppendUint32(b, 8)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = appendNullID(b, e.CorrelationID)
	b = binary.BigEndian.AppendUint32(b, 1)
	if e.Replayed {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	if e.Value == nil {
		b = appendNull(b)
	} else {
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(*e.Value))
	}
	if e.Payload == nil {
		b = appendNull(b)
	} else { // jsonb: a version byte, then the JSON text
		b = binary.BigEndian.AppendUint32(b, uint32(1+len(e.Payload)))
		b = append(b, 1)
		b = append(b, e.Payload...)
	}
	if e.Envelope == nil {
		return appendNull(b)
	}
	return appendField(b, e.Envelope)
}

func appendNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, math.MaxUint32) }

func appendField(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendNullID appends id, or NULL for the zero id.
func appendNullID(b []byte, id message.ID) []byte {
	if id == (message.ID{}) {
		return appendNull(b)
	}
	return appendField(b, id[:])
}

// appendTimestamptz appends t as microseconds since 2000-01-01 UTC,
// truncated as pgx truncates.
func appendTimestamptz(b []byte, t time.Time) []byte {
	us := t.Unix()*1000000 + int64(t.Nanosecond())/1000 - microsecFromUnixEpochToY2K
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(us))
}

// eventIDs is the uuid[] of the events' ids, as a query argument that pgx
// encodes without a copy of the ids or an allocation per id.
type eventIDs []Event

var _ pgtype.ArrayGetter = eventIDs(nil)

func (a eventIDs) Dimensions() []pgtype.ArrayDimension {
	if a == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(a)), LowerBound: 1}}
}

func (a eventIDs) Index(i int) any { return (*uuidArg)(&a[i].ID) }

func (a eventIDs) IndexType() any { return new(uuidArg) }

// uuidArg is an id that pgx encodes from a pointer, which an interface
// holds without allocating.
type uuidArg message.ID

func (a *uuidArg) UUIDValue() (pgtype.UUID, error) { return pgtype.UUID{Bytes: *a, Valid: true}, nil }

// errSlowPath reports a batch the fast path must not take.
var errSlowPath = errors.New("storage: batch needs the exact path")

// fastPathOK reports whether events may try the fast path: every device
// time is plausible, and the fast path has not met a duplicate lately.
func (s *Store) fastPathOK(events []Event) bool {
	if s.fastPause.Load() > 0 {
		s.fastPause.Add(-1)
		return false
	}
	for i := range events {
		if !s.storedTime(&events[i]).Equal(events[i].DeviceTime) {
			return false
		}
	}
	return true
}

// insertDirect is the fast path: in one transaction, it checks that no
// event of the batch has a time override, then copies the batch straight
// into events under its device time. A duplicate makes the COPY fail with
// a unique violation, and the caller falls back to the exact path; so in
// the usual case (no redelivery) a batch costs one COPY instead of a COPY
// and an INSERT … SELECT. The derived rows and hook follow in the same
// transaction. Round trips: BEGIN with the check, the COPY, the derived
// rows with the hook, COMMIT.
func (s *Store) insertDirect(ctx context.Context, events []Event, derived []derivedRow, hook txHook) (int, int, error) {
	var written int
	var overridden bool
	check := func(b *pgx.Batch) {
		b.Queue("SELECT EXISTS (SELECT 1 FROM lintel.event_time_overrides WHERE id = ANY($1))", eventIDs(events)).Fn =
			func(br pgx.BatchResults) error {
				if err := br.QueryRow().Scan(&overridden); err != nil {
					return fmt.Errorf("storage: check time overrides: %w", err)
				}
				return nil
			}
	}
	err := s.inTx(ctx, check, func(tx pgx.Tx) error {
		if overridden {
			return errSlowPath
		}
		if err := copyEvents(ctx, tx, copyEventsSQL, events, true); err != nil {
			return fmt.Errorf("storage: copy events: %w", err)
		}
		b := &pgx.Batch{}
		queueDerived(b, derived, &written)
		if hook != nil {
			hook(b)
		}
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, 0, err
	}
	return len(events), written, nil
}

// eventColumnList are the columns of lintel.events, in order.
var eventColumnList = []string{
	"time", "id", "device_time", "received_at", "org", "edge", "thing_type", "thing_code",
	"message_type", "name", "boot_id", "seq", "correlation_id", "replayed", "value", "payload", "envelope",
}
