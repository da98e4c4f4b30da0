package access_test

import (
	"context"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkPutMany100k loads 100,000 credentials into edge hq's bucket on
// central with Manager.PutMany, and waits until the edge's mirror (a real
// edge node, linked to central) holds them all. Each iteration also
// publishes 100,000 messages of the same subjects and sizes with plain
// JetStream PublishAsync into a plain file stream on central, with the same
// window, as the raw baseline.
//
// Metrics: put_s and mirror_s are the seconds until central acknowledged
// every credential and until the edge's mirror held them; creds/s is the
// rate to central; raw_s and raw_msgs/s the baseline; put/raw the ratio.
func BenchmarkPutMany100k(b *testing.B) {
	const n = 100_000
	s := newSite(b, siteOptions{noService: true})
	m := s.manager()
	cs := manyCredentials(s.key, n)
	ctx := context.Background()

	// The baseline's messages: the same subjects and bodies.
	raw := make([]*nats.Msg, n)
	for i, c := range cs {
		data, err := c.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		raw[i] = &nats.Msg{Subject: "$KV.rawbench.cred." + c.ID, Data: data}
	}
	if _, err := s.cjs.CreateStream(ctx, jetstream.StreamConfig{
		Name: "raw-bench", Subjects: []string{"$KV.rawbench.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		b.Fatal(err)
	}
	mirror, err := s.node.JetStream().Stream(ctx, s.node.Names().CredentialStream)
	if err != nil {
		b.Fatal(err)
	}

	var putT, mirrorT, rawT time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rawPublish(b, s.cjs, raw, access.DefaultPutWindow)
		rawT += time.Since(start)

		start = time.Now()
		last, err := m.PutMany(ctx, "hq", cs)
		if err != nil {
			b.Fatal(err)
		}
		putT += time.Since(start)
		for {
			info, err := mirror.Info(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if info.State.LastSeq >= last {
				break
			}
			time.Sleep(5 * time.Millisecond) // polling the mirror's progress
		}
		mirrorT += time.Since(start)
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(per(putT), "put_s")
	b.ReportMetric(per(mirrorT), "mirror_s")
	b.ReportMetric(n/per(putT), "creds/s")
	b.ReportMetric(per(rawT), "raw_s")
	b.ReportMetric(n/per(rawT), "raw_msgs/s")
	b.ReportMetric(putT.Seconds()/rawT.Seconds(), "put/raw")
}

// rawPublish publishes msgs with PublishMsgAsync, at most window
// unacknowledged, and waits for every acknowledgement.
func rawPublish(b *testing.B, js jetstream.JetStream, msgs []*nats.Msg, window int) {
	b.Helper()
	pending := make([]jetstream.PubAckFuture, window)
	wait := func(f jetstream.PubAckFuture) {
		if f == nil {
			return
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
	for i, msg := range msgs {
		wait(pending[i%window])
		f, err := js.PublishMsgAsync(msg, jetstream.WithExpectStream("raw-bench"))
		if err != nil {
			b.Fatal(err)
		}
		pending[i%window] = f
	}
	for _, f := range pending {
		wait(f)
	}
}
