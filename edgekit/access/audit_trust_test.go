package access_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// alarmKinds returns the kinds of the chain alarms central raised about
// edge hq.
func (s *site) alarmKinds() []access.BreakKind {
	s.tb.Helper()
	var out []access.BreakKind
	for _, a := range cenNamed(s.alarms("hq"), access.NameAuditChainBroken) {
		out = append(out, chainAlarm(s.tb, a).Kind)
	}
	return out
}

// centralRecords returns the decision records central holds.
func (s *site) centralRecords() []storedDecision {
	s.tb.Helper()
	return decisionEvents(s.tb, s.cjs, s.hub.EventStream())
}

// TestReaderCannotForgeDecision is the attack of a reader that forges a
// grant. The reader may not publish on the subjects decisions are recorded
// on (NATS refuses it); the same grant on its own evt subject is stored
// like any event of the reader but is not a decision; and a correctly
// chained grant injected into the edge's platform stream by other means
// (the edge's own connection, without the audit key) is reported as not
// authentic and kept out of the chain, so the edge's next real decision is
// verified, not blamed as a fork.
func TestReaderCannotForgeDecision(t *testing.T) {
	s := newSite(t, siteOptions{})
	a := s.auditor(nil)
	s.synced(s.put(s.card("1001")))
	reader := s.device(siteR1)
	request(t, reader, "front", "1001")
	var real []storedDecision
	waitFor(t, "the first record at central", func() bool { real = s.centralRecords(); return len(real) == 1 })
	// The worst case: the reader knows the exact bytes of the last record.
	head := access.ChainHead{Seq: real[0].d.AuditSeq, Hash: access.EventHash(real[0].data)}
	forge := func(src topic.Thing, key nkeys.KeyPair) *nats.Msg {
		w := newChainWriter(t, siteR1, key).fork(head)
		w.reader = src
		d := message.AccessDecision{Granted: true, Door: "front", Holder: "mallory", CredentialSetVersion: 99}
		return w.next(d, time.Now())
	}

	// 1. On the decision subjects: refused by NATS.
	violations := make(chan string, 4)
	user := authz.DeviceUser(siteR1)
	nc, err := nats.Connect(s.node.ClientURL(), nats.UserInfo(user, s.password(user)),
		nats.CustomInboxPrefix(siteR1.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				violations <- err.Error()
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	decision := access.DecisionThing("acme", "hq", "r1")
	forged := forge(decision, nil)
	for _, subject := range []string{decision.Subject(topic.Event).String(), s.node.Names().PlatformSubject(decision, topic.Event)} {
		m := *forged
		m.Subject = subject
		if err := nc.PublishMsg(&m); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-violations:
			if !strings.Contains(v, subject) {
				t.Errorf("violation %q, want one for %s", v, subject)
			}
		case <-time.After(siteWait):
			t.Fatalf("the reader published on %s unhindered", subject)
		}
	}

	// 2. On its own evt subject: an event of the reader, not a decision.
	own := forge(siteR1, s.auditKey) // even signed with the real key (it is not the reader's)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(siteCtx(t), own); err != nil {
		t.Fatalf("the reader's own event: %v", err)
	}
	ownID := eventID(t, own)
	waitFor(t, "the reader's event at central", func() bool {
		str, err := s.cjs.Stream(siteCtx(t), s.hub.EventStream())
		if err != nil {
			return false
		}
		m, err := str.GetLastMsgForSubject(siteCtx(t), siteR1.Subject(topic.Event).String())
		return err == nil && m.Header.Get(message.HeaderMsgID) == ownID.String()
	})

	// 3. Injected into the platform stream without the audit key: once
	// unsigned, once signed with a key that is not the edge's.
	s.publishEdge(forge(decision, nil))
	other, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	s.publishEdge(forge(decision, other))

	// The edge's next real decision.
	request(t, reader, "front", "1001")
	waitFor(t, "the auditor to take every record", func() bool {
		st := a.Stats()
		return st.Verified >= 2 && st.NotAuthentic >= 2
	})
	st := a.Stats()
	if st.Verified != 2 || st.NotAuthentic != 2 || st.Breaks != 0 {
		t.Fatalf("auditor %+v: want the 2 real decisions verified, 2 not authentic, no break", st)
	}
	kinds := s.alarmKinds()
	if len(kinds) != 2 || kinds[0] != access.BreakUnsigned || kinds[1] != access.BreakBadSignature {
		t.Fatalf("alarms %v, want unsigned then bad_signature (and no fork)", kinds)
	}
	recs := s.centralRecords()
	var auth []storedDecision
	for _, r := range recs {
		if _, err := access.VerifyRecord(s.st.AuditPublicKeys("acme", "hq"), r.subject, r.header, r.data); err == nil {
			auth = append(auth, r)
		}
	}
	if len(auth) != 2 || auth[1].d.AuditSeq != 2 || auth[1].d.AuditPrev != access.EventHash(auth[0].data) {
		t.Fatalf("authentic records at central: %d; want the edge's 1 and 2, chained", len(auth))
	}
}

// TestChainHeadPersistedAcrossDrainedRestart: the edge writes its chain
// head to its state bucket once a record is stored, so that after central
// has drained the platform stream and the edge restarts (node and
// service), the chain goes on where it was: no fork at central.
func TestChainHeadPersistedAcrossDrainedRestart(t *testing.T) {
	s := newSite(t, siteOptions{})
	a := s.auditor(nil)
	s.synced(s.put(s.card("2001")))
	reader := s.device(siteR1)
	request(t, reader, "front", "2001")
	request(t, reader, "front", "2002")
	waitFor(t, "both records at central", func() bool { return len(s.centralRecords()) == 2 })

	kv, err := s.node.JetStream().KeyValue(siteCtx(t), access.StateBucket("acme", "hq"))
	if err != nil {
		t.Fatal(err)
	}
	var saved access.ChainHead
	waitFor(t, "the chain head in the state bucket", func() bool {
		e, err := kv.Get(siteCtx(t), "head")
		return err == nil && json.Unmarshal(e.Value(), &saved) == nil && saved.Seq == 2
	})
	if want := access.EventHash(s.centralRecords()[1].data); saved.Hash != want {
		t.Fatalf("saved head %+v, want the hash of record 2 %s", saved, want)
	}
	waitFor(t, "central to drain the edge's platform stream", func() bool {
		str, err := s.node.JetStream().Stream(siteCtx(t), s.node.Names().PlatformStream)
		return err == nil && len(decisionEvents(t, s.node.JetStream(), s.node.Names().PlatformStream)) == 0 && str.CachedInfo().State.LastSeq > 0
	})

	s.svc.Stop()
	s.node.Stop()
	s.node = s.startNode()
	s.waitFor("the leaf link", s.node.LinkUp)
	s.svc = s.startService()
	reader = s.device(siteR1)
	request(t, reader, "front", "2001")

	var recs []storedDecision
	waitFor(t, "the third record at central", func() bool { recs = s.centralRecords(); return len(recs) == 3 })
	if recs[2].d.AuditSeq != 3 || recs[2].d.AuditPrev != access.EventHash(recs[1].data) {
		t.Fatalf("after the restart: seq %d prev %q, want 3 chaining record 2", recs[2].d.AuditSeq, recs[2].d.AuditPrev)
	}
	waitFor(t, "the auditor to verify all three", func() bool { return a.Stats().Verified == 3 })
	if st := a.Stats(); st.Breaks != 0 || st.NotAuthentic != 0 {
		t.Fatalf("auditor %+v after the restart: want no alarm", st)
	}
}

// TestHostileReaderFloodsEdge: with the link down, a hostile reader
// floods the edge's event stream. It gets its own share and no more
// (per-subject limit, discard new per subject) and cannot store an
// oversized message; the other devices' events are still stored, and every
// decision record is stored (the platform stream is the access service's
// alone) and reaches central, verified, once the link is back.
func TestHostileReaderFloodsEdge(t *testing.T) {
	const share = 20
	s := newSite(t, siteOptions{node: func(c *edgekit.NodeConfig) {
		c.EventMaxMsgsPerSubject = share
		c.EventMaxMsgSize = 4 << 10
	}})
	a := s.auditor(nil)
	s.synced(s.put(s.card("3001")))
	hostile, sensor, reader := s.device(siteR2), s.device(siteDS1), s.device(siteR1)
	s.proxy.Cut()
	s.waitFor("the link to drop", func() bool { return !s.node.LinkUp() })

	stored, full := 0, 0
	for range 2 * share {
		_, err := hostile.PublishEvent(siteCtx(t), "flood", map[string]string{"x": "y"})
		switch {
		case err == nil:
			stored++
		case errors.Is(err, devicekit.ErrStreamFull):
			full++
		default:
			t.Fatalf("flood: %v", err)
		}
	}
	// The reader's own birth went to its state subject, not its evt one.
	if stored != share || full != share {
		t.Fatalf("hostile reader: %d stored, %d refused; want %d each", stored, full, share)
	}
	if _, err := hostile.PublishEvent(siteCtx(t), "big", map[string]string{"x": strings.Repeat("x", 8<<10)}); err == nil {
		t.Fatal("an oversized event was stored")
	}
	for i := range 5 {
		if _, err := sensor.PublishEvent(siteCtx(t), "door.opened", map[string]int{"i": i}); err != nil {
			t.Fatalf("another device's event %d during the flood: %v", i, err)
		}
	}
	const decisions = 30
	for range decisions {
		if d := request(t, reader, "front", "3001"); !d.Granted || !d.Offline {
			t.Fatalf("decision during the flood %+v, want an offline grant", d)
		}
	}
	if st := s.svc.Stats(); st.AuditFailures != 0 || st.AuditLost != 0 {
		t.Fatalf("service %+v: a decision record was not stored", st)
	}
	if got := len(decisionEvents(t, s.node.JetStream(), s.node.Names().PlatformStream)); got != decisions {
		t.Fatalf("%d decision records held at the edge, want %d", got, decisions)
	}

	s.proxy.Restore()
	waitFor(t, "every record verified at central", func() bool { return a.Stats().Verified == decisions })
	if st := a.Stats(); st.Breaks != 0 || st.NotAuthentic != 0 {
		t.Fatalf("auditor %+v", st)
	}
}

// logBuffer is a concurrency-safe buffer for a JSON log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// TestCardNumberNeverStored: a clear card number presented at a reader
// reaches no stream, key-value bucket or log, at the edge or at central:
// only its keyed hash does.
func TestCardNumberNeverStored(t *testing.T) {
	const known, unknown = "5412751234123456", "4000123412349876"
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newSite(t, siteOptions{
		node:    func(c *edgekit.NodeConfig) { c.Logger = log },
		service: func(_ *site, c *access.ServiceConfig) { c.Logger = log },
	})
	a := s.auditor(func(c *access.AuditorConfig) { c.Logger = log })
	c := s.card(known)
	c.Holder = "alice" // not the number, as s.card makes it
	s.synced(s.put(c))
	reader := s.device(siteR1)
	request(t, reader, "front", known)
	request(t, reader, "front", unknown)
	if _, err := reader.Request(siteCtx(t), message.NameAccessRequested, message.AccessRequest{Door: "nowhere", Credential: message.Credential(unknown)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the records verified at central", func() bool { return a.Stats().Verified == 3 })

	scanned := 0
	for _, side := range []struct {
		name string
		js   jetstream.JetStream
	}{{"edge", s.node.JetStream()}, {"central", s.cjs}} {
		names := side.js.StreamNames(siteCtx(t))
		for name := range names.Name() {
			str, err := side.js.Stream(siteCtx(t), name)
			if err != nil {
				t.Fatal(err)
			}
			st := str.CachedInfo().State
			for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
				m, err := str.GetMsg(siteCtx(t), seq)
				if err != nil {
					continue
				}
				scanned++
				hdr, _ := json.Marshal(m.Header)
				for _, card := range []string{known, unknown} {
					if bytes.Contains(m.Data, []byte(card)) || bytes.Contains(hdr, []byte(card)) || strings.Contains(m.Subject, card) {
						t.Errorf("%s stream %s seq %d (%s) holds a clear card number", side.name, name, seq, m.Subject)
					}
				}
			}
		}
		if err := names.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if scanned == 0 {
		t.Fatal("no stored message scanned")
	}
	got := logs.Bytes()
	if len(got) == 0 {
		t.Fatal("nothing logged")
	}
	for _, card := range []string{known, unknown} {
		if bytes.Contains(got, []byte(card)) {
			t.Errorf("the log holds the clear card number %s", card)
		}
	}
	// The hash is what the records carry.
	if recs := s.centralRecords(); len(recs) != 3 || recs[0].d.Credential != s.id(known) {
		t.Errorf("records at central: %d, first credential %q; want the known card's hash", len(recs), recs[0].d.Credential)
	}
}

// TestRecordNotStoredFailsClosed: when the platform stream cannot store a
// decision's record (here: full, the link down), the door fails closed:
// the reader gets an error, no lock is unlocked, and the record is
// published again until it is stored, so central still gets an unbroken
// chain.
func TestRecordNotStoredFailsClosed(t *testing.T) {
	s := newSite(t, siteOptions{node: func(c *edgekit.NodeConfig) { c.PlatformStreamMaxBytes = 4 << 10 }})
	a := s.auditor(nil)
	s.synced(s.put(s.card("4001")))
	reader := s.device(siteR1)
	s.proxy.Cut()
	s.waitFor("the link to drop", func() bool { return !s.node.LinkUp() })
	granted := 0
	var refused error
	for i := 0; i < 200 && refused == nil; i++ {
		e, err := reader.Request(siteCtx(t), message.NameAccessRequested,
			message.AccessRequest{Door: "front", Kind: message.CredentialCard, Credential: message.Credential("4001")})
		if err != nil {
			refused = err
			break
		}
		if e.Name != message.NameAccessGranted {
			t.Fatalf("reply %s", e.Name)
		}
		granted++
	}
	if refused == nil || granted == 0 {
		t.Fatalf("%d grants and no refusal: the platform stream never filled", granted)
	}
	// The last grant's unlock is sent after its answer, so the reader may
	// have its refusal before the service counts that unlock.
	var st access.ServiceStats
	waitFor(t, "the unlock of every grant counted", func() bool {
		st = s.svc.Stats()
		return st.Unlocks >= uint64(granted)
	})
	if st.AuditFailures != 1 || st.Unlocks != uint64(granted) || st.AuditLost != 0 {
		t.Fatalf("service %+v after %d grants and a refusal (%v): want 1 audit failure and %d unlocks", st, granted, refused, granted)
	}

	// Once central drains the stream, the record that was refused is
	// stored after all, in its place in the chain.
	s.proxy.Restore()
	waitFor(t, "every record verified at central", func() bool { return a.Stats().Verified == uint64(granted+1) })
	if ast := a.Stats(); ast.Breaks != 0 || ast.NotAuthentic != 0 {
		t.Fatalf("auditor %+v", ast)
	}
	if st := s.svc.Stats(); st.AuditLost != 0 {
		t.Fatalf("service %+v: a record was lost", st)
	}
}
