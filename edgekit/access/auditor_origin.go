package access

import (
	"context"
	"errors"
	"strconv"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// Log keys of the origin check.
const (
	logKeySource = "source"
	logKeyOrigin = "origin_edge"
	logKeyReason = "reason"
)

// checkOrigin refuses an event whose origin may not write it
// ([authz.SourceTable.Check]): an edge writing as another edge, another
// org or central (a sourced system subject), or a message published at
// central on an edge's subject. A refused event is counted, logged at
// warning and reported by an alarm ([NameAuditChainBroken] with Kind
// [BreakForged]) about the edge it came from (the edge of its subject
// when its source is unknown); it is never verified, so it cannot enter
// any chain. refused is false for an event that may be processed; err is
// set only when the alarm could not be raised, to try again.
func (a *Auditor) checkOrigin(ctx context.Context, subj topic.Subject, ev *auditMsg) (refused bool, err error) {
	origin, cerr := a.origins.Check(ev.subject, ev.header)
	if cerr == nil {
		return false, nil
	}
	var oe *authz.OriginError
	reason := cerr.Error()
	if errors.As(cerr, &oe) {
		reason = oe.Reason
	}
	edge := origin.Edge
	if edge == "" {
		edge = subj.Edge
	}
	var env message.Envelope
	_ = message.DecodeMsg(&nats.Msg{Subject: ev.subject, Header: ev.header, Data: ev.data}, &env, &message.DecodeOptions{SkipSubjectCheck: true})
	dedup := "forged:" + env.ID.String()
	if env.ID.IsZero() {
		dedup = "forged:seq:" + strconv.FormatUint(ev.streamSeq, 10)
	}
	a.log.Warn("audit: event refused by origin", authz.LogKeySecurity, authz.SecurityAuditAlarm, message.LogKeySubject, ev.subject, logKeySource, origin.Source,
		logKeyOrigin, origin.Edge, message.LogKeyEdge, subj.Edge, logKeyReason, reason)
	alarm := ChainAlarm{Kind: BreakForged, Event: env.ID, Subject: ev.subject}
	if err := a.publish(ctx, edge, NameAuditChainBroken, env.ID, dedup, alarm); err != nil {
		return true, err
	}
	a.refused.Add(1)
	if subj.Type == topic.ThingTypeSystem {
		a.forged.Add(1)
	}
	return true, nil
}
