package edgekit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Defaults of [NodeConfig].
const (
	// DefaultEventStreamMaxBytes bounds the edge's event stream unless
	// NodeConfig.EventStreamMaxBytes says otherwise. It is lowered to three
	// quarters of JetStream's file storage when that is smaller.
	DefaultEventStreamMaxBytes = 1 << 30
	// DefaultTelemetryStreamMaxBytes bounds the edge's telemetry stream
	// unless NodeConfig.TelemetryStreamMaxBytes says otherwise. It is
	// lowered to an eighth of JetStream's file storage when that is
	// smaller, so that both streams at their default bounds leave room in
	// the store.
	DefaultTelemetryStreamMaxBytes = 256 << 20
	// DefaultPlatformStreamMaxBytes bounds the edge's platform stream (the
	// audit trail, the edge's own records) unless
	// NodeConfig.PlatformStreamMaxBytes says otherwise. It is lowered to a
	// sixteenth of JetStream's file storage when that is smaller, so that
	// the three streams at their default bounds leave room in the store.
	DefaultPlatformStreamMaxBytes = 256 << 20
	// DefaultEventMaxMsgsPerSubject bounds how many messages the event
	// stream holds on one subject (one device's events, states or acks)
	// unless NodeConfig.EventMaxMsgsPerSubject says otherwise: a device
	// that reaches it has its new messages refused, and the others keep
	// their share of the stream.
	DefaultEventMaxMsgsPerSubject = 10000
	// DefaultEventMaxMsgSize is the largest message the event stream
	// stores unless NodeConfig.EventMaxMsgSize says otherwise.
	DefaultEventMaxMsgSize = 64 << 10
	// DefaultCommandStreamMaxAge is how long the edge's command stream keeps
	// a command, delivered or not; a command's own deadline is normally much
	// shorter.
	DefaultCommandStreamMaxAge = 7 * 24 * time.Hour
	// DefaultLeafReconnectInterval is how long the edge waits between
	// attempts to reach central.
	DefaultLeafReconnectInterval = time.Second
	// DefaultStatusInterval is how often the edge publishes its status when
	// nothing changes.
	DefaultStatusInterval = 30 * time.Second
	// DefaultCheckInterval is how often the node checks the fill of its
	// stores, its link, the liveness of its devices and the commands waiting
	// for their device; status changes are published at most this often.
	DefaultCheckInterval = 500 * time.Millisecond
	// DefaultHeartbeatMisses is how many heartbeat intervals a device may
	// stay silent before it counts as stale.
	DefaultHeartbeatMisses = 3
	// DefaultDeviceHeartbeat is the heartbeat interval assumed for a device
	// whose birth does not announce one (devicekit's default).
	DefaultDeviceHeartbeat = 30 * time.Second
	// DefaultFlapWindow is the window within which the edge publishes at
	// most one death per device (see [NodeConfig].FlapWindow).
	DefaultFlapWindow = 10 * time.Second
	// DefaultCommandAckWait is the ack wait of the edge's command
	// dispatcher: a command held for an offline device is kept in progress
	// well within it, and one whose dispatcher died is redelivered after it.
	DefaultCommandAckWait = 30 * time.Second
	// DefaultStartTimeout bounds Start and Run's start-up when the context
	// has no deadline.
	DefaultStartTimeout = 30 * time.Second
	// DefaultNodeTimeout bounds the node's own JetStream calls (a death, an
	// expired ack, a status) and Status when the context has no deadline.
	DefaultNodeTimeout = 10 * time.Second
	// DefaultDuplicateWindow is the deduplication window of the edge's
	// event, telemetry and platform streams unless
	// NodeConfig.DuplicateWindow says otherwise.
	DefaultDuplicateWindow = 2 * time.Minute
	// MaxDuplicateWindow is the longest NodeConfig.DuplicateWindow the node
	// accepts: nats-server keeps every message ID of the window in memory.
	MaxDuplicateWindow = 24 * time.Hour
)

// DefaultFillAlarms are the fill levels of the event stream (or of the
// JetStream store, whichever is fuller) at which the edge raises an alarm,
// unless NodeConfig.FillAlarms says otherwise.
func DefaultFillAlarms() []float64 { return []float64{0.8, 0.95} }

// Names of the messages the edge node publishes about itself, from the
// thing {org}.{edge}._edge.{edge} ([topic.ThingTypeEdge]).
const (
	// NameEdgeStatus is a [NodeStatus], with Type topic.State, on
	// "{org}.{edge}._edge.{edge}.state".
	NameEdgeStatus = "edge.status"
	// NameStreamFilling is a [StreamAlarm] raised when the event stream or
	// the store crosses a fill threshold upwards, with Type topic.Event on
	// "{org}.{edge}._edge.{edge}.evt".
	NameStreamFilling = "edge.stream_filling"
	// NameStreamRecovered is a [StreamAlarm] cleared when the fill drops
	// back below the lowest threshold raised, with Type topic.Event.
	NameStreamRecovered = "edge.stream_recovered"
)

// CommandDispatcher is the name of the edge service's durable consumer on
// the edge's command stream, through which it hands commands to devices.
const CommandDispatcher = "dispatch"

// NodeConfig configures a [Node]. Org, Edge, Inventory, State and
// Render.HubURLs are required (HubURLs by [authz.EdgeOptions]); the zero
// value of every other field means its default.
type NodeConfig struct {
	// Org and Edge name the edge; the inventory must list it.
	Org, Edge string
	// Inventory and State are the deployment's inventory and credential
	// state, from which the server's configuration, its users and their
	// permissions are generated (package authz). Use [Node.UpdateCredentials]
	// to apply new ones without a restart.
	Inventory *authz.Inventory
	State     *authz.State // see Inventory
	// Render holds the deployment details authz needs: HubURLs (central's
	// leaf-node URLs), ConfigDir and SeedFile (the edge's NKey seed),
	// StoreDir, the client listener (Host, Port: -1 for a random port),
	// MaxFileStore and PingInterval (authz renders 5s, not nats-server's
	// two minutes, so that a dead link is noticed within seconds).
	Render authz.RenderOptions
	// Auth configures the [authz.EdgeAuthenticator] that authenticates
	// devices. A nil Auth.Logger means Logger: throttled logins are the
	// node's security events.
	Auth authz.EdgeAuthConfig

	// SyncInterval is how often JetStream fsyncs its files. Zero means
	// every write, before it is acknowledged (nats-server's sync_interval:
	// always): the edge holds the only copy of what central has not yet
	// stored, and nats-server's default of two minutes loses acknowledged
	// writes on power loss. A positive value trades that for throughput.
	// Streams that central can refill (the credential mirror) never fsync
	// per write.
	SyncInterval time.Duration
	// EventStreamMaxBytes bounds the event stream; the stream refuses new
	// messages beyond it, and devices get an error. Zero means
	// [DefaultEventStreamMaxBytes] (at most 3/4 of the store); negative
	// means no bound but the JetStream store itself.
	EventStreamMaxBytes int64
	// TelemetryStreamMaxBytes bounds the telemetry stream, which holds the
	// devices' telemetry apart from the event stream; the stream refuses
	// new telemetry beyond it. Zero means [DefaultTelemetryStreamMaxBytes]
	// (at most 1/8 of the store); negative means no bound but the
	// JetStream store itself.
	TelemetryStreamMaxBytes int64
	// PlatformStreamMaxBytes bounds the platform stream, which holds the
	// platform's own records (the access service's audit trail, the edge's
	// status, alarms, deaths and expiry acks), which no device can write.
	// Zero means [DefaultPlatformStreamMaxBytes] (at most 1/16 of the store);
	// negative means no bound but the JetStream store itself.
	PlatformStreamMaxBytes int64
	// EventMaxMsgsPerSubject bounds the messages the event stream holds on
	// one subject, that is per device and message type, with discard-new
	// per subject: one device that floods cannot take the others' share.
	// Zero means [DefaultEventMaxMsgsPerSubject]; negative means no bound.
	EventMaxMsgsPerSubject int64
	// EventMaxMsgSize is the largest message the event stream stores. Zero
	// means [DefaultEventMaxMsgSize]; negative means no bound but the
	// server's max_payload.
	EventMaxMsgSize int32
	// CommandStreamMaxAge is how long the edge's command stream keeps
	// commands. Zero means [DefaultCommandStreamMaxAge].
	CommandStreamMaxAge time.Duration
	// DuplicateWindow is how long the event, telemetry and platform streams
	// remember the envelope IDs (Nats-Msg-Id) of what they stored: a
	// message repeated with the same ID within it is acknowledged and not
	// stored again. A device's outbox (devicekit.Config.Outbox) must send
	// an envelope again within it to be stored once. The window survives a
	// restart of the node: nats-server rebuilds it from the stored
	// messages. Applied to existing streams at start. Zero means
	// [DefaultDuplicateWindow]; it must be positive and at most
	// [MaxDuplicateWindow]. Memory grows with the messages stored within
	// the window.
	DuplicateWindow time.Duration
	// FillAlarms are the fill levels, in (0, 1], at which a
	// [NameStreamFilling] alarm is raised. Nil means [DefaultFillAlarms].
	FillAlarms []float64

	// LeafReconnectInterval is the pause between attempts to reach central.
	// Zero means [DefaultLeafReconnectInterval].
	LeafReconnectInterval time.Duration
	// StatusInterval is how often the status is published when nothing
	// changes. Zero means [DefaultStatusInterval].
	StatusInterval time.Duration
	// CheckInterval is how often stores, link, liveness and waiting commands
	// are checked. Zero means [DefaultCheckInterval].
	CheckInterval time.Duration
	// HeartbeatMisses is how many heartbeat intervals a device may miss
	// before it counts as stale. Zero means [DefaultHeartbeatMisses].
	HeartbeatMisses int
	// DeviceHeartbeat is the heartbeat interval of a device whose birth
	// does not say. Zero means [DefaultDeviceHeartbeat].
	DeviceHeartbeat time.Duration
	// FlapWindow is the minimum time between two deaths the edge publishes
	// for one device. A device whose connection drops again within the
	// window gets its death when the window ends, and none if it is back by
	// then. Zero means [DefaultFlapWindow]; negative means no suppression.
	FlapWindow time.Duration
	// CommandAckWait is the ack wait of the command dispatcher. Zero means
	// [DefaultCommandAckWait].
	CommandAckWait time.Duration

	// DeviceRate bounds the messages a second each device connection may
	// publish into the edge, with bursts of DeviceBurst more; a connection
	// over it is closed and its user refused for DeviceBanFor (see
	// docs/threat-model.md). Zero means [DefaultDeviceRate],
	// [DefaultDeviceBurst] and [DefaultDeviceBanFor]; a negative DeviceRate
	// turns the limit off. The rate is read at every CheckInterval, so a
	// device may exceed its burst by what it publishes within one interval.
	DeviceRate   float64
	DeviceBurst  float64       // see DeviceRate
	DeviceBanFor time.Duration // see DeviceRate

	// MQTT enables nats-server's MQTT listener for devices that speak only
	// MQTT; see [MQTTConfig].
	MQTT MQTTConfig

	// CommandKey is the seed of the edge's command key
	// (authz.Secrets.CommandSeeds[authz.EdgeKeyID(org, edge)]), with which
	// the edge's own services sign the commands they issue
	// ([Node.SignCommand]). Without it they cannot command devices.
	CommandKey authz.Secret

	// StartTimeout bounds start-up when the context has no deadline. Zero
	// means [DefaultStartTimeout].
	StartTimeout time.Duration
	// Timeout bounds the node's own JetStream calls. Zero means
	// [DefaultNodeTimeout].
	Timeout time.Duration

	// ServerOptions, when set, adjusts the server options last, after
	// everything above has been applied.
	ServerOptions func(*server.Options)
	// Logger receives the node's records and nats-server's log. Nil
	// discards both.
	Logger *slog.Logger
	// Now is the node's clock, for deadlines, liveness and envelopes. Nil
	// means time.Now.
	Now func() time.Time
	// IDs makes the IDs of the envelopes the node publishes. Nil means a
	// generator of the node's own, using Now.
	IDs *message.IDGenerator
}

func (c NodeConfig) withDefaults() NodeConfig {
	if c.CommandStreamMaxAge == 0 {
		c.CommandStreamMaxAge = DefaultCommandStreamMaxAge
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.FillAlarms == nil {
		c.FillAlarms = DefaultFillAlarms()
	}
	if c.LeafReconnectInterval == 0 {
		c.LeafReconnectInterval = DefaultLeafReconnectInterval
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.HeartbeatMisses == 0 {
		c.HeartbeatMisses = DefaultHeartbeatMisses
	}
	if c.DeviceHeartbeat == 0 {
		c.DeviceHeartbeat = DefaultDeviceHeartbeat
	}
	if c.FlapWindow == 0 {
		c.FlapWindow = DefaultFlapWindow
	}
	if c.CommandAckWait == 0 {
		c.CommandAckWait = DefaultCommandAckWait
	}
	if c.DeviceRate == 0 {
		c.DeviceRate = DefaultDeviceRate
	}
	if c.DeviceBurst == 0 {
		c.DeviceBurst = DefaultDeviceBurst
	}
	if c.DeviceBanFor == 0 {
		c.DeviceBanFor = DefaultDeviceBanFor
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultNodeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.IDs == nil {
		c.IDs = &message.IDGenerator{Now: c.Now}
	}
	return c
}

// Node is the Lintel edge at a site: an embedded nats-server that is a leaf
// node of central, with JetStream on file storage in the edge's domain, the
// devices' users and permissions from package authz, and the edge service
// that runs on it: it keeps the edge's streams, hands commands to devices,
// tracks their liveness and publishes the edge's status and alarms. See the
// package documentation for what it guarantees, and docs/edge-node.md for
// how.
//
// Make one with [Start], or with [NewNode] and [Node.Run]. Its methods are
// safe for concurrent use.
type Node struct {
	cfg   NodeConfig
	names authz.EdgeNames
	log   *slog.Logger
	self  topic.Thing // {org}.{edge}._edge.{edge}
	stamp *message.Stamper

	auth *authz.EdgeAuthenticator
	gate *nodeGate
	inv  atomic.Pointer[authz.Inventory]
	opts *server.Options

	cmdKey nkeys.KeyPair // see SignCommand

	startOnce    sync.Once
	stopOnce     sync.Once
	stopping     chan struct{} // closed by Stop, or by a failed start
	stoppingOnce sync.Once
	done         chan struct{} // closed when stopped
	ready        chan struct{} // closed when started
	startErr     error
	stopErr      error
	wg           sync.WaitGroup

	srv      *server.Server
	nc       *nats.Conn
	rc       *nats.Conn // the responder: see ResponderConn
	relc     *nats.Conn // reads central's release marks (node_release.go)
	js       jetstream.JetStream
	maxBytes int64 // event stream MaxBytes as created (-1: none)
	tlmBytes int64 // telemetry stream MaxBytes as created (-1: none)
	recBytes int64 // platform stream MaxBytes as created (-1: none)
	storeMax int64
	started  time.Time

	cmds   *cmdDispatcher
	resets *resetWatch
	rate   *rateGuard
	live   *liveTracker
	report *statusReporter
	held   []*heldStream // set by provision, then the release loop's

	stats nodeCounters
}

// nodeCounters are the node's counters, behind [Node.Stats].
type nodeCounters struct {
	deathsPublished, deathsSuppressed                             atomic.Uint64
	commandsDelivered, commandsExpired, commandsDuplicate         atomic.Uint64
	commandsRejected, commandsQueued                              atomic.Uint64
	statusPublished, alarmsRaised, alarmsCleared, publishFailures atomic.Uint64
	releases, repairs, resetsResent                               atomic.Uint64
}

// NewNode checks cfg and renders the edge's server options (reading the
// seed file), without starting anything; start the node with [Node.Run].
// It returns an error wrapping [ErrInvalidConfig], or the errors of
// [authz.EdgeOptions] and [authz.NewEdgeAuthenticator] (an edge the
// inventory does not list, missing HubURLs, an unreadable seed).
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Inventory == nil || cfg.State == nil {
		return nil, fmt.Errorf("%w: Inventory and State are required", ErrInvalidConfig)
	}
	names, err := authz.NamesFor(cfg.Org, cfg.Edge)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	for _, f := range cfg.FillAlarms {
		if !(f > 0 && f <= 1) {
			return nil, fmt.Errorf("%w: fill alarm %v outside (0, 1]", ErrInvalidConfig, f)
		}
	}
	if w := cfg.DuplicateWindow; w < 0 || w > MaxDuplicateWindow {
		return nil, fmt.Errorf("%w: DuplicateWindow %v outside (0, %v] (zero means the default, %v)", ErrInvalidConfig, w, MaxDuplicateWindow, DefaultDuplicateWindow)
	}
	cfg = cfg.withDefaults()
	cmdKey, err := parseCommandKey(cfg.CommandKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	opts, err := authz.EdgeOptions(cfg.Inventory, cfg.State, cfg.Org, cfg.Edge, cfg.Render)
	if err != nil {
		return nil, err
	}
	if cfg.Auth.Logger == nil {
		// Refused and throttled logins are the node's security events.
		cfg.Auth.Logger = cfg.Logger
	}
	auth, err := authz.NewEdgeAuthenticator(cfg.Inventory, cfg.State, cfg.Org, cfg.Edge, cfg.Auth)
	if err != nil {
		return nil, err
	}
	gate, err := newNodeGate(auth, cfg.Org, cfg.Edge)
	if err != nil {
		auth.Close()
		return nil, err
	}
	auth.Configure(opts)
	opts.CustomClientAuthentication = gate
	if cfg.SyncInterval > 0 {
		opts.SyncInterval = cfg.SyncInterval
		opts.SyncAlways = false
	} else {
		opts.SyncAlways = true
	}
	opts.LeafNode.ReconnectInterval = cfg.LeafReconnectInterval
	opts.NoSigs = true
	opts.NoLog = cfg.Logger.Handler() == slog.DiscardHandler
	if err := cfg.MQTT.apply(opts); err != nil {
		auth.Close()
		return nil, err
	}
	if cfg.ServerOptions != nil {
		cfg.ServerOptions(opts)
	}
	self := topic.Thing{Org: cfg.Org, Edge: cfg.Edge, Type: topic.ThingTypeEdge, Code: cfg.Edge}
	n := &Node{
		cfg:      cfg,
		names:    names,
		log:      cfg.Logger.With(message.LogKeyOrg, cfg.Org, message.LogKeyEdge, cfg.Edge),
		self:     self,
		auth:     auth,
		gate:     gate,
		cmdKey:   cmdKey,
		opts:     opts,
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		ready:    make(chan struct{}),
	}
	n.inv.Store(cfg.Inventory)
	n.rate = newRateGuard(cfg)
	gate.rate = n.rate
	n.stamp = &message.Stamper{Source: self, BootID: cfg.IDs.New(), Now: cfg.Now, IDs: cfg.IDs}
	n.live = newLiveTracker(n)
	n.cmds = newCmdDispatcher(n)
	n.report = newStatusReporter(n)
	return n, nil
}

// Start makes a node with [NewNode] and starts it: the embedded server, the
// edge's streams and consumers, the edge service. It returns once devices
// can connect, which does not need central: the link to central comes up
// whenever central is reachable. ctx bounds the start only (when it has no
// deadline, cfg.StartTimeout applies); the node runs until [Node.Stop].
// It returns the errors of NewNode, or an error wrapping [ErrNotReady];
// nothing is left running then.
func Start(ctx context.Context, cfg NodeConfig) (*Node, error) {
	n, err := NewNode(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// Run starts the node as [Start] does and runs it until ctx ends or
// [Node.Stop] is called, then stops it. It returns the start error (wrapping
// [ErrNotReady]), [ErrAlreadyStarted] when the node was started before, or
// nil after a stop.
func (n *Node) Run(ctx context.Context) error {
	if err := n.start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-n.stopping:
	}
	n.Stop()
	return nil
}

// start runs the start-up once.
func (n *Node) start(ctx context.Context) error {
	first := false
	n.startOnce.Do(func() {
		first = true
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, n.cfg.StartTimeout)
			defer cancel()
		}
		n.startErr = n.startup(ctx)
		if n.startErr != nil {
			n.shutdown()
			n.closeStopping()
			close(n.done)
			return
		}
		close(n.ready)
	})
	if !first {
		return ErrAlreadyStarted
	}
	return n.startErr
}

// startup starts the server, connects the edge service and creates the
// edge's streams and consumers, in the order that keeps every device
// message: devices are let in only once the event stream's consumer for
// central exists.
func (n *Node) startup(ctx context.Context) error {
	srv, err := server.NewServer(n.opts)
	if err != nil {
		return fmt.Errorf("%w: configure server: %w", ErrNotReady, err)
	}
	n.srv = srv
	n.auth.Attach(srv)
	n.gate.attach(srv)
	if !n.opts.NoLog {
		srv.SetLoggerV2(nodeServerLog{n.log.With("component", "nats-server")}, false, false, false)
	}
	srv.Start()
	wait := time.Until(deadlineOf(ctx))
	if !srv.ReadyForConnections(max(wait, time.Millisecond)) {
		return fmt.Errorf("%w: server not accepting connections", ErrNotReady)
	}
	if jc := srv.JetStreamConfig(); jc != nil {
		n.storeMax = jc.MaxStore
	}
	n.started = n.cfg.Now()
	nc, err := nats.Connect("",
		nats.InProcessServer(srv),
		nats.UserInfo(n.gate.user, n.gate.token),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(n.gate.user)),
		nats.Name("lintel edge service "+authz.EdgeKeyID(n.cfg.Org, n.cfg.Edge)),
		nats.MaxReconnects(-1),
		nats.NoCallbacksAfterClientClose(),
	)
	if err != nil {
		return fmt.Errorf("%w: edge service connection: %w", ErrNotReady, err)
	}
	n.nc = nc
	// The release connection: its inbox is where central's answers to the
	// release-mark reads may come back across the leaf link.
	if n.relc, err = nats.Connect("",
		nats.InProcessServer(srv),
		nats.UserInfo(n.gate.user, n.gate.token),
		nats.CustomInboxPrefix(n.names.ReleaseReplyPrefix()),
		nats.Name("lintel edge release "+authz.EdgeKeyID(n.cfg.Org, n.cfg.Edge)),
		nats.MaxReconnects(-1),
		nats.NoCallbacksAfterClientClose(),
	); err != nil {
		return fmt.Errorf("%w: edge release connection: %w", ErrNotReady, err)
	}
	if n.rc, err = n.connectResponder(); err != nil {
		return fmt.Errorf("%w: edge responder connection: %w", ErrNotReady, err)
	}
	if n.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	if err := n.provision(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	if err := n.live.start(); err != nil {
		return fmt.Errorf("%w: liveness: %w", ErrNotReady, err)
	}
	if err := n.cmds.start(ctx); err != nil {
		return fmt.Errorf("%w: command dispatcher: %w", ErrNotReady, err)
	}
	if n.resets, err = n.watchResets(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	n.gate.open()
	n.publishBirth(ctx)
	n.wg.Go(n.loop)
	n.wg.Go(n.releaseLoop)
	n.log.Info("edge node started", "client_url", n.ClientURL(), "store_dir", n.opts.StoreDir,
		"event_stream_max_bytes", n.maxBytes, "telemetry_stream_max_bytes", n.tlmBytes, "sync_always", n.opts.SyncAlways)
	return nil
}

// loop runs the periodic checks until Stop.
func (n *Node) loop() {
	t := time.NewTicker(n.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stopping:
			return
		case <-t.C:
			n.enforceRate()
			n.live.tick()
			n.cmds.tick()
			n.report.tick()
		case <-n.report.kick:
			n.report.tick()
		}
	}
}

// Stop stops the node gracefully: no new command is handed out, the edge
// service's pending writes are flushed, and the server shuts down, closing
// the device connections and the link. It returns once everything has
// stopped, and is idempotent. Stop is the way to stop a node started with
// [Start]; the context given to Start does not stop it.
func (n *Node) Stop() { _ = n.Close() }

// Close is the io.Closer form of [Node.Stop]: it stops the node as Stop
// does and returns the errors met while stopping (a flush that did not
// complete), joined. Every call returns the same result.
func (n *Node) Close() error {
	n.stopOnce.Do(func() {
		n.closeStopping()
		// A node never started is stopped here (a later start fails with
		// ErrAlreadyStarted); a start in progress is waited for.
		n.startOnce.Do(func() { close(n.done) })
		select {
		case <-n.ready:
		default:
			return // never started, or start failed: done is closed
		}
		n.wg.Wait()
		n.stopErr = n.shutdown()
		close(n.done)
	})
	<-n.done
	return n.stopErr
}

// shutdown stops the edge service and the server.
func (n *Node) shutdown() error {
	var errs []error
	if n.resets != nil {
		n.resets.close()
	}
	if n.cmds != nil {
		n.cmds.stop()
	}
	if n.live != nil {
		n.live.stop()
	}
	if n.nc != nil {
		if err := n.nc.FlushTimeout(n.cfg.Timeout); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("edgekit: flush: %w", err))
		}
		n.nc.Close()
	}
	if n.relc != nil {
		n.relc.Close()
	}
	if n.rc != nil {
		if err := n.rc.FlushTimeout(n.cfg.Timeout); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("edgekit: flush responder: %w", err))
		}
		n.rc.Close()
	}
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
	n.auth.Close()
	return errors.Join(errs...)
}

// closeStopping closes n.stopping once.
func (n *Node) closeStopping() { n.stoppingOnce.Do(func() { close(n.stopping) }) }

// Done is closed when the node has stopped (or failed to start).
func (n *Node) Done() <-chan struct{} { return n.done }

// ClientURL returns the URL devices connect to, such as
// "nats://127.0.0.1:4222", or "" before start.
func (n *Node) ClientURL() string {
	if n.srv == nil {
		return ""
	}
	a, ok := n.srv.Addr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	host := n.opts.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// Conn returns the edge service's own connection, in-process, with the
// edge service's permissions ([authz.EdgeServicePermissions]); nil before
// start. Do not close it.
func (n *Node) Conn() *nats.Conn { return n.nc }

// JetStream returns the edge service's JetStream handle, in the edge's
// domain; nil before start.
func (n *Node) JetStream() jetstream.JetStream { return n.js }

// Server returns the embedded nats-server; nil before start.
func (n *Node) Server() *server.Server { return n.srv }

// Names returns the edge's topology names.
func (n *Node) Names() authz.EdgeNames { return n.names }

// UpdateCredentials applies a new inventory and credential state to the
// running edge without a reload: added devices can log in at once, removed
// or changed ones are disconnected (see [authz.EdgeAuthenticator.Update]).
// It returns the authenticator's error, leaving the credentials as they
// were.
func (n *Node) UpdateCredentials(inv *authz.Inventory, st *authz.State) error {
	if err := n.auth.Update(inv, st); err != nil {
		return err
	}
	n.inv.Store(inv)
	return nil
}

// AuthStats returns the counters of the node's device authentication.
func (n *Node) AuthStats() authz.AuthStats { return n.auth.Stats() }

// LinkUp reports whether the leaf link to central is up.
func (n *Node) LinkUp() bool { return n.srv != nil && n.srv.NumLeafNodes() > 0 }

// LinkEpoch identifies the current connection of the leaf link to central:
// 0 while the link is down, and a different number for each connection.
// A caller that polls it notices a link that dropped and came back between
// two polls, which [Node.LinkUp] cannot show.
func (n *Node) LinkEpoch() uint64 {
	if !n.LinkUp() {
		return 0
	}
	lz, err := n.srv.Leafz(nil)
	if err != nil {
		return 0
	}
	var id uint64
	for _, l := range lz.Leafs {
		id = max(id, l.ID)
	}
	return id
}

// ctx bounds ctx by the node's timeout when it has no deadline.
func (n *Node) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.Timeout)
}

// opCtx returns a context for the node's own work that ends at Stop.
func (n *Node) opCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	go func() {
		select {
		case <-n.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// publishEnvelope stores e, a record of the platform (the edge's own, or
// one it makes for a device: a death, an expiry ack), in the platform
// stream with a JetStream acknowledgement; the stream stores it under e's
// subject. msgID, when set, replaces the deduplication ID, so that
// repeating a publish after a crash stores it once; devices cannot write
// the platform stream, so they cannot pre-empt it.
func (n *Node) publishEnvelope(ctx context.Context, e *message.Envelope, msgID string) error {
	msg, err := e.ToMsg(nil)
	if err != nil {
		return err
	}
	msg.Subject = n.names.PlatformSubject(e.Source, e.Type)
	if msgID != "" {
		msg.Header.Set(message.HeaderMsgID, msgID)
	}
	if _, err := n.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(n.names.PlatformStream)); err != nil {
		n.stats.publishFailures.Add(1)
		return fmt.Errorf("edgekit: publish %s %s: %w", e.Subject(), e.Name, err)
	}
	return nil
}

// publishSelf stamps and publishes a message of the edge itself.
func (n *Node) publishSelf(ctx context.Context, mt topic.MessageType, name string, payload any) error {
	e := &message.Envelope{Type: mt, Name: name}
	if err := message.SetPayload(e, payload); err != nil {
		return err
	}
	n.stamp.Stamp(e)
	e.Time = e.Time.UTC()
	return n.publishEnvelope(ctx, e, "")
}

// publishBirth announces the node's boot on its state subject.
func (n *Node) publishBirth(ctx context.Context) {
	b := message.Birth{BootID: n.stamp.BootID, Model: "lintel-edge", HeartbeatInterval: n.cfg.StatusInterval}
	if err := n.publishSelf(ctx, topic.State, message.NameThingBirth, b); err != nil {
		n.log.Warn("edge birth not stored", message.LogKeyError, err)
	}
}

// deadlineOf returns ctx's deadline (start always sets one).
func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(DefaultStartTimeout)
	}
	return d
}

// nodeRandomToken returns a random 32-byte token, base64url-encoded.
func nodeRandomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
