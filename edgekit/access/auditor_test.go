package access_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// waitProcessed waits until the auditor has taken n decision events
// (verified, broken or duplicate).
func waitProcessed(tb testing.TB, a *access.Auditor, n uint64) access.AuditorStats {
	tb.Helper()
	var st access.AuditorStats
	waitFor(tb, "the auditor to take the decision events", func() bool {
		st = a.Stats()
		return st.Verified+st.Breaks+st.Duplicates >= n
	})
	return st
}

// chainAlarm decodes a chain alarm.
func chainAlarm(tb testing.TB, a cenAlarm) access.ChainAlarm {
	tb.Helper()
	p, err := message.DecodePayload[access.ChainAlarm](&a.env)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// eventID returns the envelope ID of msg.
func eventID(tb testing.TB, msg *nats.Msg) message.ID {
	tb.Helper()
	e, err := message.FromMsg(msg)
	if err != nil {
		tb.Fatal(err)
	}
	return e.ID
}

func TestAuditorIntactChain(t *testing.T) {
	s := newSite(t, siteOptions{noService: true})
	a := s.auditor(nil)
	// Two readers, one chain: the edge chains all its decisions.
	w := newChainWriter(t, siteR1, s.auditKey)
	const n = 20
	for i := range n {
		w.reader = access.DecisionThing("acme", "hq", siteR1.Code)
		d := cenGrant("front", s.id("a"), 3)
		if i%2 == 1 {
			w.reader = access.DecisionThing("acme", "hq", siteR2.Code)
			d = cenDeny("back", s.id("b"), 3)
		}
		s.publishEdge(w.next(d, time.Now()))
	}
	// Not decisions, and a decision that does not decode: skipped, counted.
	other := &message.Envelope{ID: message.ID{1}, Time: time.Now().UTC(), Source: siteR1, Type: topic.Event, Name: "door.forced_open"}
	msg, _ := other.ToMsg(nil)
	s.publishEdge(msg)
	bad := &message.Envelope{ID: message.ID{2}, Time: time.Now().UTC(), Source: access.DecisionThing("acme", "hq", "r1"), Type: topic.Event, Name: message.NameAccessGranted}
	if err := message.SetPayload(bad, "not a decision"); err != nil {
		t.Fatal(err)
	}
	msg, _ = bad.ToMsg(nil)
	s.publishEdge(msg)
	// One more good link after them: the stream was not blocked.
	w.reader = access.DecisionThing("acme", "hq", siteR1.Code)
	s.publishEdge(w.next(cenGrant("front", s.id("a"), 3), time.Now()))

	st := waitProcessed(t, a, n+1)
	waitFor(t, "the malformed decision to be counted", func() bool { st = a.Stats(); return st.Errors >= 1 && st.Skipped >= 1 })
	if st.Verified != n+1 || st.Breaks != 0 || st.Alarms != 0 || st.Errors != 1 {
		t.Fatalf("stats %+v, want %d verified and nothing else", st, n+1)
	}
	if as := s.alarms("hq"); len(as) != 0 {
		t.Fatalf("%d alarms in central's stream for an intact chain", len(as))
	}
	r := s.auditReport(func(r *access.AuditReport) bool { return r.Head.Seq == n+1 })
	if !r.Intact() || len(r.RevokedGrants) != 0 || r.Through == 0 || r.Head.Hash == "" {
		t.Fatalf("audit report %+v, want an intact chain of %d", r, n+1)
	}
}

// auditReport reads hq's audit report until done accepts it.
func (s *site) auditReport(done func(*access.AuditReport) bool) *access.AuditReport {
	s.tb.Helper()
	var r *access.AuditReport
	s.waitFor("the audit report", func() bool {
		var err error
		r, err = access.ReadAuditReport(siteCtx(s.tb), s.cjs, s.hub.EventStream(), "", "acme", "hq")
		if err != nil {
			s.tb.Fatal(err)
		}
		return done(r)
	})
	return r
}

func TestAuditorGap(t *testing.T) {
	s := newSite(t, siteOptions{noService: true})
	a := s.auditor(nil)
	w := newChainWriter(t, siteR1, s.auditKey)
	var msgs []*nats.Msg
	for range 6 {
		msgs = append(msgs, w.next(cenGrant("front", s.id("a"), 1), time.Now()))
	}
	for i, msg := range msgs {
		if i == 3 { // seq 4 is deleted: never reaches central
			continue
		}
		s.publishEdge(msg)
	}
	st := waitProcessed(t, a, 5)
	if st.Verified != 4 || st.Breaks != 1 {
		t.Fatalf("stats %+v, want 4 verified and 1 break", st)
	}
	var as []cenAlarm
	waitFor(t, "the alarm in central's stream", func() bool { as = s.alarms("hq"); return len(as) > 0 })
	if len(as) != 1 || as[0].sourced || as[0].env.Name != access.NameAuditChainBroken {
		t.Fatalf("alarms %+v, want one audit.chain_broken raised by central", as)
	}
	e := as[0].env
	if e.Source != access.AlarmThing("acme", "hq") || e.Subject().String() != "acme.hq._sys.audit.evt" || e.CorrelationID != eventID(t, msgs[4]) {
		t.Fatalf("alarm envelope %+v", e)
	}
	if p := chainAlarm(t, as[0]); p.Kind != access.BreakGap || p.ExpectedSeq != 4 || p.GotSeq != 5 || p.Event != eventID(t, msgs[4]) {
		t.Fatalf("alarm %+v, want a gap expecting 4 at 5", p)
	}
	r := s.auditReport(func(r *access.AuditReport) bool { return len(r.Breaks) > 0 })
	if r.Intact() || len(r.Breaks) != 1 || r.Breaks[0].Alarm.Kind != access.BreakGap || r.Breaks[0].Alarm.GotSeq != 5 || r.Breaks[0].Time.IsZero() {
		t.Fatalf("audit report %+v, want the gap", r)
	}
	if _, err := access.ReadAuditReport(siteCtx(t), s.cjs, s.hub.EventStream(), "", "acme", "no such edge"); err == nil {
		t.Error("ReadAuditReport of a bad edge code: no error")
	}
}

func TestAuditorModified(t *testing.T) {
	s := newSite(t, siteOptions{noService: true})
	a := s.auditor(nil)
	w := newChainWriter(t, siteR1, s.auditKey)
	var msgs []*nats.Msg
	for range 4 {
		msgs = append(msgs, w.next(cenGrant("front", s.id("a"), 1), time.Now()))
	}
	// Event 3 is altered on its way: one byte of its payload.
	i := bytes.Index(msgs[2].Data, []byte("front"))
	msgs[2].Data = bytes.Clone(msgs[2].Data)
	msgs[2].Data[i] = 'F'
	for _, msg := range msgs {
		s.publishEdge(msg)
	}
	// The altered record no longer carries the edge's signature: it is
	// not the edge's, stays out of the chain, and the edge's own record 3
	// is missing when 4 arrives.
	var seen access.AuditorStats
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("auditor stats %+v, alarms %v", seen, s.alarmKinds())
		}
	})
	waitFor(t, "the auditor to take the records", func() bool {
		seen = a.Stats()
		return seen.Verified+seen.Breaks+seen.NotAuthentic >= 4
	})
	if st := a.Stats(); st.Verified != 2 || st.NotAuthentic != 1 || st.Breaks != 1 {
		t.Fatalf("stats %+v, want 2 verified, 1 not authentic and 1 break", st)
	}
	var as []cenAlarm
	waitFor(t, "the alarms in central's stream", func() bool { as = s.alarms("hq"); return len(as) >= 2 })
	p, q := chainAlarm(t, as[0]), chainAlarm(t, as[1])
	if len(as) != 2 || p.Kind != access.BreakBadSignature || p.Event != eventID(t, msgs[2]) {
		t.Fatalf("alarms %d, first %+v; want bad_signature for record 3", len(as), p)
	}
	if q.Kind != access.BreakGap || q.ExpectedSeq != 3 || q.GotSeq != 4 || q.Event != eventID(t, msgs[3]) {
		t.Fatalf("second alarm %+v; want a gap at 3 found by record 4", q)
	}
}

func TestAuditorRestart(t *testing.T) {
	s := newSite(t, siteOptions{noService: true})
	a := s.auditor(nil)
	w := newChainWriter(t, siteR1, s.auditKey)
	publish := func(skip bool) {
		msg := w.next(cenGrant("front", s.id("a"), 1), time.Now())
		if !skip {
			s.publishEdge(msg)
		}
	}
	publish(false) // 1
	publish(true)  // 2 never arrives
	publish(false) // 3: gap
	publish(false) // 4
	waitProcessed(t, a, 3)
	a.Stop()
	if got := len(s.alarms("hq")); got != 1 {
		t.Fatalf("%d alarms before the restart, want 1", got)
	}

	// A new auditor resumes where the first stopped.
	publish(false) // 5
	publish(false) // 6
	a2 := s.auditor(nil)
	st := waitProcessed(t, a2, 2)
	if st.Verified != 2 || st.Breaks != 0 || st.Duplicates != 0 {
		t.Fatalf("after the restart: %+v, want 2 verified", st)
	}
	a2.Stop()

	// Even an auditor that lost its position, and reads the whole stream
	// again, raises nothing twice: every event is at or behind its edge's
	// persisted position.
	setAuditPosition(t, s, 0)
	publish(false) // 7
	a3 := s.auditor(nil)
	st = waitProcessed(t, a3, 6)
	if st.Verified != 1 || st.Breaks != 0 || st.Duplicates != 5 {
		t.Fatalf("after replaying the stream: %+v, want 1 verified and 5 duplicates", st)
	}
	if got := len(s.alarms("hq")); got != 1 {
		t.Fatalf("%d alarms after the restarts, want still 1", got)
	}
}

func TestAuditorRevokedGrant(t *testing.T) {
	s := newSite(t, siteOptions{noService: true})
	m := s.manager()
	a := s.auditor(nil)
	ctx := siteCtx(t)
	id := s.id("0099")
	v1, err := m.Put(ctx, "hq", &access.Credential{ID: id, Holder: "dave", State: access.StateActive, Doors: []string{"front"}})
	if err != nil {
		t.Fatal(err)
	}
	w := newChainWriter(t, siteR1, s.auditKey)
	// An online grant, before the revocation: fine.
	before := w.next(cenGrant("front", id, v1), time.Now())
	s.publishEdge(before)
	waitProcessed(t, a, 1)

	s.proxy.Cut()
	waitFor(t, "the link to go down", func() bool { return !s.node.LinkUp() })
	revs, err := m.Revoke(ctx, id, "stolen")
	if err != nil {
		t.Fatal(err)
	}
	// The edge, cut off, still grants with the set it has.
	d := cenGrant("front", id, v1)
	d.Offline = true
	offline := w.next(d, time.Now().Add(time.Millisecond))
	s.publishEdge(offline)
	denied := w.next(cenDeny("back", s.id("other"), v1), time.Now())
	s.publishEdge(denied)
	s.proxy.Restore()

	st := waitProcessed(t, a, 3)
	if st.RevokedGrants != 1 || st.Breaks != 0 {
		t.Fatalf("stats %+v, want one revoked grant", st)
	}
	rg := cenNamed(s.alarms("hq"), access.NameRevokedGrant)
	if len(rg) != 1 {
		t.Fatalf("%d revoked-grant alarms, want 1", len(rg))
	}
	p, err := message.DecodePayload[access.RevokedGrantAlarm](&rg[0].env)
	if err != nil {
		t.Fatal(err)
	}
	offID := eventID(t, offline)
	if p.Credential != id || p.Door != "front" || p.Reader != "r1" || p.Holder != "dave" || !p.Offline ||
		p.Decision != offID || rg[0].env.CorrelationID != offID || p.DecisionVersion != v1 || p.RevokedVersion != revs["hq"] ||
		p.Reason != "stolen" || p.RevokedAt.IsZero() || p.RevokedAt.After(p.DecisionTime) {
		t.Fatalf("revoked grant alarm %+v", p)
	}
	r := s.auditReport(func(r *access.AuditReport) bool { return len(r.RevokedGrants) > 0 && r.Head.Seq == 3 })
	if !r.Intact() || len(r.RevokedGrants) != 1 || r.RevokedGrants[0].Alarm.Decision != offID {
		t.Fatalf("audit report %+v, want an intact chain with the revoked grant", r)
	}
}

func TestAuditorForgedSystemEvent(t *testing.T) {
	s := newSite(t, siteOptions{noService: true})
	a := s.auditor(nil)
	// A compromised edge service publishes, locally, what looks like
	// central's alarm about itself; sourcing takes it to central.
	fake := &message.Envelope{ID: message.ID{7}, Time: time.Now().UTC(), Source: access.AlarmThing("acme", "hq"),
		Type: topic.Event, Name: access.NameAuditChainBroken}
	if err := message.SetPayload(fake, access.ChainAlarm{Kind: access.BreakGap}); err != nil {
		t.Fatal(err)
	}
	msg, err := fake.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	s.publishEdge(msg)
	waitFor(t, "the forged event to be flagged", func() bool { return a.Stats().ForgedSys == 1 })
	var as []cenAlarm
	waitFor(t, "the alarm in central's stream", func() bool { as = s.alarms("hq"); return len(as) == 2 })
	if !as[0].sourced || as[0].env.ID != fake.ID {
		t.Fatalf("first event on the alarm subject: %+v, want the forged one, sourced", as[0])
	}
	p := chainAlarm(t, as[1])
	if as[1].sourced || p.Kind != access.BreakForged || p.Event != fake.ID || p.Subject != "acme.hq._sys.audit.evt" {
		t.Fatalf("alarm %+v (sourced %v)", p, as[1].sourced)
	}
	if st := a.Stats(); st.Alarms != 1 {
		t.Fatalf("stats %+v: the auditor's own alarm must not count as forged", st)
	}
}

// setAuditPosition sets the auditor's persisted position in central's
// event stream (0 deletes it), as a crash at the wrong moment leaves it.
func setAuditPosition(t *testing.T, s *site, seq uint64) {
	t.Helper()
	kv, err := s.cjs.KeyValue(siteCtx(t), "audit-acme")
	if err != nil {
		t.Fatal(err)
	}
	key := "position." + access.DefaultAuditorDurable
	if seq == 0 {
		err = kv.Delete(siteCtx(t), key)
	} else {
		_, err = kv.Put(siteCtx(t), key, []byte(fmt.Sprintf(`{"seq":%d}`, seq)))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestAuditorCatchUpAfterCrash crashes an auditor after it persisted the
// edges' heads and before it persisted its position: the next one reads
// those events again from the position, takes them as verified before,
// and verifies what follows, with no alarm. Nothing of it depends on an
// acknowledgement: every consumer the auditors leave on central's stream
// acknowledges nothing, so an edge has none to forge.
func TestAuditorCatchUpAfterCrash(t *testing.T) {
	s := newSite(t, siteOptions{noService: true})
	a := s.auditor(nil)
	w := newChainWriter(t, siteR1, s.auditKey)
	next := func() *nats.Msg { return w.next(cenGrant("front", s.id("a"), 1), time.Now()) }
	s.publishEdge(next())
	s.publishEdge(next())
	waitProcessed(t, a, 2)
	a.Stop()
	str, err := s.cjs.Stream(siteCtx(t), s.hub.EventStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(siteCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	before := info.State.LastSeq // through event 2

	a2 := s.auditor(nil)
	s.publishEdge(next())
	s.publishEdge(next())
	waitProcessed(t, a2, 2)
	for name := range str.ListConsumers(siteCtx(t)).Info() {
		if name.Config.AckPolicy != jetstream.AckNonePolicy {
			t.Errorf("consumer %s on central's event stream has ack policy %v", name.Name, name.Config.AckPolicy)
		}
	}
	a2.Stop()
	setAuditPosition(t, s, before) // as if a2 crashed before persisting its position

	s.publishEdge(next())
	a3 := s.auditor(nil)
	st := waitProcessed(t, a3, 3)
	if st.Verified != 1 || st.Duplicates != 2 || st.Breaks != 0 {
		t.Fatalf("after the crash: %+v, want 2 read again and 1 verified, no break", st)
	}
	if as := s.alarms("hq"); len(as) != 0 {
		t.Fatalf("%d alarms, want none", len(as))
	}
}
