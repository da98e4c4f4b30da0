package access_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// siteWait bounds every wait of the service tests: generous, for a loaded
// 2-core machine under the race detector.
const siteWait = 30 * time.Second

// Things of the site: reader r1 and lock l1 at door "front", reader r2 at
// door "back" (no lock).
var (
	siteR1 = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	siteR2 = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r2"}
	siteL1 = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	// siteDS1 is the door contact of "front", siteS1 a sounder.
	siteDS1 = topic.Thing{Org: "acme", Edge: "hq", Type: "door_sensor", Code: "ds1"}
	siteS1  = topic.Thing{Org: "acme", Edge: "hq", Type: "sounder", Code: "s1"}
	// siteX1 is the reader of door "lab" at edge lab, which has no node.
	siteX1 = topic.Thing{Org: "acme", Edge: "lab", Type: "reader", Code: "x1"}
)

// siteInventory is org acme with edge hq in Europe/Berlin, its doors, a
// door contact and a sounder, and edge lab with one door.
func siteInventory() *authz.Inventory {
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Edges:    []authz.Edge{{Org: "acme", Code: "hq", TimeZone: "Europe/Berlin"}, {Org: "acme", Code: "lab"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"}},
		Doors: []authz.Door{
			{Org: "acme", Edge: "hq", Code: "front", Readers: []string{"r1"}, Locks: []string{"l1"}, Sensors: []string{"ds1"}},
			{Org: "acme", Edge: "hq", Code: "back", Readers: []string{"r2"}},
			{Org: "acme", Edge: "lab", Code: "lab", Readers: []string{"x1"}},
		},
	}
	for _, t := range []topic.Thing{siteR1, siteR2, siteL1, siteDS1, siteS1, siteX1} {
		inv.Things = append(inv.Things, authz.Thing{Thing: t})
	}
	return inv
}

// site is central, with edges hq and lab registered, and edge hq's node
// linked through a proxy that can cut the link, with the edge's access
// service.
type site struct {
	tb      testing.TB
	inv     *authz.Inventory
	st      *authz.State
	secrets *authz.Secrets
	dir     string
	key     []byte
	// auditKey is edge hq's audit key, as generated into st.
	auditKey nkeys.KeyPair

	central *natstest.Server
	proxy   *natstest.Proxy
	cjs     jetstream.JetStream
	hub     *edgekit.Hub

	nodeCfg edgekit.NodeConfig
	node    *edgekit.Node
	svcCfg  access.ServiceConfig
	svc     *access.Service
}

// siteOptions changes a site before it starts.
type siteOptions struct {
	doors     map[string]access.DoorPolicy
	noService bool                               // start central and the node only
	noNode    bool                               // start central only
	service   func(*site, *access.ServiceConfig) // adjusts the service's config
	node      func(*edgekit.NodeConfig)          // adjusts the node's config
}

// newSite starts central, registers edges hq and lab, starts hq's node and its access
// service, and waits for the link.
func newSite(tb testing.TB, o siteOptions) *site {
	tb.Helper()
	inv := siteInventory()
	g := &authz.Generator{Cost: bcrypt.MinCost}
	res, err := g.Generate(context.Background(), inv, nil)
	if err != nil {
		tb.Fatal(err)
	}
	key, err := access.GenerateHashKey()
	if err != nil {
		tb.Fatal(err)
	}
	s := &site{tb: tb, inv: inv, st: res.State, secrets: res.Secrets, dir: tb.TempDir(), key: key}
	if err := authz.WriteSeedFile(filepath.Join(s.dir, "audit.seed"), res.Secrets.AuditSeeds[authz.EdgeKeyID("acme", "hq")]); err != nil {
		tb.Fatal(err)
	}
	if s.auditKey, err = access.ReadAuditKey(filepath.Join(s.dir, "audit.seed")); err != nil {
		tb.Fatal(err)
	}
	if err := authz.WriteSeedFile(filepath.Join(s.dir, "leaf.seed"), res.Secrets.EdgeSeeds[authz.EdgeKeyID("acme", "hq")]); err != nil {
		tb.Fatal(err)
	}
	s.startCentral()
	s.nodeCfg = edgekit.NodeConfig{
		Org: "acme", Edge: "hq", Inventory: inv, State: s.st,
		Render: authz.RenderOptions{
			Host: "127.0.0.1", Port: -1, StoreDir: tb.TempDir(), MaxFileStore: 1 << 30,
			PingInterval: time.Second, HubURLs: []string{"nats-leaf://" + s.proxy.Addr()},
			ConfigDir: s.dir, SeedFile: "leaf.seed",
		},
		LeafReconnectInterval: 100 * time.Millisecond,
		CheckInterval:         50 * time.Millisecond,
		CommandKey:            res.Secrets.CommandSeeds[authz.EdgeKeyID("acme", "hq")],
	}
	if _, bench := tb.(*testing.B); bench {
		// Benchmarks drive one reader far above a real reader's rate.
		s.nodeCfg.DeviceRate = -1
	}
	if o.node != nil {
		o.node(&s.nodeCfg)
	}
	if o.noNode {
		return s
	}
	s.node = s.startNode()
	s.waitFor("the leaf link", s.node.LinkUp)
	s.svcCfg = access.ServiceConfig{HashKey: key, AuditKey: s.auditKey, Inventory: inv, Doors: o.doors, SyncInterval: 100 * time.Millisecond}
	if o.service != nil {
		o.service(s, &s.svcCfg)
	}
	if !o.noService {
		s.svc = s.startService()
	}
	return s
}

func (s *site) password(user string) string { return s.secrets.Passwords[user].Reveal() }

// startCentral starts central with the hub of org acme and edge hq
// registered.
func (s *site) startCentral() {
	tb := s.tb
	opts, err := authz.CentralOptions(s.inv, s.st, authz.RenderOptions{
		Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
		StoreDir: tb.TempDir(), MaxMemoryStore: 64 << 20, MaxFileStore: 1 << 30, PingInterval: time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	opts.NoLog = true
	opts.LeafNode.NoAdvertise = true // edges reconnect through the proxy, not to central's own address
	s.central = natstest.Run(tb, opts)
	if s.proxy, err = natstest.NewProxy(s.central.LeafNodeAddr()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.proxy.Close)
	user := authz.ServiceUser("acme", "central")
	nc, err := s.central.Connect(nats.UserInfo(user, s.password(user)), nats.CustomInboxPrefix(authz.UserInboxPrefix(user)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	if s.cjs, err = jetstream.New(nc); err != nil {
		tb.Fatal(err)
	}
	if s.hub, err = edgekit.NewHub(s.cjs, edgekit.HubConfig{Org: "acme", Inventory: s.inv, CommandKey: s.secrets.CommandSeeds["acme"]}); err != nil {
		tb.Fatal(err)
	}
	if err := s.hub.Provision(siteCtx(tb), "hq", "lab"); err != nil {
		tb.Fatal(err)
	}
	sup, err := s.hub.Supervise(siteCtx(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sup.Stop)
}

// startNode starts the edge node; it stops at cleanup.
func (s *site) startNode() *edgekit.Node {
	s.tb.Helper()
	n, err := edgekit.Start(siteCtx(s.tb), s.nodeCfg)
	if err != nil {
		s.tb.Fatalf("start node: %v", err)
	}
	s.tb.Cleanup(n.Stop)
	return n
}

// startService starts the access service on the node; it stops at cleanup.
func (s *site) startService() *access.Service {
	s.tb.Helper()
	svc, err := access.StartService(siteCtx(s.tb), s.node, s.svcCfg)
	if err != nil {
		s.tb.Fatalf("start access service: %v", err)
	}
	s.tb.Cleanup(svc.Stop)
	s.waitFor("the credential set to load", svc.Loaded)
	if s.node.LinkUp() {
		// Until its first confirmed sync a fresh edge's set counts as
		// stale, and doors decide by their fallback mode.
		s.waitFor("the first confirmed sync", func() bool { return !svc.SyncedAt().IsZero() })
	}
	return svc
}

// id returns the keyed hash of a card number.
func (s *site) id(card string) string { return message.Credential(card).Hash(s.key) }

// put stores c in the edge's bucket on central and returns its revision.
func (s *site) put(c *access.Credential) uint64 {
	s.tb.Helper()
	data, err := c.Marshal()
	if err != nil {
		s.tb.Fatal(err)
	}
	rev, err := s.hub.PutCredential(siteCtx(s.tb), "hq", access.CredentialKey(c.ID), data)
	if err != nil {
		s.tb.Fatal(err)
	}
	return rev
}

// putRaw stores an entry under key in the edge's bucket on central.
func (s *site) putRaw(key string, value []byte) uint64 {
	s.tb.Helper()
	rev, err := s.hub.PutCredential(siteCtx(s.tb), "hq", key, value)
	if err != nil {
		s.tb.Fatal(err)
	}
	return rev
}

// synced waits until the service has applied revision rev.
func (s *site) synced(rev uint64) {
	s.tb.Helper()
	s.waitFor("the edge to apply the change", func() bool { return s.svc.Version() >= rev })
}

// synced0 waits until the edge's mirror holds revision rev (no service).
func (s *site) synced0(rev uint64) {
	s.tb.Helper()
	s.waitFor("the edge's mirror to hold the change", func() bool {
		str, err := s.node.JetStream().Stream(siteCtx(s.tb), s.node.Names().CredentialStream)
		return err == nil && str.CachedInfo().State.LastSeq >= rev
	})
}

// card returns an active credential for card number n, for door front.
func (s *site) card(n string) *access.Credential {
	return &access.Credential{ID: s.id(n), Holder: "holder-" + n, Kind: message.CredentialCard,
		State: access.StateActive, Doors: []string{"front"}}
}

// device connects device t to the edge.
func (s *site) device(t topic.Thing) *devicekit.Client {
	s.tb.Helper()
	d, err := devicekit.Connect(siteCtx(s.tb), devicekit.Config{
		Thing: t, URLs: []string{s.node.ClientURL()},
		Password:          devicekit.Password(s.password(authz.DeviceUser(t))),
		HeartbeatInterval: time.Second, ReconnectWait: 50 * time.Millisecond,
		Timeout: siteWait, ReconnectBufferSize: -1,
		CommandKeys: s.st.CommandPublicKeys("acme", "hq"),
	})
	if err != nil {
		s.tb.Fatalf("connect %s: %v", t, err)
	}
	s.tb.Cleanup(func() { _ = d.Close() })
	return d
}

// request asks for access at door with card through reader d and returns
// the decision.
func request(tb testing.TB, d *devicekit.Client, door, card string) message.AccessDecision {
	tb.Helper()
	e, err := d.Request(siteCtx(tb), message.NameAccessRequested,
		message.AccessRequest{Door: door, Kind: message.CredentialCard, Credential: message.Credential(card)})
	if err != nil {
		tb.Fatalf("request %s at %s: %v", card, door, err)
	}
	dec, err := message.DecodePayload[message.AccessDecision](e)
	if err != nil {
		tb.Fatal(err)
	}
	if e.Name != dec.MessageName() {
		tb.Fatalf("reply named %s for %+v", e.Name, dec)
	}
	return dec
}

func (s *site) waitFor(what string, cond func() bool) {
	s.tb.Helper()
	waitFor(s.tb, what, cond)
}

func siteCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), siteWait)
	tb.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing after siteWait.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(siteWait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", siteWait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// decisionEvents returns the decision events in stream (on js), in stream
// order, with their exact bytes.
func decisionEvents(tb testing.TB, js jetstream.JetStream, stream string) []storedDecision {
	tb.Helper()
	ctx := siteCtx(tb)
	str, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var out []storedDecision
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := str.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var e message.Envelope
		if message.DecodeMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, &e, nil) != nil {
			continue
		}
		if e.Source.Type != topic.ThingTypeAccess || (e.Name != message.NameAccessGranted && e.Name != message.NameAccessDenied) {
			continue
		}
		d, err := message.DecodePayload[message.AccessDecision](&e)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, storedDecision{env: &e, d: d, data: m.Data, header: m.Header, subject: m.Subject})
	}
	return out
}

type storedDecision struct {
	env     *message.Envelope
	d       message.AccessDecision
	data    []byte
	header  nats.Header
	subject string
}
