package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lintel-io/lintel/message"
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
	ID         message.ID   // the envelope id
	Thing      topic.Thing  // the thing born, alive or gone
	Kind       LivenessKind // birth, heartbeat or death
	BootID     string       // the boot the message names (its payload's, else its envelope's); "" for none
	Time       time.Time    // when it happened: the time its event is stored under ([Event].Time)
	ReceivedAt time.Time    // when central received it; zero means now for [Store.RecordLiveness]
}

// ThingLiveness is a thing's current liveness.
type ThingLiveness struct {
	Thing      topic.Thing // the thing
	BootID     string      // the boot of the latest message that named one
	BornAt     time.Time   // latest birth; zero if none seen
	LastSeenAt time.Time   // latest message of any kind
	DiedAt     time.Time   // latest death; zero if none seen
	// Online is true unless the latest message was a death.
	Online bool
}

// RecordLiveness records a birth, heartbeat or death and updates the
// thing's current liveness, as the ingest does for thing.birth,
// thing.heartbeat and thing.death messages. Messages may arrive in any
// order; recording one again is a no-op. It returns an error wrapping
// [ErrInvalidQuery] for an unknown kind.
func (s *Store) RecordLiveness(ctx context.Context, e LivenessEvent) error {
	switch e.Kind {
	case LivenessBirth, LivenessHeartbeat, LivenessDeath:
	default:
		return fmt.Errorf("%w: liveness kind %q", ErrInvalidQuery, e.Kind)
	}
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = s.now()
	}
	return s.recordDerived(ctx, derivedRow{liveness: &e})
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
		return nil, queryErr("query liveness", err)
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
		return nil, queryErr("query liveness", err)
	}
	return out, nil
}
