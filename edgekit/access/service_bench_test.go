package access_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// benchCards is how many credentials the edge holds in the benchmarks.
const benchCards = 100_000

// loadCards stores n active credentials for door front at central
// ("card-0" ... ) and returns the last revision.
func (s *site) loadCards(n int) uint64 {
	s.tb.Helper()
	m, err := access.NewManager(s.cjs, s.hub, access.ManagerConfig{Org: "acme"})
	if err != nil {
		s.tb.Fatal(err)
	}
	cs := make([]*access.Credential, n)
	for i := range cs {
		cs[i] = s.card("card-" + strconv.Itoa(i))
		cs[i].Groups = []string{}
	}
	rev, err := m.PutMany(siteCtx(s.tb), "hq", cs)
	if err != nil {
		s.tb.Fatal(err)
	}
	return rev
}

// percentiles reports the p50 and p99 of samples as metrics named
// prefix+"-p50-µs" and prefix+"-p99-µs".
func percentiles(b *testing.B, prefix string, samples []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(samples)
	p50 = samples[len(samples)/2]
	p99 = samples[len(samples)*99/100]
	b.ReportMetric(float64(p50.Nanoseconds())/1e3, prefix+"-p50-µs")
	b.ReportMetric(float64(p99.Nanoseconds())/1e3, prefix+"-p99-µs")
	return p50, p99
}

// BenchmarkDecision measures reader request → decision reply, with
// 100,000 credentials cached and central disconnected, the decision's
// signed audit record stored (fsynced) before the reply; beside it, in the
// same run, the raw costs it is made of: a NATS request/reply on the same
// path to a responder that does nothing, the signature of one record, and
// a JetStream publish into the edge's event stream (fsynced): the
// durability floor. Run with -benchtime 10000x or more: the
// percentiles are over b.N requests.
func BenchmarkDecision(b *testing.B) {
	// Room for -benchtime beyond the default per-device share: the raw
	// publishes all come from one device.
	s := newSite(b, siteOptions{node: func(c *edgekit.NodeConfig) { c.EventMaxMsgsPerSubject = 1 << 20 }})
	s.loadCards(benchCards)
	s.waitFor("the edge to hold every credential", func() bool { return s.svc.Set().Len() >= benchCards })
	s.proxy.Cut()
	s.waitFor("the link to drop", func() bool { return !s.node.LinkUp() })
	reader, raw := s.device(siteR1), s.device(siteR2)
	// The raw responder answers r2's requests of another name at once.
	sub, err := s.node.Conn().Subscribe(siteR2.Subject(topic.Request).String(), func(m *nats.Msg) {
		var e message.Envelope
		if message.DecodeMsg(m, &e, nil) != nil {
			return
		}
		r := &message.Envelope{ID: e.ID, Time: e.Time, Source: e.Source, Type: topic.Event, Name: "raw.reply", CorrelationID: e.ID}
		if out, err := r.ToMsg(nil); err == nil {
			out.Subject = m.Reply
			_ = m.RespondMsg(out)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ctx := context.Background()
	decide := func(b *testing.B, prefix string) {
		samples := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			card := "card-" + strconv.Itoa(i%benchCards)
			t0 := time.Now()
			e, err := reader.Request(ctx, message.NameAccessRequested,
				message.AccessRequest{Door: "front", Kind: message.CredentialCard, Credential: message.Credential(card)})
			samples = append(samples, time.Since(t0))
			if err != nil || e.Name != message.NameAccessGranted {
				b.Fatalf("request %d: %v %v", i, e, err)
			}
		}
		percentiles(b, prefix, samples)
	}

	b.Run("decision-stored-first", func(b *testing.B) { decide(b, "decision") })
	b.Run("decision-answered-first", func(b *testing.B) {
		s.svc.Stop()
		s.svcCfg.AnswerBeforeStored = true
		s.svc = s.startService()
		decide(b, "answer-first")
	})
	b.Run("raw-request-reply", func(b *testing.B) {
		samples := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			if _, err := raw.Request(ctx, "raw.request", map[string]string{"door": "front"}); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(t0))
		}
		percentiles(b, "raw-reqrep", samples)
	})
	b.Run("sign-record", func(b *testing.B) {
		// The edge's signature alone, on a record as the service makes it.
		d := message.AccessDecision{Granted: true, Door: "front", Holder: "holder-card-1", Credential: s.id("card-1"),
			CredentialSetVersion: benchCards, SyncedAt: time.Now(), AuditSeq: 12345, AuditPrev: access.EventHash([]byte("prev"))}
		e := &message.Envelope{ID: (&message.IDGenerator{}).New(), Time: time.Now().UTC(), Source: access.DecisionThing("acme", "hq", "r1"),
			Type: topic.Event, Name: d.MessageName(), CorrelationID: (&message.IDGenerator{}).New()}
		if err := message.SetPayload(e, d); err != nil {
			b.Fatal(err)
		}
		msg, err := e.ToMsg(nil)
		if err != nil {
			b.Fatal(err)
		}
		signer, err := message.SigningKey(s.auditKey) // as the service holds it
		if err != nil {
			b.Fatal(err)
		}
		samples := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		for b.Loop() {
			t0 := time.Now()
			if err := access.SignRecord(signer, msg.Subject, msg); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(t0))
		}
		percentiles(b, "sign", samples)
	})
	b.Run("raw-js-publish", func(b *testing.B) {
		samples := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			if _, err := raw.PublishEvent(ctx, "raw.event", map[string]string{"door": "front"}); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(t0))
		}
		percentiles(b, "raw-jspub", samples)
	})
}

// BenchmarkRevocation measures central's revocation → the connected edge
// denying the credential (its set holding the revoked value), p50 and p99
// over b.N revocations; beside it, in the same run, the same KV put seen by
// a watcher on central itself (no leaf link).
func BenchmarkRevocation(b *testing.B) {
	s := newSite(b, siteOptions{})
	const n = 1000
	rev := s.loadCards(n)
	s.synced(rev)
	ctx := context.Background()
	b.Run("edge-denies", func(b *testing.B) {
		samples := make([]time.Duration, 0, b.N)
		for i := 0; b.Loop(); i++ {
			c := s.card("card-" + strconv.Itoa(i%n))
			c.Groups = []string{}
			c.State = access.StateRevoked
			if i/n%2 == 1 {
				c.State = access.StateActive
			}
			data, _ := c.Marshal()
			t0 := time.Now()
			if _, err := s.hub.PutCredential(ctx, "hq", access.CredentialKey(c.ID), data); err != nil {
				b.Fatal(err)
			}
			for {
				if got, _ := s.svc.Set().Credential(c.ID); got.State == c.State {
					break
				}
				time.Sleep(20 * time.Microsecond)
			}
			samples = append(samples, time.Since(t0))
		}
		_, p99 := percentiles(b, "revoke", samples)
		if p99 > 100*time.Millisecond {
			b.Logf("p99 %v is over the 100 ms goal", p99)
		}
	})
	b.Run("raw-central-watch", func(b *testing.B) {
		kv, err := s.cjs.KeyValue(ctx, s.node.Names().CredentialBucket)
		if err != nil {
			b.Fatal(err)
		}
		w, err := kv.Watch(ctx, "raw.>", nil...)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = w.Stop() }()
		for e := range w.Updates() {
			if e == nil {
				break
			}
		}
		samples := make([]time.Duration, 0, b.N)
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			if _, err := kv.Put(ctx, "raw."+strconv.Itoa(i%n), []byte(`{"state":"revoked"}`)); err != nil {
				b.Fatal(err)
			}
			<-w.Updates()
			samples = append(samples, time.Since(t0))
		}
		percentiles(b, "raw-watch", samples)
	})
}

// BenchmarkLoadFreshEdge measures how long a fresh edge takes to load
// 100,000 credentials that central holds: from the node's start to its
// access service holding them all; beside it, when the mirror alone held
// them in the edge's store, and how long central took to store them.
func BenchmarkLoadFreshEdge(b *testing.B) {
	for range b.N {
		s := newSite(b, siteOptions{noNode: true})
		t0 := time.Now()
		rev := s.loadCards(benchCards)
		b.ReportMetric(time.Since(t0).Seconds(), "central-put-s")
		t0 = time.Now()
		s.node = s.startNode()
		svc, err := access.StartService(siteCtx(b), s.node, access.ServiceConfig{HashKey: s.key, AuditKey: s.auditKey, Inventory: s.inv})
		if err != nil {
			b.Fatal(err)
		}
		var mirror time.Duration
		names := s.node.Names()
		s.waitFor("the set to load", func() bool {
			if mirror == 0 {
				if str, err := s.node.JetStream().Stream(siteCtx(b), names.CredentialStream); err == nil && str.CachedInfo().State.Msgs >= uint64(benchCards) {
					mirror = time.Since(t0)
				}
			}
			return svc.Loaded() && svc.Set().Len() == benchCards && svc.Version() >= rev
		})
		total := time.Since(t0)
		svc.Stop()
		b.ReportMetric(mirror.Seconds(), "mirror-s")
		b.ReportMetric(total.Seconds(), "loaded-s")
		b.ReportMetric(float64(benchCards)/total.Seconds(), "creds/s")
	}
}
