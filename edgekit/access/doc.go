// Package access is Lintel's access control: credentials and door policy
// managed at central, replicated to each edge, and door decisions made at
// the edge from its local copy, online or not, with a tamper-evident audit
// trail that central verifies.
//
// Central writes each edge's credential bucket (named by authz,
// [authz.EdgeNames].CredentialBucket), which the edge mirrors, through a
// [Manager]: [Credential], [DoorGroup] and [Schedule] values. It validates
// every value (errors name the field: [FieldError], wrapping [ErrMalformed],
// [ErrUnknownField] or [ErrInvalid]) and checks that the doors, groups and
// schedules a credential names exist at the edge. A credential's id is the
// keyed hash of the card number or PIN ([message.Credential.Hash], with the
// key [ReadHashKey] reads); a revocation or suspension is a stored value
// with its reason, never a deletion.
//
// A [Service] runs on each edge node (package edgekit): it answers readers'
// access requests from the edge's mirror, granted or denied with a reason,
// and on a grant sends the door's locks an unlock command. [Set.Decide] is
// the decision itself, a pure function of the set, the door's [DoorPolicy]
// (the edge's own configuration, [ParseDoorPolicies]) and the [Situation];
// past the door's staleness limit, or while the edge cannot read its set,
// the door decides by its fallback mode ([FallbackDeny],
// [FallbackAllowListed]). An edge whose mirror lacks entries central holds
// repairs it by itself ([ErrMirrorIncomplete]). Every decision is recorded
// in a hash-chained trail the edge signs ([SignRecord]); central's [Auditor]
// verifies it ([VerifyRecord], [ChainVerifier]) and raises alarms
// ([NameAuditChainBroken], [NameRevokedGrant]). The context given to
// [StartService] (and to [StartAuditor] at central) bounds the start only;
// the service runs until [Service.Stop] and the auditor until
// [Auditor.Stop]. The Set.Decide example decides for one card.
//
// The bucket's keys, decisions, staleness, what the network never does,
// revocation, the audit trail and the benchmarks: docs/access-control.md.
// The mirror's recovery: docs/credential-mirror.md. The audit trail's
// threat model: docs/threat-model.md.
package access
