package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Media types of the events endpoint.
const (
	// ContentTypeCloudEventsBatch is CloudEvents' JSON batch format: an
	// array of structured-mode events.
	ContentTypeCloudEventsBatch = "application/cloudevents-batch+json"
)

// Stored is the answer to one stored message: its id, the stream and
// sequence that hold it, and whether the stream already held it (a retry
// within the stream's deduplication window).
type Stored struct {
	ID        string `json:"id"`                  // the envelope's id
	Stream    string `json:"stream"`              // the stream that holds it
	Seq       uint64 `json:"seq"`                 // its sequence in Stream
	Duplicate bool   `json:"duplicate,omitempty"` // the stream already held it
}

// BatchResult is the status of one event of a batch: Status is 200 with
// Stored set, or an error status with Problem set.
type BatchResult struct {
	ID      string   `json:"id,omitempty"`      // the event's id, when known
	Status  int      `json:"status"`            // an HTTP status code
	Stored  *Stored  `json:"stored,omitempty"`  // set when Status is 200
	Problem *Problem `json:"problem,omitempty"` // set for an error status
}

// storableTypes are the message types the events endpoint stores; requests
// go to the requests endpoint, commands and configuration only to devices.
var storableTypes = map[topic.MessageType]bool{topic.Event: true, topic.Telemetry: true, topic.State: true, topic.Ack: true}

// readBody reads the request body, mapping an oversized one to 413.
func readBody(r *http.Request, limit int64) ([]byte, *Problem) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, newProblem(http.StatusRequestEntityTooLarge, SlugTooLarge, "body too large",
			fmt.Sprintf("the body exceeds %d bytes", limit))
	case err != nil:
		return nil, newProblem(http.StatusBadRequest, SlugMalformed, "unreadable body", err.Error())
	}
	return b, nil
}

// eventsBody reads the body of a POST of events: a batch (batch true), or
// one event in structured form, a binary-mode event being turned
// structured. Any other media type is refused, naming the ones accepted.
func (g *Gateway) eventsBody(r *http.Request) (body []byte, batch bool, p *Problem) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	binary := r.Header.Get("Ce-Specversion") != ""
	switch {
	case mt == message.ContentTypeCloudEventsJSON, mt == ContentTypeCloudEventsBatch:
	case binary:
	default:
		p := newProblem(http.StatusUnsupportedMediaType, SlugUnsupportedMedia, "unsupported media type",
			fmt.Sprintf("Content-Type %q: send %s, %s, or an event in binary content mode (ce-specversion and the other ce-* headers)",
				ct, message.ContentTypeCloudEventsJSON, ContentTypeCloudEventsBatch))
		p.Field = "Content-Type"
		return nil, false, p
	}
	if body, p = readBody(r, g.cfg.MaxBodyBytes); p != nil {
		return nil, false, p
	}
	switch mt {
	case ContentTypeCloudEventsBatch:
		return body, true, nil
	case message.ContentTypeCloudEventsJSON:
		return body, false, nil
	}
	body, p = binaryToStructured(r.Header, body)
	return body, false, p
}

func (g *Gateway) postEvents(w http.ResponseWriter, r *http.Request, s *session) {
	body, batch, p := g.eventsBody(r)
	if p != nil {
		g.problem(w, p)
		return
	}
	if batch {
		g.postBatch(w, r, s, body)
		return
	}
	e, p := g.decode(body)
	if p != nil {
		g.problem(w, p)
		return
	}
	st, p := g.store(r.Context(), s, e)
	if p != nil {
		g.problem(w, p)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (g *Gateway) postBatch(w http.ResponseWriter, r *http.Request, s *session, body []byte) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		g.problem(w, newProblem(http.StatusUnprocessableEntity, SlugMalformed, "malformed batch",
			"a batch is a JSON array of CloudEvents objects: "+err.Error()))
		return
	}
	if len(raws) > g.cfg.MaxBatch {
		g.problem(w, newProblem(http.StatusRequestEntityTooLarge, SlugTooLarge, "batch too large",
			fmt.Sprintf("%d events, at most %d per batch", len(raws), g.cfg.MaxBatch)))
		return
	}
	res := make([]BatchResult, len(raws))
	type inflight struct {
		i   int
		id  string
		fut jetstream.PubAckFuture
	}
	var fl []inflight
	for i, raw := range raws {
		e, p := g.decode(raw)
		if p == nil {
			p = g.check(s, e)
		}
		if p != nil {
			g.count(p.Status)
			res[i] = BatchResult{ID: p.ID, Status: p.Status, Problem: p}
			continue
		}
		msg, err := e.ToMsg(nil)
		if err != nil {
			p := malformed(err, e.ID.String())
			g.count(p.Status)
			res[i] = BatchResult{ID: p.ID, Status: p.Status, Problem: p}
			continue
		}
		fut, err := s.js.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID.String()))
		if err != nil {
			p := publishProblem(err, e.ID.String(), msg, s.nc.MaxPayload())
			g.count(p.Status)
			res[i] = BatchResult{ID: p.ID, Status: p.Status, Problem: p}
			continue
		}
		fl = append(fl, inflight{i, e.ID.String(), fut})
	}
	ctx, cancel := g.opCtx(r.Context())
	defer cancel()
	for _, f := range fl {
		var p *Problem
		select {
		case ack := <-f.fut.Ok():
			st := g.stored(f.id, ack)
			res[f.i] = BatchResult{ID: f.id, Status: http.StatusOK, Stored: &st}
			continue
		case err := <-f.fut.Err():
			p = publishProblem(err, f.id, f.fut.Msg(), s.nc.MaxPayload())
		case <-ctx.Done():
			p = publishProblem(ctx.Err(), f.id, f.fut.Msg(), s.nc.MaxPayload())
		}
		g.count(p.Status)
		res[f.i] = BatchResult{ID: f.id, Status: p.Status, Problem: p}
	}
	status := http.StatusOK
	for _, x := range res {
		if x.Status != http.StatusOK {
			status = http.StatusMultiStatus
		}
	}
	writeJSON(w, status, res)
}

// decode decodes a structured-mode event, mapping errors to 422.
func (g *Gateway) decode(body []byte) (*message.Envelope, *Problem) {
	e := new(message.Envelope)
	codec := message.CloudEventsCodec{Options: message.DecodeOptions{Now: g.cfg.Now}}
	if err := codec.Unmarshal(body, e); err != nil {
		id := ""
		if !e.ID.IsZero() {
			id = e.ID.String()
		}
		return nil, malformed(err, id)
	}
	return e, nil
}

// check refuses an envelope the device may not store through the events
// endpoint: not its own, not permitted by its generated permissions (403),
// or of a type that is not stored (422).
func (g *Gateway) check(s *session, e *message.Envelope) *Problem {
	subj := e.Subject().String()
	if e.Source != s.thing || !s.permissions().Allowed(subj, authz.Publish) {
		p := newProblem(http.StatusForbidden, SlugSubjectNotAllowed, "subject not allowed",
			fmt.Sprintf("device %s may not publish on %s", s.thing, subj))
		p.Subject, p.ID, p.Field = subj, e.ID.String(), "source"
		if e.Source == s.thing {
			p.Field = "type"
		}
		return p
	}
	if !storableTypes[e.Type] {
		p := newProblem(http.StatusUnprocessableEntity, SlugMalformed, "not a stored message type",
			fmt.Sprintf("type %s is not stored; %s takes %s, %s, %s and %s (requests go to %s)", e.Type, PathEvents,
				topic.Event, topic.Telemetry, topic.State, topic.Ack, PathRequests))
		p.Field, p.ID, p.Subject = "type", e.ID.String(), subj
		return p
	}
	return nil
}

// store checks e and publishes it into the edge's stream as the device,
// with its id as Nats-Msg-Id, and returns once the stream stored it.
func (g *Gateway) store(ctx context.Context, s *session, e *message.Envelope) (Stored, *Problem) {
	if p := g.check(s, e); p != nil {
		return Stored{}, p
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		return Stored{}, malformed(err, e.ID.String())
	}
	ctx, cancel := g.opCtx(ctx)
	defer cancel()
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.ID.String()))
	if err != nil {
		return Stored{}, publishProblem(err, e.ID.String(), msg, s.nc.MaxPayload())
	}
	return g.stored(e.ID.String(), ack), nil
}

func (g *Gateway) stored(id string, ack *jetstream.PubAck) Stored {
	if ack.Duplicate {
		g.counter.duplicates.Add(1)
	} else {
		g.counter.stored.Add(1)
	}
	return Stored{ID: id, Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}
}

// publishProblem maps a failed JetStream publish of msg to its problem.
// An event larger than the server or the stream takes is the client's
// mistake, 413 (see [tooLargeProblem]); any other failure is the edge's:
// the message may or may not be stored, and a retry with the same id is
// safe.
func publishProblem(err error, id string, msg *nats.Msg, maxPayload int64) *Problem {
	if p := tooLargeProblem(err, msg, maxPayload); p != nil {
		p.ID = id
		return p
	}
	var apiErr *jetstream.APIError
	p := newProblem(http.StatusServiceUnavailable, SlugNotStored, "not stored",
		"the edge's stream did not acknowledge the message; send it again with the same id: "+err.Error())
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		p.Detail = "no stream of the edge stores this subject: " + err.Error()
	case errors.As(err, &apiErr):
		p.Detail = "the edge's stream refused the message: " + apiErr.Error()
		if apiErr.Code == http.StatusServiceUnavailable || apiErr.Code == 0 {
			break
		}
		// A stream full or other refusal: not the client's mistake, but
		// retrying at once will not help either.
		p.Status = http.StatusInsufficientStorage
	}
	p.ID = id
	p.retryAfter = time.Second
	return p
}

// tooLargeProblem returns the 413 problem, without Retry-After, for a
// publish of msg refused as too large: by the connection, beyond the
// server's max payload (maxPayload), or by the stream, beyond its
// max_msg_size (JetStream error 10054), which the device's connection
// cannot read, so the detail names only the event's size. Sending the
// same event again cannot succeed. It returns nil for any other error.
func tooLargeProblem(err error, msg *nats.Msg, maxPayload int64) *Problem {
	size := 0
	if msg != nil {
		size = msg.Size() - len(msg.Subject) - len(msg.Reply) // data and headers, as the server counts
	}
	var detail string
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		detail = fmt.Sprintf("the event is %d bytes as a NATS message (data and headers), more than the server's max payload of %d bytes", size, maxPayload)
	case errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum):
		detail = fmt.Sprintf("the edge's stream refused the event: it is %d bytes as a NATS message (data and headers), more than the stream's largest message (max_msg_size)", size)
	default:
		return nil
	}
	return newProblem(http.StatusRequestEntityTooLarge, SlugEventTooLarge, "event too large", detail)
}

// appendHeaderValue appends s percent-encoded as the CloudEvents HTTP
// binding requires of a header value: every byte outside printable ASCII,
// and space, '"' and '%'.
func appendHeaderValue(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// writeBinary writes e in binary content mode: its attributes as ce-*
// headers, its payload as the body.
func writeBinary(w http.ResponseWriter, status int, e *message.Envelope) {
	h := w.Header()
	set := func(k, v string) { h[k] = []string{string(appendHeaderValue(nil, v))} }
	set("Ce-Specversion", message.CloudEventsSpecVersion)
	set("Ce-Id", e.ID.String())
	set("Ce-Source", "/"+e.Source.Org+"/"+e.Source.Edge+"/"+e.Source.Type+"/"+e.Source.Code)
	typ := message.CloudEventsTypePrefix + string(e.Type)
	if e.Name != "" {
		typ += "." + e.Name
	}
	set("Ce-Type", typ)
	set("Ce-Time", e.Time.UTC().Format(time.RFC3339Nano))
	v := e.SchemaVersion
	if v == 0 {
		v = message.CurrentVersion
	}
	set("Ce-Schemaversion", v.String())
	if e.Seq != 0 {
		set("Ce-Sequence", strconv.FormatUint(e.Seq, 10))
	}
	if !e.BootID.IsZero() {
		set("Ce-Bootid", e.BootID.String())
	}
	if !e.CorrelationID.IsZero() {
		set("Ce-Correlationid", e.CorrelationID.String())
	}
	if e.ContentType != "" {
		h.Set("Content-Type", e.ContentType)
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(e.Payload)
}

// binaryToStructured turns an event in binary content mode (ce-* headers,
// the body as data) into its structured form, so that both are decoded and
// validated by one decoder.
func binaryToStructured(h http.Header, body []byte) ([]byte, *Problem) {
	m := make(map[string]any, 12)
	for k, v := range h {
		name, ok := strings.CutPrefix(strings.ToLower(k), "ce-")
		if !ok || len(v) == 0 {
			continue
		}
		if len(v) > 1 {
			p := newProblem(http.StatusUnprocessableEntity, SlugMalformed, "malformed envelope",
				fmt.Sprintf("header %s is given %d times", k, len(v)))
			p.Field = name
			return nil, p
		}
		if name == "data" || name == "data_base64" || name == "datacontenttype" {
			continue
		}
		val, err := url.PathUnescape(v[0])
		if err != nil {
			p := newProblem(http.StatusUnprocessableEntity, SlugMalformed, "malformed envelope",
				fmt.Sprintf("header %s: bad percent-encoding: %v", k, err))
			p.Field = name
			return nil, p
		}
		m[name] = val
	}
	if ct := h.Get("Content-Type"); ct != "" {
		m["datacontenttype"] = ct
	}
	if len(body) > 0 {
		m["data_base64"] = base64.StdEncoding.EncodeToString(body)
	}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(m); err != nil {
		return nil, newProblem(http.StatusUnprocessableEntity, SlugMalformed, "malformed envelope", err.Error())
	}
	return b.Bytes(), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// isMedia reports whether the Content-Type ct is the media type want.
func isMedia(ct, want string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == want
}
