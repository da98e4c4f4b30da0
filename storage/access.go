package storage

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lintel-io/lintel/message"
)

// AccessDecision is one decision of an access point: who (a hashed
// credential) was let through which door, or not, and when.
//
// The ingest makes one from every access.granted or access.denied event
// (message type evt, payload [message.AccessDecision]): Org and Edge come
// from the event's thing, Reader is its thing code, CredentialHash is the
// payload's Credential, the keyed hash of the credential presented, and
// Holder is the payload's Holder. An event from an older edge, which put
// its only reference in Holder and left Credential empty, has that
// reference as both CredentialHash and Holder. A message.AccessDecision has
// no field for the credential itself, so a clear credential can never
// reach this table from the ingest.
type AccessDecision struct {
	ID     message.ID // the envelope id
	Time   time.Time  // when it was decided: the time its event is stored under ([Event].Time)
	Org    string     // code of the org
	Edge   string     // code of the edge that decided
	Door   string     // code of the door, as the payload names it
	Reader string     // the thing code of the reader (or controller) that reported it
	// CredentialHash identifies the credential without revealing it; see
	// [HashCredential]. Empty when the edge reported no credential.
	CredentialHash string
	// Holder refers to the credential's holder, when the edge knew it;
	// empty otherwise.
	Holder  string
	Granted bool   // whether access was granted
	Reason  string // why access was denied, a message.DenyReason such as "revoked"; empty when granted
	// CredentialSetVersion is the version of the credential set the edge
	// decided with; 0 when unknown.
	CredentialSetVersion int64
	// Offline reports a decision the edge made without a sync with central
	// confirmed since its link last came up.
	Offline bool
	// Fallback reports a decision made by the door's fallback mode, because
	// the edge could not decide from its credential set.
	Fallback bool
	// AuditSeq is the decision's number in the edge's audit chain, from 1;
	// 0 when unknown.
	AuditSeq   int64
	ReceivedAt time.Time // when central received the event
}

// HashCredential returns the lower-case hex HMAC-SHA256 of a credential (a
// card number, a PIN) under key, the form in which credentials are stored
// and queried. It delegates to [message.Credential.Hash], so it equals the
// hash the edge reports in message.AccessDecision.Credential under the
// same key. Keep key secret and fixed: changing it makes old decisions
// unfindable by credential.
func HashCredential(key []byte, credential string) string {
	return message.Credential(credential).Hash(key)
}

// RecordAccessDecision records an access decision, as the ingest does for
// access events, with every field of d as given (CredentialHash, Holder,
// Offline, Fallback, AuditSeq and the rest); a zero ReceivedAt becomes the
// store's current time. Recording it again, under the same ID, is a no-op:
// the first record wins. It returns the database's error, if any.
func (s *Store) RecordAccessDecision(ctx context.Context, d AccessDecision) error {
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = s.now()
	}
	return s.recordDerived(ctx, derivedRow{access: &d})
}

// AccessQuery selects access decisions. Empty fields match anything.
type AccessQuery struct {
	// Org, Edge and Door select the decisions of one org, edge or door,
	// by code.
	Org, Edge, Door string
	// CredentialHash selects the decisions about one credential; see
	// [HashCredential].
	CredentialHash string
	// Holder selects the decisions about one holder. The column has no
	// index of its own: combine it with Org, Edge, Door or CredentialHash
	// on large tables.
	Holder string
	// Granted, when not nil, selects granted or denied decisions only.
	Granted *bool
	// Offline, when not nil, selects decisions made offline, or online,
	// only.
	Offline *bool
	// From and To bound Time to [From, To).
	From, To time.Time
	// Descending returns the newest decisions first.
	Descending bool
	// Limit and Cursor page as in [EventQuery].
	Limit  int
	Cursor string // see Limit
}

// AccessPage is one page of access decisions.
type AccessPage struct {
	Decisions []AccessDecision // the page's decisions, in the query's order
	Next      string           // cursor of the next page, or "" after the last one
}

// AccessDecisions returns the access decisions matching q, ordered by
// (Time, ID) and paginated by keyset.
func (s *Store) AccessDecisions(ctx context.Context, q AccessQuery) (AccessPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return AccessPage{}, err
	}
	w := where{}
	w.eq("org", q.Org)
	w.eq("edge", q.Edge)
	w.eq("door", q.Door)
	w.eq("credential_hash", q.CredentialHash)
	w.eq("holder", q.Holder)
	if q.Granted != nil {
		w.conds = append(w.conds, "granted = "+w.arg(*q.Granted))
	}
	if q.Offline != nil {
		w.conds = append(w.conds, "offline = "+w.arg(*q.Offline))
	}
	w.timeRange("time", q.From, q.To)
	if err := w.after(q.Cursor, "time", "id", q.Descending); err != nil {
		return AccessPage{}, err
	}
	dir := "ASC"
	if q.Descending {
		dir = "DESC"
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, time, org, edge, door, reader, credential_hash, holder, granted, reason,
			credential_set_version, offline, fallback, audit_seq, received_at
		FROM lintel.access_decisions`+w.String()+
		" ORDER BY time "+dir+", id "+dir+" LIMIT "+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return AccessPage{}, queryErr("query access decisions", err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AccessDecision, error) {
		var d AccessDecision
		err := row.Scan(&d.ID, &d.Time, &d.Org, &d.Edge, &d.Door, &d.Reader, &d.CredentialHash, &d.Holder, &d.Granted, &d.Reason,
			&d.CredentialSetVersion, &d.Offline, &d.Fallback, &d.AuditSeq, &d.ReceivedAt)
		return d, err
	})
	if err != nil {
		return AccessPage{}, queryErr("query access decisions", err)
	}
	page := AccessPage{Decisions: ds}
	if len(ds) > limit {
		page.Decisions = ds[:limit]
		last := page.Decisions[limit-1]
		page.Next = encodeCursor(last.Time, last.ID)
	}
	return page, nil
}
