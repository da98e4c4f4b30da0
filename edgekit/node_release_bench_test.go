package edgekit_test

import (
	"context"
	"encoding/binary"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
)

// nodeLinkRate is the event rate of BenchmarkNodeLink, per second.
const nodeLinkRate = 1000

// BenchmarkNodeLink measures what crosses the leaf link from central to the
// edge while devices publish events at nodeLinkRate per second into a real
// node (fsync before every acknowledgement) and central sources them:
// central sends a probe every 10 ms and the edge service times its
// arrival (p50, p99 and max, in ms). A stalled read loop on the edge's
// side of the link delays every probe behind it, commands and revocations
// alike. Cases: "idle", no events (the baseline); "release", the node's
// streams, released in ranges; "interest", an event stream as an earlier
// version made it, where each of central's acknowledgements removes a
// message. The run lasts LINTEL_BENCH_LINK_SECONDS (default 10) whatever
// b.N; run it with -benchtime 1x.
func BenchmarkNodeLink(b *testing.B) {
	secs := 10
	if s, err := strconv.Atoi(os.Getenv("LINTEL_BENCH_LINK_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	for _, mode := range []string{"idle", "release", "interest"} {
		b.Run(mode, func(b *testing.B) {
			env := newNodeEnv(b, nodeBenchPublishers+1)
			central := nodeStartCentral(b, env)
			cfg := nodeTestConfig(b, env, central.hubURL())
			cfg.Render.MaxFileStore = 4 << 30
			cfg.EventStreamMaxBytes = 2 << 30
			cfg.DeviceRate = -1
			cfg.CheckInterval = edgekit.DefaultCheckInterval
			if mode == "interest" {
				nodeMakeInterestStream(b, cfg)
			}
			node := nodeStart(b, cfg)
			nodeWaitFor(b, "leaf link", node.LinkUp)

			var lat []time.Duration
			var mu sync.Mutex
			probe := "acme.hq.reader.r1.cfg"
			sub, err := node.Conn().Subscribe(probe, func(m *nats.Msg) {
				if len(m.Data) != 8 {
					return
				}
				d := time.Duration(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(m.Data)))
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			nodeWaitFor(b, "central to hear the probe's subscriber", func() bool {
				a, err := central.srv.Server().LookupAccount("acme")
				return err == nil && a.SubscriptionInterest(probe)
			})

			epoch := node.LinkEpoch()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
			defer cancel()
			var sent atomic.Int64
			var wg sync.WaitGroup
			if mode != "idle" {
				tokens := make(chan struct{}, nodeLinkRate/10)
				wg.Go(func() {
					t := time.NewTicker(time.Second / nodeLinkRate)
					defer t.Stop()
					for {
						select {
						case <-ctx.Done():
							close(tokens)
							return
						case <-t.C:
							select {
							case tokens <- struct{}{}:
							default: // the publishers are behind: the rate falls
							}
						}
					}
				})
				payload := map[string]string{"door": "front", "holder": "1234"}
				for i := range nodeBenchPublishers {
					d := nodeConnectDevice(b, env, node.ClientURL(), nodeBenchThing(i), func(c *devicekit.Config) { c.HeartbeatInterval = -1 })
					wg.Go(func() {
						for range tokens {
							if _, err := d.PublishEvent(context.Background(), "door.opened", payload); err != nil {
								b.Error(err)
								return
							}
							sent.Add(1)
						}
					})
				}
			}
			start := time.Now()
			t := time.NewTicker(10 * time.Millisecond)
			var buf [8]byte
		probing:
			for {
				select {
				case <-ctx.Done():
					break probing
				case <-t.C:
					binary.BigEndian.PutUint64(buf[:], uint64(time.Now().UnixNano()))
					if err := central.nc.Publish(probe, buf[:]); err != nil {
						b.Fatal(err)
					}
				}
			}
			t.Stop()
			wg.Wait()
			elapsed := time.Since(start)
			_ = central.nc.Flush()
			time.Sleep(200 * time.Millisecond) // the last probes in flight

			mu.Lock()
			defer mu.Unlock()
			if len(lat) == 0 {
				b.Fatal("no probe arrived")
			}
			slices.Sort(lat)
			p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(float64(sent.Load())/elapsed.Seconds(), "events/s")
			b.ReportMetric(p(0.5), "probe-p50-ms")
			b.ReportMetric(p(0.99), "probe-p99-ms")
			b.ReportMetric(p(1), "probe-max-ms")
			b.ReportMetric(float64(len(lat)), "probes")
			b.ReportMetric(float64(node.Stats().Releases), "releases")
			if node.LinkEpoch() != epoch {
				b.Errorf("the link dropped during the run (epoch %d, then %d)", epoch, node.LinkEpoch())
			}
		})
	}
}

// nodeMakeInterestStream starts a node on cfg once and turns its event
// stream into one an earlier version made (interest retention,
// deny_purge), which the next start keeps.
func nodeMakeInterestStream(tb testing.TB, cfg edgekit.NodeConfig) {
	tb.Helper()
	first := nodeStart(tb, cfg)
	n := first.Names()
	s, err := first.JetStream().Stream(nodeCtx(tb), n.EventStream)
	if err != nil {
		tb.Fatal(err)
	}
	old := s.CachedInfo().Config
	old.Retention, old.DenyPurge = jetstream.InterestPolicy, true
	if _, err := first.JetStream().UpdateStream(nodeCtx(tb), old); err != nil {
		tb.Fatal(err)
	}
	if err := first.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkNodeBacklogDrain measures how long a real node takes to forward
// a backlog of LINTEL_BENCH_BACKLOG events (default 100,000) into central's
// stream once the link comes back, and to release them from its own
// stream. The backlog is written with a relaxed sync interval to keep the
// set-up short; the node then restarts with its default (fsync before
// every acknowledgement) and drains. Cases: "release", the node's streams;
// "interest", an event stream as an earlier version made it, where each of
// central's acknowledgements removes a message. Run it with -benchtime 1x.
func BenchmarkNodeBacklogDrain(b *testing.B) {
	backlog := 100000
	if s, err := strconv.Atoi(os.Getenv("LINTEL_BENCH_BACKLOG")); err == nil && s > 0 {
		backlog = s
	}
	for _, mode := range []string{"release", "interest"} {
		b.Run(mode, func(b *testing.B) { nodeBenchDrain(b, backlog, mode == "interest") })
	}
}

// nodeBenchDrain is one case of BenchmarkNodeBacklogDrain; interest runs
// it on an event stream as an earlier version made it.
func nodeBenchDrain(b *testing.B, backlog int, interest bool) {
	env := newNodeEnv(b, nodeBenchPublishers+1)
	central := nodeStartCentral(b, env)
	central.proxy.Cut()
	cfg := nodeTestConfig(b, env, central.hubURL())
	cfg.Render.MaxFileStore = 4 << 30
	cfg.EventStreamMaxBytes = 2 << 30
	cfg.EventMaxMsgsPerSubject = -1
	cfg.DeviceRate = -1
	cfg.CheckInterval = edgekit.DefaultCheckInterval
	fill := cfg
	fill.SyncInterval = 2 * time.Minute
	if interest {
		nodeMakeInterestStream(b, fill)
	}
	node := nodeStart(b, fill)
	publish := nodeBenchPublishFuncs(b, env, node, false)
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, pub := range publish {
		wg.Go(func() {
			for next.Add(1) <= int64(backlog) {
				if err := pub(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := node.Close(); err != nil {
		b.Fatal(err)
	}
	node = nodeStart(b, cfg)
	n := node.Names()
	count := func(js jetstream.JetStream, stream string) uint64 {
		s, err := js.Stream(nodeCtx(b), stream)
		if err != nil {
			b.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	if got := count(node.JetStream(), n.EventStream); got < uint64(backlog) {
		b.Fatalf("the edge holds %d events, want %d", got, backlog)
	}

	b.ResetTimer()
	start := time.Now()
	central.proxy.Restore()
	var forwarded, released time.Duration
	deadline := time.Now().Add(5 * time.Minute)
	for forwarded == 0 || released == 0 {
		if time.Now().After(deadline) {
			b.Fatalf("after 5 min central holds %d, the edge %d", count(central.js, n.CentralEventStream), count(node.JetStream(), n.EventStream))
		}
		if forwarded == 0 && count(central.js, n.CentralEventStream) >= uint64(backlog) {
			forwarded = time.Since(start)
		}
		if released == 0 && forwarded != 0 && count(node.JetStream(), n.EventStream) == 0 {
			released = time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(forwarded.Seconds(), "forwarded-s")
	b.ReportMetric(released.Seconds(), "released-s")
	b.ReportMetric(float64(backlog)/forwarded.Seconds(), "events/s")
	b.ReportMetric(float64(node.Stats().Releases), "releases")
}
