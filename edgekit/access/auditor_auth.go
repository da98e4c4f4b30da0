package access

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// authentic reports whether the decision record ev, decoded as env, on
// subject subj, is the edge's own: stored at central through the edge's
// platform stream, and signed with one of the edge's audit keys
// ([VerifyRecord]). A record that is not raises a [NameAuditChainBroken]
// alarm ([BreakForged] for the wrong origin, [BreakUnsigned] or
// [BreakBadSignature]) and never reaches the chain verifier, so that the
// edge's next real record is verified against its real head. The error
// is that of an alarm that could not be published.
func (a *Auditor) authentic(ctx context.Context, subj topic.Subject, ev *auditMsg, env *message.Envelope) (bool, error) {
	kind, detail := a.inauthentic(subj, ev)
	if kind == "" {
		return true, nil
	}
	a.log.Warn("audit: decision record not authentic", authz.LogKeySecurity, authz.SecurityAuditAlarm, message.LogKeyEdge, subj.Edge, message.LogKeySubject, ev.subject,
		message.LogKeyMsgID, env.ID.String(), "kind", string(kind), "detail", detail)
	alarm := ChainAlarm{Kind: kind, Event: env.ID, Subject: ev.subject, Detail: detail}
	if err := a.publish(ctx, subj.Edge, NameAuditChainBroken, env.ID, recordDedup("auth", env.ID, ev.streamSeq), alarm); err != nil {
		return false, err
	}
	a.notAuthentic.Add(1)
	return false, nil
}

// inauthentic returns what makes ev not the edge's record, or "".
func (a *Auditor) inauthentic(subj topic.Subject, ev *auditMsg) (BreakKind, string) {
	n, err := authz.NamesFor(a.cfg.Org, subj.Edge)
	if err != nil {
		return BreakForged, "no such edge: " + err.Error()
	}
	src, _, _ := strings.Cut(ev.header.Get(headerStreamSource), " ")
	if want := authz.SourceName(n.PlatformSource()); src != want {
		if src == "" {
			return BreakForged, "not sourced from the edge's platform stream " + n.PlatformStream + " (stored at central)"
		}
		return BreakForged, "sourced from " + src + ", not the edge's platform stream " + n.PlatformStream
	}
	if _, err := VerifyRecord(a.cfg.Keys.AuditPublicKeys(a.cfg.Org, subj.Edge), ev.subject, ev.header, ev.data); err != nil {
		if errors.Is(err, ErrUnsigned) {
			return BreakUnsigned, err.Error()
		}
		return BreakBadSignature, err.Error()
	}
	return "", ""
}

// unchainedDecision raises a [BreakUnchained] alarm for an authentic
// decision record without an audit sequence, and checks its grant.
func (a *Auditor) unchainedDecision(ctx context.Context, subj topic.Subject, ev *auditMsg, env *message.Envelope, d *message.AccessDecision) error {
	a.log.Warn("audit: decision record outside the chain", authz.LogKeySecurity, authz.SecurityAuditAlarm, message.LogKeyEdge, subj.Edge, message.LogKeyMsgID, env.ID.String())
	alarm := ChainAlarm{Kind: BreakUnchained, Event: env.ID, Subject: ev.subject}
	if err := a.publish(ctx, subj.Edge, NameAuditChainBroken, env.ID, recordDedup("unchained", env.ID, ev.streamSeq), alarm); err != nil {
		return err
	}
	a.unchained.Add(1)
	return a.checkGrant(ctx, subj.Edge, env, d)
}

// recordDedup returns the deduplication ID of an alarm of kind about the
// record id, stored at central stream sequence seq when id is zero.
func recordDedup(kind string, id message.ID, seq uint64) string {
	if id.IsZero() {
		return kind + ":seq:" + strconv.FormatUint(seq, 10)
	}
	return kind + ":" + id.String()
}
