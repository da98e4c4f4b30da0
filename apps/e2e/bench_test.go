package e2e_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/topic"
)

// rss returns the resident memory of process pid in MiB.
func rss(tb testing.TB, pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// BenchmarkEdgeBinary reports the binaries' sizes and the edge process's
// resident memory with 100 device users: idle with the 100 devices
// connected, and after 10 s of 1,000 events/s from them (TLS, linked to a
// central without a database). Run it with -benchtime 1x.
func BenchmarkEdgeBinary(b *testing.B) {
	dir := build(b)
	for _, app := range []string{"central", "edge"} {
		fi, err := os.Stat(filepath.Join(dir, app))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/(1<<20), app+"-MiB")
	}
	s := render(b, "", inventory(98), func(leaf string) string { return "nats-leaf://" + leaf })
	start(b, filepath.Join(dir, "central"), "-config", s.central)
	waitFor(b, "central ready", ready(s.cadmin))
	edg := start(b, filepath.Join(dir, "edge"), "-config", s.edge)
	waitFor(b, "edge ready", ready(s.eadmin))

	st, err := authz.LoadState(filepath.Join(s.dir, "edges/acme-hq/state.json"))
	if err != nil {
		b.Fatal(err)
	}
	var devs []*devicekit.Client
	for i := range 98 {
		th := topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s" + strconv.Itoa(i+1)}
		d, err := devicekit.Connect(testCtx(b), devicekit.Config{Thing: th, URLs: []string{"nats://" + s.device},
			CommandKeys: st.CommandPublicKeys("acme", "hq"),
			Password:    devicekit.Password(s.password(b, authz.DeviceUser(th))), CAFile: s.ca.CAFile})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = d.Close() })
		devs = append(devs, d)
	}
	time.Sleep(5 * time.Second)
	b.ReportMetric(rss(b, edg.cmd.Process.Pid), "idle-rss-MiB")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, d := range devs {
		wg.Go(func() {
			t := time.NewTicker(time.Second * time.Duration(len(devs)) / 1000)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if _, err := d.PublishEvent(context.Background(), "door.opened", map[string]string{"door": "front"}); err == nil {
					sent.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(sent.Load())/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(rss(b, edg.cmd.Process.Pid), "load-rss-MiB")
}

// BenchmarkCentralStartup reports the time from exec to ready of a central
// whose inventory holds 100 edges and 10,000 devices, all provisioned
// (the first start creates every edge's sources), and of its restart.
// Run it with -benchtime 1x.
func BenchmarkCentralStartup(b *testing.B) {
	dir := build(b)
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"}},
	}
	for e := range 100 {
		edge := "e" + strconv.Itoa(e)
		if e == 0 {
			edge = "hq"
		}
		inv.Edges = append(inv.Edges, authz.Edge{Org: "acme", Code: edge})
		for d := range 100 {
			inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: edge, Type: "reader", Code: "r" + strconv.Itoa(e*100+d)}})
		}
	}
	inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}})
	s := render(b, "", inv, func(leaf string) string { return "nats-leaf://" + leaf })
	for _, run := range []string{"first", "restart"} {
		t0 := time.Now()
		p := start(b, filepath.Join(dir, "central"), "-config", s.central)
		waitFor(b, "central ready", func() bool {
			r, err := http.Get("http://" + s.cadmin + "/readyz")
			if err != nil {
				return false
			}
			r.Body.Close()
			return r.StatusCode == http.StatusOK
		})
		b.ReportMetric(time.Since(t0).Seconds(), run+"-start-s")
		if code := p.stop(b); code != 0 {
			b.Fatalf("exit code %d", code)
		}
	}
}
