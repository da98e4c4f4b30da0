package access_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// TestServiceGrantUnlocksAndChains: a grant is answered, the door's lock
// gets an unlock command, and the decision events reach central chained by
// hash over their exact bytes.
func TestServiceGrantUnlocksAndChains(t *testing.T) {
	observed := make(chan bool, 8)
	s := newSite(t, siteOptions{doors: map[string]access.DoorPolicy{"front": {UnlockFor: 7 * time.Second}},
		service: func(_ *site, c *access.ServiceConfig) {
			c.ObserveDecision = func(granted bool, latency time.Duration) {
				if latency > 0 {
					observed <- granted
				}
			}
		}})
	rev := s.put(s.card("1001"))
	s.synced(rev)

	lock := s.device(siteL1)
	cmds := make(chan devicekit.Command, 4)
	if _, err := lock.HandleCommands(siteCtx(t), devicekit.HandlerFunc(func(_ context.Context, c devicekit.Command) error {
		cmds <- c
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	reader := s.device(siteR1)

	d := request(t, reader, "front", "1001")
	if !d.Granted || d.Reason != "" || d.Door != "front" {
		t.Fatalf("decision %+v, want a grant at front", d)
	}
	select {
	case granted := <-observed:
		if !granted {
			t.Fatal("ObserveDecision saw a denial for the grant")
		}
	case <-siteCtx(t).Done():
		t.Fatal("ObserveDecision not called")
	}
	if d.CredentialSetVersion < rev || d.Offline || d.Fallback || d.SyncedAt.IsZero() {
		t.Errorf("decision %+v: want version >= %d, online, synced", d, rev)
	}
	// The reader learns the decision, not the record: no holder, no
	// credential hash, no chain link.
	if d.Holder != "" || d.Credential != "" || d.AuditSeq != 0 || d.AuditPrev != "" {
		t.Errorf("reply %+v reveals the record", d)
	}
	select {
	case c := <-cmds:
		if c.Action != access.ActionUnlock || c.Params["duration"] != "7s" || c.Params["door"] != "front" {
			t.Errorf("lock got %+v", c.Command)
		}
		if c.Deadline.IsZero() || c.IdempotencyKey == "" {
			t.Errorf("unlock without deadline or idempotency key: %+v", c.Command)
		}
	case <-time.After(siteWait):
		t.Fatal("the lock got no unlock command")
	}

	d2 := request(t, reader, "front", "no-such-card")
	if d2.Granted || d2.Reason != message.DenyUnknown || d2.AuditSeq != 0 {
		t.Fatalf("second decision %+v", d2)
	}
	var evs []storedDecision
	waitFor(t, "both decisions at central", func() bool {
		evs = decisionEvents(t, s.cjs, "events-acme")
		return len(evs) == 2
	})
	if evs[0].d.AuditSeq != 1 || evs[1].d.AuditSeq != 2 || evs[1].d.AuditPrev != access.EventHash(evs[0].data) {
		t.Errorf("chain at central: %d, %d prev %q, want prev %q", evs[0].d.AuditSeq, evs[1].d.AuditSeq,
			evs[1].d.AuditPrev, access.EventHash(evs[0].data))
	}
	if evs[0].env.Source != access.DecisionThing("acme", "hq", "r1") || evs[0].env.Type != topic.Event || evs[0].env.Name != message.NameAccessGranted {
		t.Errorf("grant event %+v", evs[0].env)
	}
	if evs[0].d.Holder != "holder-1001" || evs[0].d.Credential != s.id("1001") || evs[0].d.AuditPrev != "" {
		t.Errorf("grant record %+v: want holder-1001, the credential's hash, first in the chain", evs[0].d)
	}
	for _, e := range evs {
		if _, err := access.VerifyRecord(s.st.AuditPublicKeys("acme", "hq"), e.subject, e.header, e.data); err != nil {
			t.Errorf("record %d at central: %v", e.d.AuditSeq, err)
		}
	}
	if st := s.svc.Stats(); st.Granted != 1 || st.Denied != 1 || st.Unlocks != 1 || st.AuditFailures != 0 {
		t.Errorf("stats %+v", st)
	}
	select {
	case c := <-cmds:
		t.Errorf("a denial sent the lock %+v", c.Command)
	default:
	}
}

// TestServiceDenials: every reason the set can deny for, through a real
// reader request.
func TestServiceDenials(t *testing.T) {
	s := newSite(t, siteOptions{})
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// A schedule that never allows now: the hour ending when this hour
	// begins, on every day, in the site's time zone.
	local := now.In(berlin)
	from := local.Add(-2 * time.Hour).Format("15:04")
	until := local.Add(-time.Hour).Format("15:04")
	if local.Hour() < 2 { // keep the interval within one day
		from, until = "12:00", "13:00"
	}
	days := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	sched := &access.Schedule{Name: "closed-now", Intervals: []access.Interval{{Days: days, From: from, Until: until}}}
	data, err := sched.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s.putRaw(access.ScheduleKey("closed-now"), data)

	mk := func(card string, tweak func(*access.Credential)) string {
		c := s.card(card)
		tweak(c)
		s.synced(s.put(c))
		return card
	}
	cases := []struct {
		name, door, card string
		want             message.DenyReason
	}{
		{"unknown", "front", "9999", message.DenyUnknown},
		{"revoked", "front", mk("2001", func(c *access.Credential) { c.State, c.Reason = access.StateRevoked, "lost" }), message.DenyRevoked},
		{"suspended", "front", mk("2002", func(c *access.Credential) { c.State = access.StateSuspended }), message.DenySuspended},
		{"expired", "front", mk("2003", func(c *access.Credential) { c.ValidUntil = now.Add(-time.Hour) }), message.DenyExpired},
		{"not yet valid", "front", mk("2004", func(c *access.Credential) { c.ValidFrom = now.Add(time.Hour) }), message.DenyNotYetValid},
		{"outside schedule", "front", mk("2005", func(c *access.Credential) { c.Schedules = []string{"closed-now"} }), message.DenyOutsideSchedule},
		{"door not allowed", "back", mk("2006", func(*access.Credential) {}), message.DenyDoorNotAllowed},
		{"unknown door", "side", mk("2007", func(*access.Credential) {}), message.DenyUnknownDoor},
		{"reader of another door", "back", mk("2008", func(c *access.Credential) { c.Doors = []string{"front", "back"} }), message.DenyUnknownDoor},
	}
	r1, r2 := s.device(siteR1), s.device(siteR2)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reader := r2
			if tc.door == "front" || tc.name == "unknown door" || tc.name == "reader of another door" {
				reader = r1
			}
			if tc.name == "door not allowed" {
				reader = r2
			}
			d := request(t, reader, tc.door, tc.card)
			if d.Granted || d.Reason != tc.want {
				t.Errorf("decision %+v, want denied %s", d, tc.want)
			}
		})
	}
	// The same credentials, changed to be valid, are granted: the denials
	// came from the reasons, not from the setup.
	c := s.card("2005")
	s.synced(s.put(c))
	if d := request(t, r1, "front", "2005"); !d.Granted {
		t.Errorf("2005 without schedule: %+v", d)
	}
}

// TestServiceRejectsMalformedRequests: a request the edge cannot read is
// answered with an error naming what is wrong, and nothing is granted.
func TestServiceRejectsMalformedRequests(t *testing.T) {
	s := newSite(t, siteOptions{})
	nc, err := nats.Connect(s.node.ClientURL(), nats.UserInfo("acme.hq.reader.r1", s.password("acme.hq.reader.r1")),
		nats.CustomInboxPrefix(siteR1.InboxPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subj := siteR1.Subject(topic.Request).String()

	bad := &message.Envelope{ID: (&message.IDGenerator{}).New(), Time: time.Now().UTC(), Source: siteR1,
		Type: topic.Request, Name: message.NameAccessRequested}
	if err := message.SetPayload(bad, map[string]any{"door": 42}); err != nil {
		t.Fatal(err)
	}
	badMsg, err := bad.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*nats.Msg{
		"not an envelope": {Subject: subj, Data: []byte("garbage")},
		"door not text":   badMsg,
	} {
		t.Run(name, func(t *testing.T) {
			reply, err := nc.RequestMsg(m, siteWait)
			if err != nil {
				t.Fatal(err)
			}
			if reply.Header.Get(access.HeaderError) == "" || len(reply.Data) != 0 {
				t.Errorf("reply %q with header %v, want an error header", reply.Data, reply.Header)
			}
		})
	}
	if st := s.svc.Stats(); st.Malformed != 2 || st.Granted != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestServiceRevocationReachesEdge: a revocation at central is applied by
// the connected edge (the benchmark measures how fast).
func TestServiceRevocationReachesEdge(t *testing.T) {
	s := newSite(t, siteOptions{})
	c := s.card("3001")
	s.synced(s.put(c))
	reader := s.device(siteR1)
	if d := request(t, reader, "front", "3001"); !d.Granted {
		t.Fatalf("before revocation: %+v", d)
	}
	c.State, c.Reason = access.StateRevoked, "card reported stolen"
	rev := s.put(c)
	s.synced(rev)
	d := request(t, reader, "front", "3001")
	if d.Granted || d.Reason != message.DenyRevoked || d.CredentialSetVersion < rev {
		t.Errorf("after revocation: %+v", d)
	}
	got, ok := s.svc.Set().Credential(c.ID)
	if !ok || got.State != access.StateRevoked || got.Reason != "card reported stolen" {
		t.Errorf("the edge holds %+v, %v: a revocation is a stored value", got, ok)
	}
}

// TestServiceOfflineDecisionsAndRevocationFirst: cut off from central, the
// edge keeps deciding from its set and stores every decision; a revocation
// made at central meanwhile is applied before anything is granted once the
// link is back; the offline decisions reach central.
func TestServiceOfflineDecisionsAndRevocationFirst(t *testing.T) {
	s := newSite(t, siteOptions{})
	c := s.card("4001")
	s.synced(s.put(c))
	reader := s.device(siteR1)

	s.proxy.Cut()
	s.waitFor("the link to drop", func() bool { return !s.node.LinkUp() })
	d := request(t, reader, "front", "4001")
	if !d.Granted || !d.Offline {
		t.Fatalf("offline decision %+v, want an offline grant", d)
	}
	c.State = access.StateRevoked
	rev := s.put(c) // at central, while the edge cannot hear it
	if d := request(t, reader, "front", "4001"); !d.Granted || !d.Offline || d.CredentialSetVersion >= rev {
		t.Fatalf("offline decision after the revocation at central %+v: the edge cannot know it yet", d)
	}

	s.proxy.Restore()
	s.waitFor("the link to come back", s.node.LinkUp)
	d = request(t, reader, "front", "4001")
	if d.Granted || d.Reason != message.DenyRevoked {
		t.Fatalf("first decision after reconnecting %+v, want the pending revocation applied", d)
	}
	waitFor(t, "every decision at central", func() bool { return len(decisionEvents(t, s.cjs, "events-acme")) == 3 })
	evs := decisionEvents(t, s.cjs, "events-acme")
	for i, e := range evs {
		if e.d.AuditSeq != uint64(i+1) {
			t.Errorf("decision %d at central has audit seq %d", i, e.d.AuditSeq)
		}
	}
	if !evs[0].d.Offline || !evs[1].d.Offline {
		t.Errorf("offline decisions not marked offline at central: %+v %+v", evs[0].d, evs[1].d)
	}
}

// TestServiceFallbackModes: a door whose set is too stale, or whose edge
// cannot read its set, decides by its fallback mode: deny everything
// (door front), or grant only its always-allowed list (door back).
func TestServiceFallbackModes(t *testing.T) {
	policies := func(s *site) map[string]access.DoorPolicy {
		return map[string]access.DoorPolicy{
			"front": {StaleAfter: time.Hour, Fallback: access.FallbackDeny},
			"back":  {StaleAfter: time.Hour, Fallback: access.FallbackAllowListed, AlwaysAllowed: []string{s.id("5002")}},
		}
	}
	both := func(s *site, card string) *access.Credential {
		c := s.card(card)
		c.Doors = []string{"front", "back"}
		return c
	}

	t.Run("stale", func(t *testing.T) {
		var skew atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		s := newSite(t, siteOptions{service: func(s *site, c *access.ServiceConfig) { c.Now = clock; c.Doors = policies(s) }})
		s.synced(s.put(both(s, "5001")))
		s.synced(s.put(both(s, "5002")))
		r1, r2 := s.device(siteR1), s.device(siteR2)
		if d := request(t, r1, "front", "5001"); !d.Granted || d.Fallback {
			t.Fatalf("fresh set: %+v", d)
		}

		s.proxy.Cut()
		s.waitFor("the link to drop", func() bool { return !s.node.LinkUp() })
		if d := request(t, r1, "front", "5001"); !d.Granted || !d.Offline {
			t.Fatalf("offline within the staleness limit: %+v", d)
		}
		skew.Store(int64(61 * time.Minute)) // past the limit since the last confirmed sync
		for _, tc := range []struct {
			reader  *devicekit.Client
			door    string
			card    string
			granted bool
		}{
			{r1, "front", "5001", false}, // deny everything
			{r1, "front", "5002", false},
			{r2, "back", "5001", false}, // valid in the set, but not listed
			{r2, "back", "5002", true},  // always allowed
		} {
			d := request(t, tc.reader, tc.door, tc.card)
			if d.Granted != tc.granted || !d.Fallback || (!d.Granted && d.Reason != message.DenyStale) {
				t.Errorf("stale %s at %s: %+v, want granted=%v by fallback", tc.card, tc.door, d, tc.granted)
			}
		}

		s.proxy.Restore()
		s.waitFor("a new confirmed sync", func() bool { return clock().Sub(s.svc.SyncedAt()) < time.Minute })
		if d := request(t, r1, "front", "5001"); !d.Granted || d.Fallback {
			t.Errorf("synced again: %+v", d)
		}
	})

	t.Run("unavailable", func(t *testing.T) {
		s := newSite(t, siteOptions{noService: true})
		s.svcCfg.Doors = policies(s)
		s.synced0(s.put(both(s, "5002")))
		// The edge's local store loses its credential mirror.
		if err := s.node.JetStream().DeleteStream(siteCtx(t), s.node.Names().CredentialStream); err != nil {
			t.Fatal(err)
		}
		svc, err := access.StartService(siteCtx(t), s.node, s.svcCfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(svc.Stop)
		r1, r2 := s.device(siteR1), s.device(siteR2)
		for _, tc := range []struct {
			reader  *devicekit.Client
			door    string
			card    string
			granted bool
		}{
			{r1, "front", "5002", false},
			{r2, "back", "5001", false},
			{r2, "back", "5002", true},
		} {
			d := request(t, tc.reader, tc.door, tc.card)
			if d.Granted != tc.granted || !d.Fallback || (!d.Granted && d.Reason != message.DenyUnavailable) {
				t.Errorf("unavailable store, %s at %s: %+v, want granted=%v by fallback", tc.card, tc.door, d, tc.granted)
			}
		}
		if svc.Loaded() {
			t.Error("the service claims a set it could not read")
		}
	})
}

// TestServiceChecksCentralWhileBehind: after the link is back, while the
// edge's mirror has not caught up (here it cannot: central's consumer for
// it is gone), a would-be grant is checked against the credential's entry
// at central, so a revocation stored there is never overlooked.
func TestServiceChecksCentralWhileBehind(t *testing.T) {
	s := newSite(t, siteOptions{})
	revoked, kept := s.card("6001"), s.card("6002")
	s.put(revoked)
	s.synced(s.put(kept))
	reader := s.device(siteR1)

	s.proxy.Cut()
	s.waitFor("the link to drop", func() bool { return !s.node.LinkUp() })
	names := s.node.Names()
	if err := s.cjs.DeleteConsumer(siteCtx(t), names.CredentialStream, names.CredentialConsumer); err != nil {
		t.Fatal(err)
	}
	revoked.State = access.StateRevoked
	rev := s.put(revoked)
	s.proxy.Restore()
	s.waitFor("the link to come back", s.node.LinkUp)

	if d := request(t, reader, "front", "6001"); d.Granted || d.Reason != message.DenyRevoked || d.Offline {
		t.Errorf("revoked at central, mirror behind: %+v, want an online denial", d)
	}
	if d := request(t, reader, "front", "6002"); !d.Granted || d.Offline {
		t.Errorf("unchanged credential, mirror behind: %+v, want an online grant", d)
	}
	if v := s.svc.Version(); v >= rev {
		t.Fatalf("the set reached version %d >= %d: the mirror was not behind, the test proves nothing", v, rev)
	}
	if st := s.svc.Stats(); st.SyncWaits != 2 {
		t.Errorf("%d checks at central, want 2", st.SyncWaits)
	}
}

// TestServiceChainSurvivesRestart: a restarted service continues its audit
// chain, from its state bucket, or, when that lags behind, from the
// decision events still in the event stream.
func TestServiceChainSurvivesRestart(t *testing.T) {
	s := newSite(t, siteOptions{})
	s.synced(s.put(s.card("7001")))
	reader := s.device(siteR1)
	request(t, reader, "front", "7001")
	request(t, reader, "front", "7002")

	restart := func() {
		t.Helper()
		s.svc.Stop()
		s.svc = s.startService()
	}
	restart() // the head comes from the state bucket
	request(t, reader, "front", "7001")
	waitFor(t, "three records at central", func() bool { return len(decisionEvents(t, s.cjs, "events-acme")) == 3 })
	if evs := decisionEvents(t, s.cjs, "events-acme"); evs[2].d.AuditSeq != 3 {
		t.Fatalf("after a restart the chain goes on at %d, want 3", evs[2].d.AuditSeq)
	}

	// Cut off, so that the decisions stay in the edge's event stream, and
	// with the state bucket's head lost: the stream has the head.
	s.proxy.Cut()
	s.waitFor("the link to drop", func() bool { return !s.node.LinkUp() })
	request(t, reader, "front", "7001")
	request(t, reader, "front", "7001")
	// The platform stream holds what central has not acknowledged: at
	// least the two records made while cut off.
	held := decisionEvents(t, s.node.JetStream(), s.node.Names().PlatformStream)
	if len(held) < 2 || held[len(held)-1].d.AuditSeq != 5 {
		t.Fatalf("%d records held at the edge while cut off, want the last at 5", len(held))
	}
	last := held[len(held)-1].d
	s.svc.Stop()
	kv, err := s.node.JetStream().KeyValue(siteCtx(t), access.StateBucket("acme", "hq"))
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(siteCtx(t), "head"); err != nil {
		t.Fatal(err)
	}
	s.svc = s.startService()
	request(t, reader, "front", "7001")
	held = decisionEvents(t, s.node.JetStream(), s.node.Names().PlatformStream)
	if got := held[len(held)-1].d.AuditSeq; got != last.AuditSeq+1 {
		t.Fatalf("recovered from the stream at %d, want %d", got, last.AuditSeq+1)
	}

	s.proxy.Restore()
	var evs []storedDecision
	waitFor(t, "every decision at central", func() bool {
		evs = decisionEvents(t, s.cjs, "events-acme")
		return len(evs) == 6
	})
	for i := 1; i < len(evs); i++ {
		if evs[i].d.AuditSeq != uint64(i+1) || evs[i].d.AuditPrev != access.EventHash(evs[i-1].data) {
			t.Errorf("link %d: seq %d prev %q, want seq %d prev %q", i, evs[i].d.AuditSeq, evs[i].d.AuditPrev,
				i+1, access.EventHash(evs[i-1].data))
		}
	}
}

// TestServiceAuditedAtCentral: central's auditor verifies the chain of the
// service's real decisions without an alarm, and reports the grant the
// edge made offline of a credential central had revoked meanwhile.
func TestServiceAuditedAtCentral(t *testing.T) {
	s := newSite(t, siteOptions{})
	aud, err := access.StartAuditor(siteCtx(t), s.cjs, access.AuditorConfig{Org: "acme", Keys: s.st, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(aud.Stop)
	c := s.card("8001")
	s.synced(s.put(c))
	reader := s.device(siteR1)
	request(t, reader, "front", "8001")
	request(t, reader, "front", "8002")

	s.proxy.Cut()
	s.waitFor("the link to drop", func() bool { return !s.node.LinkUp() })
	c.State, c.Reason = access.StateRevoked, "lost"
	rev := s.put(c)
	offline := request(t, reader, "front", "8001")
	if !offline.Granted || !offline.Offline {
		t.Fatalf("offline decision %+v", offline)
	}
	s.proxy.Restore()

	var alarm access.RevokedGrantAlarm
	waitFor(t, "the revoked grant reported at central", func() bool {
		for _, a := range cenNamed(s.alarms("hq"), access.NameRevokedGrant) {
			var err error
			alarm, err = message.DecodePayload[access.RevokedGrantAlarm](&a.env)
			return err == nil
		}
		return false
	})
	if alarm.Credential != c.ID || alarm.Door != "front" || alarm.Reader != "r1" || !alarm.Offline ||
		alarm.RevokedVersion != rev || alarm.DecisionVersion >= rev || alarm.Reason != "lost" {
		t.Errorf("alarm %+v", alarm)
	}
	waitFor(t, "all three decisions verified", func() bool { return aud.Stats().Verified == 3 })
	if st := aud.Stats(); st.Breaks != 0 || st.RevokedGrants != 1 {
		t.Errorf("auditor %+v", st)
	}
}

// TestServiceReplacedEdge: an edge whose store is replaced (new hardware,
// a wiped disk) mirrors its bucket again through central's consumer, which
// remembers that it delivered the bucket to the old store, and nats-server
// skips that for the new mirror. The edge finds its mirror lacking,
// rebuilds it and asks central for everything it lacks, by itself: no
// operator step, in no particular order. It never counts as in sync on an
// incomplete set, and its rebuilt mirror goes on following central.
// (TestServiceReplacedHardwareKeyRotated runs the old box for real; here
// central's consumer is put where an old store that received the whole
// bucket leaves it, so that the test depends on nothing else.)
func TestServiceReplacedEdge(t *testing.T) {
	s := newSite(t, siteOptions{noNode: true})
	const n = 300
	rev := s.loadCards(n)
	s.deliveredTo(rev)
	s.restartCentral(s.st, calmPing)
	s.nodeCfg.Render.PingInterval = calmPing
	s.node = s.startNode() // the new store
	s.svcCfg = access.ServiceConfig{HashKey: s.key, AuditKey: s.auditKey, Inventory: s.inv, SyncInterval: 100 * time.Millisecond}
	svc, err := access.StartService(siteCtx(t), s.node, s.svcCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	s.svc = svc

	waitFor(t, "every credential on the new store, in sync", func() bool {
		synced := !svc.SyncedAt().IsZero()
		if l := svc.Set().Len(); synced && l != n {
			t.Fatalf("the edge confirmed a sync holding %d of %d credentials", l, n)
		}
		return synced
	})
	if st := svc.Stats(); st.MirrorIncomplete == 0 || st.MirrorRebuilds == 0 {
		t.Errorf("stats %+v: want the incomplete mirror noticed and rebuilt", st)
	}
	mirror, central := streamMsgs(t, s.node.JetStream(), "KV_creds-acme-hq"), streamMsgs(t, s.cjs, "KV_creds-acme-hq")
	if mirror != central {
		t.Errorf("the rebuilt mirror holds %d entries, central %d", mirror, central)
	}
	reader := s.device(siteR1)
	if d := request(t, reader, "front", "card-1"); !d.Granted || d.Fallback {
		t.Errorf("on the rebuilt set: %+v, want a grant", d)
	}

	c := s.card("card-1")
	c.State, c.Reason = access.StateRevoked, "lost"
	s.synced(s.put(c))
	if d := request(t, reader, "front", "card-1"); d.Granted || d.Reason != message.DenyRevoked {
		t.Errorf("after a revocation at central: %+v, want revoked", d)
	}
}
