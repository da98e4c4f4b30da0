package central_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

const wait = 30 * time.Second

var (
	hqReader  = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	labReader = topic.Thing{Org: "acme", Edge: "lab", Type: "reader", Code: "r2"}
)

func inventory(edges ...string) *authz.Inventory {
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"}},
	}
	for _, e := range edges {
		inv.Edges = append(inv.Edges, authz.Edge{Org: "acme", Code: e})
		code := "r1"
		if e == "lab" {
			code = "r2"
		}
		inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: e, Type: "reader", Code: code}})
	}
	return inv
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, wait, what, cond)
}

// waitWithin is waitFor with its own bound d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deployment is an inventory with credentials kept across generations,
// as lintelctl render keeps them.
type deployment struct {
	inv       *authz.Inventory
	st        *authz.State
	passwords map[string]authz.Secret
	dir       string
	orgs      map[string]central.OrgSecrets
	// commandSeeds are the edges' command key seeds, by edge key id.
	commandSeeds map[string]authz.Secret
}

func (d *deployment) generate(t testing.TB, inv *authz.Inventory) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(c, inv, d.st)
	if err != nil {
		t.Fatal(err)
	}
	d.inv, d.st = inv, res.State
	for u, p := range res.Secrets.Passwords {
		d.passwords[u] = p
	}
	if d.commandSeeds == nil {
		d.commandSeeds = make(map[string]authz.Secret)
	}
	for id, seed := range res.Secrets.CommandSeeds {
		d.commandSeeds[id] = seed
	}
	for id, seed := range res.Secrets.EdgeSeeds {
		if err := authz.WriteSeedFile(filepath.Join(d.dir, id+".seed"), seed); err != nil {
			t.Fatal(err)
		}
	}
	if seed, ok := res.Secrets.CommandSeeds["acme"]; ok {
		d.orgs["acme"] = central.OrgSecrets{Service: "central", Password: d.passwords[authz.ServiceUser("acme", "central")], CommandKey: seed}
	}
}

func (d *deployment) startEdge(t *testing.T, edge, leaf string) *edgekit.Node {
	t.Helper()
	n, err := edgekit.Start(ctx(t), edgekit.NodeConfig{
		Org: "acme", Edge: edge, Inventory: d.inv, State: d.st,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), MaxFileStore: 256 << 20,
			PingInterval: time.Second, HubURLs: []string{"nats-leaf://" + leaf}, ConfigDir: d.dir, SeedFile: authz.EdgeKeyID("acme", edge) + ".seed"},
		LeafReconnectInterval: 100 * time.Millisecond, CheckInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("start edge %s: %v", edge, err)
	}
	t.Cleanup(n.Stop)
	return n
}

// TestCentralStoresAndAddsEdges: central, started from an inventory with
// one edge and a database, stores a device's event in PostgreSQL; an edge
// added to the inventory links to the running central after Update while
// the first edge's link stays up (same connection), and its events are
// stored too; a clean stop returns no error.
func TestCentralStoresAndAddsEdges(t *testing.T) {
	pool := pgtest.New(t)
	d := &deployment{passwords: map[string]authz.Secret{}, dir: t.TempDir(), orgs: map[string]central.OrgSecrets{}}
	d.generate(t, inventory("hq"))
	c, err := central.Start(ctx(t), central.Config{
		Inventory: d.inv, State: d.st, Orgs: d.orgs, Database: pool,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
			StoreDir: t.TempDir(), MaxFileStore: 256 << 20, PingInterval: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			c.Stop()
		}
	})
	hq := d.startEdge(t, "hq", c.LeafAddr())
	waitFor(t, "hq's link", hq.LinkUp)
	epoch := hq.LinkEpoch()

	publish := func(node *edgekit.Node, th topic.Thing) string {
		t.Helper()
		dev, err := devicekit.Connect(ctx(t), devicekit.Config{Thing: th, URLs: []string{node.ClientURL()},
			Password: devicekit.Password(d.passwords[authz.DeviceUser(th)].Reveal()), HeartbeatInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		id, err := dev.PublishEvent(ctx(t), "door.opened", map[string]string{"door": "front"})
		if err != nil {
			t.Fatal(err)
		}
		return id.String()
	}
	stored := func(id string) func() bool {
		return func() bool {
			var n int
			err := pool.QueryRow(ctx(t), "SELECT count(*) FROM lintel.events WHERE id = $1", id).Scan(&n)
			return err == nil && n == 1
		}
	}
	waitFor(t, "hq's event in the database", stored(publish(hq, hqReader)))

	d.generate(t, inventory("hq", "lab"))
	if err := c.Update(ctx(t), d.inv, d.st); err != nil {
		t.Fatalf("update: %v", err)
	}
	lab := d.startEdge(t, "lab", c.LeafAddr())
	waitFor(t, "lab's link", lab.LinkUp)
	waitFor(t, "lab's event in the database", stored(publish(lab, labReader)))
	if got := hq.LinkEpoch(); got != epoch {
		t.Fatalf("hq's link was dropped by the update: epoch %d, then %d", epoch, got)
	}
	waitFor(t, "hq's second event in the database", stored(publish(hq, hqReader)))

	stopped = true
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
