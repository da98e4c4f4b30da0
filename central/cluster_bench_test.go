package central_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// BenchmarkClusterIntake measures what central takes in, on one node with
// R1 streams and on three nodes with R3 streams, in the same run: an edge
// cut off from central stores LINTEL_INTAKE_EVENTS events (default
// 20,000) from 10 devices, then its link comes back, and the benchmark
// reports how fast the backlog reaches central's event stream
// (stream-events/s) and the database (db-events/s), from the first event
// of the backlog to arrive there to the last; the log adds how long the
// link and the sourcing took to resume. All nodes, the edge
// and the devices share this process and the machine's cores. Run it with
// -benchtime 1x.
func BenchmarkClusterIntake(b *testing.B) {
	n := envInt("LINTEL_INTAKE_EVENTS", 20000)
	for _, mode := range []struct {
		name  string
		nodes int
	}{{"single-R1", 1}, {"cluster-R3", 3}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				stream, db := intake(b, mode.nodes, n)
				b.ReportMetric(stream, "stream-events/s")
				b.ReportMetric(db, "db-events/s")
			}
		})
	}
}

// intake runs one round of BenchmarkClusterIntake.
func intake(b *testing.B, nodes, n int) (streamRate, dbRate float64) {
	const devices = 10
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Edges:    []authz.Edge{{Org: "acme", Code: "hq"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"}},
	}
	for i := range devices {
		inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s" + strconv.Itoa(i)}})
	}
	d := &deployment{passwords: map[string]authz.Secret{}, dir: b.TempDir(), orgs: map[string]central.OrgSecrets{}}
	d.generate(b, inv)
	pool := pgtest.New(b)
	var leafs []string
	var first *central.Central
	if nodes == 1 {
		c, err := central.Start(ctx(b), central.Config{Inventory: d.inv, State: d.st, Orgs: d.orgs, Database: pool,
			Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
				StoreDir: b.TempDir(), MaxFileStore: 4 << 30}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Stop)
		leafs, first = []string{c.LeafAddr()}, c
	} else {
		cl := newCluster(b, d, pool)
		if b.Failed() {
			b.FailNow()
		}
		for _, u := range cl.hubURLs() {
			leafs = append(leafs, u[len("nats-leaf://"):])
		}
		first = cl.nodes[0]
	}
	var proxies []*natstest.Proxy
	var hubURLs []string
	for _, l := range leafs {
		p, err := natstest.NewProxy(l)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Close)
		p.Cut()
		proxies = append(proxies, p)
		hubURLs = append(hubURLs, "nats-leaf://"+p.Addr())
	}
	edge, err := edgekit.Start(ctx(b), edgekit.NodeConfig{
		Org: "acme", Edge: "hq", Inventory: d.inv, State: d.st,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, StoreDir: b.TempDir(), MaxFileStore: 1 << 30,
			HubURLs: hubURLs, ConfigDir: d.dir, SeedFile: authz.EdgeKeyID("acme", "hq") + ".seed"},
		LeafReconnectInterval: 100 * time.Millisecond,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(edge.Stop)

	// The backlog, published while the link is cut.
	var wg sync.WaitGroup
	for i := range devices {
		th := topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s" + strconv.Itoa(i)}
		dev, err := devicekit.Connect(ctx(b), devicekit.Config{Thing: th, URLs: []string{edge.ClientURL()},
			Password: devicekit.Password(d.passwords[authz.DeviceUser(th)].Reveal()), HeartbeatInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = dev.Close() })
		wg.Go(func() {
			for k := i; k < n; k += devices {
				if _, err := dev.PublishEvent(context.Background(), "bench", map[string]int{"k": k}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}

	js := jsOf(b, d, first)
	inStream := func() int {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		str, err := js.Stream(c, "events-acme")
		if err != nil {
			return 0
		}
		info, err := str.Info(c, jetstream.WithSubjectFilter("acme.hq.sensor.>"))
		if err != nil {
			return 0
		}
		total := 0
		for _, m := range info.State.Subjects {
			total += int(m)
		}
		return total
	}
	inDB := func() int {
		var got int
		_ = pool.QueryRow(context.Background(), "SELECT count(*) FROM lintel.events WHERE name = 'bench'").Scan(&got)
		return got
	}
	b.ResetTimer()
	t0 := time.Now()
	for _, p := range proxies {
		p.Restore()
	}
	var tFirst, tFirstDB, tStream time.Duration
	deadline := time.Now().Add(10 * time.Minute)
	for {
		s, d := inStream(), inDB()
		if tFirst == 0 && s > 0 {
			tFirst = time.Since(t0)
		}
		if tFirstDB == 0 && d > 0 {
			tFirstDB = time.Since(t0)
		}
		if tStream == 0 && s >= n {
			tStream = time.Since(t0)
		}
		if d >= n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 10 minutes: %d in the stream, %d in the database, of %d", inStream(), inDB(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tDB := time.Since(t0)
	if tStream == 0 {
		tStream = tDB
	}
	b.StopTimer()
	b.Logf("%d nodes: link back; first event in central's stream after %v, all %d after %v; in the database first after %v, all after %v",
		nodes, tFirst.Round(time.Millisecond), n, tStream.Round(time.Millisecond), tFirstDB.Round(time.Millisecond), tDB.Round(time.Millisecond))
	return float64(n) / (tStream - tFirst).Seconds(), float64(n) / (tDB - tFirstDB).Seconds()
}
