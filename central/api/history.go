package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
)

// Paging of the history routes.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

// scanBudget bounds how many messages of central's event stream one page
// reads without a database, in either order, to fill a page: a filter
// that matches little returns a short page (even an empty one) and a
// cursor to go on from. A variable so that the tests can lower it.
var scanBudget = 5000

// page is one page of a history route: the items and the cursor of the
// next page, "" after the last.
type page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// EventItem is an event as the API lists it.
type EventItem struct {
	Time       time.Time `json:"time"`                     // when it happened
	ID         string    `json:"id"`                       // its id
	Subject    string    `json:"subject"`                  // the NATS subject
	Edge       string    `json:"edge"`                     // the edge code
	Thing      string    `json:"thing"`                    // the thing, EDGE.TYPE.CODE
	Type       string    `json:"type"`                     // the message type
	Name       string    `json:"name,omitempty"`           // its name
	DeviceTime time.Time `json:"device_time"`              // the envelope's time, by the device's clock
	Correlates string    `json:"correlation_id,omitempty"` // the id of the message it answers, such as the command of an ack
	// ReceivedAt is when central received it: when central's event stream
	// stored it, which is what the database records, with or without one.
	ReceivedAt time.Time `json:"received_at"`
	// Replayed marks an event that reached central late, such as one
	// forwarded from an edge's buffer after an outage: as the database
	// recorded it, or, without one, by the rule storage applies (the
	// replayed header, or received more than storage.DefaultReplayedAfter
	// after its device time).
	Replayed bool `json:"replayed,omitempty"`
	// Value is the payload's numeric reading, if it has one
	// (storage.PayloadValue).
	Value   *float64        `json:"value,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"` // the payload as JSON
}

// DecisionItem is an access decision as the API lists it. It carries the
// credential's hash, never a card number.
type DecisionItem struct {
	Time       time.Time `json:"time"`                             // when it happened
	ID         string    `json:"id"`                               // its id
	Edge       string    `json:"edge"`                             // the edge code
	Door       string    `json:"door"`                             // the door code
	Reader     string    `json:"reader"`                           // the reader that asked
	Holder     string    `json:"holder,omitempty"`                 // who holds it
	Credential string    `json:"credential_hash,omitempty"`        // the credential's keyed hash
	Granted    bool      `json:"granted"`                          // whether access was granted
	Reason     string    `json:"reason,omitempty"`                 // why it is suspended or revoked
	Offline    bool      `json:"offline,omitempty"`                // decided without a confirmed sync with central
	Fallback   bool      `json:"fallback,omitempty"`               // decided by the door's fallback mode
	SetVersion int64     `json:"credential_set_version,omitempty"` // the credential set version it was decided with
}

// CommandItem is a command as the API lists it.
type CommandItem struct {
	RequestedAt time.Time         `json:"requested_at"`           // when it was sent
	ID          string            `json:"id"`                     // its id
	Thing       string            `json:"thing"`                  // the thing, EDGE.TYPE.CODE
	Action      string            `json:"action"`                 // what the command asks, such as unlock
	Params      map[string]string `json:"params,omitempty"`       // the command's parameters
	RequestedBy string            `json:"requested_by,omitempty"` // who asked for it
	Status      string            `json:"status"`                 // its status
	AckedAt     time.Time         `json:"acked_at,omitzero"`      // when the deciding ack was sent, by its sender's clock
	Error       string            `json:"error,omitempty"`        // the deciding ack's error, if any
}

// query is a history route's filters.
type query struct {
	from, to   time.Time
	thing      topic.Thing // empty fields match anything
	desc       bool
	limit      int
	cursor     string
	msgType    topic.MessageType
	name, door string
	granted    *bool
}

func limitOf(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, invalid("limit", "limit %q: want 1 to %d", v, maxLimit)
	}
	return n, nil
}

func parseSeq(v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, invalid("cursor", "cursor %q is not a cursor of this API", v)
	}
	return n, nil
}

func parseBool(field, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalid(field, "%s %q: want true or false", field, v)
	}
	return b, nil
}

// parseThingRef reads EDGE.TYPE.CODE of the org.
func (s *Server) parseThingRef(field, v string) (topic.Thing, error) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return topic.Thing{}, invalid(field, "%s %q: want EDGE.TYPE.CODE, such as hq.lock.l1", field, v)
	}
	t := topic.Thing{Org: s.org, Edge: parts[0], Type: parts[1], Code: parts[2]}
	if err := t.Validate(); err != nil {
		return topic.Thing{}, invalid(field, "%s %q: %v", field, v, err)
	}
	return t, nil
}

// parseQuery reads the history filters of r.
func (s *Server) parseQuery(r *http.Request, now time.Time) (*query, error) {
	v := r.URL.Query()
	q := &query{thing: topic.Thing{Org: s.org}}
	var err error
	if q.limit, err = limitOf(r); err != nil {
		return nil, err
	}
	if since := v.Get("since"); since != "" {
		if v.Get("from") != "" {
			return nil, invalid("since", "give since or from, not both")
		}
		d, err := time.ParseDuration(since)
		if err != nil || d <= 0 {
			return nil, invalid("since", "since %q: want a positive duration such as 1h", since)
		}
		q.from = now.Add(-d)
	} else if f := v.Get("from"); f != "" {
		if q.from, err = time.Parse(time.RFC3339Nano, f); err != nil {
			return nil, invalid("from", "from %q: want an RFC 3339 time such as 2026-12-01T08:00:00Z", f)
		}
	} else {
		q.from = now.Add(-24 * time.Hour)
	}
	if t := v.Get("to"); t != "" {
		if q.to, err = time.Parse(time.RFC3339Nano, t); err != nil {
			return nil, invalid("to", "to %q: want an RFC 3339 time", t)
		}
		if !q.to.After(q.from) {
			return nil, invalid("to", "to %s is not after the start %s", t, q.from.Format(time.RFC3339))
		}
	}
	if e := v.Get("edge"); e != "" {
		if err := s.edge(e); err != nil {
			return nil, err
		}
		q.thing.Edge = e
	}
	if th := v.Get("thing"); th != "" {
		t, err := s.parseThingRef("thing", th)
		if err != nil {
			return nil, err
		}
		if q.thing.Edge != "" && q.thing.Edge != t.Edge {
			return nil, invalid("thing", "thing %s is not at edge %s", th, q.thing.Edge)
		}
		q.thing = t
	}
	if d := v.Get("desc"); d != "" {
		if q.desc, err = parseBool("desc", d); err != nil {
			return nil, err
		}
	}
	if mt := v.Get("type"); mt != "" {
		if err := topic.ValidateToken(topic.PartMessageType, mt); err != nil {
			return nil, invalid("type", "type %q: %v", mt, err)
		}
		q.msgType = topic.MessageType(mt)
	}
	q.name, q.door, q.cursor = v.Get("name"), v.Get("door"), v.Get("cursor")
	if q.door != "" {
		if err := topic.ValidateToken(topic.PartThingCode, q.door); err != nil {
			return nil, invalid("door", "door %q: %v", q.door, err)
		}
	}
	if g := v.Get("granted"); g != "" {
		b, err := parseBool("granted", g)
		if err != nil {
			return nil, err
		}
		q.granted = &b
	}
	return q, nil
}

func (s *Server) listEvents(c *call) (any, error) {
	q, err := s.parseQuery(c.r, time.Now())
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	if st := s.central.Store(); st != nil {
		p, err := st.Events(ctx, storage.EventQuery{Org: s.org, Edge: q.thing.Edge, ThingType: q.thing.Type, ThingCode: q.thing.Code,
			MessageType: q.msgType, Name: q.name, From: q.from, To: q.to, Descending: q.desc, Limit: q.limit, Cursor: q.cursor})
		if err != nil {
			return nil, err
		}
		items := make([]EventItem, len(p.Events))
		for i, e := range p.Events {
			items[i] = EventItem{Time: e.Time, ID: e.ID.String(), Subject: e.Thing.Subject(e.MessageType).String(), Edge: e.Thing.Edge,
				Thing: thingRef(e.Thing), Type: string(e.MessageType), Name: e.Name, DeviceTime: e.DeviceTime,
				Correlates: idText(e.CorrelationID), ReceivedAt: e.ReceivedAt, Replayed: e.Replayed, Value: e.Value, Payload: e.Payload}
		}
		return page[EventItem]{Items: items, Next: p.Next}, nil
	}
	filter := subjectFilter(q.thing, q.msgType)
	items := []EventItem{}
	next, err := s.scan(ctx, q, filter, func(m *jetstream.RawStreamMsg, e *message.Envelope) bool {
		if q.name != "" && e.Name != q.name {
			return false
		}
		items = append(items, eventItem(m, e))
		return true
	})
	return page[EventItem]{Items: items, Next: next}, err
}

func eventItem(m *jetstream.RawStreamMsg, e *message.Envelope) EventItem {
	it := EventItem{Time: m.Time.UTC(), ID: e.ID.String(), Subject: m.Subject, Edge: e.Source.Edge, Thing: thingRef(e.Source),
		Type: string(e.Type), Name: e.Name, DeviceTime: e.Time, ReceivedAt: m.Time.UTC()}
	// As storage's ingest decides it, with its defaults (central's).
	it.Replayed = m.Header.Get(storage.DefaultReplayedHeader) != "" || m.Time.Sub(e.Time) > storage.DefaultReplayedAfter
	if !e.CorrelationID.IsZero() {
		it.Correlates = e.CorrelationID.String()
	}
	if len(e.Payload) > 0 {
		if p, err := storage.PayloadJSON(e.ContentType, e.Payload); err == nil {
			it.Payload, it.Value = p, storage.PayloadValue(p)
		}
	}
	return it
}

// idText returns id as text, or "" for the zero id.
func idText(id message.ID) string {
	if id.IsZero() {
		return ""
	}
	return id.String()
}

// thingRef returns EDGE.TYPE.CODE.
func thingRef(t topic.Thing) string { return t.Edge + "." + t.Type + "." + t.Code }

// subjectFilter returns the subject filter of thing's messages of type
// mt, with a wildcard for each empty field.
func subjectFilter(t topic.Thing, mt topic.MessageType) string {
	or := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	return t.Org + "." + or(t.Edge) + "." + or(t.Type) + "." + or(t.Code) + "." + or(string(mt))
}

func (s *Server) listDecisions(c *call) (any, error) {
	q, err := s.parseQuery(c.r, time.Now())
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	if st := s.central.Store(); st != nil {
		p, err := st.AccessDecisions(ctx, storage.AccessQuery{Org: s.org, Edge: q.thing.Edge, Door: q.door, Granted: q.granted,
			From: q.from, To: q.to, Descending: q.desc, Limit: q.limit, Cursor: q.cursor})
		if err != nil {
			return nil, err
		}
		items := make([]DecisionItem, len(p.Decisions))
		for i, d := range p.Decisions {
			items[i] = DecisionItem{Time: d.Time, ID: d.ID.String(), Edge: d.Edge, Door: d.Door, Reader: d.Reader, Holder: d.Holder,
				Credential: d.CredentialHash, Granted: d.Granted, Reason: d.Reason, Offline: d.Offline, Fallback: d.Fallback,
				SetVersion: d.CredentialSetVersion}
		}
		return page[DecisionItem]{Items: items, Next: p.Next}, nil
	}
	filter := subjectFilter(topic.Thing{Org: s.org, Edge: q.thing.Edge, Type: topic.ThingTypeAccess}, topic.Event)
	items := []DecisionItem{}
	next, err := s.scan(ctx, q, filter, func(m *jetstream.RawStreamMsg, e *message.Envelope) bool {
		if e.Name != message.NameAccessGranted && e.Name != message.NameAccessDenied {
			return false
		}
		d, err := message.DecodePayload[message.AccessDecision](e)
		if err != nil || (q.door != "" && d.Door != q.door) || (q.granted != nil && d.Granted != *q.granted) {
			return false
		}
		items = append(items, DecisionItem{Time: m.Time.UTC(), ID: e.ID.String(), Edge: e.Source.Edge, Door: d.Door, Reader: e.Source.Code,
			Holder: d.Holder, Credential: d.Credential, Granted: d.Granted, Reason: string(d.Reason), Offline: d.Offline,
			Fallback: d.Fallback, SetVersion: int64(d.CredentialSetVersion)})
		return true
	})
	return page[DecisionItem]{Items: items, Next: next}, err
}

func (s *Server) listCommands(c *call) (any, error) {
	q, err := s.parseQuery(c.r, time.Now())
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	if st := s.central.Store(); st != nil {
		p, err := st.Commands(ctx, storage.CommandQuery{Org: s.org, Edge: q.thing.Edge, ThingType: q.thing.Type, ThingCode: q.thing.Code,
			From: q.from, To: q.to, Descending: q.desc, Limit: q.limit, Cursor: q.cursor})
		if err != nil {
			return nil, err
		}
		items := make([]CommandItem, len(p.Commands))
		for i, cmd := range p.Commands {
			var params map[string]string
			_ = json.Unmarshal(cmd.Params, &params)
			items[i] = CommandItem{RequestedAt: cmd.RequestedAt, ID: cmd.ID.String(), Thing: thingRef(cmd.Thing), Action: cmd.Action,
				Params: params, RequestedBy: cmd.RequestedBy, Status: string(cmd.Status), AckedAt: cmd.AckedAt, Error: cmd.Error}
		}
		return page[CommandItem]{Items: items, Next: p.Next}, nil
	}
	hub, err := s.hub()
	if err != nil {
		return nil, err
	}
	filter := subjectFilter(edgekit.CommandRecordThing(s.org, "*"), topic.Event)
	if q.thing.Edge != "" {
		filter = edgekit.CommandRecordThing(s.org, q.thing.Edge).Subject(topic.Event).String()
	}
	items := []CommandItem{}
	next, err := s.scan(ctx, q, filter, func(m *jetstream.RawStreamMsg, e *message.Envelope) bool {
		if e.Name != message.NameCommandSent {
			return false
		}
		cs, err := message.DecodePayload[message.CommandSent](e)
		if err != nil {
			return false
		}
		subj, err := topic.Parse(cs.Subject)
		if err != nil || subj.Thing.Org != s.org || (q.thing.Type != "" && subj.Thing != q.thing) {
			return false
		}
		it := CommandItem{RequestedAt: m.Time.UTC(), ID: cs.CommandID.String(), Thing: thingRef(subj.Thing), Action: cs.Command.Action,
			Params: cs.Command.Params, RequestedBy: cs.Command.RequestedBy, Status: "pending"}
		if out, err := hub.CommandStatus(ctx, subj.Thing, cs.CommandID); err == nil {
			it.Status, it.AckedAt, it.Error = outcomeStatus(out), out.AckedAt, out.Error
		}
		items = append(items, it)
		return true
	})
	return page[CommandItem]{Items: items, Next: next}, err
}

// outcomeStatus names a command's status as storage does: pending,
// accepted, or the final status.
func outcomeStatus(o edgekit.CommandOutcome) string {
	if o.Pending() {
		return "pending"
	}
	return string(o.Status)
}

// scan reads central's event stream without a database: the messages on
// filter within q's time range, after q's cursor, oldest or newest first,
// handing each decoded envelope to take until it has taken q.limit. It
// returns the cursor of the next page. Messages that do not decode are
// skipped: storage dead-letters them.
func (s *Server) scan(ctx context.Context, q *query, filter string, take func(*jetstream.RawStreamMsg, *message.Envelope) bool) (string, error) {
	hub, err := s.hub()
	if err != nil {
		return "", err
	}
	str, err := s.js.Stream(ctx, hub.EventStream())
	if err != nil {
		return "", err
	}
	state := str.CachedInfo().State
	if state.Msgs == 0 {
		return "", nil
	}
	var cursor uint64
	if q.cursor != "" {
		if cursor, err = parseSeq(q.cursor); err != nil {
			return "", err
		}
	}
	decode := func(m *jetstream.RawStreamMsg) (*message.Envelope, bool) {
		e, err := message.FromMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		return e, err == nil
	}
	taken := 0
	if !q.desc {
		seq := cursor + 1
		if cursor == 0 {
			if seq, err = seqAt(ctx, str, state, q.from); err != nil {
				return "", err
			}
		}
		for budget := scanBudget; seq <= state.LastSeq && taken < q.limit; {
			if budget--; budget < 0 {
				// Read enough for one page: go on from here.
				return strconv.FormatUint(seq-1, 10), nil
			}
			m, err := str.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return "", nil
			}
			if err != nil {
				return "", err
			}
			if !q.to.IsZero() && !m.Time.Before(q.to) {
				return "", nil
			}
			seq = m.Sequence + 1
			if e, ok := decode(m); ok && take(m, e) {
				taken++
			}
		}
		if seq > state.LastSeq {
			return "", nil
		}
		return strconv.FormatUint(seq-1, 10), nil
	}
	seq := state.LastSeq
	if cursor != 0 {
		seq = cursor - 1
	}
	if !q.to.IsZero() {
		if end, err := seqAt(ctx, str, state, q.to); err != nil {
			return "", err
		} else if end-1 < seq {
			seq = end - 1
		}
	}
	sub := filterMatcher(filter)
	for budget := scanBudget; seq >= state.FirstSeq && seq > 0 && taken < q.limit; seq-- {
		if budget--; budget < 0 {
			return strconv.FormatUint(seq+1, 10), nil
		}
		m, err := str.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if m.Time.Before(q.from) {
			return "", nil
		}
		if !sub(m.Subject) {
			continue
		}
		if e, ok := decode(m); ok && take(m, e) {
			taken++
		}
	}
	if seq < state.FirstSeq || seq == 0 {
		return "", nil
	}
	return strconv.FormatUint(seq+1, 10), nil
}

// seqAt returns the first sequence of the stream stored at or after t
// (LastSeq+1 when none), by bisection on the stored times.
func seqAt(ctx context.Context, str jetstream.Stream, st jetstream.StreamState, t time.Time) (uint64, error) {
	lo, hi := st.FirstSeq, st.LastSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, err := str.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			hi = mid
			continue
		}
		if err != nil {
			return 0, err
		}
		if m.Time.Before(t) {
			lo = m.Sequence + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// filterMatcher returns a matcher of subjects against a filter whose
// tokens are literal or "*".
func filterMatcher(filter string) func(string) bool {
	ft := strings.Split(filter, ".")
	return func(subject string) bool {
		st := strings.Split(subject, ".")
		if len(st) != len(ft) {
			return false
		}
		for i, f := range ft {
			if f != "*" && f != st[i] {
				return false
			}
		}
		return true
	}
}
