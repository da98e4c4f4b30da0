package central_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/internal/freeaddr"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// freePorts returns n loopback ports free a moment ago: the route and
// leaf URLs must be known before the nodes start.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ports = append(ports, freeaddr.Port(t))
	}
	return ports
}

// cluster is three central nodes routed to each other, with R3 streams,
// sharing one database; each keeps its ports and store across restarts.
type cluster struct {
	d      *deployment
	pool   *pgxpool.Pool
	routes []string
	route  []int
	leaf   []int
	stores []string
	nodes  []*central.Central
}

func newCluster(t testing.TB, d *deployment, pool *pgxpool.Pool) *cluster {
	ports := freePorts(t, 6)
	cl := &cluster{d: d, pool: pool, route: ports[:3], leaf: ports[3:], nodes: make([]*central.Central, 3)}
	for i := range 3 {
		cl.routes = append(cl.routes, fmt.Sprintf("nats-route://127.0.0.1:%d", cl.route[i]))
		cl.stores = append(cl.stores, t.TempDir())
	}
	// The nodes start side by side: a node's orgs start once JetStream
	// has a quorum, so Start does not wait for them.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { cl.start(t, i) })
	}
	wg.Wait()
	return cl
}

// start starts node i.
func (cl *cluster) start(t testing.TB, i int) {
	t.Helper()
	c, err := central.Start(ctx(t), central.Config{
		Inventory: cl.d.inv, State: cl.d.st, Orgs: cl.d.orgs, Replicas: 3, Database: cl.pool, Logger: testLogger(i),
		Render: authz.RenderOptions{ServerName: "central-" + strconv.Itoa(i), Host: "127.0.0.1", Port: -1,
			LeafHost: "127.0.0.1", LeafPort: cl.leaf[i], StoreDir: cl.stores[i], MaxFileStore: 256 << 20, PingInterval: time.Second,
			Cluster: &authz.ClusterOptions{Host: "127.0.0.1", Port: cl.route[i], Routes: cl.routes, Password: authz.NewSecret("route-secret")}},
	})
	if err != nil {
		t.Errorf("node %d: %v", i, err)
		return
	}
	t.Cleanup(c.Stop)
	cl.nodes[i] = c
}

// hubURLs are the leaf URLs of every node, as an edge lists them.
func (cl *cluster) hubURLs() []string {
	var out []string
	for _, p := range cl.leaf {
		out = append(out, fmt.Sprintf("nats-leaf://127.0.0.1:%d", p))
	}
	return out
}

// leader waits until exactly one running node runs acme's duties, every
// running node has started acme, and returns the leader's index.
// clusterWait bounds the wait for a leader after a node stopped or came
// back.
const clusterWait = 3 * time.Minute

func (cl *cluster) leader(t *testing.T) int {
	t.Helper()
	at := -1
	seen := make([]central.OrgStatus, 3)
	defer func() {
		if t.Failed() {
			for i, o := range seen {
				t.Logf("central-%d: started %v, leader %v, error %q", i, o.Started, o.Leader, o.Error)
			}
		}
	}()
	// A restarted node catches up on every replicated stream before its
	// org starts, and a new leader is elected: on a loaded 2-core machine
	// under the race detector that can take longer than wait.
	waitWithin(t, clusterWait, "one leader of acme's duties, every node started", func() bool {
		at = -1
		for i, c := range cl.nodes {
			if c == nil {
				continue
			}
			o := c.Status(ctx(t)).Orgs["acme"]
			seen[i] = o
			if !o.Started {
				return false
			}
			if o.Leader {
				if at >= 0 {
					return false
				}
				at = i
			}
		}
		return at >= 0
	})
	return at
}

// TestClusterStoresOnce: three central nodes with R3 streams and two
// edges whose leaf remotes list every node. Devices publish on both edges
// all along while the node leading the event stream stops, comes back,
// and then the node an edge is linked to stops: the auditor and the
// supervisor move to the new leader, the edge's link fails over to
// another node, a command sent through a node that does not lead reaches
// the lock,
// and every acknowledged event is in the database exactly once.
func TestClusterStoresOnce(t *testing.T) {
	pool := pgtest.New(t)
	d := &deployment{passwords: map[string]authz.Secret{}, dir: t.TempDir(), orgs: map[string]central.OrgSecrets{}}
	inv := inventory("hq", "lab")
	inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}})
	d.generate(t, inv)
	cl := newCluster(t, d, pool)
	if t.Failed() {
		t.FailNow()
	}
	first := cl.leader(t)
	for i, c := range cl.nodes {
		h := c.Hub("acme")
		str, err := jsOf(t, d, c).Stream(ctx(t), h.EventStream())
		if err != nil {
			t.Fatal(err)
		}
		if r := str.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("node %d: event stream has %d replicas", i, r)
		}
	}

	edges := map[string]*edgekit.Node{}
	for _, e := range []string{"hq", "lab"} {
		n, err := edgekit.Start(ctx(t), edgekit.NodeConfig{
			Org: "acme", Edge: e, Inventory: d.inv, State: d.st,
			Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), MaxFileStore: 256 << 20,
				PingInterval: time.Second, HubURLs: cl.hubURLs(), ConfigDir: d.dir, SeedFile: authz.EdgeKeyID("acme", e) + ".seed"},
			LeafReconnectInterval: 100 * time.Millisecond, CheckInterval: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("edge %s: %v", e, err)
		}
		t.Cleanup(n.Stop)
		waitFor(t, e+"'s link", n.LinkUp)
		edges[e] = n
	}

	// Both readers publish until the end; every acknowledged id is kept.
	var mu sync.Mutex
	acked := map[message.ID]string{} // by id, the edge
	pubCtx, stopPub := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, th := range []topic.Thing{hqReader, labReader} {
		dev, err := devicekit.Connect(ctx(t), devicekit.Config{Thing: th, URLs: []string{edges[th.Edge].ClientURL()},
			Password: devicekit.Password(d.passwords[authz.DeviceUser(th)].Reveal()), HeartbeatInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = dev.Close() })
		wg.Go(func() {
			for n := 0; pubCtx.Err() == nil; n++ {
				c, cancel := context.WithTimeout(pubCtx, 5*time.Second)
				id, err := dev.PublishEvent(c, "door.opened", map[string]int{"n": n})
				cancel()
				if err == nil {
					mu.Lock()
					acked[id] = th.Edge
					mu.Unlock()
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	progress := func(what string) {
		t.Helper()
		n := count()
		waitFor(t, "events acknowledged after "+what, func() bool { return count() > n+20 })
	}
	progress("start")

	// The leader stops: another node takes the duties over.
	cl.nodes[first].Stop()
	cl.nodes[first] = nil
	second := cl.leader(t)
	t.Logf("leader central-%d stopped; central-%d leads", first, second)
	progress("the leader stopped")
	cl.start(t, first)
	if t.Failed() {
		t.FailNow()
	}
	cl.leader(t)
	progress("the old leader came back")

	// The node hq is linked to stops: hq links to another node.
	linked := -1
	waitFor(t, "hq linked to a node", func() bool {
		for i, c := range cl.nodes {
			if lz, err := c.Server().Leafz(nil); err == nil {
				for _, l := range lz.Leafs {
					if l.Name == "lintel-edge-acme-hq" {
						linked = i
						return true
					}
				}
			}
		}
		return false
	})
	epoch := edges["hq"].LinkEpoch()
	cl.nodes[linked].Stop()
	cl.nodes[linked] = nil
	waitFor(t, "hq linked again", func() bool { return edges["hq"].LinkUp() && edges["hq"].LinkEpoch() != epoch })
	t.Logf("central-%d, hq's node, stopped; hq linked again", linked)
	lead := cl.leader(t)
	progress("hq's node stopped")

	// A command sent through a node that does not lead reaches the lock.
	via := -1
	for i, c := range cl.nodes {
		if c != nil && i != lead {
			via = i
		}
	}
	lock := topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	ld, err := devicekit.Connect(ctx(t), devicekit.Config{Thing: lock, URLs: []string{edges["hq"].ClientURL()},
		Password: devicekit.Password(d.passwords[authz.DeviceUser(lock)].Reveal()), HeartbeatInterval: -1,
		CommandKeys: d.st.CommandPublicKeys("acme", "hq")})
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	got := make(chan string, 1)
	if _, err := ld.HandleCommands(ctx(t), devicekit.HandlerFunc(func(_ context.Context, cmd devicekit.Command) error {
		select {
		case got <- cmd.Action:
		default:
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.nodes[via].Hub("acme").SendCommand(ctx(t), lock, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "cluster-unlock-1"}, "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-got:
		if name != "unlock" {
			t.Fatalf("the lock got %q", name)
		}
	case <-ctx(t).Done():
		t.Fatal("the command did not reach the lock")
	}

	stopPub()
	wg.Wait()
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id.String())
	}
	stored := func() int {
		var n int
		_ = pool.QueryRow(context.Background(), "SELECT count(DISTINCT id) FROM lintel.events WHERE id = ANY($1::uuid[])", ids).Scan(&n)
		return n
	}
	deadline := time.Now().Add(2 * time.Minute) // two nodes, under load
	for stored() < len(ids) {
		if time.Now().After(deadline) {
			for i, c := range cl.nodes {
				if c != nil {
					o := c.Status(context.Background()).Orgs["acme"]
					t.Logf("central-%d: stream last seq %d, ingest %+v", i, o.EventStreamLastSeq, o.Ingest)
				}
			}
			for e, n := range edges {
				st, err := n.Status(context.Background())
				t.Logf("edge %s: %+v (%v), stats %+v", e, st, err, n.Stats())
			}
			for i, c := range cl.nodes {
				if c == nil {
					continue
				}
				if str, err := jsOf(t, d, c).Stream(context.Background(), "events-acme"); err == nil {
					for _, si := range str.CachedInfo().Sources {
						t.Logf("central-%d: source %s: lag %d, active %v, error %v", i, si.Name, si.Lag, si.Active, si.Error)
					}
				}
			}
			var missing []string
			rows, _ := pool.Query(context.Background(), "SELECT unnest($1::uuid[]) EXCEPT SELECT id FROM lintel.events", ids)
			for rows.Next() {
				var id string
				_ = rows.Scan(&id)
				pid, _ := message.ParseID(id)
				missing = append(missing, id+" ("+acked[pid]+")")
			}
			rows.Close()
			t.Fatalf("%d of %d acknowledged events in the database; missing %v", stored(), len(ids), missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var dups int
	if err := pool.QueryRow(ctx(t), "SELECT count(*) FROM (SELECT id FROM lintel.events GROUP BY id HAVING count(*) > 1) d").Scan(&dups); err != nil {
		t.Fatal(err)
	}
	if dups != 0 {
		t.Fatalf("%d events stored twice", dups)
	}
	t.Logf("%d events acknowledged, each stored once", len(ids))
}

// jsOf returns a JetStream context on c as acme's central service.
func jsOf(t testing.TB, d *deployment, c *central.Central) jetstream.JetStream {
	t.Helper()
	user := authz.ServiceUser("acme", "central")
	nc, err := nats.Connect(c.ClientURL(), nats.UserInfo(user, d.passwords[user].Reveal()),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(user)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// testLogger logs to stderr with LINTEL_TEST_LOG=1, else discards.
func testLogger(i int) *slog.Logger {
	if os.Getenv("LINTEL_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)
}
