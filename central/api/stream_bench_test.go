package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Shape of BenchmarkEventsStream.
const (
	benchLiveSubscribers = 100
	benchLiveRate        = 1000 // events a second, from two devices
	benchLiveFor         = 10 * time.Second
	benchLiveName        = "bench.live"
	// benchLiveQuiet ends the wait for stragglers once no subscriber has
	// received anything for this long.
	benchLiveQuiet = 10 * time.Second
)

// liveTick is the payload of the published events: the run, the event's
// number in it and when it was published, in Unix nanoseconds.
type liveTick struct {
	Run string `json:"run" msgpack:"run"`
	N   int    `json:"n" msgpack:"n"`
	T   int64  `json:"t" msgpack:"t"`
}

// liveSub is what one subscriber received of a run.
type liveSub struct {
	mu   sync.Mutex
	seen []bool
	got  int
	dup  int
	lat  []time.Duration
}

func (s *liveSub) receive(run string, tk liveTick) {
	now := time.Now()
	if tk.Run != run {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tk.N < 0 || tk.N >= len(s.seen) {
		return
	}
	if s.seen[tk.N] {
		s.dup++
		return
	}
	s.seen[tk.N] = true
	s.got++
	s.lat = append(s.lat, now.Sub(time.Unix(0, tk.T)))
}

func (s *liveSub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// BenchmarkEventsStream measures the fan-out of live events: 100
// subscribers of edge hq's events while two devices publish 1,000 events a
// second between them into the edge for 10 seconds, from where central's
// event stream sources them. subscribers=sse reads GET
// /api/v1/events/stream?edge=hq; subscribers=nats, the baseline, is 100
// nats.go connections to central, each with the ordered consumer of
// central's event stream, on the same filter, that the handler creates
// (the events reach central by sourcing, so no core subscription at
// central sees them). Each reports the events published a second
// (pub-events/s), delivered a second per subscriber from the first
// publish to the last delivery (events/s/sub),
// p50/p99 of the latency from the device's publish call to the subscriber
// decoding the event, and the events missing (drops) or delivered twice
// (dups) over all subscribers, and the process's CPU time per delivery
// (cpu-µs/delivery: central, edge, API, devices and subscribers all run
// in the process), which other load on the machine does not inflate as it
// does the latencies. It runs the scenario once whatever b.N:
//
//	LINTEL_API_BENCH=1 go test -run '^$' -bench EventsStream -benchtime 1x -timeout 20m ./central/api/
func BenchmarkEventsStream(b *testing.B) {
	apiBenchEnabled(b)
	f := newFixture(b, fixtureOptions{edge: true})
	devs := []*devicekit.Client{f.device(b, reader), f.device(b, lock)}
	subscribe := map[string]func(b *testing.B, run string, subs []*liveSub) (stop func()){
		"nats": func(b *testing.B, run string, subs []*liveSub) func() { return benchNATSSubscribers(b, f, run, subs) },
		"sse":  func(b *testing.B, run string, subs []*liveSub) func() { return benchSSESubscribers(b, f, run, subs) },
	}
	for _, kind := range []string{"nats", "sse"} {
		b.Run("subscribers="+kind, func(b *testing.B) {
			run := kind + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			total := int(benchLiveFor.Seconds() * benchLiveRate)
			subs := make([]*liveSub, benchLiveSubscribers)
			for i := range subs {
				subs[i] = &liveSub{seen: make([]bool, total)}
			}
			stop := subscribe[kind](b, run, subs)
			defer stop()
			b.ResetTimer()
			cpu0, cpuKnown := processCPU()
			start := time.Now()
			published, took := benchPublishLive(b, devs, run, total)
			// Wait for the stragglers until every subscriber has every
			// event or none has received anything for a while; the
			// deliveries took until the last progress.
			last, progress := -1, time.Now()
			for {
				sum, all := 0, true
				for _, s := range subs {
					n := s.count()
					sum += n
					all = all && n >= published
				}
				if all {
					progress = time.Now()
					break
				}
				if sum != last {
					last, progress = sum, time.Now()
				} else if time.Since(progress) > benchLiveQuiet {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			delivering := progress.Sub(start)
			b.StopTimer()
			cpu1, _ := processCPU()
			stop()
			var lat []time.Duration
			got, drops, dups := 0, 0, 0
			for _, s := range subs {
				s.mu.Lock()
				lat = append(lat, s.lat...)
				got += s.got
				drops += published - s.got
				dups += s.dup
				s.mu.Unlock()
			}
			b.ReportMetric(float64(published)/took.Seconds(), "pub-events/s")
			b.ReportMetric(float64(got)/float64(len(subs))/delivering.Seconds(), "events/s/sub")
			reportPercentiles(b, "latency", lat)
			b.ReportMetric(float64(drops), "drops")
			b.ReportMetric(float64(dups), "dups")
			if cpuKnown && got > 0 {
				// What the whole process (central, edge, API, devices and
				// subscribers) spent per delivery: unlike the latencies,
				// not inflated by other load on the machine.
				b.ReportMetric(float64(cpu1-cpu0)/float64(time.Microsecond)/float64(got), "cpu-µs/delivery")
			}
			if la, err := os.ReadFile("/proc/loadavg"); err == nil {
				b.Logf("%s: %d published in %v; load average %s", kind, published, took.Round(time.Millisecond), strings.TrimSpace(string(la)))
			}
		})
	}
}

// benchPublishLive publishes total events of run from devs, at
// benchLiveRate a second between them, each from a few goroutines since a
// publish waits for the edge's ack. It returns how many were published and
// how long that took.
func benchPublishLive(b *testing.B, devs []*devicekit.Client, run string, total int) (int, time.Duration) {
	const workers = 8
	var published atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second * time.Duration(len(devs)) / benchLiveRate
	for d, dev := range devs {
		tickets := make(chan int, workers)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(tickets)
			for i := d; i < total; i += len(devs) {
				if wait := time.Until(start.Add(interval * time.Duration(i/len(devs)))); wait > 0 {
					time.Sleep(wait)
				}
				tickets <- i
			}
		}()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range tickets {
					tk := liveTick{Run: run, N: i, T: time.Now().UnixNano()}
					if _, err := dev.PublishEvent(context.Background(), benchLiveName, tk); err != nil {
						b.Errorf("publish %d: %v", i, err)
						continue
					}
					published.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	return int(published.Load()), time.Since(start)
}

// benchNATSSubscribers starts one nats.go connection to central per
// subscriber, as acme's central service, each with an ordered consumer of
// central's event stream on hq's subjects from new messages on, as the
// stream handler reads it.
func benchNATSSubscribers(b *testing.B, f *fixture, run string, subs []*liveSub) func() {
	user := authz.ServiceUser("acme", "central")
	filter := "acme.hq.*.*.*"
	var stops []func()
	for _, s := range subs {
		nc, err := nats.Connect(f.c.ClientURL(), nats.UserInfo(user, f.passwords[user].Reveal()),
			nats.CustomInboxPrefix(authz.UserInboxPrefix(user)))
		if err != nil {
			b.Fatal(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		cons, err := js.OrderedConsumer(ctx(b), f.c.Hub("acme").EventStream(), jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			e, err := message.FromJetStream(m)
			if err != nil || e.Type != topic.Event || e.Name != benchLiveName {
				return
			}
			if tk, err := message.DecodePayload[liveTick](e); err == nil {
				s.receive(run, tk)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() { cc.Stop(); nc.Close() })
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, stop := range stops {
				stop()
			}
		})
	}
}

// benchSSESubscribers opens the live event stream of edge hq once per
// subscriber and returns once every stream is open.
func benchSSESubscribers(b *testing.B, f *fixture, run string, subs []*liveSub) func() {
	sctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Transport: &http.Transport{}}
	var wg sync.WaitGroup
	for _, s := range subs {
		req, err := http.NewRequestWithContext(sctx, "GET", f.web.URL+api.PathPrefix+"/events/stream?edge=hq", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.admin)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("stream: %d", resp.StatusCode)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		// The handler writes a comment once its consumer exists.
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), ":") {
			b.Fatalf("stream did not open: %q %v", sc.Text(), sc.Err())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				var e api.EventItem
				if err := json.Unmarshal([]byte(data), &e); err != nil || e.Name != benchLiveName {
					continue
				}
				var tk liveTick
				if json.Unmarshal(e.Payload, &tk) == nil {
					s.receive(run, tk)
				}
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			client.CloseIdleConnections()
		})
	}
}

// TestEventsStreamFanOut: live streams share one consumer, each still
// given only the events of its filter; one that ends leaves the others
// running, and a stream opened after every other ended starts the
// consumer again.
func TestEventsStreamFanOut(t *testing.T) {
	f := newFixture(t, fixtureOptions{edge: true})
	rd, lk := f.device(t, reader), f.device(t, lock)
	open := func(query string) (names <-chan string, stop func()) {
		sctx, cancel := context.WithCancel(ctx(t))
		req, err := http.NewRequestWithContext(sctx, "GET", f.web.URL+api.PathPrefix+"/events/stream?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), ":") {
			t.Fatalf("stream %s did not open: %q", query, sc.Text())
		}
		ch := make(chan string, 64)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer close(ch)
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				var e api.EventItem
				if err := json.Unmarshal([]byte(data), &e); err == nil && strings.HasPrefix(e.Name, "fan.") {
					ch <- e.Thing + " " + e.Name
				}
			}
		}()
		return ch, func() { cancel(); resp.Body.Close(); <-done }
	}
	next := func(what string, ch <-chan string) string {
		t.Helper()
		select {
		case s, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the stream ended", what)
			}
			return s
		case <-time.After(wait):
			t.Fatalf("%s: no event", what)
		}
		return ""
	}
	publish := func(dev *devicekit.Client, name string) {
		t.Helper()
		if _, err := dev.PublishEvent(ctx(t), name, nil); err != nil {
			t.Fatal(err)
		}
	}
	all, stopAll := open("edge=hq")
	locks, stopLocks := open("thing=hq.lock.l1")
	readers, stopReaders := open("thing=hq.reader.r1")
	publish(rd, "fan.1")
	publish(lk, "fan.2")
	if got := []string{next("edge hq", all), next("edge hq", all)}; !slices.Contains(got, "hq.reader.r1 fan.1") || !slices.Contains(got, "hq.lock.l1 fan.2") {
		t.Fatalf("edge hq: %q", got)
	}
	if got := next("lock", locks); got != "hq.lock.l1 fan.2" {
		t.Fatalf("lock: %q", got)
	}
	if got := next("reader", readers); got != "hq.reader.r1 fan.1" {
		t.Fatalf("reader: %q", got)
	}
	stopReaders()
	publish(rd, "fan.3")
	publish(lk, "fan.4")
	if got := []string{next("edge hq", all), next("edge hq", all)}; !slices.Contains(got, "hq.reader.r1 fan.3") || !slices.Contains(got, "hq.lock.l1 fan.4") {
		t.Fatalf("edge hq after the reader's stream ended: %q", got)
	}
	if got := next("lock", locks); got != "hq.lock.l1 fan.4" {
		t.Fatalf("lock after the reader's stream ended: %q", got)
	}
	stopAll()
	stopLocks()
	again, stopAgain := open("thing=hq.lock.l1")
	defer stopAgain()
	publish(lk, "fan.5")
	if got := next("lock, reopened", again); got != "hq.lock.l1 fan.5" {
		t.Fatalf("lock, reopened: %q", got)
	}
}
