package central_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/topic"
)

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkLoad runs LINTEL_LOAD_EDGES edges (default 100) of
// LINTEL_LOAD_DEVICES devices each (default 100) against one central, all
// in this process, the devices publishing one event every
// LINTEL_LOAD_EVERY seconds each (default 10: 1,000 events/s in all) for
// LINTEL_LOAD_SECONDS (default 120). It reports the goroutines and the live
// heap after a GC once everything is connected and warm, and again at the
// end, the leaf links dropped meanwhile (any is a failure), the largest
// backlog an edge reported, the events acknowledged and the rate. Run it
// alone with -benchtime 1x; it needs about 4 GiB of memory.
func BenchmarkLoad(b *testing.B) {
	nEdges, nDevices := envInt("LINTEL_LOAD_EDGES", 100), envInt("LINTEL_LOAD_DEVICES", 100)
	every := time.Duration(envInt("LINTEL_LOAD_EVERY", 10)) * time.Second
	run := time.Duration(envInt("LINTEL_LOAD_SECONDS", 120)) * time.Second

	edges := make([]string, nEdges)
	for i := range edges {
		edges[i] = "e" + strconv.Itoa(i)
	}
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"}},
	}
	for _, e := range edges {
		inv.Edges = append(inv.Edges, authz.Edge{Org: "acme", Code: e})
		for d := range nDevices {
			inv.Things = append(inv.Things, authz.Thing{Org: "acme", Edge: e, Type: "sensor", Code: e + "s" + strconv.Itoa(d)})
		}
	}
	d := &deployment{passwords: map[string]authz.Secret{}, dir: b.TempDir(), orgs: map[string]central.OrgSecrets{}}
	d.generate(b, inv)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := central.Start(ctx, central.Config{
		Inventory: d.inv, State: d.st, Orgs: d.orgs, StartTimeout: 5 * time.Minute,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
			StoreDir: b.TempDir(), MaxFileStore: 8 << 30},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()

	// Edges and devices start side by side (a few at a time): one after
	// the other, 10,000 device logins alone take many minutes.
	nodes := make([]*edgekit.Node, nEdges)
	devs := make([]*devicekit.Client, nEdges*nDevices)
	parallel := func(n, width int, f func(i int) error) {
		sem := make(chan struct{}, width)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := f(i); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	parallel(nEdges, 4, func(i int) error {
		e := edges[i]
		n, err := edgekit.Start(ctx, edgekit.NodeConfig{
			Org: "acme", Edge: e, Inventory: d.inv, State: d.st,
			Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, StoreDir: b.TempDir(), MaxFileStore: 256 << 20,
				MaxMemoryStore: 16 << 20, HubURLs: []string{"nats-leaf://" + c.LeafAddr()}, ConfigDir: d.dir,
				SeedFile: authz.EdgeKeyID("acme", e) + ".seed"},
			CommandKey: d.commandSeeds[authz.EdgeKeyID("acme", e)],
		})
		if err != nil {
			return fmt.Errorf("edge %s: %w", e, err)
		}
		nodes[i] = n
		return nil
	})
	for _, n := range nodes {
		defer n.Stop()
	}
	for _, n := range nodes {
		for !n.LinkUp() {
			if ctx.Err() != nil {
				b.Fatal("links not up")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	connectStart := time.Now()
	parallel(len(devs), 32, func(j int) error {
		i, k := j/nDevices, j%nDevices
		e := edges[i]
		th := topic.Thing{Org: "acme", Edge: e, Type: "sensor", Code: e + "s" + strconv.Itoa(k)}
		dev, err := devicekit.Connect(ctx, devicekit.Config{Thing: th, URLs: []string{nodes[i].ClientURL()},
			Password:    devicekit.Password(d.passwords[authz.DeviceUser(th)].Reveal()),
			CommandKeys: d.st.CommandPublicKeys("acme", e)})
		if err != nil {
			return fmt.Errorf("device %s: %w", th, err)
		}
		devs[j] = dev
		return nil
	})
	for _, dev := range devs {
		defer dev.Close()
	}
	b.Logf("%d edges linked, %d devices connected in %v", nEdges, len(devs), time.Since(connectStart).Round(time.Second))

	// Publish; sample links and backlogs.
	runCtx, stop := context.WithCancel(context.Background())
	var acked, failed atomic.Int64
	var wg sync.WaitGroup
	for i, dev := range devs {
		wg.Go(func() {
			// Spread the devices over the period.
			select {
			case <-time.After(every * time.Duration(i) / time.Duration(len(devs))):
			case <-runCtx.Done():
				return
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				if _, err := dev.PublishEvent(runCtx, "door.opened", map[string]string{"door": "front"}); err == nil {
					acked.Add(1)
				} else if runCtx.Err() == nil {
					failed.Add(1)
				}
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	snapshot := func() (int, uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	time.Sleep(every + 5*time.Second) // every device has published; caches warm
	g0, h0 := snapshot()
	epochs := make([]uint64, len(nodes))
	for i, n := range nodes {
		epochs[i] = n.LinkEpoch()
	}
	start, sent0 := time.Now(), acked.Load()
	var maxBacklog uint64
	lastLog := start
	for time.Since(start) < run {
		if time.Since(lastLog) >= time.Minute {
			g, h := snapshot()
			b.Logf("after %v: %d goroutines, live heap %.1f MiB, %d acknowledged", time.Since(start).Round(time.Second), g, float64(h)/(1<<20), acked.Load())
			lastLog = time.Now()
		}
		for _, n := range nodes {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			if st, err := n.Status(sctx); err == nil && st.Backlog > maxBacklog {
				maxBacklog = st.Backlog
			}
			scancel()
		}
		time.Sleep(5 * time.Second)
	}
	rate := float64(acked.Load()-sent0) / time.Since(start).Seconds()
	g1, h1 := snapshot()
	stop()
	wg.Wait()
	drops := 0
	for i, n := range nodes {
		if n.LinkEpoch() != epochs[i] {
			drops++
		}
	}
	b.ReportMetric(float64(g0), "goroutines-start")
	b.ReportMetric(float64(g1), "goroutines-end")
	b.ReportMetric(float64(h0)/(1<<20), "heap-start-MiB")
	b.ReportMetric(float64(h1)/(1<<20), "heap-end-MiB")
	b.ReportMetric(float64(maxBacklog), "max-backlog")
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(float64(acked.Load()), "acked")
	b.ReportMetric(float64(failed.Load()), "failed")
	b.ReportMetric(float64(drops), "link-drops")
	if drops > 0 {
		b.Errorf("%d edges' links dropped under load", drops)
	}
}
