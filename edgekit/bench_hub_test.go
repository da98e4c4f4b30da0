package edgekit_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// hubBenchEnv reads a count for the catch-up benchmark from the environment.
func hubBenchEnv(name string, quick, full int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	if os.Getenv("LINTEL_BENCH_FULL") != "" {
		return full
	}
	return quick
}

// BenchmarkHubCatchUp measures how long central takes, from the moment the
// leaf link is up again, to hold an edge's whole backlog: over a number of
// link cuts, and of central restarts during a cut. The counts come from
// LINTEL_BENCH_CUTS, LINTEL_BENCH_RESTARTS and LINTEL_BENCH_EVENTS, by
// default 3, 3 and 20,000, or 20, 20 and 100,000 with LINTEL_BENCH_FULL=1;
// LINTEL_BENCH_NOSUP=1 runs without the hub's stall recovery.
// Run it once: go test -run '^$' -bench HubCatchUp -benchtime 1x ./edgekit/
func BenchmarkHubCatchUp(b *testing.B) {
	cuts := hubBenchEnv("LINTEL_BENCH_CUTS", 3, 20)
	restarts := hubBenchEnv("LINTEL_BENCH_RESTARTS", 3, 20)
	events := hubBenchEnv("LINTEL_BENCH_EVENTS", 20000, 100000)
	for b.Loop() {
		// LINTEL_BENCH_NOSUP=1 measures nats-server on its own, without the
		// hub's stall recovery.
		h := startHubTopo(b, hubTopoOptions{devices: 10, noSupervisor: os.Getenv("LINTEL_BENCH_NOSUP") != ""})
		e := h.edges["hq"]
		pub := newHubBacklog(b, e)
		var cutTimes, restartTimes []time.Duration
		for i := range cuts + restarts {
			restart := i >= cuts
			e.proxy.Cut()
			hubWaitFor(b, "link down", func() bool { return e.srv.Server().NumLeafNodes() == 0 })
			pub.publish(events)
			if restart {
				if err := h.central.Restart(); err != nil {
					b.Fatal(err)
				}
			}
			want := pub.total
			e.proxy.Restore()
			up := hubWaitLeafUp(b, e)
			hubWaitFor(b, "backlog at central", func() bool { return hubStreamMsgs(h.hubJS, h.hub.EventStream()) >= want })
			d := time.Since(up)
			if restart {
				restartTimes = append(restartTimes, d)
			} else {
				cutTimes = append(cutTimes, d)
			}
		}
		hubReport(b, "cut", cutTimes)
		hubReport(b, "restart", restartTimes)
		if h.sup != nil {
			b.Logf("%d events per outage; supervisor %+v", events, h.sup.Stats())
		}
	}
}

// hubWaitLeafUp waits until the edge's leaf link is up and returns when it saw
// it so, polling often.
func hubWaitLeafUp(tb testing.TB, e *hubEdge) time.Time {
	deadline := time.Now().Add(hubWait)
	for e.srv.Server().NumLeafNodes() == 0 {
		if time.Now().After(deadline) {
			tb.Fatal("leaf link did not come up")
		}
		time.Sleep(time.Millisecond)
	}
	return time.Now()
}

func hubReport(b *testing.B, what string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	p := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	b.Logf("%s catch-up over %d runs: p50 %v p99 %v max %v (all %v)", what, len(ds), p(0.5), p(0.99), ds[len(ds)-1], ds)
	b.ReportMetric(p(0.5).Seconds(), what+"-p50-s")
	b.ReportMetric(p(0.99).Seconds(), what+"-p99-s")
	b.ReportMetric(ds[len(ds)-1].Seconds(), what+"-max-s")
}

// hubBacklog fills the edge's event stream quickly, as the edge
// service, with envelopes of the edge's devices and asynchronous
// acknowledged publishes.
type hubBacklog struct {
	tb      testing.TB
	e       *hubEdge
	stamper []*message.Stamper
	total   int
}

func newHubBacklog(tb testing.TB, e *hubEdge) *hubBacklog {
	p := &hubBacklog{tb: tb, e: e}
	for _, th := range e.things {
		p.stamper = append(p.stamper, message.NewStamper(th, (&message.IDGenerator{}).New()))
	}
	p.total = hubStreamMsgs(e.js, e.names.EventStream)
	return p
}

func (p *hubBacklog) publish(n int) {
	p.tb.Helper()
	js, err := jetstream.New(p.e.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		p.tb.Fatal(err)
	}
	for i := range n {
		env := &message.Envelope{Type: topic.Event, Name: message.NameSensorReading}
		p.stamper[i%len(p.stamper)].Stamp(env)
		if err := message.SetPayload(env, map[string]int{"n": i}); err != nil {
			p.tb.Fatal(err)
		}
		msg, err := env.ToMsg(nil)
		if err != nil {
			p.tb.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(hubWait)); err != nil {
			p.tb.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(hubWait):
		p.tb.Fatal("backlog not acknowledged by the edge")
	}
	p.total += n
	if got := hubStreamMsgs(p.e.js, p.e.names.EventStream); got != p.total {
		p.tb.Fatalf("edge stream holds %d, want %d", got, p.total)
	}
}

// BenchmarkHubDeviceToCentral measures events per second from devices
// (devicekit, each event acknowledged by the edge's stream) until central
// holds them, against raw nats.go JetStream publishes of the same messages
// from as many goroutines over the same topology and durability.
func BenchmarkHubDeviceToCentral(b *testing.B) {
	const devices, perDevice = 10, 2000
	run := func(b *testing.B, raw bool) {
		h := startHubTopo(b, hubTopoOptions{devices: devices})
		e := h.edges["hq"]
		var conns []*nats.Conn
		if raw {
			for range devices {
				nc, err := e.srv.Connect(nats.UserInfo(hubEdgeServiceUser(), h.passwords[hubEdgeServiceUser()]), nats.CustomInboxPrefix(authz.UserInboxPrefix(hubEdgeServiceUser())))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(nc.Close)
				conns = append(conns, nc)
			}
		}
		devs := h.devices(e)
		base := hubStreamMsgs(h.hubJS, h.hub.EventStream())
		total := 0
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if raw {
				hubPublishRaw(b, conns, devs, perDevice)
			} else {
				hubPublishEvents(b, devs, perDevice)
			}
			total += devices * perDevice
			hubWaitFor(b, "events at central", func() bool { return hubStreamMsgs(h.hubJS, h.hub.EventStream()) >= base+total })
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "events/s")
	}
	b.Run("devicekit", func(b *testing.B) { run(b, false) })
	b.Run("raw-nats", func(b *testing.B) { run(b, true) })
}

func hubEdgeServiceUser() string { return authz.EdgeServiceUser(hubOrg, "hq") }

// hubPublishRaw publishes perDevice envelopes per device with plain nats.go
// JetStream publishes, one goroutine per device, each waiting for its
// acknowledgement as devicekit does.
func hubPublishRaw(tb testing.TB, conns []*nats.Conn, devs []*devicekit.Client, perDevice int) {
	tb.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for i, nc := range conns {
		wg.Go(func() {
			js, err := jetstream.New(nc)
			if err != nil {
				errs <- err
				return
			}
			st := message.NewStamper(devs[i].Thing(), (&message.IDGenerator{}).New())
			ctx, cancel := context.WithTimeout(context.Background(), hubWait)
			defer cancel()
			for n := range perDevice {
				env := &message.Envelope{Type: topic.Event, Name: message.NameSensorReading}
				st.Stamp(env)
				if err := message.SetPayload(env, map[string]int{"n": n}); err != nil {
					errs <- err
					return
				}
				msg, err := env.ToMsg(nil)
				if err != nil {
					errs <- err
					return
				}
				if _, err := js.PublishMsg(ctx, msg); err != nil {
					errs <- fmt.Errorf("raw publish: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}
