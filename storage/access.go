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
type AccessDecision struct {
	ID     uuid.UUID // the envelope id
	Time   time.Time
	Org    string
	Edge   string
	Door   string
	Reader string // the reader's thing code
	// CredentialHash identifies the credential without revealing it; see
	// [HashCredential].
	CredentialHash string
	Granted        bool
	Reason         string // e.g. "schedule", "unknown credential"
	ReceivedAt     time.Time
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

// RecordAccessDecision records an access decision. Recording it again is a no-op.
func (s *Store) RecordAccessDecision(ctx context.Context, d AccessDecision) error {
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = s.now()
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO lintel.access_decisions (id, time, org, edge, door, reader, credential_hash, granted, reason, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING`,
		d.ID, d.Time, d.Org, d.Edge, d.Door, d.Reader, d.CredentialHash, d.Granted, d.Reason, d.ReceivedAt)
	if err != nil {
		return fmt.Errorf("storage: record access decision: %w", err)
	}
	return nil
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
		SELECT id, time, org, edge, door, reader, credential_hash, granted, reason, received_at
		FROM lintel.access_decisions`+w.String()+
		" ORDER BY time "+dir+", id "+dir+" LIMIT "+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return AccessPage{}, fmt.Errorf("storage: query access decisions: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AccessDecision, error) {
		var d AccessDecision
		err := row.Scan(&d.ID, &d.Time, &d.Org, &d.Edge, &d.Door, &d.Reader, &d.CredentialHash, &d.Granted, &d.Reason, &d.ReceivedAt)
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
