package access

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/lintel-io/lintel/message"
)

// EventHash returns the lower-case hex SHA-256 of an event's exact encoded
// bytes: the data of the NATS message, that is the msgpack envelope as the
// edge published it. The next decision event of the edge's audit chain
// carries it as [message.AccessDecision] AuditPrev.
func EventHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ChainHead is the last link of an edge's audit chain: the AuditSeq of the
// last decision event and the [EventHash] of its bytes. The zero value is
// the head of an empty chain.
type ChainHead struct {
	Seq  uint64 `json:"seq"`  // AuditSeq of the last decision event; 0 for an empty chain
	Hash string `json:"hash"` // [EventHash] of that event's bytes; "" for an empty chain
}

// Next returns the AuditSeq and AuditPrev the next decision event must
// carry: h.Seq+1 and h.Hash.
func (h ChainHead) Next() (seq uint64, prev string) { return h.Seq + 1, h.Hash }

// BreakKind says what a [ChainVerifier] found wrong with an edge's audit
// chain. The list is append-only: the kinds travel in [ChainAlarm].
type BreakKind string

// Kinds of chain break.
const (
	// BreakGap: events are missing; the event carries a sequence beyond
	// the next one. One or more events were deleted, or lost.
	BreakGap BreakKind = "gap"
	// BreakModified: the event is the next in sequence but does not chain
	// the hash of the event verified before it. That event's bytes
	// differ from what its successor chained (it was edited at rest or in
	// transit), or this event's link was altered.
	BreakModified BreakKind = "modified"
	// BreakReordered: an event the verifier had recorded as missing (in a
	// gap) arrived after a newer one.
	BreakReordered BreakKind = "reordered"
	// BreakFork: a second, different event with a sequence already
	// verified: the edge re-used a sequence, for example because it lost
	// its chain head in a power loss, or its store, and started again.
	BreakFork BreakKind = "fork"
	// BreakForged: an event on a system subject of an edge
	// ("{org}.{edge}._sys.*.evt") that reached central from the edge
	// (through sourcing) rather than from central itself, or a decision
	// record that did not reach central through the edge's platform
	// stream. Only the [Auditor] raises it; a [ChainVerifier] never does.
	BreakForged BreakKind = "forged"
	// BreakUnsigned: a decision record without the edge's signature
	// ([HeaderAuditKey], [HeaderAuditSig]). Raised by the [Auditor]; the
	// record is kept out of the chain.
	BreakUnsigned BreakKind = "unsigned"
	// BreakBadSignature: a decision record whose signature does not verify
	// with any of the edge's audit keys ([VerifyRecord]). Raised by the
	// [Auditor]; the record is kept out of the chain.
	BreakBadSignature BreakKind = "bad_signature"
	// BreakUnchained: an authentic decision record without an audit
	// sequence. Raised by the [Auditor].
	BreakUnchained BreakKind = "unchained"
)

// ChainBreak describes what a [ChainVerifier] found wrong. Expected* is what
// the verifier expected next (its head's [ChainHead.Next]); Got* is what
// the event carried (AuditSeq and AuditPrev):
//
//   - gap: ExpectedSeq is the first missing sequence, GotSeq is beyond it;
//   - modified: ExpectedSeq == GotSeq and ExpectedPrev != GotPrev;
//   - reordered and fork: GotSeq is below ExpectedSeq.
type ChainBreak struct {
	Kind         BreakKind  // what is wrong
	Edge         string     // the edge whose chain it is, as given to [NewChainVerifier]
	ExpectedSeq  uint64     // the AuditSeq expected next
	GotSeq       uint64     // the AuditSeq the event carried
	ExpectedPrev string     // the AuditPrev expected next
	GotPrev      string     // the AuditPrev the event carried
	EventID      message.ID // the ID of the offending event
}

// String describes b in one line for logs, e.g.
// "gap at edge hq: expected seq 4, got 6 (event 0190…)".
func (b *ChainBreak) String() string {
	return fmt.Sprintf("%s at edge %s: expected seq %d, got %d (event %s)", b.Kind, b.Edge, b.ExpectedSeq, b.GotSeq, b.EventID)
}

// Alarm returns the payload of the alarm central raises for b.
func (b *ChainBreak) Alarm() ChainAlarm {
	return ChainAlarm{
		Kind:         b.Kind,
		ExpectedSeq:  b.ExpectedSeq,
		GotSeq:       b.GotSeq,
		ExpectedPrev: b.ExpectedPrev,
		GotPrev:      b.GotPrev,
		Event:        b.EventID,
	}
}

// Bounds of what a ChainVerifier remembers beyond its head, to tell a
// duplicate, a late event and a fork apart.
const (
	verifierRecent = 1024 // links: sequences and hashes of verified events
	verifierGaps   = 64   // ranges of missing sequences
)

// ChainVerifier verifies one edge's audit chain, event by event, in the
// order central stored the events.
//
// Every decision event of an edge ([message.AccessDecision] with AuditSeq
// > 0) carries its sequence in the chain, AuditSeq (1, 2, 3, ...), and the
// [EventHash] of the exact bytes of the decision event before it, AuditPrev
// (empty for the first). The verifier keeps the head of the chain it has
// verified, and for each new event checks that it is the next one and that
// it chains the head's hash. After a break it re-anchors on the event it
// got, so that one deletion or one edit raises one alarm, not one per later
// event; a late event (reordered) leaves the head where it is.
//
// # What the chain detects
//
// Edits, deletions and reordering of decision events, in transit (on the
// leaf link, in central's sourcing) or at rest (in the edge's event stream
// or central's), by anyone who does not also control the edge service:
//
//   - an event edited: its successor's AuditPrev no longer matches
//     ([BreakModified], raised when the successor arrives);
//   - events deleted: a sequence is skipped ([BreakGap]);
//   - events reordered: an older sequence after a newer one (a [BreakGap]
//     when the newer arrives, then [BreakReordered] for the older);
//   - a sequence used twice with different events ([BreakFork]), such as an
//     edge that lost its chain head and started again.
//
// A missing tail is detected only when the next event arrives: if the last
// events of an edge are deleted and nothing follows, nothing is wrong yet.
//
// # What it cannot detect
//
//   - A fully compromised edge rewriting its own future: the edge service
//     holds the chain state, so whoever controls it can produce a consistent
//     chain of whatever decisions it likes from then on, and can drop
//     decisions before they are chained.
//   - Events that were never published: a decision that never became an
//     event leaves no trace in the chain.
//   - Who wrote the events: a hash chain gives integrity, not authenticity.
//     The verifier checks links only; the [Auditor] checks, before it
//     hands a record to the verifier, that the edge signed it with its
//     audit key and that it came through the edge's platform stream
//     ([VerifyRecord]), so that a record anyone else appends, however well
//     chained, is an alarm and not a link.
//
// # Duplicates
//
// An event with the head's sequence and hash is an exact duplicate: Verify
// reports it as not new, without a break; so is an earlier event the
// verifier still remembers (the last 1024 links), byte for byte. What
// reaches the verifier twice is decided before it: central's stream drops a
// re-published event whose envelope ID (Nats-Msg-Id) it has seen within its
// duplicate window (two minutes by default; a copy re-published later is
// stored again), and the [Auditor] persists each edge's head (a [ChainHead])
// with its position in central's stream before it acknowledges the events,
// so that a redelivery, or a replay of the stream, is recognised as seen and
// never verified again. The links behind the head, and the gaps recorded as
// missing, live in memory only: after a restart a copy of an old event
// stored again later in the stream, or a missing one arriving late, counts
// as a fork.
//
// A ChainVerifier is not safe for concurrent use.
type ChainVerifier struct {
	edge string
	// The head: its sequence and hash. headSet is false for an empty chain
	// and for a head whose Hash is not a lower-case hex SHA-256, which raw
	// then holds as given.
	head    link
	headSet bool
	raw     string
	recent  [verifierRecent]link // by seq % verifierRecent
	gaps    []seqRange           // missing sequences, oldest first
}

// link is one verified event: its sequence and hash.
type link struct {
	seq uint64
	sum [sha256.Size]byte
}

// seqRange is a range of sequences, from and to inclusive.
type seqRange struct{ from, to uint64 }

// NewChainVerifier returns a verifier of edge's chain whose verified head
// is head: the zero ChainHead for a chain not yet seen (whose first event
// must then have AuditSeq 1 and an empty AuditPrev), or the head persisted
// by an earlier verifier.
func NewChainVerifier(edge string, head ChainHead) *ChainVerifier {
	v := &ChainVerifier{edge: edge, head: link{seq: head.Seq}}
	if parseHash(head.Hash, &v.head.sum) {
		v.headSet = true
		v.remember(v.head)
	} else {
		v.raw = head.Hash
	}
	return v
}

// Head returns the head of the verified chain.
func (v *ChainVerifier) Head() ChainHead { return ChainHead{Seq: v.head.seq, Hash: v.headHash()} }

// headHash returns the hash of the head, as [ChainHead] Hash.
func (v *ChainVerifier) headHash() string {
	if !v.headSet {
		return v.raw
	}
	return hex.EncodeToString(v.head.sum[:])
}

// chainsHead reports whether prev is the hash of the head.
func (v *ChainVerifier) chainsHead(prev string) bool {
	if !v.headSet {
		return prev == v.raw
	}
	var sum [sha256.Size]byte
	return parseHash(prev, &sum) && sum == v.head.sum
}

// parseHash parses s, a SHA-256 in lower-case hex as [EventHash] returns
// it, into sum, and reports whether it was one. It does not allocate.
func parseHash(s string, sum *[sha256.Size]byte) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := range sum {
		hi, ok1 := lowerHex(s[2*i])
		lo, ok2 := lowerHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		sum[i] = hi<<4 | lo
	}
	return true
}

// lowerHex returns the value of a lower-case hex digit.
func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Verify checks the decision event id, whose exact bytes are data and whose
// decoded payload is d, against the chain. It returns the break it found,
// or nil, and whether the event was new: false for an exact duplicate
// (see [ChainVerifier]), which changes nothing. Against the head h:
//
//   - AuditSeq == h.Seq+1 and AuditPrev == h.Hash: the next link, no break;
//   - AuditSeq == h.Seq+1, AuditPrev != h.Hash: [BreakModified];
//   - AuditSeq > h.Seq+1: [BreakGap] (for an empty head, a first event
//     other than 1);
//   - AuditSeq <= h.Seq: a duplicate if the verifier remembers the same
//     event with that sequence; [BreakReordered] if it had recorded the
//     sequence as missing; [BreakFork] otherwise (a different event, or
//     one too old to be remembered).
//
// The verifier re-anchors its head on the event after every break but
// reordered. An event with AuditSeq 0 is not part of the chain: Verify
// returns nil and false and changes nothing. Verify allocates only to
// report a break.
func (v *ChainVerifier) Verify(id message.ID, data []byte, d *message.AccessDecision) (*ChainBreak, bool) {
	brk, isNew, _ := v.verify(id, data, d)
	return brk, isNew
}

// verify is Verify, also returning what undoes its change.
func (v *ChainVerifier) verify(id message.ID, data []byte, d *message.AccessDecision) (*ChainBreak, bool, verifierUndo) {
	seq, prev := d.AuditSeq, d.AuditPrev
	if seq == 0 {
		return nil, false, verifierUndo{}
	}
	l := link{seq: seq, sum: sha256.Sum256(data)}
	next := v.head.seq + 1
	switch {
	case seq == next:
		var brk *ChainBreak
		if !v.chainsHead(prev) {
			brk = v.newBreak(BreakModified, id, seq, prev)
		}
		undo := v.save(seq, false)
		v.advance(l)
		return brk, true, undo
	case seq > next:
		brk := v.newBreak(BreakGap, id, seq, prev)
		undo := v.save(seq, false)
		v.addGap(seqRange{next, seq - 1})
		v.advance(l)
		return brk, true, undo
	}
	// seq <= head: an event the chain has gone past.
	if r := v.recent[seq%verifierRecent]; r.seq == seq && r.sum == l.sum {
		return nil, false, verifierUndo{}
	}
	if v.inGap(seq) {
		brk := v.newBreak(BreakReordered, id, seq, prev)
		undo := v.save(seq, false)
		v.takeGap(seq)
		v.remember(l)
		return brk, true, undo
	}
	brk := v.newBreak(BreakFork, id, seq, prev)
	undo := v.save(seq, true)
	v.rewind(seq)
	v.advance(l)
	return brk, true, undo
}

// newBreak describes a break found by event id, which carried seq and
// prev, against the current head.
func (v *ChainVerifier) newBreak(kind BreakKind, id message.ID, seq uint64, prev string) *ChainBreak {
	return &ChainBreak{Kind: kind, Edge: v.edge, ExpectedSeq: v.head.seq + 1, GotSeq: seq,
		ExpectedPrev: v.headHash(), GotPrev: prev, EventID: id}
}

// verifierUndo is what a ChainVerifier needs to undo one Verify.
type verifierUndo struct {
	saved   bool
	head    link
	headSet bool
	raw     string
	gaps    []seqRange
	idx     uint64                // where the event's sequence maps to among the recent links
	slot    link                  // the recent link there
	recent  *[verifierRecent]link // every recent link, for a fork
}

// save returns what undoes a change of the verifier by an event with
// sequence seq; all says the change may touch every recent link.
func (v *ChainVerifier) save(seq uint64, all bool) verifierUndo {
	idx := seq % verifierRecent
	u := verifierUndo{saved: true, head: v.head, headSet: v.headSet, raw: v.raw, idx: idx, slot: v.recent[idx]}
	if len(v.gaps) > 0 {
		u.gaps = append([]seqRange(nil), v.gaps...)
	}
	if all {
		r := v.recent
		u.recent = &r
	}
	return u
}

// undo restores what u saved, for an event whose consequences could not be
// carried out (its alarm could not be published), so that it is verified
// again, with the same result, when it is delivered again.
func (v *ChainVerifier) undo(u verifierUndo) {
	if !u.saved {
		return
	}
	if u.recent != nil {
		v.recent = *u.recent
	} else {
		v.recent[u.idx] = u.slot
	}
	v.head, v.headSet, v.raw = u.head, u.headSet, u.raw
	v.gaps = u.gaps
}

// advance makes l the head.
func (v *ChainVerifier) advance(l link) {
	v.head, v.headSet, v.raw = l, true, ""
	v.remember(l)
}

// remember records l among the recent links.
func (v *ChainVerifier) remember(l link) { v.recent[l.seq%verifierRecent] = l }

// rewind forgets every link and gap at or beyond seq: the chain forked
// there, and what followed on the old branch no longer counts.
func (v *ChainVerifier) rewind(seq uint64) {
	for i := range v.recent {
		if v.recent[i].seq >= seq {
			v.recent[i] = link{}
		}
	}
	kept := v.gaps[:0]
	for _, g := range v.gaps {
		if g.from >= seq {
			continue
		}
		g.to = min(g.to, seq-1)
		kept = append(kept, g)
	}
	v.gaps = kept
}

// addGap records r as missing, forgetting the oldest gap beyond the bound.
func (v *ChainVerifier) addGap(r seqRange) {
	if len(v.gaps) == verifierGaps {
		v.gaps = append(v.gaps[:0], v.gaps[1:]...)
	}
	v.gaps = append(v.gaps, r)
}

// inGap reports whether seq is recorded as missing.
func (v *ChainVerifier) inGap(seq uint64) bool {
	for _, g := range v.gaps {
		if g.from <= seq && seq <= g.to {
			return true
		}
	}
	return false
}

// takeGap records seq, if it was missing, as arrived, and reports whether
// it was missing.
func (v *ChainVerifier) takeGap(seq uint64) bool {
	for i, g := range v.gaps {
		if seq < g.from || seq > g.to {
			continue
		}
		switch {
		case g.from == g.to:
			v.gaps = append(v.gaps[:i], v.gaps[i+1:]...)
		case seq == g.from:
			v.gaps[i].from++
		case seq == g.to:
			v.gaps[i].to--
		default:
			v.gaps[i].to = seq - 1
			rest := seqRange{seq + 1, g.to}
			v.gaps = append(v.gaps[:i+1], append([]seqRange{rest}, v.gaps[i+1:]...)...)
			if len(v.gaps) > verifierGaps {
				v.gaps = v.gaps[1:]
			}
		}
		return true
	}
	return false
}
