package edgekit_test

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// nodeBenchPublishers is how many devices publish at once in the ingest
// benchmarks.
const nodeBenchPublishers = 8

func nodeBenchThing(i int) topic.Thing {
	return topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s" + strconv.Itoa(i+2)}
}

// BenchmarkNodeIngest measures acknowledged events per second from devices
// into the edge's event stream (central unreachable, so everything stays
// at the edge), with fsync before every acknowledgement (the node's
// default) and with nats-server's default two-minute sync interval; with
// devicekit clients, with bare nats.go requests to the same stream as a
// baseline, and with devicekit events while another device floods
// unacknowledged telemetry (nodeBenchTelemetryRate per second) into the
// same stream.
func BenchmarkNodeIngest(b *testing.B) {
	syncs := []struct {
		name     string
		interval time.Duration
	}{
		{"fsync=always", 0},
		{"fsync=2m", 2 * time.Minute},
	}
	for _, s := range syncs {
		for _, client := range []string{"devicekit", "nats.go", "devicekit+tlm-flood"} {
			b.Run(s.name+"/"+client, func(b *testing.B) {
				env := newNodeEnv(b, nodeBenchPublishers+1)
				cfg := nodeTestConfig(b, env, "")
				cfg.SyncInterval = s.interval
				cfg.Render.MaxFileStore = 4 << 30
				cfg.EventStreamMaxBytes = 2 << 30
				cfg.DeviceRate = -1 // measures the store, not the per-device limit
				node := nodeStart(b, cfg)
				publish := nodeBenchPublishFuncs(b, env, node, client == "nats.go")
				if client == "devicekit+tlm-flood" {
					stop := nodeBenchFlood(b, env, node)
					defer stop()
				}
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				var next atomic.Int64
				var wg sync.WaitGroup
				for _, pub := range publish {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if err := pub(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}

// nodeBenchPublishFuncs returns one publish function per publishing device.
func nodeBenchPublishFuncs(b *testing.B, env *nodeEnv, node *edgekit.Node, raw bool) []func() error {
	var out []func() error
	payload := map[string]string{"door": "front", "holder": "1234"}
	for i := range nodeBenchPublishers {
		th := nodeBenchThing(i)
		if !raw {
			d := nodeConnectDevice(b, env, node.ClientURL(), th, func(c *devicekit.Config) { c.HeartbeatInterval = -1 })
			out = append(out, func() error {
				_, err := d.PublishEvent(context.Background(), "door.opened", payload)
				return err
			})
			continue
		}
		user := authz.DeviceUser(th)
		nc, err := nats.Connect(node.ClientURL(), nats.UserInfo(user, env.password(user)), nats.CustomInboxPrefix(th.InboxPrefix()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		st := message.NewStamper(th, message.ID{1})
		out = append(out, func() error {
			e := &message.Envelope{Type: topic.Event, Name: "door.opened"}
			if err := message.SetPayload(e, payload); err != nil {
				return err
			}
			st.Stamp(e)
			msg, err := e.ToMsg(nil)
			if err != nil {
				return err
			}
			r, err := nc.RequestMsg(msg, 5*time.Second)
			if err != nil {
				return err
			}
			if strings.Contains(string(r.Data), `"error"`) {
				return os.ErrInvalid
			}
			return nil
		})
	}
	return out
}

// nodeBenchTelemetryRate is the rate of the telemetry flood.
const nodeBenchTelemetryRate = 2000

// nodeBenchFlood makes one more device send unacknowledged telemetry at
// nodeBenchTelemetryRate messages per second until stop.
func nodeBenchFlood(b *testing.B, env *nodeEnv, node *edgekit.Node) (stop func()) {
	th := nodeBenchThing(nodeBenchPublishers)
	d := nodeConnectDevice(b, env, node.ClientURL(), th, func(c *devicekit.Config) {
		c.HeartbeatInterval = -1
		c.TelemetryUnacknowledged = true
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		const tick = 10 * time.Millisecond
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for range nodeBenchTelemetryRate / int(time.Second/tick) {
				_, _ = d.PublishTelemetry(ctx, message.NameSensorReading, map[string]float64{"t": 21.5})
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// BenchmarkNodeIdleMemory starts a node with 100 device users and reports
// the process's resident memory (VmRSS from /proc/self/status) and the Go
// runtime's Sys and HeapInuse after a GC, with the node idle. Run it alone
// and without -race: go test -run '^$' -bench NodeIdleMemory -benchtime 1x.
func BenchmarkNodeIdleMemory(b *testing.B) {
	env := newNodeEnv(b, 96) // 100 devices
	for range b.N {
		node := nodeStart(b, nodeTestConfig(b, env, ""))
		if _, err := node.Status(context.Background()); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		if rss := nodeRSS(); rss > 0 {
			b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
		}
		node.Stop()
	}
}

// nodeRSS returns VmRSS in bytes, or 0 where /proc is not there.
func nodeRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
