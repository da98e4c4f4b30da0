package access

import (
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Names of the alarm events central raises about an edge. They travel with
// Type topic.Event from [AlarmThing] of the edge, so on
// "{org}.{edge}._sys.audit.evt", which central's event stream captures
// ([authz.CentralEventSubjects]) and no edge can publish across the leaf
// link.
const (
	// NameAuditChainBroken is a [ChainAlarm]: the edge's audit chain of
	// decision events is broken (or a system event of the edge was
	// forged), with the offending event's ID as CorrelationID.
	NameAuditChainBroken = "audit.chain_broken"
	// NameRevokedGrant is a [RevokedGrantAlarm]: the edge granted access
	// to a credential that central had revoked before the decision, with
	// the decision event's ID as CorrelationID.
	NameRevokedGrant = "access.revoked_grant"
)

// AlarmThingCode is the thing code of [AlarmThing].
const AlarmThingCode = "audit"

// AlarmThing returns the source of central's alarms about edge of org:
// {org, edge, topic.ThingTypeSystem, "audit"}, whose event subject is
// "{org}.{edge}._sys.audit.evt".
func AlarmThing(org, edge string) topic.Thing {
	return topic.Thing{Org: org, Edge: edge, Type: topic.ThingTypeSystem, Code: AlarmThingCode}
}

// ChainAlarm is the payload of [NameAuditChainBroken]: what a
// [ChainVerifier] found wrong ([ChainBreak]), or, with Kind [BreakForged],
// a system event that came from the edge.
type ChainAlarm struct {
	// Kind says what is wrong.
	Kind BreakKind `msgpack:"kind" json:"kind"`
	// ExpectedSeq and ExpectedPrev are the link central expected next
	// (its verified head's [ChainHead.Next]); zero for forged.
	ExpectedSeq  uint64 `msgpack:"expected_seq,omitempty" json:"expected_seq,omitempty"`
	ExpectedPrev string `msgpack:"expected_prev,omitempty" json:"expected_prev,omitempty"` // see ExpectedSeq
	// GotSeq and GotPrev are the AuditSeq and AuditPrev the event carried;
	// zero for forged.
	GotSeq  uint64 `msgpack:"got_seq,omitempty" json:"got_seq,omitempty"`
	GotPrev string `msgpack:"got_prev,omitempty" json:"got_prev,omitempty"` // see GotSeq
	// Event is the ID of the offending event (zero if it could not be
	// decoded).
	Event message.ID `msgpack:"event" json:"event"`
	// Subject is the subject of a forged, unsigned, badly signed or
	// unchained record; empty for the other kinds.
	Subject string `msgpack:"subject,omitempty" json:"subject,omitempty"`
	// Detail says what is wrong with a record that is not authentic (the
	// kinds forged, unsigned and bad_signature); empty for the others.
	Detail string `msgpack:"detail,omitempty" json:"detail,omitempty"`
}

// RevokedGrantAlarm is the payload of [NameRevokedGrant]: a decision that
// granted access to a credential revoked at central before the decision was
// made, which the edge did not yet know (it decided with an older
// credential set, typically offline).
type RevokedGrantAlarm struct {
	// Decision is the ID of the decision event, DecisionTime its time by
	// the edge's clock.
	Decision     message.ID `msgpack:"decision" json:"decision"`
	DecisionTime time.Time  `msgpack:"decision_time" json:"decision_time"` // see Decision
	// Door is the door opened, Reader the code of the reader that asked.
	Door   string `msgpack:"door" json:"door"`
	Reader string `msgpack:"reader" json:"reader"` // see Door
	// Credential is the credential's keyed hash; Holder its holder as
	// central records it.
	Credential string `msgpack:"credential" json:"credential"`
	Holder     string `msgpack:"holder,omitempty" json:"holder,omitempty"` // see Credential
	// Offline reports a decision made without a confirmed sync with
	// central (see [message.AccessDecision]).
	Offline bool `msgpack:"offline,omitempty" json:"offline,omitempty"`
	// DecisionVersion is the credential set version the edge decided
	// with; RevokedVersion the revision of the revocation in the edge's
	// bucket, which is later.
	DecisionVersion uint64 `msgpack:"decision_version" json:"decision_version"`
	RevokedVersion  uint64 `msgpack:"revoked_version" json:"revoked_version"` // see DecisionVersion
	// RevokedAt is when central stored the revocation, by central's clock.
	RevokedAt time.Time `msgpack:"revoked_at" json:"revoked_at"`
	// Reason is the revocation's reason.
	Reason string `msgpack:"reason,omitempty" json:"reason,omitempty"`
}
