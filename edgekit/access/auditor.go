package access

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of [AuditorConfig].
const (
	// DefaultAuditorDurable names the auditor's position in its state
	// bucket (and the acknowledging consumer of earlier versions, which
	// the auditor retires).
	DefaultAuditorDurable = "audit"
	// DefaultAuditorBatch is how many events the auditor fetches, and
	// verifies before it persists the chain heads and acknowledges them.
	DefaultAuditorBatch = 256
	// DefaultAuditorTimeout bounds the auditor's JetStream calls.
	DefaultAuditorTimeout = 10 * time.Second
	// DefaultAuditorPoll is how long one fetch waits for events; it also
	// bounds how long [Auditor.Stop] takes.
	DefaultAuditorPoll = time.Second
	// auditorMaxBackoff bounds the pause after a failed batch.
	auditorMaxBackoff = 30 * time.Second
)

// headerStreamSource is the header nats-server adds to a message a stream
// stored through sourcing, naming its origin.
const headerStreamSource = "Nats-Stream-Source"

// Names of the auditor's decision events.
var (
	nameGranted = []byte(message.NameAccessGranted)
	nameDenied  = []byte(message.NameAccessDenied)
)

// AuditorConfig configures an [Auditor]. Org is required; the zero value of
// every other field means its default.
type AuditorConfig struct {
	// Org is the org whose edges are audited. Required.
	Org string
	// Keys gives the public audit keys of each edge, with which the
	// records' signatures are verified ([VerifyRecord]); an *authz.State
	// is one. It is asked on every record, so a new key is used as soon as
	// Keys returns it. Required.
	Keys AuditKeys
	// Durable names the auditor's position in the state bucket, key
	// "position.{Durable}"; [DefaultAuditorDurable] if empty. Run one
	// auditor per durable (a second one that overlaps loses the race for
	// the position and reads again from where the other got).
	Durable string
	// StateBucket is the KV bucket on central that holds, keyed by edge
	// code, each edge's verified chain head and the position in central's
	// event stream it was verified through, as JSON: the fields of
	// [ChainHead] and "through", e.g. {"seq":42,"hash":"…","through":1234}.
	// "audit-{org}" if empty. It is created if missing.
	StateBucket string
	// Replicas is how many copies a clustered central keeps of the state
	// bucket when the auditor creates it; zero means one.
	Replicas int
	// Timeout bounds the auditor's JetStream calls; [DefaultAuditorTimeout]
	// if zero.
	Timeout time.Duration
	// Poll is how long one fetch waits for events, and so about how long
	// [Auditor.Stop] takes; [DefaultAuditorPoll] if zero.
	Poll time.Duration
	// Logger receives the auditor's log; nil discards.
	Logger *slog.Logger
	// Now is the clock that stamps alarms; nil means time.Now.
	Now func() time.Time
	// IDs makes the IDs of alarm envelopes; nil means a generator of the
	// auditor's own, using Now.
	IDs *message.IDGenerator
	// Batch is how many events are fetched, verified, persisted and
	// acknowledged together; [DefaultAuditorBatch] if zero.
	Batch int
	// Origins maps the sources of central's event stream to the org's
	// edges, to refuse events an edge may not write (see [Auditor]); nil
	// means a table of cfg.Org that learns edges as their subjects appear.
	// Give one made from the inventory ([authz.NewSourceTableFor]) so that
	// a refused event is traced to the edge that sent it.
	Origins *authz.SourceTable
}

// AuditorStats is a snapshot of an [Auditor]'s counters.
type AuditorStats struct {
	Verified      uint64 // decision events that chained correctly
	Duplicates    uint64 // decision events seen before (redelivered, or stored twice)
	Breaks        uint64 // chain breaks found (each raised an alarm)
	RevokedGrants uint64 // grants of revoked credentials found (each raised an alarm)
	ForgedSys     uint64 // system events that came from an edge (each raised an alarm)
	Unchained     uint64 // decision records without an audit sequence (each raised an alarm)
	NotAuthentic  uint64 // decision records not signed by the edge, or not from its platform stream (each raised an alarm)
	Skipped       uint64 // events that are not decisions
	Errors        uint64 // malformed decision events, and failed batches
	Alarms        uint64 // alarms published
	// Refused counts events whose origin may not write them (an edge
	// writing as another edge, another org or central; ForgedSys
	// included): never verified, each logged and raised as an alarm.
	Refused uint64
}

// Auditor runs on central: it reads every edge's events from central's
// event stream, in the order central stored them, verifies each edge's
// audit chain of decision events ([ChainVerifier]) and raises alarms as
// events in central's event stream, from [AlarmThing] of the edge (on
// "{org}.{edge}._sys.audit.evt"):
//
//   - [NameAuditChainBroken] when an edge's chain is broken (a gap, a
//     modified event, a late event, a fork), with a [ChainAlarm];
//   - [NameRevokedGrant] when an edge granted a credential that central
//     had revoked before the decision but the edge did not know yet, with
//     a [RevokedGrantAlarm]. After a link outage this reports every offline
//     decision that granted a credential revoked in the meantime; online
//     grants are reported the same way, and the alarm's Offline flag tells
//     them apart;
//   - [NameAuditChainBroken] with Kind [BreakForged], [BreakUnsigned] or
//     [BreakBadSignature] for a decision record that is not the edge's:
//     decisions are recorded only on the edge's access things
//     ("{org}.{edge}._access.{reader}.evt", [DecisionThing]), must reach
//     central through the edge's platform stream, and must carry a valid
//     signature by one of the edge's audit keys (AuditorConfig.Keys,
//     [VerifyRecord]). Such a record never enters the chain, so the edge's
//     next real record is not blamed as a fork. Events of other things named
//     like decisions (a device may name its own events so) are not decisions
//     and are skipped;
//   - [NameAuditChainBroken] with Kind [BreakUnchained] for an authentic
//     decision record without an audit sequence;
//   - [NameAuditChainBroken] with Kind [BreakForged] for an event on an
//     edge's system subject ("{org}.{edge}._sys.*.evt") that came from the
//     edge: central's event stream captures those subjects for central's
//     own events, but it also stores, through sourcing, whatever an edge
//     put in its own event stream on them. The leaf link forbids an edge
//     the "_sys" subjects, but the edge's service may publish them locally;
//     an event that carries a "Nats-Stream-Source" header came from an edge
//     and is forged.
//
// Revoked grants are found by looking the credential up in the edge's
// bucket on central when the decision arrives: the credential is revoked,
// the revocation's revision is beyond the set version the edge decided with,
// and central stored the revocation (its KV entry time) no later than the
// decision's time. That has limits. The bucket keeps one revision per key,
// so a credential revoked and then changed again (overwritten by a
// [Manager.Put] of a revoked one, or [Manager.Remove]d) before the decision
// event reaches central is not reported. Revocation times are central's
// clock and decision times the edge's: a skewed edge clock moves the line
// between a grant before the revocation and one after it by the skew.
//
// Before anything else, every event's origin is checked
// ([AuditorConfig].Origins, [authz.SourceTable.Check]): an event an edge
// sourced on another edge's or org's subject, or on a system subject, is
// refused, counted in [AuditorStats].Refused, logged and raised as
// [NameAuditChainBroken] with Kind [BreakForged] about the edge it came
// from; it never reaches a chain.
//
// Progress is an ordered consumer on central's event stream, filtered to
// the org's events, which needs no acknowledgement, and a position (the
// stream sequence through which everything was processed) in the state
// bucket. Each edge's verified head, with the position in central's
// stream it was verified at, is persisted before the position after each
// batch, so that a restart neither raises an alarm again nor misses an
// event: events at or before an edge's persisted position are not
// verified again, and an event read again below the head is never an
// alarm. Alarms carry a Nats-Msg-Id derived from the offending event, so
// an alarm raised again after a crash within central's duplicate window is
// stored once. Events that are not decisions are passed over without
// decoding; malformed decision events are logged and counted: nothing
// blocks the stream. A batch whose alarm or state could not be written is
// read again from the persisted position after a pause. On its first run the
// auditor expects each edge's chain to start at AuditSeq 1: if central's
// stream no longer holds an edge's first decisions (retention limits), the
// first one it holds is reported once, as a gap.
//
// nats-server lets a leaf node publish on "$JS.ACK.>" whatever its
// permissions say ([authz.LeafPermissions]); the auditor acknowledges
// nothing, so an edge has nothing to forge there. Its position is written
// with the revision it was read at, so two overlapping auditors of one org
// cannot both move it. See docs/ingest.md.
//
// Start one with [StartAuditor]; stop it with [Auditor.Stop]. Its methods
// are safe for concurrent use.
type Auditor struct {
	js     jetstream.JetStream
	cfg    AuditorConfig
	log    *slog.Logger
	stream string
	filter string
	rd     auditReader // see auditor_position.go
	state  jetstream.KeyValue

	// Used by the run goroutine only.
	edges map[string]*auditEdge
	dirty map[string]bool

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	verified, duplicates, breaks, revokedGrants, forged, unchained, skipped, errs, alarms atomic.Uint64
	notAuthentic                                                                          atomic.Uint64
	refused                                                                               atomic.Uint64
	origins                                                                               *authz.SourceTable
}

// auditEdge is what the auditor keeps of one edge.
type auditEdge struct {
	v       *ChainVerifier
	through uint64             // central stream sequence through which its decisions are verified
	creds   jetstream.KeyValue // its credential bucket, once opened
}

// auditState is the persisted record of one edge: its verified head and the
// position in central's event stream it was verified through.
type auditState struct {
	ChainHead
	Through uint64 `json:"through"`
}

// StartAuditor starts the auditor of cfg.Org on central, using js, a
// JetStream context of a central service of the org in central's domain.
// It creates the state bucket if missing and reads the stream from the
// persisted position on (retiring the acknowledging consumer of earlier
// versions, whose acknowledged floor it takes over as the position when
// there is none), so that the stream is verified in order. ctx bounds the
// start only; the auditor runs until [Auditor.Stop]. It returns an error
// wrapping [ErrInvalid] for a missing or invalid org or for a central event
// stream without the subjects of [authz.CentralEventSubjects] (provisioned
// by an earlier version: run [edgekit.Hub.Provision]), or the JetStream
// error, such as jetstream.ErrStreamNotFound (wrapped) before the hub is
// provisioned.
func StartAuditor(ctx context.Context, js jetstream.JetStream, cfg AuditorConfig) (*Auditor, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: auditor: nil JetStream", ErrInvalid)
	}
	evCfg, err := authz.CentralEventStreamConfig(cfg.Org)
	if err != nil {
		return nil, fmt.Errorf("%w: auditor: org %q: %w", ErrInvalid, cfg.Org, err)
	}
	if cfg.Keys == nil {
		return nil, fmt.Errorf("%w: auditor: no audit keys (AuditorConfig.Keys)", ErrInvalid)
	}
	if cfg.Durable == "" {
		cfg.Durable = DefaultAuditorDurable
	}
	if cfg.StateBucket == "" {
		cfg.StateBucket = "audit-" + cfg.Org
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultAuditorTimeout
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultAuditorPoll
	}
	if cfg.Origins == nil {
		if cfg.Origins, err = authz.NewSourceTable(cfg.Org); err != nil {
			return nil, fmt.Errorf("%w: auditor: org %q: %w", ErrInvalid, cfg.Org, err)
		}
	} else if cfg.Origins.Org() != cfg.Org {
		return nil, fmt.Errorf("%w: auditor: Origins is the table of org %q, not %q", ErrInvalid, cfg.Origins.Org(), cfg.Org)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultAuditorBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IDs == nil {
		cfg.IDs = &message.IDGenerator{Now: cfg.Now}
	}
	a := &Auditor{
		js: js, cfg: cfg,
		log:    cfg.Logger.With(message.LogKeyOrg, cfg.Org),
		stream: evCfg.Name,
		filter: cfg.Org + ".*.*.*." + string(topic.Event),
		edges:  map[string]*auditEdge{},
		dirty:  map[string]bool{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	a.origins = cfg.Origins
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	// Alarms go into central's event stream on its own subjects, which
	// streams provisioned by an earlier version lack.
	str, err := js.Stream(ctx, a.stream)
	if err != nil {
		return nil, fmt.Errorf("access: auditor: central event stream %s: %w", a.stream, err)
	}
	for _, subj := range authz.CentralEventSubjects(cfg.Org) {
		if !slices.Contains(str.CachedInfo().Config.Subjects, subj) {
			return nil, fmt.Errorf("%w: auditor: central event stream %s does not capture %s, where alarms go; provision it with edgekit.Hub.Provision",
				ErrInvalid, a.stream, subj)
		}
	}
	a.state, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.StateBucket, Description: "Lintel audit: verified chain head of each edge",
		Storage: jetstream.FileStorage, History: 1, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("access: auditor state bucket %s: %w", cfg.StateBucket, err)
	}
	if err := a.openConsumer(ctx); err != nil {
		return nil, err
	}
	if err := a.catchUp(ctx); err != nil {
		return nil, err
	}
	go a.run()
	return a, nil
}

// Stop stops the auditor after the events of the current fetch are
// verified and acknowledged, and returns once it has stopped: within about
// [AuditorConfig] Poll. It is idempotent.
func (a *Auditor) Stop() {
	a.stopOnce.Do(func() { close(a.stop) })
	<-a.done
}

// Done is closed when the auditor has stopped.
func (a *Auditor) Done() <-chan struct{} { return a.done }

// Stats returns a snapshot of the auditor's counters.
func (a *Auditor) Stats() AuditorStats {
	return AuditorStats{
		Verified:      a.verified.Load(),
		Duplicates:    a.duplicates.Load(),
		Breaks:        a.breaks.Load(),
		RevokedGrants: a.revokedGrants.Load(),
		ForgedSys:     a.forged.Load(),
		Refused:       a.refused.Load(),
		Unchained:     a.unchained.Load(),
		NotAuthentic:  a.notAuthentic.Load(),
		Skipped:       a.skipped.Load(),
		Errors:        a.errs.Load(),
		Alarms:        a.alarms.Load(),
	}
}

func (a *Auditor) stopping() bool {
	select {
	case <-a.stop:
		return true
	default:
		return false
	}
}

// run fetches and processes batches until Stop.
func (a *Auditor) run() {
	defer close(a.done)
	defer a.closeReader()
	backoff := time.Duration(0)
	for !a.stopping() {
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-a.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		if err := a.batch(); err != nil {
			a.errs.Add(1)
			backoff = min(max(2*backoff, 100*time.Millisecond), auditorMaxBackoff)
			a.log.Warn("audit batch failed; retrying", message.LogKeyError, err, "in", backoff)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeout)
				if err := a.openConsumer(ctx); err != nil {
					a.log.Warn("audit consumer", message.LogKeyError, err)
				}
				cancel()
			}
			continue
		}
		backoff = 0
	}
}

// auditMsg is one event to process, from a fetch or read from the stream.
type auditMsg struct {
	subject     string
	header      nats.Header
	data        []byte
	streamSeq   uint64
	redelivered bool
	msg         jetstream.Msg // nil when read from the stream
}

// toAuditMsg reads the metadata of a fetched message.
func toAuditMsg(m jetstream.Msg) (*auditMsg, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("access: auditor: message metadata: %w", err)
	}
	return &auditMsg{subject: m.Subject(), header: m.Headers(), data: m.Data(),
		streamSeq: md.Sequence.Stream, redelivered: md.NumDelivered > 1, msg: m}, nil
}

// persist writes the state of every edge changed since the last persist.
func (a *Auditor) persist(ctx context.Context) error {
	for edge := range a.dirty {
		e := a.edges[edge]
		data, _ := json.Marshal(auditState{ChainHead: e.v.Head(), Through: e.through})
		if _, err := a.state.Put(ctx, edge, data); err != nil {
			return fmt.Errorf("access: auditor: persist head of %s: %w", edge, err)
		}
		delete(a.dirty, edge)
	}
	return nil
}

// forgetEdges drops what the auditor keeps in memory, after a failed
// persist: the edges' state is read again from the bucket, and the events
// handed back are verified again against it.
func (a *Auditor) forgetEdges() {
	clear(a.edges)
	clear(a.dirty)
}

// edge returns the auditor's record of edge, loading its persisted state on
// first use.
func (a *Auditor) edge(ctx context.Context, edge string) (*auditEdge, error) {
	if e := a.edges[edge]; e != nil {
		return e, nil
	}
	var st auditState
	entry, err := a.state.Get(ctx, edge)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, fmt.Errorf("access: auditor: head of %s: %w", edge, err)
	default:
		if err := json.Unmarshal(entry.Value(), &st); err != nil {
			// A record that does not parse would make every event of the
			// edge an alarm; start the edge over, loudly.
			a.log.Error("audit state of edge unreadable; verifying it from scratch", message.LogKeyEdge, edge, message.LogKeyError, err)
			st = auditState{}
		}
	}
	e := &auditEdge{v: NewChainVerifier(edge, st.ChainHead), through: st.Through}
	a.edges[edge] = e
	return e, nil
}

// process handles one event. It reports whether it was a decision event of
// the chain, and returns an error only when the event must be tried again
// (an alarm or a lookup that failed); a malformed event is counted and
// logged, never an error.
func (a *Auditor) process(ctx context.Context, ev *auditMsg) (bool, error) {
	subj, err := topic.Parse(ev.subject)
	if err != nil {
		a.skipped.Add(1)
		return false, nil
	}
	if refused, err := a.checkOrigin(ctx, subj, ev); refused || err != nil {
		return false, err // see auditor_origin.go
	}
	if subj.Type == topic.ThingTypeSystem {
		a.skipped.Add(1) // central's own, such as this auditor's alarms
		return false, nil
	}
	if subj.Type != topic.ThingTypeAccess || (!bytes.Contains(ev.data, nameGranted) && !bytes.Contains(ev.data, nameDenied)) {
		a.skipped.Add(1) // decisions are recorded on the access thing only (see [DecisionThing])
		return false, nil
	}
	var env message.Envelope
	if err := message.DecodeMsg(&nats.Msg{Subject: ev.subject, Header: ev.header, Data: ev.data}, &env, nil); err != nil {
		a.errs.Add(1)
		a.log.Warn("audit: undecodable event", message.LogKeySubject, ev.subject, message.LogKeyError, err)
		return false, nil
	}
	if env.Type != topic.Event || (env.Name != message.NameAccessGranted && env.Name != message.NameAccessDenied) {
		a.skipped.Add(1)
		return false, nil
	}
	d, err := message.DecodePayload[message.AccessDecision](&env)
	if err != nil {
		a.errs.Add(1)
		a.log.Warn("audit: undecodable decision", message.LogKeySubject, ev.subject, message.LogKeyMsgID, env.ID.String(), message.LogKeyError, err)
		return false, nil
	}
	edge := env.Source.Edge
	if ok, err := a.authentic(ctx, subj, ev, &env); !ok || err != nil {
		return false, err // not the edge's: raised, and kept out of the chain
	}
	if d.AuditSeq == 0 {
		return false, a.unchainedDecision(ctx, subj, ev, &env, &d)
	}
	e, err := a.edge(ctx, edge)
	if err != nil {
		return false, err
	}
	if ev.streamSeq <= e.through || (ev.redelivered && d.AuditSeq < e.v.Head().Seq) {
		a.duplicates.Add(1) // verified before: redelivered, or a replay of the stream
		return true, nil
	}
	brk, isNew, undo := e.v.verify(env.ID, ev.data, &d)
	if !isNew {
		a.duplicates.Add(1)
		e.through = ev.streamSeq
		a.dirty[edge] = true
		return true, nil
	}
	if brk != nil {
		alarm := brk.Alarm()
		a.log.Warn("audit chain broken", authz.LogKeySecurity, authz.SecurityAuditAlarm, message.LogKeyEdge, edge, "break", brk.String())
		if err := a.publish(ctx, edge, NameAuditChainBroken, env.ID, "chain:"+string(brk.Kind)+":"+env.ID.String(), alarm); err != nil {
			e.v.undo(undo)
			return false, err
		}
		a.breaks.Add(1)
	}
	if err := a.checkGrant(ctx, edge, &env, &d); err != nil {
		e.v.undo(undo)
		return false, err
	}
	if brk == nil {
		a.verified.Add(1)
	}
	e.through = ev.streamSeq
	a.dirty[edge] = true
	return true, nil
}

// checkGrant raises NameRevokedGrant for a grant of a credential revoked at
// central before the decision, which the edge did not know (see [Auditor]).
func (a *Auditor) checkGrant(ctx context.Context, edge string, env *message.Envelope, d *message.AccessDecision) error {
	if !d.Granted || d.Credential == "" {
		return nil
	}
	kv, err := a.credentials(ctx, edge)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil // the edge is no longer registered
	}
	if err != nil {
		return err
	}
	entry, err := kv.Get(ctx, CredentialKey(d.Credential))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil
	}
	if err != nil {
		if e := a.edges[edge]; e != nil {
			e.creds = nil // open the bucket again next time
		}
		return fmt.Errorf("access: auditor: credential %s at %s: %w", d.Credential, edge, err)
	}
	c, err := ParseCredential(d.Credential, entry.Value())
	if err != nil {
		a.log.Warn("audit: stored credential does not parse", message.LogKeyEdge, edge, logKeyCredential, d.Credential, message.LogKeyError, err)
		return nil
	}
	if c.State != StateRevoked || entry.Revision() <= d.CredentialSetVersion || entry.Created().After(env.Time) {
		return nil
	}
	alarm := RevokedGrantAlarm{
		Decision: env.ID, DecisionTime: env.Time,
		Door: d.Door, Reader: env.Source.Code,
		Credential: d.Credential, Holder: c.Holder,
		Offline:         d.Offline,
		DecisionVersion: d.CredentialSetVersion, RevokedVersion: entry.Revision(),
		RevokedAt: entry.Created().UTC(), Reason: c.Reason,
	}
	a.log.Warn("audit: revoked credential granted", authz.LogKeySecurity, authz.SecurityAuditAlarm, message.LogKeyEdge, edge, logKeyCredential, d.Credential,
		logKeyDoor, d.Door, "offline", d.Offline, message.LogKeyMsgID, env.ID.String())
	if err := a.publish(ctx, edge, NameRevokedGrant, env.ID, "revoked:"+env.ID.String(), alarm); err != nil {
		return err
	}
	a.revokedGrants.Add(1)
	return nil
}

// credentials returns the credential bucket of edge on central.
func (a *Auditor) credentials(ctx context.Context, edge string) (jetstream.KeyValue, error) {
	e, err := a.edge(ctx, edge)
	if err != nil {
		return nil, err
	}
	if e.creds != nil {
		return e.creds, nil
	}
	n, err := authz.NamesFor(a.cfg.Org, edge)
	if err != nil {
		return nil, err
	}
	kv, err := a.js.KeyValue(ctx, n.CredentialBucket)
	if err != nil {
		return nil, fmt.Errorf("access: auditor: credential bucket of %s: %w", edge, err)
	}
	e.creds = kv
	return kv, nil
}

// publish stores an alarm about edge in central's event stream, with a
// deduplication ID derived from what it is about.
func (a *Auditor) publish(ctx context.Context, edge, name string, corr message.ID, dedup string, payload any) error {
	now := a.cfg.Now()
	e := &message.Envelope{
		ID:            a.cfg.IDs.NewAt(now),
		Time:          now.UTC(),
		Source:        AlarmThing(a.cfg.Org, edge),
		Type:          topic.Event,
		Name:          name,
		CorrelationID: corr,
	}
	if err := message.SetPayload(e, payload); err != nil {
		return err
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		return err
	}
	msg.Header.Set(message.HeaderMsgID, "lintel-audit:"+dedup)
	if _, err := a.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(a.stream)); err != nil {
		return fmt.Errorf("access: auditor: alarm %s about %s: %w", name, edge, err)
	}
	a.alarms.Add(1)
	return nil
}
