package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/topic"
)

// The deployment every scenario runs: org acme, its central service, and
// edges e0, e1, ... each with sensors {edge}s0.., readers {edge}r0.. at door front
// (codes are unique in the org).
const (
	benchOrg     = "acme"
	benchService = "central"
	benchDoor    = "front"
	loopback     = "127.0.0.1"
	// waitLong bounds every wait for a condition: generous, for a loaded
	// machine.
	waitLong = 5 * time.Minute
)

// shape is the size of a deployment.
type shape struct {
	edges, sensors, readers int
}

// edgeName returns the code of edge i.
func edgeName(i int) string { return "e" + strconv.Itoa(i) }

// sensorOf returns sensor i of edge.
func sensorOf(edge string, i int) topic.Thing {
	return topic.Thing{Org: benchOrg, Edge: edge, Type: "sensor", Code: edge + "s" + strconv.Itoa(i)}
}

// readerOf returns reader i of edge.
func readerOf(edge string, i int) topic.Thing {
	return topic.Thing{Org: benchOrg, Edge: edge, Type: "reader", Code: edge + "r" + strconv.Itoa(i)}
}

// deployment is an inventory with its credentials, the edges' seed files
// written under dir.
type deployment struct {
	shape   shape
	inv     *authz.Inventory
	st      *authz.State
	secrets *authz.Secrets
	dir     string
	hashKey []byte
	log     *slog.Logger // central's and the edges' log
}

// newDeployment generates the credentials of a deployment of shape s.
// bcrypt's lowest cost keeps generating thousands of devices quick; it
// does not change what is measured after login.
func newDeployment(ctx context.Context, log *slog.Logger, dir string, s shape) (*deployment, error) {
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: benchOrg}},
		Services: []authz.Service{{Name: benchService, Kind: authz.ServiceCentral, Org: benchOrg}},
	}
	for e := range s.edges {
		edge := edgeName(e)
		inv.Edges = append(inv.Edges, authz.Edge{Org: benchOrg, Code: edge})
		door := authz.Door{Org: benchOrg, Edge: edge, Code: benchDoor}
		for i := range s.readers {
			t := readerOf(edge, i)
			door.Readers = append(door.Readers, t.Code)
			inv.Things = append(inv.Things, authz.Thing{Thing: t})
		}
		if s.readers > 0 {
			inv.Doors = append(inv.Doors, door)
		}
		for i := range s.sensors {
			t := sensorOf(edge, i)
			inv.Things = append(inv.Things, authz.Thing{Thing: t})
		}
	}
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(ctx, inv, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: generate credentials: %w", err)
	}
	d := &deployment{shape: s, inv: inv, st: res.State, secrets: res.Secrets, dir: dir, hashKey: make([]byte, 32), log: log}
	if _, err := rand.Read(d.hashKey); err != nil {
		return nil, fmt.Errorf("bench: hash key: %w", err)
	}
	for id, seed := range res.Secrets.EdgeSeeds {
		if err := authz.WriteSeedFile(filepath.Join(dir, id+".seed"), seed); err != nil {
			return nil, fmt.Errorf("bench: write seed: %w", err)
		}
	}
	return d, nil
}

// password returns the password of user.
func (d *deployment) password(user string) string { return d.secrets.Passwords[user].Reveal() }

// centralConfig returns central's configuration, its store under store.
func (d *deployment) centralConfig(store string, db *pgxpool.Pool) central.Config {
	user := authz.ServiceUser(benchOrg, benchService)
	return central.Config{
		Inventory: d.inv, State: d.st, Database: db, StartTimeout: waitLong, Logger: d.log.With("side", "central"),
		Orgs: map[string]central.OrgSecrets{benchOrg: {Service: benchService, Password: d.secrets.Passwords[user],
			CommandKey: d.secrets.CommandSeeds[benchOrg], HashKey: d.hashKey}},
		Render: authz.RenderOptions{Host: loopback, Port: -1, LeafHost: loopback, LeafPort: -1,
			StoreDir: store, MaxMemoryStore: 256 << 20, MaxFileStore: 16 << 30},
		// Edges reach central through a proxy that can cut the link.
		ServerOptions: func(o *server.Options) { o.LeafNode.NoAdvertise = true },
	}
}

// startCentral starts central with its store under store.
func (d *deployment) startCentral(ctx context.Context, store string, db *pgxpool.Pool) (*central.Central, error) {
	c, err := central.Start(ctx, d.centralConfig(store, db))
	if err != nil {
		return nil, fmt.Errorf("bench: start central: %w", err)
	}
	return c, nil
}

// edgeConfig returns edge's node configuration: its store under store,
// linked to hubURL (a nats-leaf:// URL), fsync before every
// acknowledgement (the node's default), and no per-device rate limit or
// per-subject cap: the scenarios drive devices flat out.
func (d *deployment) edgeConfig(edge, store, hubURL string) edgekit.NodeConfig {
	return edgekit.NodeConfig{
		Org: benchOrg, Edge: edge, Inventory: d.inv, State: d.st, Logger: d.log,
		Render: authz.RenderOptions{Host: loopback, Port: -1, StoreDir: store, MaxFileStore: 8 << 30,
			MaxMemoryStore: 64 << 20, HubURLs: []string{hubURL},
			ConfigDir: d.dir, SeedFile: authz.EdgeKeyID(benchOrg, edge) + ".seed"},
		LeafReconnectInterval:  100 * time.Millisecond,
		CommandKey:             d.secrets.CommandSeeds[authz.EdgeKeyID(benchOrg, edge)],
		DeviceRate:             -1,
		EventMaxMsgsPerSubject: -1,
		EventStreamMaxBytes:    4 << 30,
	}
}

// startEdge starts a node of cfg.
func startEdge(ctx context.Context, cfg edgekit.NodeConfig) (*edgekit.Node, error) {
	n, err := edgekit.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: start edge %s: %w", cfg.Edge, err)
	}
	return n, nil
}

// startService starts the access service of edge on node.
func (d *deployment) startService(ctx context.Context, node *edgekit.Node, edge string) (*access.Service, error) {
	kp, err := nkeys.FromSeed([]byte(d.secrets.AuditSeeds[authz.EdgeKeyID(benchOrg, edge)].Reveal()))
	if err != nil {
		return nil, fmt.Errorf("bench: audit key: %w", err)
	}
	svc, err := access.StartService(ctx, node, access.ServiceConfig{HashKey: d.hashKey, AuditKey: kp, Inventory: d.inv,
		SyncInterval: 200 * time.Millisecond})
	if err != nil {
		return nil, fmt.Errorf("bench: start the access service of %s: %w", edge, err)
	}
	return svc, nil
}

// device connects device t to url, without heartbeats.
func (d *deployment) device(ctx context.Context, t topic.Thing, url string) (*devicekit.Client, error) {
	c, err := devicekit.Connect(ctx, devicekit.Config{Thing: t, URLs: []string{url},
		Password: devicekit.Password(d.password(authz.DeviceUser(t))), HeartbeatInterval: -1,
		CommandKeys: d.st.CommandPublicKeys(benchOrg, t.Edge), Timeout: time.Minute})
	if err != nil {
		return nil, fmt.Errorf("bench: connect %s: %w", t, err)
	}
	return c, nil
}

// cleanup runs functions in reverse order of registration.
type cleanup struct {
	mu  sync.Mutex
	fns []func()
}

func (c *cleanup) add(f func()) {
	c.mu.Lock()
	c.fns = append(c.fns, f)
	c.mu.Unlock()
}

func (c *cleanup) run() {
	c.mu.Lock()
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// waitFor polls cond every d until it holds, for at most waitLong.
func waitFor(ctx context.Context, what string, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	t := time.NewTicker(d)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: waiting for %s: %w", what, context.Cause(ctx))
		case <-t.C:
		}
	}
	return nil
}

// parallel runs f(0..n-1), width at a time, and returns the first error.
func parallel(ctx context.Context, n, width int, f func(ctx context.Context, i int) error) error {
	sem := make(chan struct{}, width)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return context.Cause(ctx)
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
