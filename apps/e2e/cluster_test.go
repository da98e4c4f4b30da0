package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// clusterSite is a deployment of three central nodes and two edges,
// rendered by lintelctl, each node with a configuration file of its own
// beside the one render wrote (same inventory, state and secrets).
type clusterSite struct {
	*site
	nodes  []string // node i's configuration file
	listen []string // client listeners
	admin  []string // admin listeners
	edges  map[string]string
	eadmin map[string]string
	device map[string]string
}

// renderCluster renders inv for a central of three nodes with R3 streams
// and routes over mutual TLS, and edges hq and lab listing every node.
func renderCluster(t *testing.T, dsn string, inv *authz.Inventory) *clusterSite {
	t.Helper()
	s := render(t, dsn, inv, func(leaf string) string { return "nats-leaf://" + leaf })
	cs := &clusterSite{site: s, edges: map[string]string{}, eadmin: map[string]string{}, device: map[string]string{}}
	var routes, hubURLs []string
	routeAddrs := make([]string, 3)
	leafs := make([]string, 3)
	for i := range 3 {
		routeAddrs[i], leafs[i] = freeAddr(t), freeAddr(t)
		routes = append(routes, "nats-route://"+routeAddrs[i])
		hubURLs = append(hubURLs, "nats-leaf://"+leafs[i])
	}
	base, err := os.ReadFile(s.central)
	if err != nil {
		t.Fatal(err)
	}
	tls := map[string]string{"cert_file": s.ca.ServerCertFile, "key_file": s.ca.ServerKeyFile}
	root := filepath.Dir(s.dir)
	for i := range 3 {
		file := filepath.Join(filepath.Dir(s.central), fmt.Sprintf("central-%d.json", i))
		if err := os.WriteFile(file, base, 0o600); err != nil {
			t.Fatal(err)
		}
		listen, admin := freeAddr(t), freeAddr(t)
		if i == 0 {
			listen, admin = s.listen, s.cadmin
		}
		edit(t, file, map[string]any{
			"name": fmt.Sprintf("central-%d", i), "store_dir": filepath.Join(root, fmt.Sprintf("central-%d-store", i)),
			"listen": listen, "leaf_listen": leafs[i], "admin_listen": admin,
			"cluster": map[string]any{"listen": routeAddrs[i], "routes": routes, "password_file": "secrets/" + config.CentralClusterPassword,
				"tls": map[string]string{"cert_file": s.ca.ServerCertFile, "key_file": s.ca.ServerKeyFile, "client_ca_file": s.ca.CAFile}},
		})
		cs.nodes, cs.listen, cs.admin = append(cs.nodes, file), append(cs.listen, listen), append(cs.admin, admin)
	}
	for _, e := range []string{"hq", "lab"} {
		file := filepath.Join(s.dir, "edges", "acme-"+e, "edge.json")
		device, admin := s.device, s.eadmin
		if e != "hq" {
			device, admin = freeAddr(t), freeAddr(t)
		}
		edit(t, file, map[string]any{
			"store_dir": filepath.Join(root, e+"-store"), "listen": device, "admin_listen": admin,
			"hub_urls": hubURLs, "tls": tls, "hub_tls": map[string]string{"ca_file": s.ca.CAFile},
		})
		cs.edges[e], cs.eadmin[e], cs.device[e] = file, admin, device
	}
	return cs
}

// clusterInventory is org acme with edges hq and lab, each with door
// front (a reader and a lock) and sensors s{1..n} (hq) and s{n+1..2n} (lab), and central's service.
func clusterInventory(n int) *authz.Inventory {
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Edges:    []authz.Edge{{Org: "acme", Code: "hq"}, {Org: "acme", Code: "lab"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"}},
	}
	for _, e := range []string{"hq", "lab"} {
		inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: e, Type: "lock", Code: "l-" + e}},
			authz.Thing{Thing: topic.Thing{Org: "acme", Edge: e, Type: "reader", Code: "r-" + e}})
		inv.Doors = append(inv.Doors, authz.Door{Org: "acme", Edge: e, Code: "front", Readers: []string{"r-" + e}, Locks: []string{"l-" + e}})
	}
	for i := range 2 * n {
		e := "hq"
		if i >= n {
			e = "lab"
		}
		inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: e, Type: "sensor", Code: "s" + strconv.Itoa(i+1)}})
	}
	return inv
}

// centralStatus reads a node's /readyz detail; ok is false when it does not
// answer.
func centralStatus(addr string) (leafs int, ready bool) {
	r, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, false
	}
	defer r.Body.Close()
	var body struct {
		Detail struct{ Leafs int } `json:"detail"`
	}
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &body)
	return body.Detail.Leafs, r.StatusCode == http.StatusOK
}

// TestFaultsCluster is the fault suite of a clustered central: three
// central processes with R3 streams, two edges whose leaf remotes list
// every node, devices with durable outboxes publishing on both edges all
// along. It kills with SIGKILL the node leading the event stream, then a
// follower, one with an edge linked if any (that edge fails over), restarting each
// and waiting until its replica has caught up; then restarts all three
// nodes one after the other (SIGTERM). After each fault a command sent
// through a surviving node reaches a lock, a new event reaches the
// database, and a card enrolled and another revoked through a surviving
// node are granted and denied at the edge; at the end every acknowledged event is in the database and
// central's stream exactly once.
//
// It runs with LINTEL_FAULTS=1 (.ci/run sets it).
func TestFaultsCluster(t *testing.T) {
	if os.Getenv("LINTEL_FAULTS") == "" {
		t.Skip("the fault suite runs with LINTEL_FAULTS=1")
	}
	const perEdge = 4
	db := pgtest.NewDB(t)
	cs := renderCluster(t, db.DSN, clusterInventory(perEdge))
	nodes := make([]*process, 3)
	startNode := func(i int) {
		nodes[i] = start(t, filepath.Join(cs.bin, "central"), "-config", cs.nodes[i])
	}
	for i := range 3 {
		startNode(i)
	}
	for i := range 3 {
		waitFor(t, fmt.Sprintf("central-%d ready", i), ready(cs.admin[i]))
	}
	edges := map[string]*process{}
	for _, e := range []string{"hq", "lab"} {
		edges[e] = start(t, filepath.Join(cs.bin, "edge"), "-config", cs.edges[e])
		waitFor(t, e+" ready", ready(cs.eadmin[e]))
	}
	st, err := authz.LoadState(filepath.Join(cs.dir, "central/state.json"))
	if err != nil {
		t.Fatal(err)
	}
	connect := func(th topic.Thing, outbox string) *devicekit.Client {
		return cs.site.faultDevice(t, st, cs.device[th.Edge], th, outbox)
	}

	// The devices publish until the end.
	var mu sync.Mutex
	acked := make(map[message.ID]string)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 * perEdge {
		e := "hq"
		if i >= perEdge {
			e = "lab"
		}
		th := topic.Thing{Org: "acme", Edge: e, Type: "sensor", Code: "s" + strconv.Itoa(i+1)}
		d := connect(th, filepath.Join(t.TempDir(), "outbox"))
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				key := th.Code + "-" + strconv.Itoa(n)
				if id, err := d.PublishEvent(ctx, "door.opened", map[string]string{"key": key}); err == nil {
					mu.Lock()
					acked[id] = key
					mu.Unlock()
				}
			}
		})
	}

	// Each edge's lock carries out commands and counts them.
	var cmdMu sync.Mutex
	got := map[string]bool{}
	for _, e := range []string{"hq", "lab"} {
		lock := connect(topic.Thing{Org: "acme", Edge: e, Type: "lock", Code: "l-" + e}, "")
		// The handler runs until the device closes, for the whole suite.
		if _, err := lock.HandleCommands(context.Background(), devicekit.HandlerFunc(func(_ context.Context, cmd devicekit.Command) error {
			cmdMu.Lock()
			got[cmd.IdempotencyKey] = true
			cmdMu.Unlock()
			return nil
		})); err != nil {
			t.Fatal(err)
		}
	}
	probes := map[string]*devicekit.Client{
		"hq":  connect(topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r-hq"}, ""),
		"lab": connect(topic.Thing{Org: "acme", Edge: "lab", Type: "reader", Code: "r-lab"}, ""),
	}
	cmdSeed, err := config.ReadSecret(filepath.Join(cs.dir, "central/secrets", config.CentralCommandSeed("acme")))
	if err != nil {
		t.Fatal(err)
	}
	user := authz.ServiceUser("acme", "central")
	// service returns a JetStream client and a hub as central's service on
	// node i, as an operator's tool would use them.
	// A node under load may not answer in time: the callers try again.
	service := func(i int) (jetstream.JetStream, *edgekit.Hub, func(), error) {
		nc, err := nats.Connect("tls://"+cs.listen[i], nats.UserInfo(user, cs.password(t, user)),
			nats.CustomInboxPrefix(authz.UserInboxPrefix(user)), nats.RootCAs(cs.ca.CAFile), nats.Timeout(5*time.Second))
		if err != nil {
			return nil, nil, nil, err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		hub, err := edgekit.NewHub(js, edgekit.HubConfig{Org: "acme", Inventory: cs.inv, CommandKey: cmdSeed})
		if err != nil {
			t.Fatal(err)
		}
		return js, hub, nc.Close, nil
	}
	hashKey, err := access.ReadHashKey(filepath.Join(cs.dir, "central/secrets", config.CentralHashKey("acme")))
	if err != nil {
		t.Fatal(err)
	}
	up := func(i int) bool { return nodes[i] != nil }
	anyUp := func(except int) int {
		for i := range 3 {
			if up(i) && i != except {
				return i
			}
		}
		return -1
	}
	// leader returns the node leading the event stream.
	leader := func() int {
		at := -1
		waitFor(t, "the event stream's leader", func() bool {
			js, _, closeFn, err := service(anyUp(-1))
			if err != nil {
				return false
			}
			defer closeFn()
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			str, err := js.Stream(c, "events-acme")
			if err != nil || str.CachedInfo().Cluster == nil {
				return false
			}
			for i := range 3 {
				if str.CachedInfo().Cluster.Leader == fmt.Sprintf("central-%d", i) && up(i) {
					at = i
					return true
				}
			}
			return false
		})
		return at
	}
	// caughtUp waits until every replica of the event stream is current.
	caughtUp := func(what string) {
		waitFor(t, "every replica current after "+what, func() bool {
			js, _, closeFn, err := service(anyUp(-1))
			if err != nil {
				return false
			}
			defer closeFn()
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			str, err := js.Stream(c, "events-acme")
			if err != nil || str.CachedInfo().Cluster == nil {
				return false
			}
			cl := str.CachedInfo().Cluster
			if len(cl.Replicas) != 2 {
				return false
			}
			for _, r := range cl.Replicas {
				if !r.Current || r.Offline {
					return false
				}
			}
			return true
		})
	}
	// decide presents card at hq's reader until the decision is want.
	decide := func(what, card string, want bool) {
		t.Helper()
		waitFor(t, fmt.Sprintf("card %s %s at hq", card, map[bool]string{true: "granted", false: "denied"}[want]), func() bool {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			e, err := probes["hq"].Request(c, message.NameAccessRequested,
				message.AccessRequest{Door: "front", Kind: message.CredentialCard, Credential: message.Credential(card)})
			if err != nil {
				return false
			}
			dec, err := message.DecodePayload[message.AccessDecision](e)
			return err == nil && dec.Granted == want
		})
	}
	// credentials enrols card next (when set) and revokes card prev (when
	// set) through a surviving node, then waits until hq decides so.
	credentials := func(what, next, prev string) {
		t.Helper()
		waitFor(t, "credentials changed after "+what, func() bool {
			js, hub, closeFn, err := service(anyUp(-1))
			if err != nil {
				return false
			}
			defer closeFn()
			m, err := access.NewManager(js, hub, access.ManagerConfig{HashKey: hashKey, Inventory: cs.inv})
			if err != nil {
				t.Fatal(err)
			}
			c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if next != "" {
				id, _ := m.Hash(message.Credential(next))
				if _, err := m.Put(c, "hq", &access.Credential{ID: id, Holder: next, Kind: message.CredentialCard,
					State: access.StateActive, Doors: []string{"front"}}); err != nil {
					return false
				}
			}
			if prev != "" {
				id, _ := m.Hash(message.Credential(prev))
				if _, err := m.Revoke(c, id, "fault suite"); err != nil {
					return false
				}
			}
			return true
		})
		if next != "" {
			decide(what, next, true)
		}
		if prev != "" {
			decide(what, prev, false)
		}
	}
	var cmdN int
	// recovered sends a command through a surviving node to each lock and
	// a probe event from each edge, and waits for both; it returns the
	// time from t0 until both edges' probes were in the database.
	recovered := func(what string, t0 time.Time) time.Duration {
		t.Helper()
		var last time.Duration
		for _, e := range []string{"hq", "lab"} {
			var id message.ID
			waitFor(t, e+"'s probe accepted after "+what, func() bool {
				c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var err error
				id, err = probes[e].PublishEvent(c, "probe", map[string]string{"after": what})
				return err == nil
			})
			waitFor(t, e+"'s probe in the database after "+what, func() bool {
				var n int
				err := db.Pool.QueryRow(testCtx(t), "SELECT count(*) FROM lintel.events WHERE id = $1", id.String()).Scan(&n)
				return err == nil && n == 1
			})
			last = max(last, time.Since(t0))
		}
		for _, e := range []string{"hq", "lab"} {
			cmdN++
			key := "cmd-" + strconv.Itoa(cmdN)
			waitFor(t, "a command to l-"+e+" sent after "+what, func() bool {
				_, hub, closeFn, err := service(anyUp(-1))
				if err != nil {
					return false
				}
				defer closeFn()
				c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, err = hub.SendCommand(c, topic.Thing{Org: "acme", Edge: e, Type: "lock", Code: "l-" + e},
					message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: key}, "fault suite")
				return err == nil
			})
			waitFor(t, "l-"+e+" carrying out "+key+" after "+what, func() bool {
				cmdMu.Lock()
				defer cmdMu.Unlock()
				return got[key]
			})
		}
		t.Logf("%s: both edges' new events in the database %v after the fault", what, last.Round(time.Millisecond))
		return last
	}
	recovered("start", time.Now())
	credentials("start", "card-1", "")
	kill := func(i int) time.Time {
		_ = nodes[i].cmd.Process.Kill()
		t0 := time.Now()
		<-nodes[i].done
		nodes[i] = nil
		return t0
	}

	// 1: SIGKILL of the event stream's leader.
	time.Sleep(2 * time.Second) // load before the fault
	l := leader()
	t0 := kill(l)
	recovered(fmt.Sprintf("SIGKILL of central-%d, the event stream's leader", l), t0)
	credentials("the leader's SIGKILL", "card-2", "card-1")
	startNode(l)
	waitFor(t, "the killed leader ready again", ready(cs.admin[l]))
	caughtUp("the leader's restart")

	// 2: SIGKILL of a follower, one with an edge linked when there is one
	// (the rolling restart below moves every edge's link in any case).
	time.Sleep(2 * time.Second)
	l = leader()
	f, linked := -1, 0
	for i := range 3 {
		if i == l {
			continue
		}
		if n, _ := centralStatus(cs.admin[i]); f < 0 || n > linked {
			f, linked = i, n
		}
	}
	t0 = kill(f)
	recovered(fmt.Sprintf("SIGKILL of central-%d, a follower with %d edges linked", f, linked), t0)
	credentials("the follower's SIGKILL", "card-3", "card-2")
	startNode(f)
	waitFor(t, "the killed follower ready again", ready(cs.admin[f]))
	caughtUp("the follower's restart")

	// 3: a rolling restart of all three.
	for i := range 3 {
		time.Sleep(time.Second)
		if code := nodes[i].stop(t); code != 0 {
			t.Fatalf("central-%d exit code %d", i, code)
		}
		nodes[i] = nil
		startNode(i)
		waitFor(t, fmt.Sprintf("central-%d ready after its restart", i), ready(cs.admin[i]))
		caughtUp(fmt.Sprintf("central-%d's restart", i))
	}
	recovered("the rolling restart", time.Now())
	credentials("the rolling restart", "", "card-3")

	time.Sleep(time.Second)
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d events acknowledged", len(acked))
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id.String())
	}
	waitFor(t, "every acknowledged event in the database", func() bool {
		var n int
		err := db.Pool.QueryRow(testCtx(t), "SELECT count(DISTINCT id) FROM lintel.events WHERE id = ANY($1::uuid[])", ids).Scan(&n)
		return err == nil && n == len(ids)
	})
	var dupIDs, dupKeys int
	if err := db.Pool.QueryRow(testCtx(t), `SELECT count(*) FROM (SELECT id FROM lintel.events GROUP BY id HAVING count(*) > 1) d`).Scan(&dupIDs); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(testCtx(t), `SELECT count(*) FROM (SELECT payload->>'key' FROM lintel.events
		WHERE name = 'door.opened' GROUP BY payload->>'key' HAVING count(*) > 1) d`).Scan(&dupKeys); err != nil {
		t.Fatal(err)
	}
	if dupIDs != 0 || dupKeys != 0 {
		t.Fatalf("duplicates in the database: %d ids, %d payload keys", dupIDs, dupKeys)
	}
	var js jetstream.JetStream
	var closeFn func()
	waitFor(t, "a connection to central-0", func() bool {
		var err error
		js, _, closeFn, err = service(0)
		return err == nil
	})
	defer closeFn()
	checkCentralStream(t, js, "events-acme", "acme.*.sensor.*.evt", acked, nil)
	t.Logf("every acknowledged event stored once, in the database and in central's stream")
}
