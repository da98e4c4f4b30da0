package central_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
// LINTEL_LOAD_DEVICES devices each (default 100) against one central,
// central and the edges in this process and the devices in a process of
// their own (TestLoadDevices), the devices publishing one event every
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
			inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: e, Type: "sensor", Code: e + "s" + strconv.Itoa(d)}})
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
	// The devices run in a process of their own (this test binary, as
	// TestLoadDevices): 10,000 devices in this one would need 20,000
	// sockets here, both ends of each connection.
	var specs []loadDevice
	for i, e := range edges {
		for k := range nDevices {
			th := topic.Thing{Org: "acme", Edge: e, Type: "sensor", Code: e + "s" + strconv.Itoa(k)}
			specs = append(specs, loadDevice{Thing: th, URL: nodes[i].ClientURL(),
				Password: d.passwords[authz.DeviceUser(th)].Reveal(), CommandKeys: d.st.CommandPublicKeys("acme", e)})
		}
	}
	spec, err := json.Marshal(loadDevices{Devices: specs, Every: every})
	if err != nil {
		b.Fatal(err)
	}
	specFile := filepath.Join(b.TempDir(), "devices.json")
	if err := os.WriteFile(specFile, spec, 0o600); err != nil {
		b.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestLoadDevices$", "-test.v", "-test.timeout=0")
	child.Env = append(os.Environ(), "LINTEL_LOAD_DEVICES_FILE="+specFile)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	var acked, failed atomic.Int64
	connected := make(chan string, 1)
	childDone := make(chan struct{})
	go func() {
		defer close(childDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var a, f int64
			line := sc.Text()
			if _, err := fmt.Sscanf(line, "acked %d failed %d", &a, &f); err == nil {
				acked.Store(a)
				failed.Store(f)
			} else if strings.HasPrefix(line, "connected") {
				connected <- line
			}
		}
	}()
	select {
	case line := <-connected:
		b.Logf("%d edges linked; the device process: %s", nEdges, line)
	case <-childDone:
		b.Fatal("the device process ended before its devices connected")
	case <-ctx.Done():
		b.Fatal("the devices did not connect in time")
	}
	stop := func() {
		_ = child.Process.Signal(syscall.SIGTERM)
		<-childDone
		_ = child.Wait()
	}
	defer stop()

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

// loadDevice and loadDevices are what BenchmarkLoad gives its device
// process.
type loadDevice struct {
	Thing       topic.Thing
	URL         string
	Password    string
	CommandKeys []string
}

type loadDevices struct {
	Devices []loadDevice
	Every   time.Duration
}

// TestLoadDevices is BenchmarkLoad's device process; it runs only when
// started by it. It connects every device (32 at a time), says
// "connected", then publishes one event per device every Every, spread
// over the period, and prints "acked N failed M" every second until
// SIGTERM.
func TestLoadDevices(t *testing.T) {
	file := os.Getenv("LINTEL_LOAD_DEVICES_FILE")
	if file == "" {
		t.Skip("run by BenchmarkLoad")
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var spec loadDevices
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	devs := make([]*devicekit.Client, len(spec.Devices))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	t0 := time.Now()
	for i, s := range spec.Devices {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			dev, err := devicekit.Connect(cctx, devicekit.Config{Thing: s.Thing, URLs: []string{s.URL},
				Password: devicekit.Password(s.Password), CommandKeys: s.CommandKeys})
			if err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, fmt.Errorf("device %s: %w", s.Thing, err))
				mu.Unlock()
				return
			}
			devs[i] = dev
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	fmt.Printf("connected %d devices in %v\n", len(devs), time.Since(t0).Round(time.Second))
	var acked, failed atomic.Int64
	for i, dev := range devs {
		defer dev.Close()
		wg.Go(func() {
			select {
			case <-time.After(spec.Every * time.Duration(i) / time.Duration(len(devs))):
			case <-ctx.Done():
				return
			}
			tick := time.NewTicker(spec.Every)
			defer tick.Stop()
			for {
				if _, err := dev.PublishEvent(ctx, "door.opened", map[string]string{"door": "front"}); err == nil {
					acked.Add(1)
				} else if ctx.Err() == nil {
					failed.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	report := time.NewTicker(time.Second)
	defer report.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			fmt.Printf("acked %d failed %d\n", acked.Load(), failed.Load())
			return
		case <-report.C:
			fmt.Printf("acked %d failed %d\n", acked.Load(), failed.Load())
		}
	}
}
