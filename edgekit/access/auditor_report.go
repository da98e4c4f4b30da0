package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// AuditReport is where an edge's audit chain stands at central, as the
// [Auditor] left it: the head it verified, and the alarms it raised.
type AuditReport struct {
	// Edge is the edge's code.
	Edge string `json:"edge"`
	// Head is the verified head of the edge's chain (zero before its first
	// decision), and Through the sequence of central's event stream the
	// auditor verified it through (0 when it has verified nothing).
	Head    ChainHead `json:"head"`
	Through uint64    `json:"through"` // see Head
	// Breaks are the [NameAuditChainBroken] alarms about the edge, and
	// RevokedGrants the [NameRevokedGrant] ones, oldest first, as central's
	// event stream holds them.
	Breaks        []AuditAlarm[ChainAlarm]        `json:"breaks"`
	RevokedGrants []AuditAlarm[RevokedGrantAlarm] `json:"revoked_grants"` // see Breaks
}

// AuditAlarm is one alarm of an [AuditReport]: when the auditor raised it,
// and its payload.
type AuditAlarm[T any] struct {
	Time  time.Time `json:"time"`  // when the auditor raised it
	Alarm T         `json:"alarm"` // the alarm's payload
}

// Intact reports whether the auditor found the chain whole: no break.
func (r *AuditReport) Intact() bool { return len(r.Breaks) == 0 }

// ReadAuditReport reads edge's audit report at central through js, a
// JetStream context of a central service or operator of org: the head in
// the auditor's state bucket (stateBucket, "audit-{org}" if empty) and the
// alarms in eventStream, central's event stream of the org. It returns the
// error of [authz.NamesFor] for a bad edge code, or the JetStream error;
// an alarm that does not decode is an error naming its sequence.
func ReadAuditReport(ctx context.Context, js jetstream.JetStream, eventStream, stateBucket, org, edge string) (*AuditReport, error) {
	if _, err := authz.NamesFor(org, edge); err != nil {
		return nil, err
	}
	if stateBucket == "" {
		stateBucket = "audit-" + org
	}
	r := &AuditReport{Edge: edge, Breaks: []AuditAlarm[ChainAlarm]{}, RevokedGrants: []AuditAlarm[RevokedGrantAlarm]{}}
	kv, err := js.KeyValue(ctx, stateBucket)
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("access: audit state bucket %s: %w", stateBucket, err)
	}
	if kv != nil {
		e, err := kv.Get(ctx, edge)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, fmt.Errorf("access: audit head of %s: %w", edge, err)
		default:
			var st auditState
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				return nil, fmt.Errorf("access: audit head of %s: %w", edge, err)
			}
			r.Head, r.Through = st.ChainHead, st.Through
		}
	}
	str, err := js.Stream(ctx, eventStream)
	if err != nil {
		return nil, fmt.Errorf("access: event stream %s: %w", eventStream, err)
	}
	// Message by message, with no consumer: a report leaves nothing
	// behind in central's stream, however often it is read.
	subject := AlarmThing(org, edge).Subject(topic.Event).String()
	for seq := uint64(1); ; {
		m, err := str.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("access: read the alarms of %s: %w", edge, err)
		}
		e, err := message.FromMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err == nil {
			err = r.add(e)
		}
		if err != nil {
			return nil, fmt.Errorf("access: alarm of %s at sequence %d: %w", edge, m.Sequence, err)
		}
		seq = m.Sequence + 1
	}
	return r, nil
}

// add decodes alarm e into r.
func (r *AuditReport) add(e *message.Envelope) error {
	switch e.Name {
	case NameAuditChainBroken:
		a, err := message.DecodePayload[ChainAlarm](e)
		if err != nil {
			return err
		}
		r.Breaks = append(r.Breaks, AuditAlarm[ChainAlarm]{Time: e.Time, Alarm: a})
	case NameRevokedGrant:
		a, err := message.DecodePayload[RevokedGrantAlarm](e)
		if err != nil {
			return err
		}
		r.RevokedGrants = append(r.RevokedGrants, AuditAlarm[RevokedGrantAlarm]{Time: e.Time, Alarm: a})
	}
	return nil
}
