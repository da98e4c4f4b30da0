package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AccessDecision is one decision of an access point: who (a hashed
// credential) was let through which door, or not, and when.
//
// The ingest makes one from every access.granted or access.denied event
// (message type evt, payload [message.AccessDecision]): Org and Edge come
// from the event's thing, Reader is its thing code, and CredentialHash is
// the payload's Holder, the reference to the credential's holder that the
// edge puts there in place of the credential (a message.AccessDecision
// has no field for the credential itself, so a clear credential can never
// reach this table from the ingest).
type AccessDecision struct {
	ID     uuid.UUID // the envelope id
	Time   time.Time
	Org    string
	Edge   string
	Door   string
	Reader string // the thing code of the reader (or controller) that reported it
	// CredentialHash identifies the credential without revealing it; see
	// [HashCredential]. Empty when the credential was unknown to the edge.
	CredentialHash string
	Granted        bool
	Reason         string // why access was denied, a message.DenyReason such as "revoked"; empty when granted
	// CredentialSetVersion is the version of the credential set the edge
	// decided with; 0 when unknown.
	CredentialSetVersion int64
	ReceivedAt           time.Time
}

// HashCredential returns the hex HMAC-SHA256 of a credential (a card
// number, a PIN) under key, the form in which credentials are stored and
// queried. Keep key secret and fixed: changing it makes old decisions
// unfindable by credential.
func HashCredential(key []byte, credential string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(credential))
	return hex.EncodeToString(m.Sum(nil))
}

// RecordAccessDecision records an access decision, as the ingest does for
// access events. Recording it again is a no-op.
func (s *Store) RecordAccessDecision(ctx context.Context, d AccessDecision) error {
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = s.now()
	}
	return s.recordDerived(ctx, derivedRow{access: &d})
}

// AccessQuery selects access decisions. Empty fields match anything.
type AccessQuery struct {
	Org, Edge, Door string
	CredentialHash  string
	// Granted, when not nil, selects granted or denied decisions only.
	Granted *bool
	// From and To bound Time to [From, To).
	From, To time.Time
	// Descending returns the newest decisions first.
	Descending bool
	// Limit and Cursor page as in [EventQuery].
	Limit  int
	Cursor string
}

// AccessPage is one page of access decisions.
type AccessPage struct {
	Decisions []AccessDecision
	Next      string // cursor of the next page, or "" after the last one
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
	if q.Granted != nil {
		w.conds = append(w.conds, "granted = "+w.arg(*q.Granted))
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
		SELECT id, time, org, edge, door, reader, credential_hash, granted, reason, credential_set_version, received_at
		FROM lintel.access_decisions`+w.String()+
		" ORDER BY time "+dir+", id "+dir+" LIMIT "+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return AccessPage{}, fmt.Errorf("storage: query access decisions: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AccessDecision, error) {
		var d AccessDecision
		err := row.Scan(&d.ID, &d.Time, &d.Org, &d.Edge, &d.Door, &d.Reader, &d.CredentialHash, &d.Granted, &d.Reason, &d.CredentialSetVersion, &d.ReceivedAt)
		return d, err
	})
	if err != nil {
		return AccessPage{}, fmt.Errorf("storage: query access decisions: %w", err)
	}
	page := AccessPage{Decisions: ds}
	if len(ds) > limit {
		page.Decisions = ds[:limit]
		last := page.Decisions[limit-1]
		page.Next = encodeCursor(last.Time, last.ID)
	}
	return page, nil
}
