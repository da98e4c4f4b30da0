package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OperatorAuditStream names the stream on central holding org's operator
// audit log, and OperatorAuditSubject its subject: an org subject no edge
// or device can publish (its edge token is reserved), written by central's
// services of the org only.
func OperatorAuditStream(org string) string { return "operator-audit-" + org }

// OperatorAuditSubject names the subject of org's operator audit log.
func OperatorAuditSubject(org string) string { return org + "._api.audit" }

// AuditEntry is one record of the operator audit log: who changed what,
// when, and the object before and after. Secrets (card numbers, PINs, API
// tokens) never appear in it.
type AuditEntry struct {
	// Seq is the entry's sequence in the log, the cursor of its page.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"` // when it happened
	// Who is the principal's subject and name, Via how it authenticated
	// and Role its role.
	Who  string `json:"who"`
	Via  string `json:"via"`  // how the principal authenticated
	Role Role   `json:"role"` // its role
	// Action is the route's operation, such as "suspendCredential";
	// Method and Path the request.
	Action string `json:"action"`
	Method string `json:"method"` // the HTTP method
	Path   string `json:"path"`   // the request path
	// Object names what changed, such as "edge hq credential 3f9a…".
	Object string `json:"object"`
	// Before and After are the object's JSON before and after the change;
	// null when it did not exist (before) or is not an object (a command).
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"` // the object after the change
}

type opLog struct {
	js      jetstream.JetStream
	stream  string
	subject string
}

// openOpLog creates org's operator audit stream, or updates it, keeping
// entries for maxAge.
func openOpLog(ctx context.Context, js jetstream.JetStream, org string, replicas int, maxAge time.Duration) (*opLog, error) {
	l := &opLog{js: js, stream: OperatorAuditStream(org), subject: OperatorAuditSubject(org)}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: l.stream,
		Description: "Lintel operator audit log: changes made through central's API", Subjects: []string{l.subject},
		Storage: jetstream.FileStorage, Replicas: replicas, MaxAge: maxAge, DenyDelete: true, DenyPurge: true}); err != nil {
		return nil, fmt.Errorf("api: operator audit stream: %w", err)
	}
	return l, nil
}

// change is what a handler reports of a change it made, for the log.
type change struct {
	object        string
	before, after any
}

func rawJSON(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// record appends an entry for ch, made by p through r.
func (l *opLog) record(ctx context.Context, r *http.Request, rt *route, p *Principal, ch *change) error {
	e := AuditEntry{Time: time.Now().UTC(), Who: p.who(), Via: p.Via, Role: p.Role, Action: rt.ID,
		Method: r.Method, Path: r.URL.Path, Object: ch.object, Before: rawJSON(ch.before), After: rawJSON(ch.after)}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := l.js.PublishMsg(ctx, &nats.Msg{Subject: l.subject, Data: b}, jetstream.WithExpectStream(l.stream)); err != nil {
		return fmt.Errorf("api: operator audit log: %w", err)
	}
	return nil
}

// page returns up to limit entries, newest first, before the entry with
// sequence before (0: from the newest), and the cursor of the next page.
func (l *opLog) page(ctx context.Context, before uint64, limit int) ([]AuditEntry, string, error) {
	str, err := l.js.Stream(ctx, l.stream)
	if err != nil {
		return nil, "", err
	}
	st := str.CachedInfo().State
	seq := st.LastSeq
	if before != 0 && before-1 < seq {
		seq = before - 1
	}
	out := []AuditEntry{}
	for ; seq >= st.FirstSeq && seq > 0 && len(out) < limit; seq-- {
		m, err := str.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		var e AuditEntry
		if err := json.Unmarshal(m.Data, &e); err != nil {
			continue
		}
		e.Seq = m.Sequence
		out = append(out, e)
	}
	next := ""
	if seq >= st.FirstSeq && seq > 0 {
		next = strconv.FormatUint(seq+1, 10)
	}
	return out, next, nil
}
