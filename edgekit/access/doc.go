// Package access is Lintel's access control: credentials and door policy
// managed at central, replicated to each edge, and door decisions made at
// the edge from its local copy, online or not, with a tamper-evident audit
// trail that central verifies.
//
// # Credentials at central, copies at the edges
//
// Each edge has a credential bucket on central (a JetStream KV bucket named
// by authz, [authz.EdgeNames].CredentialBucket) that the edge mirrors into
// its own JetStream domain; the edge reads only its mirror, so it keeps
// deciding while the link or central is down. The bucket holds JSON values
// under these keys:
//
//	cred.{id}        a [Credential]: holder, state, validity, doors, door groups, schedules
//	group.{name}     a [DoorGroup]: door codes of the edge
//	schedule.{name}  a [Schedule]: weekly intervals in the site's time zone
//	rules            the edge's rule document (package edgekit/rules)
//
// A credential's id is the keyed hash of the card number or PIN
// ([message.Credential.Hash], HMAC-SHA256 under the org's secret key,
// [ReadHashKey]): no clear credential is ever stored or sent past the reader.
// A revocation or suspension is a stored value with its reason, never a
// deletion: a deleted credential would read as unknown, and the reason
// would be lost. Central writes through a [Manager], which validates every
// value (errors name the field: [FieldError]) and checks that the doors,
// groups and schedules a credential names exist at the edge.
//
// The revision of the edge's bucket is the version of its credential set,
// recorded in every decision (message.AccessDecision.CredentialSetVersion).
// An edge whose mirror lacks entries central holds (a replaced or wiped
// store) falls back and repairs it by itself ([ErrMirrorIncomplete]).
//
// # Decisions at the edge
//
// A [Service] runs on each edge node (package edgekit): readers send access
// requests on their req subject, and the service answers granted or denied
// with a reason (unknown, revoked, suspended, expired, not yet valid,
// outside schedule, door not allowed, unknown door, stale, unavailable), and
// on a grant sends the door's locks an unlock command. [Set.Decide] is the
// decision itself, a pure function of the set, the door's [DoorPolicy] and
// the [Situation] (time, time zone, last confirmed sync). Schedules are read
// on the site's wall clock, so a schedule keeps its local hours across a
// daylight saving change (see [Schedule.Allows]). The context given to
// [StartService] (and to [StartAuditor] at central) bounds the start
// only; the service runs until [Service.Stop] and the auditor until
// [Auditor.Stop].
//
// # Staleness and fallback
//
// Each door has a staleness limit, measured from the edge's last confirmed
// sync with central (the last time the edge knew its set held every change
// central had made), not from when the link dropped. Past it, or while the
// edge cannot read its set at all, the door decides by its fallback mode
// ([FallbackDeny], or [FallbackAllowListed]: only a short list of
// always-allowed credentials). Door policies are the edge's own
// configuration ([ParseDoorPolicies]), not replicated: they must work when
// the replicated set cannot be used.
//
// A network outage never changes a lock's state by itself: the edge sends
// a lock only unlock commands, each for one grant with a short deadline.
//
// # Revocation
//
// A revocation at central reaches every connected edge through its mirror
// and applies at once; an edge that was offline applies pending
// revocations before it grants anything once the link is back (see "After
// reconnection" at [Service]). Decisions made while offline are marked
// Offline; central's [Auditor] reports every grant of a credential central
// had revoked before the decision ([NameRevokedGrant]).
//
// # The audit trail
//
// Every decision is recorded as an event of the reader's [DecisionThing]
// ("{org}.{edge}._access.{reader}.evt", a reserved thing no device may
// publish as) in the edge's platform stream, which no device can write,
// forwarded to central and stored by package storage. The edge chains its
// decision records by hash over their exact encoded bytes ([ChainHead],
// [EventHash]) and signs each with its audit key ([RecordSigningBytes],
// [SignRecord]); central's [Auditor] checks each record's origin and
// signature ([VerifyRecord], with the edge's public keys from
// authz.State), verifies each edge's chain on arrival ([ChainVerifier],
// which states what the chain detects and what it cannot) and raises an
// alarm event ([NameAuditChainBroken]) on a record that is not the edge's,
// a gap, a modified or reordered record or a fork. The reader's reply
// carries the decision, never the record. Alarms are central's own events
// about an edge, on "{org}.{edge}._sys.audit.evt" ([AlarmThing]), which
// central's event stream stores and no edge can publish across the leaf
// link.
//
// # Design notes
//
// Why credentials are replicated as they are, staleness, what the network
// never does, revocation and the benchmarks: docs/access-control.md. The
// mirror's recovery: docs/credential-mirror.md. The audit trail's threat
// model: docs/threat-model.md.
package access
