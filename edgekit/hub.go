package edgekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Defaults of [HubConfig].
const (
	// DefaultHubTimeout bounds the hub's calls whose context has no deadline.
	DefaultHubTimeout = 30 * time.Second
	// DefaultPollInterval is how often [Hub.Supervise] reads the sources of
	// central's event stream.
	DefaultPollInterval = 500 * time.Millisecond
	// DefaultStallAfter is how long a source may stay silent before
	// [Hub.Supervise] considers it stalled. A running source hears its edge
	// consumer's idle heartbeat every second, so three seconds of silence
	// means the source consumer is not running: the link is down, or the
	// server is restarting the source or waiting out a retry back-off.
	DefaultStallAfter = 3 * time.Second
	// DefaultStuckAfter is how long a stalled source may stay silent while
	// its edge is evidently linked before [Hub.Supervise] kicks it. It is
	// longer than nats-server takes to restart a source on its own once the
	// link is back (at worst a reset in flight times out after 5 s, then
	// the edge's heartbeat restarts it at once), and longer than its first
	// retry after a refused reset (10 s of back-off).
	DefaultStuckAfter = 15 * time.Second
	// DefaultMinKickInterval is the time between the first kicks of a
	// stuck source, counted from the start of a kick. A kick itself takes
	// about 5.5 s (see [Hub.Kick]), and a source it restarted is given
	// StuckAfter to be heard before it can be kicked again.
	DefaultMinKickInterval = time.Second
	// DefaultFastKickFor is how long a stuck source is kicked every
	// MinKickInterval before the kicks back off.
	DefaultFastKickFor = 15 * time.Second
	// DefaultMaxKickInterval bounds the back-off between kicks of a source
	// that stays stuck.
	DefaultMaxKickInterval = 15 * time.Second
)

// Keys of the hub's and node's own log records, beside the shared keys
// of package message.
const (
	logKeyFlow    = "flow"
	logKeyLag     = "lag"
	logKeyActive  = "active"
	logKeyKickGap = "next_kick_in"
	logKeyState   = "state" // a device's liveness state
	logKeyFill    = "fill"  // a stream's fill, a fraction of its bound
	logKeyPeer    = "peer"  // the other end of the leaf link: an edge, or central
)

// metaEdges is the metadata key of central's event stream that lists the
// registered edges, sorted and comma-separated. The sources say the same,
// except while [Hub.Kick] has removed one for a moment: the metadata is the
// registry, the sources follow it.
const metaEdges = "lintel.edges"

// HubConfig configures a [Hub]. Org is required; the zero value of every
// other field means its default.
type HubConfig struct {
	// Org is the org whose edges the hub serves. Required.
	Org string
	// Inventory lists the org's edges and things: [Hub.Provision] and
	// [Hub.RegisterEdge] refuse an edge it does not list, and
	// [Hub.SendCommand] a thing it does not list. Required; replace it
	// with [Hub.SetInventory] when it changes.
	Inventory *authz.Inventory

	// Timeout bounds calls whose context has no deadline; DefaultHubTimeout
	// if zero.
	Timeout time.Duration

	// EventStream, when set, adjusts the configuration of central's event
	// stream when [Hub.Provision] creates it (retention limits, replicas).
	// It must keep the name and the sources; the hub sets the subjects
	// ([authz.CentralEventSubjects]) itself, on creation and on every update.
	EventStream func(*jetstream.StreamConfig)
	// CommandStream, when set, adjusts the configuration of the org's
	// command stream (retention limits, replicas) before [Hub.Provision]
	// creates or updates it. It must keep the name and subjects.
	CommandStream func(*jetstream.StreamConfig)
	// Replicas is how many copies a clustered central keeps of what the
	// hub creates: the event stream (when Provision creates it), the
	// command stream and the edges' credential buckets, with their
	// consumers. Zero means one; a cluster of three central nodes uses 3
	// (docs/cluster.md). EventStream and CommandStream see it and may
	// change it.
	Replicas int

	// PollInterval is how often [Hub.Supervise] reads the sources;
	// DefaultPollInterval if zero.
	PollInterval time.Duration
	// StallAfter is how long a source may be silent before it counts as
	// stalled; DefaultStallAfter if zero.
	StallAfter time.Duration
	// StuckAfter is how long a heard source may go without a message while
	// its edge holds more or stay stalled on flow control, and, with
	// EdgeNodes, how long a stalled source
	// may be silent while its edge is evidently linked (another of its
	// flows is heard, or the edge answered a source's reset with an
	// error), before [Hub.Supervise] kicks it; DefaultStuckAfter if zero,
	// and at least StallAfter. A source whose setup the edge refused waits
	// 8 s at most.
	StuckAfter time.Duration
	// EdgeNodes says that every edge of the org runs an edge node
	// ([Start]), which sends again what a source restart made central skip
	// (docs/edge-release.md). [Hub.Supervise] then leaves a source that was
	// heard and is silent because its link is down to nats-server, which
	// restarts it once the link is back, and kicks only a stuck one (see
	// StuckAfter): an outage and its catch-up cost no update of central's
	// event stream, and a large backlog arrives several times faster.
	// Without it the
	// supervisor kicks every source silent for StallAfter, which also
	// closes nats-server's source-restart race for edges that are plain
	// nats-servers, at the cost of that speed.
	EdgeNodes bool
	// LeafLinks, when set, returns the edges of the org that have a leaf
	// link to this central node, each with the ID of its leaf connection
	// (central sets it with [LeafDomains] of its server). [Hub.Supervise]
	// then sends again, once the edge's link is back, a consumer reset
	// that nats-server sent for one of the edge's sources while the edge
	// had no link (or on a link since replaced): nats-server would wait 5 s
	// for the answer to the lost reset before trying again, and a catch-up
	// with it (docs/edge-release.md, "Lost resets"). The hub's user must
	// be allowed to subscribe to the resets and their answers
	// ([authz.CentralServicePermissions]).
	LeafLinks func() map[string]uint64
	// MinKickInterval and MaxKickInterval bound the back-off between kicks
	// of a source that stays stuck; DefaultMinKickInterval and
	// DefaultMaxKickInterval if zero.
	MinKickInterval, MaxKickInterval time.Duration
	// FastKickFor is how long a stuck source is kicked every
	// MinKickInterval before the kicks back off; DefaultFastKickFor if
	// zero.
	FastKickFor time.Duration

	// Logger receives the hub's log; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IDs makes the IDs of command envelopes; nil means a generator of the
	// hub's own, using Now.
	IDs *message.IDGenerator

	// CommandKey is the seed of the org's command key
	// (authz.Secrets.CommandSeeds[org]), with which [Hub.SendCommand]
	// signs every command: devices act only on signed commands. Without it
	// SendCommand fails with [ErrNoCommandKey].
	CommandKey authz.Secret
}

func (c HubConfig) withDefaults() HubConfig {
	if c.Timeout <= 0 {
		c.Timeout = DefaultHubTimeout
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.StallAfter <= 0 {
		c.StallAfter = DefaultStallAfter
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = DefaultStuckAfter
	}
	c.StuckAfter = max(c.StuckAfter, c.StallAfter)
	if c.MinKickInterval <= 0 {
		c.MinKickInterval = DefaultMinKickInterval
	}
	if c.FastKickFor <= 0 {
		c.FastKickFor = DefaultFastKickFor
	}
	if c.MaxKickInterval < c.MinKickInterval {
		c.MaxKickInterval = max(DefaultMaxKickInterval, c.MinKickInterval)
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

// Hub is the central side of one org's edges: it keeps the JetStream
// topology that [authz] fixes on central, and talks to the edges through it.
//
//   - Events: central's event stream ([authz.EdgeNames.CentralEventStream])
//     has three sources per registered edge, one per flow ([FlowEvents],
//     [FlowTelemetry], [FlowPlatform]): the first reads the edge's event
//     stream through the durable, flow-controlled consumer "to-hub" that the
//     edge service creates on the edge, the second the edge's telemetry
//     stream through "to-hub-tlm" likewise, the third the edge's platform
//     stream (the audit trail, which no device can write) through
//     "to-hub-platform". Its only subjects are those of central's own
//     events about an edge ([authz.CentralEventSubjects],
//     "{org}.*._sys.*.evt", such as audit alarms); an edge's own event
//     stream captures "{org}.{edge}._sys.*.evt" too, so what an edge
//     publishes there locally reaches this stream through sourcing, with a
//     "Nats-Stream-Source" header that central's own events never carry
//     (the auditor of package edgekit/access flags them as forged).
//     Storage ingest reads every flow from the one stream; an edge's
//     telemetry and its events are each in order, but not in order with
//     each other. Sourcing is acknowledged (the edge's consumer only moves
//     its floor once central has stored a message) and tracked by source
//     sequence on central, so an outage of any length loses nothing and
//     stores nothing twice: after the link, central or the edge comes back,
//     central resumes where it stopped. [Hub.Supervise] watches the sources
//     and restarts one that the server leaves idle; see there.
//   - Commands: [Hub.SendCommand] writes a command envelope into the org's
//     command stream on [authz.CommandSubject]; each edge sources its own
//     commands from there through the per-edge consumer the hub creates.
//   - Credentials: one KV bucket per edge, mirrored by the edge
//     ([Hub.PutCredential], [Hub.DeleteCredential]).
//
// Events keep their envelopes byte for byte: sourcing adds a
// "Nats-Stream-Source" header but changes neither data nor the envelope's
// headers. An event that reached central late is recognised by comparing
// the time central's stream stored it (the JetStream timestamp of the
// message in central's stream, which for a sourced message is central's
// receive time, not the edge's) with the envelope's Time, which is what
// storage's ingest does by default (more than 5 minutes apart: replayed, in
// the sense of Sparkplug B's is_historical). Sourcing cannot add a header
// such as storage's "Lintel-Replayed". A device clock far in the past makes
// its events count as replayed, one far in the future as live; neither
// changes forwarding, which orders and deduplicates by stream sequence and
// envelope ID, never by time.
//
// Central's durability: the rendered configuration keeps nats-server's
// default sync_interval (2 minutes): a stored message survives a crash or
// restart of central's process at once, but an operating system crash or
// power loss of central may lose what it stored in the last 2 minutes, and
// since the edge's consumer counts those as delivered, the durable source
// would not send them again. Set sync_interval to "always" on central for
// that case, at a cost in throughput.
//
// A Hub is safe for concurrent use. Run one per org on central (several
// would race their updates of the event stream's sources).
type Hub struct {
	js     jetstream.JetStream
	cfg    HubConfig
	log    *slog.Logger
	cmdKey nkeys.KeyPair // signs commands; nil without HubConfig.CommandKey

	eventStream   string
	commandStream string
	known         atomic.Pointer[hubInventory] // the inventory, indexed

	mu      sync.Mutex           // serialises updates of the event stream's configuration
	removed map[string]time.Time // source (edge stream) name → when it was last removed; guarded by mu
}

// NewHub returns the hub of cfg.Org on central, using js, a JetStream
// context of a central service of the org in central's domain
// ([authz.HubDomain]). It does no I/O; call [Hub.Provision] before use. It
// returns an error wrapping [ErrInvalidHubConfig] for a missing or invalid
// org.
func NewHub(js jetstream.JetStream, cfg HubConfig) (*Hub, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil JetStream", ErrInvalidHubConfig)
	}
	evCfg, err := authz.CentralEventStreamConfig(cfg.Org)
	if err != nil {
		return nil, fmt.Errorf("%w: org %q: %w", ErrInvalidHubConfig, cfg.Org, err)
	}
	cmdCfg, err := authz.CentralCommandStreamConfig(cfg.Org)
	if err != nil {
		return nil, fmt.Errorf("%w: org %q: %w", ErrInvalidHubConfig, cfg.Org, err)
	}
	if err := checkInbox(js.Conn()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHubConfig, err)
	}
	cfg = cfg.withDefaults()
	cmdKey, err := parseCommandKey(cfg.CommandKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHubConfig, err)
	}
	h := &Hub{
		cmdKey:        cmdKey,
		js:            js,
		cfg:           cfg,
		log:           cfg.Logger.With(message.LogKeyOrg, cfg.Org),
		eventStream:   evCfg.Name,
		commandStream: cmdCfg.Name,
	}
	if err := h.SetInventory(cfg.Inventory); err != nil {
		return nil, err
	}
	return h, nil
}

// Org returns the hub's org.
func (h *Hub) Org() string { return h.cfg.Org }

// EventStream returns the name of central's event stream of the org.
func (h *Hub) EventStream() string { return h.eventStream }

// CommandStream returns the name of the org's command stream on central.
func (h *Hub) CommandStream() string { return h.commandStream }

func (h *Hub) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, h.cfg.Timeout)
}

// Provision creates or updates the org's command stream, creates central's
// event stream when it is missing, and registers edges (see
// [Hub.RegisterEdge]) in addition to those already registered. It also
// repairs a registered edge whose source is missing (after an interrupted
// [Hub.Kick]), and gives an event stream created by an earlier version
// exactly the subjects of [authz.CentralEventSubjects]. It is idempotent.
// It returns the JetStream error of the step that failed, or the error of
// [authz.NamesFor] for a bad edge code, an error wrapping [ErrUnknownEdge]
// for an edge the inventory does not list, and one wrapping
// [ErrInboxPrefix] when the server refused the connection's reply inbox.
func (h *Hub) Provision(ctx context.Context, edges ...string) (err error) {
	for _, e := range edges {
		if err := h.checkEdge(e); err != nil {
			return err
		}
	}
	defer func() { err = h.explain(err) }()
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	cmdCfg, _ := authz.CentralCommandStreamConfig(h.cfg.Org)
	cmdCfg.Replicas = h.cfg.Replicas
	if h.cfg.CommandStream != nil {
		h.cfg.CommandStream(&cmdCfg)
	}
	if _, err := h.js.CreateOrUpdateStream(ctx, cmdCfg); err != nil {
		return fmt.Errorf("edgekit: command stream %s: %w", cmdCfg.Name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cfg, err := h.eventStreamConfig(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		cfg, _ = authz.CentralEventStreamConfig(h.cfg.Org)
		cfg.Replicas = h.cfg.Replicas
		if h.cfg.EventStream != nil {
			h.cfg.EventStream(&cfg)
		}
		// The stream starts with central's own subjects and no source.
		// (nats-server gives a stream with neither subjects nor sources a
		// subject of its own name; an event stream created that way by an
		// earlier version loses it to these subjects in setSources.)
		cfg.Sources = nil
		cfg.Subjects = h.eventSubjects()
		setRegistered(&cfg, nil)
		if _, err := h.js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("edgekit: central event stream %s: %w", cfg.Name, err)
		}
		h.log.Info("created central event stream")
		if cfg, err = h.eventStreamConfig(ctx); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	want := registered(cfg)
	for _, e := range edges {
		if _, err := authz.NamesFor(h.cfg.Org, e); err != nil {
			return err
		}
		if !slices.Contains(want, e) {
			want = append(want, e)
		}
	}
	for _, e := range want {
		n, _ := authz.NamesFor(h.cfg.Org, e)
		if err := h.ensureEdgeConsumers(ctx, n); err != nil {
			return err
		}
	}
	_, err = h.setSources(ctx, cfg, want)
	return err
}

// RegisterEdge registers edge: it creates the edge's credential bucket, the
// durable consumers through which the edge's credential mirror and command
// stream read from central, and adds the edge's event and telemetry streams
// to the sources of central's event stream (a stream update; sourcing starts at once, or
// when the edge is first reachable). Central's event stream must exist
// ([Hub.Provision]). It is idempotent. It returns the error of
// [authz.NamesFor] for a bad edge code, an error wrapping [ErrUnknownEdge]
// for an edge the inventory does not list, or the JetStream error.
func (h *Hub) RegisterEdge(ctx context.Context, edge string) error {
	n, err := authz.NamesFor(h.cfg.Org, edge)
	if err != nil {
		return err
	}
	if err := h.checkEdge(edge); err != nil {
		return err
	}
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if err := h.ensureEdgeConsumers(ctx, n); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cfg, err := h.eventStreamConfig(ctx)
	if err != nil {
		return err
	}
	want := registered(cfg)
	if !slices.Contains(want, edge) {
		want = append(want, edge)
	}
	if _, err := h.setSources(ctx, cfg, want); err != nil {
		return err
	}
	h.log.Info("registered edge", message.LogKeyEdge, edge)
	return nil
}

// RemoveEdge unregisters edge: it removes its sources from central's event
// stream (the events already forwarded stay), deletes the consumers its
// command stream and credential mirror read through, and deletes its
// credential bucket, so that nothing more reaches the edge. Removing an edge
// that is not registered is not an error. It returns the error of
// [authz.NamesFor] for a bad edge code, or the JetStream error.
func (h *Hub) RemoveEdge(ctx context.Context, edge string) error {
	n, err := authz.NamesFor(h.cfg.Org, edge)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	h.mu.Lock()
	cfg, err := h.eventStreamConfig(ctx)
	if err == nil {
		want := slices.DeleteFunc(registered(cfg), func(e string) bool { return e == edge })
		_, err = h.setSources(ctx, cfg, want)
	}
	h.mu.Unlock()
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	if err := h.js.DeleteConsumer(ctx, n.CentralCommandStream, n.CommandConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("edgekit: command consumer of %s: %w", edge, err)
	}
	if err := h.js.DeleteKeyValue(ctx, n.CredentialBucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("edgekit: credential bucket of %s: %w", edge, err)
	}
	h.log.Info("removed edge", message.LogKeyEdge, edge)
	return nil
}

// Edges returns the registered edges, sorted. It returns
// jetstream.ErrStreamNotFound (wrapped) before [Hub.Provision].
func (h *Hub) Edges(ctx context.Context) ([]string, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	cfg, err := h.eventStreamConfig(ctx)
	if err != nil {
		return nil, err
	}
	return registered(cfg), nil
}

// ensureEdgeConsumers creates the edge's credential bucket and the durable
// consumers on central that the edge sources through.
func (h *Hub) ensureEdgeConsumers(ctx context.Context, n authz.EdgeNames) error {
	bucket := n.CredentialBucketConfig()
	bucket.Replicas = h.cfg.Replicas
	if _, err := h.js.CreateOrUpdateKeyValue(ctx, bucket); err != nil {
		return fmt.Errorf("edgekit: credential bucket %s: %w", n.CredentialBucket, err)
	}
	if _, err := h.js.CreateOrUpdatePushConsumer(ctx, n.CredentialStream, n.CredentialConsumerConfig()); err != nil {
		return fmt.Errorf("edgekit: credential consumer of %s: %w", n.Edge, err)
	}
	if _, err := h.js.CreateOrUpdatePushConsumer(ctx, n.CentralCommandStream, n.CommandConsumerConfig()); err != nil {
		return fmt.Errorf("edgekit: command consumer of %s: %w", n.Edge, err)
	}
	return nil
}

// eventStreamConfig returns the current configuration of central's event
// stream.
func (h *Hub) eventStreamConfig(ctx context.Context) (jetstream.StreamConfig, error) {
	s, err := h.js.Stream(ctx, h.eventStream)
	if err != nil {
		return jetstream.StreamConfig{}, fmt.Errorf("edgekit: central event stream %s: %w", h.eventStream, err)
	}
	return s.CachedInfo().Config, nil
}

// eventSubjects returns the subjects of central's event stream: those of
// central's own events about an edge.
func (h *Hub) eventSubjects() []string { return authz.CentralEventSubjects(h.cfg.Org) }

// setSources makes the registry and the sources of cfg list exactly edges,
// keeping the sources already there untouched (an update that leaves a
// source as it was does not restart it), and its subjects exactly
// eventSubjects; a source removed less than sourceSettle ago stays out for
// now. It returns how many sources it added. Call with h.mu held.
func (h *Hub) setSources(ctx context.Context, cfg jetstream.StreamConfig, edges []string) (int, error) {
	slices.Sort(edges)
	edges = slices.Compact(edges)
	old := slices.Clone(cfg.Sources)
	var srcs []*jetstream.StreamSource
	added := 0
	for _, e := range edges {
		n, err := authz.NamesFor(h.cfg.Org, e)
		if err != nil {
			return 0, err
		}
		for _, f := range flows {
			want := f.source(n)
			if i := slices.IndexFunc(old, func(s *jetstream.StreamSource) bool { return s.Name == want.Name }); i >= 0 {
				srcs = append(srcs, old[i])
			} else if !h.settling(want.Name) {
				srcs = append(srcs, want)
				added++
			}
		}
	}
	for _, s := range old {
		if !slices.ContainsFunc(srcs, func(k *jetstream.StreamSource) bool { return k.Name == s.Name }) {
			h.noteRemoved(s.Name)
		}
	}
	subjects := h.eventSubjects()
	if slices.Equal(registered(cfg), edges) && sameSourceNames(old, srcs) && slices.Equal(cfg.Subjects, subjects) {
		return 0, nil
	}
	cfg.Sources = srcs
	cfg.Subjects = subjects
	setRegistered(&cfg, edges)
	if _, err := h.js.UpdateStream(ctx, cfg); err != nil {
		return 0, fmt.Errorf("edgekit: update sources of %s: %w", h.eventStream, err)
	}
	h.log.Info("updated the sources of central's event stream", "edges", len(edges), "sources", len(srcs), "added", added)
	return added, nil
}

// sourceSettle is how long a source stays out of central's event stream
// once removed before it is added again. nats-server (v2.15) keeps waiting
// for the answer to a consumer reset it sent for a source for up to 5 s
// after the source is removed, and applies a late answer to a source added
// again under the same name. That answer then races with the new source's
// own reset: the edge's consumer may deliver before the new subscription
// exists, and central skips by sequence what it never received. Once the
// wait is over no such answer can arrive. See RELIABILITY.md.
const sourceSettle = 5*time.Second + 500*time.Millisecond

// noteRemoved records that source name left central's event stream now.
// Call with h.mu held.
func (h *Hub) noteRemoved(name string) {
	if h.removed == nil {
		h.removed = map[string]time.Time{}
	}
	h.removed[name] = time.Now()
}

// settling reports whether source name was removed less than sourceSettle
// ago, and forgets removals older than that. Call with h.mu held.
func (h *Hub) settling(name string) bool {
	at, ok := h.removed[name]
	if ok && time.Since(at) >= sourceSettle {
		delete(h.removed, name)
		return false
	}
	return ok
}

func sameSourceNames(a, b []*jetstream.StreamSource) bool {
	return slices.EqualFunc(a, b, func(x, y *jetstream.StreamSource) bool { return x.Name == y.Name })
}

// registered returns the edges listed in the metadata of cfg, or failing
// that, the edges of its sources.
func registered(cfg jetstream.StreamConfig) []string {
	var edges []string
	if v := cfg.Metadata[metaEdges]; v != "" {
		edges = strings.Split(v, ",")
	} else {
		prefix := cfg.Name + "-"
		for _, s := range cfg.Sources {
			if e, ok := strings.CutPrefix(s.Name, prefix); ok {
				edges = append(edges, e)
			}
		}
	}
	slices.Sort(edges)
	return slices.Compact(edges)
}

func setRegistered(cfg *jetstream.StreamConfig, edges []string) {
	m := make(map[string]string, len(cfg.Metadata)+1)
	for k, v := range cfg.Metadata {
		m[k] = v
	}
	m[metaEdges] = strings.Join(edges, ",")
	cfg.Metadata = m
}

// SendCommand sends cmd to thing: it wraps cmd in a command envelope
// (message.NameCommand, type topic.Command, with thing as source so that its
// subject is the device's cmd subject, a new ID and the current time; cmd's
// RequestedBy is set to requestedBy when that is not empty) and publishes it
// with a JetStream acknowledgement into the org's command stream on
// [authz.CommandSubject](thing), with the envelope ID as Nats-Msg-Id. The
// edge's command stream sources it from there, across any outage, and the
// edge service hands it to the device, whose acks come back in central's
// event stream with the command's ID as CorrelationID. Before the command,
// SendCommand stores central's record of it ([message.NameCommandSent], see
// [CommandRecordThing]) in central's event stream, so that the command is in
// history (storage records it) whether or not it ever reaches the edge.
//
// The returned [*CommandResult] carries the command's ID and waits for its
// outcome ([CommandResult.Wait]).
//
// A command needs a thing the inventory lists, a deadline in the future and
// an idempotency key. It returns a [*topic.Error] for an invalid thing, an
// error wrapping [ErrWrongOrg], [ErrUnknownThing], [ErrNoDeadline],
// [ErrCommandExpired] or [ErrNoIdempotencyKey], or the JetStream error of
// the publish.
func (h *Hub) SendCommand(ctx context.Context, thing topic.Thing, cmd message.Command, requestedBy string) (*CommandResult, error) {
	if err := thing.Validate(); err != nil {
		return nil, err
	}
	if thing.Org != h.cfg.Org {
		return nil, fmt.Errorf("%w: %s is not of org %s", ErrWrongOrg, thing, h.cfg.Org)
	}
	if err := h.checkThing(thing); err != nil {
		return nil, err
	}
	now := h.cfg.Now()
	switch {
	case cmd.Deadline.IsZero():
		return nil, fmt.Errorf("%w: %s to %s", ErrNoDeadline, cmd.Action, thing)
	case cmd.Expired(now):
		return nil, fmt.Errorf("%w: %s to %s, deadline %s", ErrCommandExpired, cmd.Action, thing, cmd.Deadline.Format(time.RFC3339Nano))
	case cmd.IdempotencyKey == "":
		return nil, fmt.Errorf("%w: %s to %s", ErrNoIdempotencyKey, cmd.Action, thing)
	}
	if requestedBy != "" {
		cmd.RequestedBy = requestedBy
	}
	e := &message.Envelope{
		ID:     h.cfg.IDs.NewAt(now),
		Time:   now.UTC(),
		Source: thing,
		Type:   topic.Command,
		Name:   message.NameCommand,
	}
	if err := message.SetPayload(e, cmd); err != nil {
		return nil, err
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		return nil, err
	}
	msg.Subject = authz.CommandSubject(thing)
	if h.viaGateway(thing) {
		msg.Subject = topology.GatewayCommandSubject(thing)
	}
	if err := h.signCommand(msg, thing); err != nil {
		return nil, fmt.Errorf("edgekit: command to %s: %w", thing, err)
	}
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	from, err := h.recordCommand(ctx, e, cmd)
	if err != nil {
		return nil, fmt.Errorf("edgekit: command %s to %s not sent: %w", e.ID, thing, err)
	}
	if _, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(h.commandStream)); err != nil {
		return nil, h.explain(fmt.Errorf("edgekit: command %s to %s: %w", e.ID, thing, err))
	}
	h.log.Debug("sent command", message.LogKeyThing, thing.String(), message.LogKeyMsgID, e.ID.String())
	return &CommandResult{h: h, id: e.ID, thing: thing, cmd: cmd, from: from}, nil
}

// PutCredential stores value under key in edge's credential bucket, which
// the edge mirrors, and returns the entry's revision. The encoding of keys
// and values is the caller's (edgekit/access defines Lintel's). It returns the error of
// [authz.NamesFor] for a bad edge code or the JetStream error, such as
// jetstream.ErrBucketNotFound for an edge that is not registered.
func (h *Hub) PutCredential(ctx context.Context, edge, key string, value []byte) (uint64, error) {
	kv, ctx, cancel, err := h.bucket(ctx, edge)
	if err != nil {
		return 0, err
	}
	defer cancel()
	return kv.Put(ctx, key, value)
}

// DeleteCredential deletes key from edge's credential bucket, leaving a
// delete marker that the edge's mirror receives. It returns the errors of
// [Hub.PutCredential].
func (h *Hub) DeleteCredential(ctx context.Context, edge, key string) error {
	kv, ctx, cancel, err := h.bucket(ctx, edge)
	if err != nil {
		return err
	}
	defer cancel()
	return kv.Delete(ctx, key)
}

func (h *Hub) bucket(ctx context.Context, edge string) (jetstream.KeyValue, context.Context, context.CancelFunc, error) {
	n, err := authz.NamesFor(h.cfg.Org, edge)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := h.ctx(ctx)
	kv, err := h.js.KeyValue(ctx, n.CredentialBucket)
	if err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("edgekit: credential bucket of %s: %w", edge, err)
	}
	return kv, ctx, cancel, nil
}
