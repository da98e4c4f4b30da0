package access_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// BenchmarkDecisionSmallSet measures reader request → decision reply with a
// small credential set (the reply subject check and the responder
// connection are on this path), beside a raw NATS request/reply on the
// same path to a responder that does nothing, in the same run. It loads in
// seconds, where BenchmarkDecision's 100,000 credentials need an idle
// machine.
func BenchmarkDecisionSmallSet(b *testing.B) {
	const cards = 200
	s := newSite(b, siteOptions{})
	var rev uint64
	for i := range cards {
		rev = s.put(s.card("card-" + strconv.Itoa(i)))
	}
	s.synced(rev)
	reader, raw := s.device(siteR1), s.device(siteR2)
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
	p50 := func(b *testing.B, name string, samples []time.Duration) {
		slices.Sort(samples)
		b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds())/1e3, name+"-p50-µs")
	}
	b.Run("decision", func(b *testing.B) {
		samples := make([]time.Duration, 0, b.N)
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			e, err := reader.Request(ctx, message.NameAccessRequested,
				message.AccessRequest{Door: "front", Kind: message.CredentialCard, Credential: message.Credential("card-" + strconv.Itoa(i%cards))})
			samples = append(samples, time.Since(t0))
			if err != nil || e.Name != message.NameAccessGranted {
				b.Fatalf("request %d: %v %v", i, e, err)
			}
		}
		p50(b, "decision", samples)
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
		p50(b, "raw-reqrep", samples)
	})
}
