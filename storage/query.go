package storage

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Page sizes of the paginated queries.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// EventQuery selects events. Empty fields match anything.
type EventQuery struct {
	// Org, Edge, ThingType and ThingCode select the thing, MessageType
	// and Name the kind of event (Name such as "temperature").
	Org, Edge, ThingType, ThingCode string
	MessageType                     topic.MessageType // see Org
	Name                            string            // see Org
	// From and To bound Time to [From, To); zero means unbounded.
	From, To time.Time
	// Descending returns the newest events first.
	Descending bool
	// Limit is the page size: zero means DefaultLimit, at most MaxLimit.
	Limit int
	// Cursor continues after the last event of a previous page: pass
	// [EventPage.Next] with an otherwise identical query.
	Cursor string
}

// EventPage is one page of events.
type EventPage struct {
	Events []Event // the page's events, in the query's order
	// Next is the cursor of the following page, or "" after the last one.
	Next string
}

// Events returns a page of the events matching q, ordered by (Time, ID).
// Pagination is by keyset: the cursor holds the (Time, ID) of the page's
// last event and the next page starts strictly after it, so pages never
// overlap or skip events, whatever is inserted meanwhile before the cursor.
// It returns [ErrInvalidCursor] or [ErrInvalidQuery] for bad input.
func (s *Store) Events(ctx context.Context, q EventQuery) (EventPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return EventPage{}, err
	}
	w := where{}
	w.eq("org", q.Org)
	w.eq("edge", q.Edge)
	w.eq("thing_type", q.ThingType)
	w.eq("thing_code", q.ThingCode)
	w.eq("message_type", string(q.MessageType))
	w.eq("name", q.Name)
	w.timeRange("time", q.From, q.To)
	if err := w.after(q.Cursor, "time", "id", q.Descending); err != nil {
		return EventPage{}, err
	}
	dir := "ASC"
	if q.Descending {
		dir = "DESC"
	}
	sql := "SELECT " + eventColumns + " FROM lintel.events" + w.String() +
		" ORDER BY time " + dir + ", id " + dir + " LIMIT " + strconv.Itoa(limit+1)
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return EventPage{}, queryErr("query events", err)
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return EventPage{}, queryErr("query events", err)
	}
	page := EventPage{Events: events}
	if len(events) > limit {
		page.Events = events[:limit]
		last := page.Events[limit-1]
		page.Next = encodeCursor(last.Time, last.ID)
	}
	return page, nil
}

// LatestQuery selects the things whose latest event [Store.Latest] returns.
// Empty fields match anything.
type LatestQuery struct {
	// Org, Edge, ThingType and ThingCode select the things.
	Org, Edge, ThingType, ThingCode string
	// MessageType defaults to topic.State.
	MessageType topic.MessageType
	Name        string // the event name, such as "temperature"
	// Since bounds how far back to look, which keeps the query to recent
	// partitions; zero looks at all history.
	Since time.Time
}

// Latest returns, for every thing matching q, its latest event (greatest
// Time, then ID), ordered by thing.
func (s *Store) Latest(ctx context.Context, q LatestQuery) ([]Event, error) {
	if q.MessageType == "" {
		q.MessageType = topic.State
	}
	w := where{}
	w.eq("org", q.Org)
	w.eq("edge", q.Edge)
	w.eq("thing_type", q.ThingType)
	w.eq("thing_code", q.ThingCode)
	w.eq("message_type", string(q.MessageType))
	w.eq("name", q.Name)
	w.timeRange("time", q.Since, time.Time{})
	sql := "SELECT DISTINCT ON (org, edge, thing_type, thing_code) " + eventColumns +
		" FROM lintel.events" + w.String() +
		" ORDER BY org, edge, thing_type, thing_code, time DESC, id DESC"
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, queryErr("latest", err)
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, queryErr("latest", err)
	}
	return events, nil
}

// AggregateQuery selects events for [Store.Aggregate]. Empty fields match
// anything; From and To are required.
type AggregateQuery struct {
	// Org, Edge, ThingType and ThingCode select the things, MessageType
	// and Name the kind of event (Name such as "temperature").
	Org, Edge, ThingType, ThingCode string
	MessageType                     topic.MessageType // see Org
	Name                            string            // see Org
	// From and To bound the buckets' start to [From, To).
	From, To time.Time
	// Bucket is the bucket width; zero means one hour. Buckets are aligned
	// on 2000-01-03T00:00:00Z, as TimescaleDB's time_bucket aligns them.
	Bucket time.Duration
}

// Bucket is the aggregate of one thing's events with one message type and
// name over one time bucket.
type Bucket struct {
	Start       time.Time         // the start of the time bucket
	Thing       topic.Thing       // the thing whose events it sums up
	MessageType topic.MessageType // their message type
	Name        string            // their name
	// Events counts the events; Readings those with a numeric value.
	Events, Readings int64
	// Min, Avg and Max summarise the values; nil without readings.
	Min, Avg, Max *float64
}

// Aggregate returns time-bucketed counts and min/avg/max of readings per
// thing, message type and name, ordered by bucket then thing. On
// FlavorTimescale, whole-hour buckets are computed from the hourly
// continuous aggregate (with real-time aggregation of the recent hours);
// elsewhere from the events, with time_bucket on TimescaleDB and date_bin
// on plain PostgreSQL.
func (s *Store) Aggregate(ctx context.Context, q AggregateQuery) ([]Bucket, error) {
	if q.Bucket == 0 {
		q.Bucket = time.Hour
	}
	if q.Bucket < time.Second || q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return nil, fmt.Errorf("%w: aggregate needs From < To and a bucket of at least a second", ErrInvalidQuery)
	}
	f, err := s.Flavor(ctx)
	if err != nil {
		return nil, err
	}
	w := where{}
	w.eq("org", q.Org)
	w.eq("edge", q.Edge)
	w.eq("thing_type", q.ThingType)
	w.eq("thing_code", q.ThingCode)
	w.eq("message_type", string(q.MessageType))
	w.eq("name", q.Name)
	bucketArg := w.arg(q.Bucket)
	var sql string
	const group = " GROUP BY 1, org, edge, thing_type, thing_code, message_type, name ORDER BY 1, org, edge, thing_type, thing_code, message_type, name"
	switch {
	case f == FlavorTimescale && q.Bucket%time.Hour == 0:
		// Re-bucket the hourly aggregate: the average is weighted by readings.
		w.timeRange("bucket", q.From, q.To)
		sql = "SELECT time_bucket(" + bucketArg + "::interval, bucket), org, edge, thing_type, thing_code, message_type, name," +
			" sum(events)::bigint, sum(readings)::bigint, min(min_value), sum(avg_value * readings) / NULLIF(sum(readings), 0), max(max_value)" +
			" FROM lintel.events_hourly" + w.String() + group
	default:
		w.timeRange("time", q.From, q.To)
		bucketExpr := "date_bin(" + bucketArg + "::interval, time, TIMESTAMPTZ '2000-01-03 00:00:00+00')"
		if f.Timescale() {
			bucketExpr = "time_bucket(" + bucketArg + "::interval, time)"
		}
		sql = "SELECT " + bucketExpr + ", org, edge, thing_type, thing_code, message_type, name," +
			" count(*), count(value), min(value), avg(value), max(value)" +
			" FROM lintel.events" + w.String() + group
	}
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, queryErr("aggregate", err)
	}
	buckets, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Bucket, error) {
		var b Bucket
		var mt string
		err := row.Scan(&b.Start, &b.Thing.Org, &b.Thing.Edge, &b.Thing.Type, &b.Thing.Code, &mt, &b.Name,
			&b.Events, &b.Readings, &b.Min, &b.Avg, &b.Max)
		b.MessageType = topic.MessageType(mt)
		return b, err
	})
	if err != nil {
		return nil, queryErr("aggregate", err)
	}
	return buckets, nil
}

const eventColumns = "time, id, device_time, received_at, org, edge, thing_type, thing_code, message_type, name," +
	" boot_id, seq, correlation_id, replayed, value, payload, envelope"

func scanEvent(row pgx.CollectableRow) (Event, error) {
	var e Event
	var mt string
	var payload []byte
	var boot, corr *message.ID
	err := row.Scan(&e.Time, &e.ID, &e.DeviceTime, &e.ReceivedAt, &e.Thing.Org, &e.Thing.Edge, &e.Thing.Type,
		&e.Thing.Code, &mt, &e.Name, &boot, &e.Seq, &corr, &e.Replayed, &e.Value, &payload, &e.Envelope)
	if boot != nil {
		e.BootID = *boot
	}
	if corr != nil {
		e.CorrelationID = *corr
	}
	e.MessageType = topic.MessageType(mt)
	if payload != nil {
		e.Payload = payload
	}
	return e, err
}

func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultLimit, nil
	case n < 0 || n > MaxLimit:
		return 0, fmt.Errorf("%w: limit %d not in 1..%d", ErrInvalidQuery, n, MaxLimit)
	}
	return n, nil
}

// where builds a WHERE clause with numbered arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) eq(col, v string) {
	if v != "" {
		w.conds = append(w.conds, col+" = "+w.arg(v))
	}
}

func (w *where) timeRange(col string, from, to time.Time) {
	if !from.IsZero() {
		w.conds = append(w.conds, col+" >= "+w.arg(from))
	}
	if !to.IsZero() {
		w.conds = append(w.conds, col+" < "+w.arg(to))
	}
}

// after adds the keyset condition of cursor, if any.
func (w *where) after(cursor, timeCol, idCol string, desc bool) error {
	if cursor == "" {
		return nil
	}
	t, id, err := decodeCursor(cursor)
	if err != nil {
		return err
	}
	op := ">"
	if desc {
		op = "<"
	}
	w.conds = append(w.conds, "("+timeCol+", "+idCol+") "+op+" ("+w.arg(t)+", "+w.arg(id)+")")
	return nil
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// cursorVersion is the first byte of every cursor.
const cursorVersion = 1

// encodeCursor encodes a keyset position: a version byte, the time in
// microseconds since the Unix epoch (PostgreSQL's precision) and the id.
func encodeCursor(t time.Time, id message.ID) string {
	var b [1 + 8 + 16]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(t.UnixMicro()))
	copy(b[9:], id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (time.Time, message.ID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 25 || b[0] != cursorVersion {
		return time.Time{}, message.ID{}, fmt.Errorf("%w: %q", ErrInvalidCursor, s)
	}
	t := time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:]))).UTC()
	var id message.ID
	copy(id[:], b[9:])
	return t, id, nil
}
