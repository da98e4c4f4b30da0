package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/lintel-io/lintel/topic"
)

// LivenessKind says what a liveness message announces.
type LivenessKind string

// Liveness kinds.
const (
	LivenessBirth     LivenessKind = "birth"     // the thing (re)started: a new boot
	LivenessHeartbeat LivenessKind = "heartbeat" // the thing is alive
	LivenessDeath     LivenessKind = "death"     // the thing went away (or its edge says so)
)

// LivenessEvent is one birth, heartbeat or death of a thing.
type LivenessEvent struct {
	ID         uuid.UUID // the envelope id
	Thing      topic.Thing
	Kind       LivenessKind
	BootID     string
	Time       time.Time
	ReceivedAt time.Time
}

// ThingLiveness is a thing's current liveness.
type ThingLiveness struct {
	Thing      topic.Thing
	BootID     string    // the boot of the latest message that named one
	BornAt     time.Time // latest birth; zero if none seen
	LastSeenAt time.Time // latest message of any kind
	DiedAt     time.Time // latest death; zero if none seen
	// Online is true unless the latest message was a death.
	Online bool
}

// RecordLiveness records a birth, heartbeat or death and updates the
// thing's current liveness. Messages may arrive in any order; recording
// one again is a no-op.
func (s *Store) RecordLiveness(ctx context.Context, e LivenessEvent) error {
	switch e.Kind {
	case LivenessBirth, LivenessHeartbeat, LivenessDeath:
	default:
		return fmt.Errorf("%w: liveness kind %q", ErrInvalidQuery, e.Kind)
	}
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = s.now()
	}
	_, err := s.pool.Exec(ctx, `
		WITH ins AS (
			INSERT INTO lintel.liveness_events (id, time, org, edge, thing_type, thing_code, kind, boot_id, received_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (id) DO NOTHING RETURNING 1)
		INSERT INTO lintel.liveness AS l (org, edge, thing_type, thing_code, boot_id, born_at, last_seen_at, died_at)
		SELECT $3, $4, $5, $6, $8,
			CASE WHEN $7 = 'birth' THEN $2::timestamptz END, $2,
			CASE WHEN $7 = 'death' THEN $2::timestamptz END
		WHERE EXISTS (SELECT 1 FROM ins)
		ON CONFLICT (org, edge, thing_type, thing_code) DO UPDATE SET
			boot_id = CASE WHEN excluded.boot_id <> '' AND excluded.last_seen_at >= l.last_seen_at
				THEN excluded.boot_id ELSE l.boot_id END,
			born_at = GREATEST(l.born_at, excluded.born_at),
			last_seen_at = GREATEST(l.last_seen_at, excluded.last_seen_at),
			died_at = GREATEST(l.died_at, excluded.died_at),
			updated_at = now()`,
		e.ID, e.Time, e.Thing.Org, e.Thing.Edge, e.Thing.Type, e.Thing.Code, string(e.Kind), e.BootID, e.ReceivedAt)
	if err != nil {
		return fmt.Errorf("storage: record liveness: %w", err)
	}
	return nil
}

// Liveness returns the current liveness of the things of an organisation,
// or of one of its edges when edge is not empty, ordered by thing.
func (s *Store) Liveness(ctx context.Context, org, edge string) ([]ThingLiveness, error) {
	w := where{}
	w.eq("org", org)
	w.eq("edge", edge)
	rows, err := s.pool.Query(ctx, `
		SELECT org, edge, thing_type, thing_code, boot_id, born_at, last_seen_at, died_at,
			died_at IS NULL OR last_seen_at > died_at
		FROM lintel.liveness`+w.String()+` ORDER BY org, edge, thing_type, thing_code`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("storage: query liveness: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ThingLiveness, error) {
		var l ThingLiveness
		var born, died *time.Time
		err := row.Scan(&l.Thing.Org, &l.Thing.Edge, &l.Thing.Type, &l.Thing.Code, &l.BootID, &born, &l.LastSeenAt, &died, &l.Online)
		if born != nil {
			l.BornAt = *born
		}
		if died != nil {
			l.DiedAt = *died
		}
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: query liveness: %w", err)
	}
	return out, nil
}
