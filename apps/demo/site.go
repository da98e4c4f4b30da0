package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/internal/tcpproxy"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
)

// The demo's deployment: org acme, one edge hq with door front and a
// sounder, and central's own service identity.
const (
	org         = "acme"
	edge        = "hq"
	door        = "front"
	serviceName = "central"
	loopback    = "127.0.0.1"
	seedFile    = "leaf.seed"
	// auditSeedFile holds the edge's audit key.
	auditSeedFile = "audit.seed"
)

// Things of edge hq: the reader, lock and door contact of door front, and
// a sounder.
var (
	reader  = topic.Thing{Org: org, Edge: edge, Type: "reader", Code: "r1"}
	lock    = topic.Thing{Org: org, Edge: edge, Type: "lock", Code: "l1"}
	contact = topic.Thing{Org: org, Edge: edge, Type: "door_sensor", Code: "ds1"}
	sounder = topic.Thing{Org: org, Edge: edge, Type: "sounder", Code: "s1"}
)

// inventory is the deployment as package authz reads it; live adds what
// only the live mode runs (see [liveInventory]).
func inventory(live bool) *authz.Inventory {
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: org, Name: "Acme Corporation"}},
		Edges:    []authz.Edge{{Org: org, Code: edge, Name: "Headquarters"}},
		Services: []authz.Service{{Name: serviceName, Kind: authz.ServiceCentral, Org: org}},
		Doors: []authz.Door{{Org: org, Edge: edge, Code: door,
			Readers: []string{reader.Code}, Locks: []string{lock.Code}, Sensors: []string{contact.Code}}},
	}
	for _, t := range []topic.Thing{reader, lock, contact, sounder} {
		inv.Things = append(inv.Things, authz.Thing{Thing: t})
	}
	if live {
		liveInventory(inv)
	}
	return inv
}

// site is what both modes of the demo run, in-process: central (an
// embedded nats-server with the org's hub, credential manager and
// auditor) and edge hq (a node linked to central through a proxy that can
// cut the link, with its access service, its rules engine and four
// devices). The live mode adds its things to the inventory, MQTT on the
// edge and a database for central (siteOptions), and runs more beside it
// (live).
type site struct {
	opts    siteOptions
	log     *slog.Logger
	fail    context.CancelCauseFunc // ends the demo when a background task fails
	inv     *authz.Inventory
	st      *authz.State
	secrets *authz.Secrets
	key     []byte // the org's credential hash key
	// auditKey is the edge's audit key, read from its seed file.
	auditKey nkeys.KeyPair

	central *central.Central
	proxy   *tcpproxy.Proxy
	conn    *nats.Conn         // central's service connection
	alarms  *nats.Subscription // central's alarms about edge hq
	manager *access.Manager
	auditor *access.Auditor

	node    *edgekit.Node
	service *access.Service
	engine  *rules.Engine

	reader, contact *devicekit.Client
	unlocks, sounds chan devicekit.Command // what the lock and the sounder received

	closers []func() // run in reverse order by close
}

// siteOptions are what the live mode adds to the site: its things in the
// inventory, MQTT on the edge, and central's history database.
type siteOptions struct {
	live     bool
	database *pgxpool.Pool // nil: history in JetStream only
}

// startSite starts the site, keeping its stores under dir. Background
// failures cancel ctx through fail. On error nothing is left running.
func startSite(ctx context.Context, fail context.CancelCauseFunc, dir string, log *slog.Logger, opts siteOptions) (*site, error) {
	s := &site{opts: opts, log: log, fail: fail, unlocks: make(chan devicekit.Command, 8), sounds: make(chan devicekit.Command, 8)}
	for _, start := range []func(context.Context, string) error{s.credentials, s.startCentral, s.startEdge, s.startDevices} {
		if err := start(ctx, dir); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// close stops everything, the last started first.
func (s *site) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

func (s *site) onClose(f func()) { s.closers = append(s.closers, f) }

func (s *site) password(user string) string { return s.secrets.Passwords[user].Reveal() }

// credentials generates every identity's credential, the edge's leaf seed
// file and the org's hash key.
func (s *site) credentials(ctx context.Context, dir string) error {
	s.inv = inventory(s.opts.live)
	// bcrypt.MinCost keeps the demo's start-up fast; a real deployment
	// keeps the default cost (authz.DefaultCost).
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(ctx, s.inv, nil)
	if err != nil {
		return fmt.Errorf("generate credentials: %w", err)
	}
	s.st, s.secrets = res.State, res.Secrets
	if err := authz.WriteSeedFile(filepath.Join(dir, seedFile), res.Secrets.EdgeSeeds[authz.EdgeKeyID(org, edge)]); err != nil {
		return fmt.Errorf("write the edge's seed: %w", err)
	}
	// The edge's audit key reaches it like its leaf seed, in a file of
	// its own; its access service signs the audit trail with it.
	if err := authz.WriteSeedFile(filepath.Join(dir, auditSeedFile), res.Secrets.AuditSeeds[authz.EdgeKeyID(org, edge)]); err != nil {
		return fmt.Errorf("write the edge's audit key: %w", err)
	}
	if s.auditKey, err = access.ReadAuditKey(filepath.Join(dir, auditSeedFile)); err != nil {
		return fmt.Errorf("read the edge's audit key: %w", err)
	}
	if s.key, err = access.GenerateHashKey(); err != nil {
		return fmt.Errorf("generate the hash key: %w", err)
	}
	return nil
}

// startCentral starts central (package central: its server, and the org's
// hub with edge hq provisioned, manager and auditor), the proxy in front of
// its leaf port, and a service connection for its alarms.
func (s *site) startCentral(ctx context.Context, dir string) error {
	user := authz.ServiceUser(org, serviceName)
	var err error
	s.central, err = central.Start(ctx, central.Config{
		Inventory: s.inv, State: s.st, Logger: s.log, Database: s.opts.database,
		// As a deployed central: it maintains its database itself.
		Maintenance: &storage.MaintenanceConfig{},
		Orgs: map[string]central.OrgSecrets{org: {Service: serviceName, Password: s.secrets.Passwords[user],
			CommandKey: s.secrets.CommandSeeds[org], HashKey: s.key}},
		Render: authz.RenderOptions{
			Host: loopback, Port: -1, LeafHost: loopback, LeafPort: -1,
			StoreDir: filepath.Join(dir, "central"), MaxMemoryStore: 64 << 20, MaxFileStore: 1 << 30,
		},
		// The edge must reconnect through the proxy, not to central's own address.
		ServerOptions: func(o *server.Options) { o.LeafNode.NoAdvertise = true },
	})
	if err != nil {
		return fmt.Errorf("start central: %w", err)
	}
	s.onClose(s.central.Stop)
	if s.proxy, err = tcpproxy.New(s.central.LeafAddr()); err != nil {
		return fmt.Errorf("start the link proxy: %w", err)
	}
	s.onClose(s.proxy.Close)
	s.manager, s.auditor = s.central.Manager(org), s.central.Auditor(org)

	if s.conn, err = nats.Connect(s.central.ClientURL(), nats.Name("demo central"),
		nats.UserInfo(user, s.password(user)), nats.CustomInboxPrefix(authz.UserInboxPrefix(user))); err != nil {
		return fmt.Errorf("connect to central: %w", err)
	}
	s.onClose(s.conn.Close)
	if s.alarms, err = s.conn.SubscribeSync(access.AlarmThing(org, edge).Subject(topic.Event).String()); err != nil {
		return fmt.Errorf("subscribe to central's alarms: %w", err)
	}
	return nil
}

// startEdge starts edge hq's node, waits for its link to central, and
// starts its access service and its rules engine, which watches the rule
// document in the edge's mirror of its credential bucket.
func (s *site) startEdge(ctx context.Context, dir string) error {
	var err error
	s.node, err = edgekit.Start(ctx, edgekit.NodeConfig{
		Org: org, Edge: edge, Inventory: s.inv, State: s.st,
		Render: authz.RenderOptions{
			Host: loopback, Port: -1, StoreDir: filepath.Join(dir, "edge"), MaxFileStore: 1 << 30,
			HubURLs:   []string{"nats-leaf://" + s.proxy.Addr()},
			ConfigDir: dir, SeedFile: seedFile,
		},
		// The live mode's MQTT device logs in here (see mqttDevice).
		MQTT:                  edgekit.MQTTConfig{Enabled: s.opts.live, Port: -1},
		LeafReconnectInterval: 100 * time.Millisecond,
		CheckInterval:         50 * time.Millisecond,
		CommandKey:            s.secrets.CommandSeeds[authz.EdgeKeyID(org, edge)],
		Logger:                s.log,
	})
	if err != nil {
		return fmt.Errorf("start edge %s: %w", edge, err)
	}
	s.onClose(s.node.Stop)
	if err := waitFor(ctx, "the leaf link to central", s.node.LinkUp); err != nil {
		return err
	}

	if s.service, err = access.StartService(ctx, s.node, access.ServiceConfig{
		HashKey: s.key, AuditKey: s.auditKey, Inventory: s.inv, SyncInterval: 200 * time.Millisecond, Logger: s.log,
	}); err != nil {
		return fmt.Errorf("start the access service: %w", err)
	}
	s.onClose(s.service.Stop)
	// A fresh edge's set counts as stale until its first confirmed sync.
	if err := waitFor(ctx, "the edge's first sync with central", func() bool {
		return s.service.Loaded() && !s.service.SyncedAt().IsZero()
	}); err != nil {
		return err
	}

	if s.engine, err = rules.Start(ctx, rules.Config{Org: org, Edge: edge, Conn: s.node.Conn(), JetStream: s.node.JetStream(), SignCommand: s.node.SignCommand, Logger: s.log}, nil); err != nil {
		return fmt.Errorf("start the rules engine: %w", err)
	}
	s.onClose(s.engine.Stop)
	kv, err := s.node.JetStream().KeyValue(ctx, s.node.Names().CredentialBucket)
	if err != nil {
		return fmt.Errorf("open the edge's credential mirror: %w", err)
	}
	watchCtx, stop := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		refused := func(err error) { s.fail(fmt.Errorf("rules document refused: %w", err)) }
		if err := rules.Watch(watchCtx, kv, rules.ConfigKey, s.engine, refused); err != nil {
			s.fail(fmt.Errorf("watch the rules: %w", err))
		}
	}()
	s.onClose(func() { stop(); <-watched })
	return nil
}

// startDevices connects the four devices; the lock and the sounder hand
// the commands they receive to s.unlocks and s.sounds (in the live mode,
// where nobody reads s.unlocks, the lock just carries its commands out).
func (s *site) startDevices(ctx context.Context, _ string) error {
	var err error
	if s.reader, err = s.connect(ctx, reader); err != nil {
		return err
	}
	if s.contact, err = s.connect(ctx, contact); err != nil {
		return err
	}
	unlocks := s.unlocks
	if s.opts.live {
		unlocks = nil
	}
	if err := s.handle(ctx, lock, unlocks); err != nil {
		return err
	}
	return s.handle(ctx, sounder, s.sounds)
}

// connect connects device t to the edge with its generated password.
func (s *site) connect(ctx context.Context, t topic.Thing) (*devicekit.Client, error) {
	d, err := devicekit.Connect(ctx, devicekit.Config{
		Thing: t, URLs: []string{s.node.ClientURL()},
		Password: devicekit.Password(s.password(authz.DeviceUser(t))), Logger: s.log,
		CommandKeys: s.st.CommandPublicKeys(org, edge),
	})
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", t, err)
	}
	s.onClose(func() { _ = d.Close() })
	return d, nil
}

// handle connects device t and passes every command it receives to out;
// with out nil it completes them without passing them on.
func (s *site) handle(ctx context.Context, t topic.Thing, out chan<- devicekit.Command) error {
	d, err := s.connect(ctx, t)
	if err != nil {
		return err
	}
	_, err = d.HandleCommands(ctx, devicekit.HandlerFunc(func(ctx context.Context, c devicekit.Command) error {
		if out == nil {
			return nil
		}
		select {
		case out <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	if err != nil {
		return fmt.Errorf("handle the commands of %s: %w", t, err)
	}
	return nil
}

// waitTimeout bounds every wait of the demo: generous, for a loaded
// machine.
const waitTimeout = 30 * time.Second

// waitFor polls cond until it holds, for at most waitTimeout.
func waitFor(ctx context.Context, what string, cond func() bool) error {
	return waitEvery(ctx, what, 10*time.Millisecond, cond)
}

// waitEvery is waitFor polling every d.
func waitEvery(ctx context.Context, what string, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	tick := time.NewTicker(d)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-tick.C:
		}
	}
	return nil
}

// receive returns the next value of ch, waiting at most waitTimeout.
func receive[T any](ctx context.Context, what string, ch <-chan T) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
	}
}
