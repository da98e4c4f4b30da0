// Package central runs one node of Lintel's central system: the embedded
// nats-server rendered by package authz (accounts, the leaf listener edges
// link to, the client listener for services), and per org the hub (edge
// provisioning, source supervision, commands), the credential manager, the
// audit-chain auditor and, when a database is configured, the storage
// ingest into PostgreSQL or TimescaleDB.
//
// Start it with [Start] and stop it with [Central.Stop] or [Central.Close];
// [Central.Update] applies a changed inventory or credential state without
// dropping the edges already linked. [ReadEdgeStatus] reads how each edge
// stands at central (link, status report, credential sync), locally or
// over a client connection. apps/central wires a configuration file to it;
// docs/central.md explains the composition.
package central

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/storage"
)

// Defaults of [Config].
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultTimeout      = 10 * time.Second
)

// Errors of [Start] and [Central.Update].
var (
	// ErrInvalidConfig reports a [Config] that cannot be used.
	ErrInvalidConfig = errors.New("central: invalid configuration")
	// ErrNotReady reports a central that could not start.
	ErrNotReady = errors.New("central: not ready")
)

// OrgSecrets are what central needs of an org's secrets.
type OrgSecrets struct {
	// Service names the org's central service in the inventory (kind
	// authz.ServiceCentral) whose identity central's components use, and
	// Password is its password.
	Service  string
	Password authz.Secret // see Service
	// CommandKey is the org's command key seed, which signs commands.
	CommandKey authz.Secret
	// HashKey is the org's credential hash key (access.ReadHashKey).
	HashKey []byte
}

// Config configures a central node.
type Config struct {
	// Inventory and State are the deployment's inventory and credential
	// state. Required.
	Inventory *authz.Inventory
	State     *authz.State // see Inventory
	// Render are the server's listeners, store, TLS and name.
	Render authz.RenderOptions
	// Orgs holds each org's secrets by org code; every org of the
	// inventory needs one.
	Orgs map[string]OrgSecrets
	// Database, when set, is where history is stored: central migrates it
	// and runs the ingest of each org's event stream into it. Without it,
	// history is kept in JetStream only, within EventStream's limits.
	Database *pgxpool.Pool
	// Maintenance, when set with Database, has this node maintain the
	// database itself (storage.Store.StartMaintenance): retention on every
	// flavor, compression and the hourly aggregate's refresh on
	// TimescaleDB, in place of TimescaleDB's policy jobs, which it
	// unschedules (they fail on some PostgreSQL versions; docs/storage.md,
	// "Maintenance"). Every node of a clustered central may run it; one
	// does each pass. nil leaves maintenance to TimescaleDB's scheduler,
	// and to nobody on plain PostgreSQL. Its Logger defaults to Logger.
	Maintenance *storage.MaintenanceConfig
	// EventStream adjusts each org's event stream when it is created
	// (retention limits, replicas); see edgekit.HubConfig.EventStream.
	EventStream func(*jetstream.StreamConfig)
	// GatewayStream adjusts each org's gateway stream (the central HTTP
	// gateway's, see docs/gateway.md) when it is created or updated:
	// retention limits, the duplicate window.
	GatewayStream func(*jetstream.StreamConfig)
	// Replicas is how many copies of each of central's streams and buckets
	// a clustered central keeps (Render.Cluster set): 3 for a cluster of
	// three nodes. Zero means one. See docs/cluster.md.
	Replicas int
	// ServerOptions, when set, adjusts the server options before start.
	ServerOptions func(*server.Options)
	// StartTimeout bounds the start; DefaultStartTimeout if zero. Timeout
	// bounds other calls; DefaultTimeout if zero.
	StartTimeout, Timeout time.Duration
	// Logger receives central's log and the server's; nil discards.
	Logger *slog.Logger
}

// org is what central runs for one org. The fields up to run are set by
// startOrg before ready; sup and auditor, the duties, come and go with
// the leadership of a clustered central, under mu.
type org struct {
	code    string
	nc      *nats.Conn
	js      jetstream.JetStream
	hub     *edgekit.Hub
	manager *access.Manager
	origins *authz.SourceTable
	ingest  *storage.Ingest
	run     *storage.IngestRun
	ready   atomic.Bool

	mu      sync.Mutex
	sup     *edgekit.Supervisor
	auditor *access.Auditor
	gw      orgGateway // see gateway.go
	failing string     // the last start or leadership failure, logged once
}

// Central is a running central node. Its methods are safe for concurrent
// use.
type Central struct {
	cfg   Config
	log   *slog.Logger
	srv   *server.Server
	opts  *server.Options // as started, with the ports resolved
	store *storage.Store
	maint *storage.Maintenance // nil unless Config.Maintenance

	mu   sync.Mutex
	inv  *authz.Inventory
	st   *authz.State
	orgs map[string]*org

	stopOnce sync.Once
	stopErr  error
	stop     chan struct{} // closed by Close, ends lead
	wg       sync.WaitGroup
	done     chan struct{}
}

// Start starts a central node: the server, then each org's hub (every edge
// of the inventory provisioned), manager, auditor, supervisor and ingest.
// ctx bounds the start only; the node runs until [Central.Stop]. It
// returns an error wrapping [ErrInvalidConfig] or [ErrNotReady].
func Start(ctx context.Context, cfg Config) (*Central, error) {
	if cfg.Inventory == nil || cfg.State == nil {
		return nil, fmt.Errorf("%w: Inventory and State are required", ErrInvalidConfig)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, o := range cfg.Inventory.Orgs {
		s, ok := cfg.Orgs[o.Code]
		if !ok || s.Service == "" || s.Password.IsZero() || s.CommandKey.IsZero() {
			return nil, fmt.Errorf("%w: org %s needs its central service, password and command key", ErrInvalidConfig, o.Code)
		}
	}
	opts, err := authz.CentralOptions(cfg.Inventory, cfg.State, cfg.Render)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	allowInProcess(opts, cfg.Orgs)
	if cfg.ServerOptions != nil {
		cfg.ServerOptions(opts)
	}
	c := &Central{cfg: cfg, log: cfg.Logger, inv: cfg.Inventory, st: cfg.State, orgs: make(map[string]*org), stop: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := c.start(ctx, opts); err != nil {
		c.shutdown()
		close(c.done)
		return nil, fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return c, nil
}

func (c *Central) start(ctx context.Context, opts *server.Options) error {
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	srv.SetLoggerV2(newServerLogger(c.log), false, false, false)
	c.srv, c.opts = srv, opts
	srv.Start()
	if !srv.ReadyForConnections(time.Until(deadline(ctx))) {
		return errors.New("server: not ready for connections in time")
	}
	if c.cfg.Database != nil {
		res, err := storage.Migrate(ctx, c.cfg.Database, storage.MigrateOptions{Logger: c.log})
		if err != nil {
			return fmt.Errorf("migrate the database: %w", err)
		}
		c.store = storage.New(c.cfg.Database, storage.Config{Logger: c.log})
		c.log.Info("database ready", "flavor", res.Flavor)
		if mc := c.cfg.Maintenance; mc != nil {
			cfg := *mc
			if cfg.Logger == nil {
				cfg.Logger = c.log
			}
			if c.maint, err = c.store.StartMaintenance(ctx, cfg); err != nil {
				return fmt.Errorf("database maintenance: %w", err)
			}
		}
	} else {
		c.log.Info("no database configured: history is kept in JetStream only, within the event stream's limits")
	}
	for _, io := range c.inv.Orgs {
		o := &org{code: io.Code}
		c.orgs[io.Code] = o
		if c.clustered() {
			continue // see lead
		}
		if err := c.startOrg(ctx, o, true); err != nil {
			return fmt.Errorf("org %s: %w", io.Code, err)
		}
		o.ready.Store(true)
	}
	if c.clustered() {
		c.wg.Go(c.lead)
	}
	c.log.Info("central started", "client_url", srv.ClientURL(), "leaf", c.LeafAddr(), "orgs", len(c.orgs))
	return nil
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(DefaultStartTimeout)
}

// startOrg starts what central runs for org. It may be called again after
// a failure: each step skips what an earlier call set up. With provision
// it also creates or updates the org's streams, buckets and consumers
// (see [Central.provision]); a node of a clustered central leaves that to
// one node and waits for them ([Central.lead]), and leaves the supervisor
// and the auditor to the node that leads the org's event stream.
func (c *Central) startOrg(ctx context.Context, o *org, provision bool) error {
	code := o.code
	sec := c.cfg.Orgs[code]
	if err := c.connectOrg(o); err != nil {
		return err
	}
	var err error
	if o.hub == nil {
		if o.hub, err = edgekit.NewHub(o.js, edgekit.HubConfig{Org: code, Inventory: c.inventory(), Logger: c.log,
			CommandKey: sec.CommandKey, EventStream: c.cfg.EventStream, Replicas: c.cfg.Replicas, EdgeNodes: true,
			LeafLinks: func() map[string]uint64 { return edgekit.LeafDomains(c.srv, code) }}); err != nil {
			return err
		}
	}
	if provision {
		if err := c.provision(ctx, o); err != nil {
			return err
		}
	}
	if o.manager == nil {
		if o.manager, err = access.NewManager(o.js, o.hub, access.ManagerConfig{HashKey: sec.HashKey, Inventory: c.inventory(), Logger: c.log}); err != nil {
			return err
		}
	}
	if o.origins == nil {
		if o.origins, err = authz.NewSourceTableFor(c.inventory(), code); err != nil {
			return err
		}
	}
	if c.store != nil && o.run == nil {
		if o.ingest == nil {
			if o.ingest, err = storage.NewIngest(c.store, o.js, storage.IngestConfig{
				Stream: o.hub.EventStream(), DeadLetterSubject: DeadLetterSubject(code), Origins: o.origins, Logger: c.log,
			}); err != nil {
				return err
			}
		}
		if o.run, err = o.ingest.Start(ctx); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	if err := c.startGateway(ctx, c.inventory(), o); err != nil {
		return err
	}
	if c.clustered() {
		return nil
	}
	return c.startDuties(ctx, o)
}

// connectOrg connects o's in-process connection, once.
func (c *Central) connectOrg(o *org) error {
	if o.nc != nil {
		return nil
	}
	sec := c.cfg.Orgs[o.code]
	user := authz.ServiceUser(o.code, sec.Service)
	nc, err := nats.Connect("", nats.InProcessServer(c.srv), nats.Name("lintel central "+o.code),
		nats.UserInfo(user, sec.Password.Reveal()), nats.CustomInboxPrefix(authz.UserInboxPrefix(user)),
		nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect as %s: %w", user, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return err
	}
	o.nc, o.js = nc, js
	return nil
}

// provision creates or updates o's streams, buckets and consumers: the
// hub's (every edge of the inventory) and, with a database, the
// dead-letter stream. It is idempotent.
func (c *Central) provision(ctx context.Context, o *org) error {
	if err := o.hub.Provision(ctx, edgesOf(c.inventory(), o.code)...); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if err := c.provisionGateway(ctx, c.inventory(), o); err != nil {
		return err
	}
	if c.store == nil {
		return nil
	}
	if _, err := o.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: DeadLetterStream(o.code), Description: "Lintel messages the ingest could not store",
		Subjects: []string{DeadLetterSubject(o.code)}, Storage: jetstream.FileStorage, MaxAge: 90 * 24 * time.Hour,
		Replicas: c.cfg.Replicas,
	}); err != nil {
		return fmt.Errorf("dead-letter stream: %w", err)
	}
	return nil
}

// startDuties starts the work done once per org: the auditor, and the
// supervisor, which starts last (see edgekit.Hub.Supervise).
func (c *Central) startDuties(ctx context.Context, o *org) error {
	if c.clustered() {
		// The leader provisions, for edges added while another node led.
		if err := c.provision(ctx, o); err != nil {
			return err
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var err error
	if o.auditor == nil {
		if o.auditor, err = access.StartAuditor(ctx, o.js, access.AuditorConfig{Org: o.code, Keys: c.state(), Logger: c.log,
			Replicas: c.cfg.Replicas}); err != nil {
			return fmt.Errorf("auditor: %w", err)
		}
	}
	if o.sup == nil {
		if o.sup, err = o.hub.Supervise(ctx); err != nil {
			return fmt.Errorf("supervisor: %w", err)
		}
	}
	return nil
}

// leads reports whether o's duties run on this node.
func (o *org) leads() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sup != nil
}

// stopDuties stops what startDuties started; it reports whether anything
// was running.
func (o *org) stopDuties() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	running := o.sup != nil || o.auditor != nil
	if o.sup != nil {
		o.sup.Stop()
		o.sup = nil
	}
	if o.auditor != nil {
		o.auditor.Stop()
		o.auditor = nil
	}
	return running
}

// allowInProcess lets the central services central runs as connect
// in-process (which needs no TLS to itself): authz renders every user with
// network connection types only.
func allowInProcess(opts *server.Options, orgs map[string]OrgSecrets) {
	users := make(map[string]bool, len(orgs))
	for code, s := range orgs {
		users[authz.ServiceUser(code, s.Service)] = true
	}
	for _, u := range opts.Users {
		if users[u.Username] && u.AllowedConnectionTypes != nil {
			u.AllowedConnectionTypes["IN_PROCESS"] = struct{}{}
		}
	}
}

// DeadLetterStream and DeadLetterSubject name org's dead-letter stream and
// subject, where the ingest puts what it cannot store.
func DeadLetterStream(org string) string { return "deadletter-" + org }

// DeadLetterSubject names org's dead-letter subject.
func DeadLetterSubject(org string) string { return org + ".deadletter" }

// Update applies a changed inventory or credential state: the server
// reloads its users (the linked edges stay linked), every hub learns the
// inventory and provisions new edges, and the origin tables learn them. An
// org added to the inventory needs a restart. It returns an error wrapping
// [ErrInvalidConfig] when the new configuration cannot be rendered.
func (c *Central) Update(ctx context.Context, inv *authz.Inventory, st *authz.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	opts, err := authz.CentralOptions(inv, st, c.cfg.Render)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	allowInProcess(opts, c.cfg.Orgs)
	if c.cfg.ServerOptions != nil {
		c.cfg.ServerOptions(opts)
	}
	// nats-server refuses a reload that changes what it cannot reload; the
	// ports chosen at random at start stay as they are.
	cur := c.opts
	opts.Port, opts.LeafNode.Port, opts.HTTPPort = cur.Port, cur.LeafNode.Port, cur.HTTPPort
	opts.Host, opts.LeafNode.Host = cur.Host, cur.LeafNode.Host
	if err := c.srv.ReloadOptions(opts); err != nil {
		return fmt.Errorf("reload the server: %w", err)
	}
	c.opts = opts
	c.inv, c.st = inv, st
	for code, o := range c.orgs {
		if !o.ready.Load() {
			continue // it starts with the inventory set above
		}
		if err := o.hub.SetInventory(inv); err != nil {
			return err
		}
		edges := edgesOf(inv, code)
		for _, e := range edges {
			if err := o.origins.Add(e); err != nil { // idempotent
				return err
			}
		}
		if !c.clustered() || o.leads() {
			if err := c.provisionGateway(ctx, inv, o); err != nil {
				return fmt.Errorf("org %s: %w", code, err)
			}
		}
		if err := c.startGateway(ctx, inv, o); err != nil {
			return fmt.Errorf("org %s: %w", code, err)
		}
		// On a clustered central the node running the org's duties
		// provisions (each node reloads; see Central.lead).
		if c.clustered() && !o.leads() {
			continue
		}
		if err := o.hub.Provision(ctx, edges...); err != nil {
			return fmt.Errorf("org %s: provision: %w", code, err)
		}
	}
	c.log.Info("central updated", "orgs", len(c.orgs))
	return nil
}

// Stop stops central gracefully: the ingest commits what it has read, the
// supervisors and auditors stop, then the server. It is idempotent and
// returns once everything has stopped.
func (c *Central) Stop() { _ = c.Close() }

// Close is [Central.Stop], returning the first error met while stopping.
func (c *Central) Close() error {
	c.stopOnce.Do(func() {
		c.stopErr = c.shutdown()
		close(c.done)
	})
	<-c.done
	return c.stopErr
}

// Done is closed once central has stopped.
func (c *Central) Done() <-chan struct{} { return c.done }

func (c *Central) shutdown() error {
	close(c.stop)
	c.wg.Wait()
	if c.maint != nil {
		c.maint.Stop()
	}
	var errs []error
	for _, o := range c.orgs {
		if o.run != nil {
			// The batch in hand is committed if the database lets it within
			// the timeout; otherwise it is handed back.
			go o.run.Drain()
			select {
			case <-o.run.Done():
			case <-time.After(c.cfg.Timeout):
				c.log.Warn("the ingest did not drain in time; stopping it", "org", o.code)
				o.run.Stop()
			}
			if err := o.run.Err(); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("org %s: ingest: %w", o.code, err))
			}
		}
		if err := c.stopGateway(o); err != nil {
			errs = append(errs, err)
		}
		// A duty stuck in a JetStream call (no quorum left, say) is cut
		// short by closing the connection under it.
		stopped := make(chan struct{})
		go func() {
			o.stopDuties()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(c.cfg.Timeout):
			c.log.Warn("the auditor or supervisor did not stop in time; closing their connection", "org", o.code)
		}
		if o.nc != nil {
			if err := o.nc.Drain(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
	}
	c.log.Info("central stopped")
	return errors.Join(errs...)
}

// Server returns the embedded nats-server.
func (c *Central) Server() *server.Server { return c.srv }

// ClientURL returns the client listener's URL.
func (c *Central) ClientURL() string { return c.srv.ClientURL() }

// LeafAddr returns the leaf listener's address, host:port.
func (c *Central) LeafAddr() string {
	c.mu.Lock()
	o := c.opts
	c.mu.Unlock()
	host := o.LeafNode.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(o.LeafNode.Port))
}

// edgesOf returns the edges of org in inv.
func edgesOf(inv *authz.Inventory, org string) []string {
	var out []string
	for _, e := range inv.Edges {
		if e.Org == org {
			out = append(out, e.Code)
		}
	}
	return out
}

// readyOrg returns org when it is started, or nil.
func (c *Central) readyOrg(org string) *org {
	if o := c.orgs[org]; o != nil && o.ready.Load() {
		return o
	}
	return nil
}

// Hub returns the hub of org, or nil (also while a clustered central has
// not yet started the org).
func (c *Central) Hub(org string) *edgekit.Hub {
	if o := c.readyOrg(org); o != nil {
		return o.hub
	}
	return nil
}

// Auditor returns the auditor of org, or nil: on a clustered central only
// the node that leads the org's event stream runs it.
func (c *Central) Auditor(org string) *access.Auditor {
	if o := c.readyOrg(org); o != nil {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.auditor
	}
	return nil
}

// Manager returns the credential manager of org, or nil.
func (c *Central) Manager(org string) *access.Manager {
	if o := c.readyOrg(org); o != nil {
		return o.manager
	}
	return nil
}

// JetStream returns the JetStream context of org's in-process connection,
// which acts as the org's central service (the identity of
// [OrgSecrets].Service), or nil while the org is not started. Services
// built on central, such as its HTTP API, use it for their own streams and
// buckets; it must not be used to act for a client on subjects the client
// names.
func (c *Central) JetStream(org string) jetstream.JetStream {
	if o := c.readyOrg(org); o != nil {
		return o.js
	}
	return nil
}

// Inventory returns the inventory central runs with: the one of [Start],
// or of the last [Central.Update].
func (c *Central) Inventory() *authz.Inventory { return c.inventory() }

// Store returns the history store in the configured database, or nil
// without a database (history in JetStream only).
func (c *Central) Store() *storage.Store { return c.store }
