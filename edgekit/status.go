package edgekit

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// fillHysteresis is how far below a threshold the fill must drop before the
// alarm level goes down again, so that a fill hovering at a threshold does
// not raise and clear its alarm over and over.
const fillHysteresis = 0.05

// NodeStatus is the edge's status, as [Node.Status] returns it and as the
// edge publishes it (name [NameEdgeStatus], Type topic.State) on
// "{org}.{edge}._edge.{edge}.state": periodically, every
// NodeConfig.StatusInterval, and when the link, the device counts or the
// alarm level change (at most once per NodeConfig.CheckInterval). Like
// every message on the edge's subjects it is stored in the event stream
// and reaches central through it.
type NodeStatus struct {
	// LinkUp reports whether the leaf link to central is up.
	LinkUp bool `msgpack:"link_up" json:"link_up"`
	// Backlog is the number of messages in the event stream that central's
	// sourcing consumer has not acknowledged yet: what central has not
	// stored.
	Backlog uint64 `msgpack:"backlog" json:"backlog"`
	// StreamMsgs and StreamBytes are the event stream's size, and
	// StreamMaxBytes its bound (-1 for none but the store).
	StreamMsgs     uint64 `msgpack:"stream_msgs" json:"stream_msgs"`
	StreamBytes    uint64 `msgpack:"stream_bytes" json:"stream_bytes"`         // see StreamMsgs
	StreamMaxBytes int64  `msgpack:"stream_max_bytes" json:"stream_max_bytes"` // see StreamMsgs
	// TelemetryBacklog, TelemetryMsgs, TelemetryBytes and
	// TelemetryMaxBytes are the same for the telemetry stream, which holds
	// the devices' telemetry apart from the event stream, and TelemetryFill
	// is TelemetryBytes/TelemetryMaxBytes. A full telemetry stream refuses
	// telemetry only; it raises no fill alarm, which is about the event
	// stream and the store (StoreBytes counts the telemetry stream too).
	TelemetryBacklog  uint64  `msgpack:"telemetry_backlog" json:"telemetry_backlog"`
	TelemetryMsgs     uint64  `msgpack:"telemetry_msgs" json:"telemetry_msgs"`           // see TelemetryBacklog
	TelemetryBytes    uint64  `msgpack:"telemetry_bytes" json:"telemetry_bytes"`         // see TelemetryBacklog
	TelemetryMaxBytes int64   `msgpack:"telemetry_max_bytes" json:"telemetry_max_bytes"` // see TelemetryBacklog
	TelemetryFill     float64 `msgpack:"telemetry_fill" json:"telemetry_fill"`           // see TelemetryBacklog
	// StoreBytes is the JetStream file storage the org's account uses on
	// the edge, and StoreMaxBytes the server's limit.
	StoreBytes    uint64 `msgpack:"store_bytes" json:"store_bytes"`
	StoreMaxBytes int64  `msgpack:"store_max_bytes" json:"store_max_bytes"` // see StoreBytes
	// Fill is the larger of StreamBytes/StreamMaxBytes and
	// StoreBytes/StoreMaxBytes, from 0 to 1.
	Fill float64 `msgpack:"fill" json:"fill"`
	// Alarm is the highest fill alarm threshold currently raised, 0 for
	// none (see [StreamAlarm]).
	Alarm float64 `msgpack:"alarm,omitempty" json:"alarm,omitempty"`
	// DevicesOnline and DevicesStale count the devices by liveness;
	// DevicesOffline is the rest of the edge's devices in the inventory.
	DevicesOnline  int `msgpack:"devices_online" json:"devices_online"`
	DevicesStale   int `msgpack:"devices_stale" json:"devices_stale"`     // see DevicesOnline
	DevicesOffline int `msgpack:"devices_offline" json:"devices_offline"` // see DevicesOnline
	// CommandsPending counts the commands waiting for their device.
	CommandsPending int `msgpack:"commands_pending" json:"commands_pending"`
	// Started is when the node started.
	Started time.Time `msgpack:"started" json:"started"`
}

// StreamAlarm is a fill alarm of the edge's event stream (or of its
// JetStream store), published as an event from the edge itself on
// "{org}.{edge}._edge.{edge}.evt": [NameStreamFilling] when the fill crosses
// a threshold of NodeConfig.FillAlarms upwards, [NameStreamRecovered] when
// it has dropped back below the lowest one. At the last threshold there is
// still room for the alarm itself; once the stream is full, devices are
// refused (devicekit.ErrStreamFull) and [NodeStatus].Fill says 1.
type StreamAlarm struct {
	Stream    string  `msgpack:"stream" json:"stream"`       // the edge's event stream
	Threshold float64 `msgpack:"threshold" json:"threshold"` // the threshold crossed; 0 when recovered
	Fill      float64 `msgpack:"fill" json:"fill"`           // [NodeStatus].Fill: the larger of the stream's and the store's fill, 0 to 1
	Bytes     uint64  `msgpack:"bytes" json:"bytes"`         // the event stream's size ([NodeStatus].StreamBytes)
	MaxBytes  int64   `msgpack:"max_bytes" json:"max_bytes"` // its bound, -1 for none but the store ([NodeStatus].StreamMaxBytes)
	Backlog   uint64  `msgpack:"backlog" json:"backlog"`     // messages central has not stored yet ([NodeStatus].Backlog)
	LinkUp    bool    `msgpack:"link_up" json:"link_up"`     // whether the leaf link to central was up
}

// statusReporter publishes the edge's status and fill alarms.
type statusReporter struct {
	n          *Node
	kick       chan struct{}
	mu         sync.Mutex
	level      float64
	thresholds []float64
	last       NodeStatus
	lastPub    time.Time
	published  bool
}

func newStatusReporter(n *Node) *statusReporter {
	th := slices.Clone(n.cfg.FillAlarms)
	slices.Sort(th)
	return &statusReporter{n: n, kick: make(chan struct{}, 1), thresholds: th}
}

// changed asks for a status check soon.
func (r *statusReporter) changed() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// alarmLevel returns the highest threshold at or below fill, 0 for none.
func (r *statusReporter) alarmLevel(fill float64) float64 {
	lvl := 0.0
	for _, t := range r.thresholds {
		if fill >= t {
			lvl = t
		}
	}
	return lvl
}

// tick checks the status, raises or clears alarms, and publishes the status
// when it changed or is due.
func (r *statusReporter) tick() {
	n := r.n
	ctx, cancel := n.opCtx()
	defer cancel()
	st, err := n.status(ctx)
	if err != nil {
		n.log.Debug("status unavailable", message.LogKeyError, err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	raised, cleared := false, false
	if lvl := r.alarmLevel(st.Fill); lvl > r.level {
		r.level, raised = lvl, true
	} else {
		for r.level > 0 && st.Fill < r.level-fillHysteresis {
			r.level = r.alarmLevel(r.level - fillHysteresis)
			cleared = r.level == 0
		}
	}
	st.Alarm = r.level
	if raised || cleared {
		a := StreamAlarm{Stream: n.names.EventStream, Threshold: r.level, Fill: st.Fill, Bytes: st.StreamBytes,
			MaxBytes: st.StreamMaxBytes, Backlog: st.Backlog, LinkUp: st.LinkUp}
		name := NameStreamFilling
		if cleared {
			name = NameStreamRecovered
		}
		if err := n.publishSelf(ctx, topic.Event, name, a); err != nil {
			n.log.Error("fill alarm not stored", logKeyFill, st.Fill, message.LogKeyError, err)
		}
		if raised {
			n.stats.alarmsRaised.Add(1)
			n.log.Warn("event stream filling", logKeyFill, st.Fill, "threshold", r.level, "backlog", st.Backlog, "link_up", st.LinkUp)
		} else {
			n.stats.alarmsCleared.Add(1)
			n.log.Info("event stream recovered", logKeyFill, st.Fill)
		}
	}
	now := n.cfg.Now()
	due := !r.published || now.Sub(r.lastPub) >= n.cfg.StatusInterval
	changed := st.LinkUp != r.last.LinkUp || st.Alarm != r.last.Alarm || st.DevicesOnline != r.last.DevicesOnline ||
		st.DevicesStale != r.last.DevicesStale || st.DevicesOffline != r.last.DevicesOffline
	if !due && !(changed && now.Sub(r.lastPub) >= n.cfg.CheckInterval) {
		return
	}
	if err := n.publishSelf(ctx, topic.State, NameEdgeStatus, st); err != nil {
		n.log.Debug("status not stored", message.LogKeyError, err)
		return
	}
	if st.LinkUp != r.last.LinkUp || !r.published {
		n.log.Info("edge status", "link_up", st.LinkUp, "backlog", st.Backlog, logKeyFill, st.Fill, "devices_online", st.DevicesOnline)
	}
	n.stats.statusPublished.Add(1)
	r.last, r.lastPub, r.published = st, now, true
}

// Status returns the edge's current status. It returns the JetStream error
// when the stream or its consumer cannot be read, or [ErrNodeStopped].
func (n *Node) Status(ctx context.Context) (NodeStatus, error) {
	select {
	case <-n.ready:
	default:
		return NodeStatus{}, ErrNodeStopped
	}
	ctx, cancel := n.ctx(ctx)
	defer cancel()
	st, err := n.status(ctx)
	if err != nil {
		return st, err
	}
	n.report.mu.Lock()
	st.Alarm = n.report.level
	n.report.mu.Unlock()
	return st, nil
}

func (n *Node) status(ctx context.Context) (NodeStatus, error) {
	st := NodeStatus{LinkUp: n.LinkUp(), StreamMaxBytes: n.maxBytes, TelemetryMaxBytes: n.tlmBytes, StoreMaxBytes: n.storeMax, Started: n.started.UTC()}
	s, err := n.js.Stream(ctx, n.names.EventStream)
	if err != nil {
		return st, err
	}
	info := s.CachedInfo()
	st.StreamMsgs, st.StreamBytes = info.State.Msgs, info.State.Bytes
	c, err := s.PushConsumer(ctx, n.names.EventConsumer)
	if err != nil {
		return st, err
	}
	ci := c.CachedInfo()
	st.Backlog = ci.NumPending + uint64(ci.NumAckPending)
	ts, err := n.js.Stream(ctx, n.names.TelemetryStream)
	if err != nil {
		return st, err
	}
	tinfo := ts.CachedInfo()
	st.TelemetryMsgs, st.TelemetryBytes = tinfo.State.Msgs, tinfo.State.Bytes
	tc, err := ts.PushConsumer(ctx, n.names.TelemetryConsumer)
	if err != nil {
		return st, err
	}
	tci := tc.CachedInfo()
	st.TelemetryBacklog = tci.NumPending + uint64(tci.NumAckPending)
	if st.TelemetryMaxBytes > 0 {
		st.TelemetryFill = min(float64(st.TelemetryBytes)/float64(st.TelemetryMaxBytes), 1)
	}
	if ai, err := n.js.AccountInfo(ctx); err == nil {
		st.StoreBytes = ai.Store
	}
	if st.StreamMaxBytes > 0 {
		st.Fill = float64(st.StreamBytes) / float64(st.StreamMaxBytes)
	}
	if st.StoreMaxBytes > 0 {
		st.Fill = max(st.Fill, float64(st.StoreBytes)/float64(st.StoreMaxBytes))
	}
	st.Fill = min(st.Fill, 1)
	st.DevicesOnline, st.DevicesStale = n.live.counts()
	st.DevicesOffline = max(n.inventoryDevices()-st.DevicesOnline-st.DevicesStale, 0)
	st.CommandsPending = n.cmds.count()
	return st, nil
}

// inventoryDevices counts the edge's devices in the inventory.
func (n *Node) inventoryDevices() int {
	inv := n.inv.Load()
	c := 0
	for _, t := range inv.Things {
		if t.Org == n.cfg.Org && t.Edge == n.cfg.Edge {
			c++
		}
	}
	return c
}

// NodeStats is a snapshot of the node's counters since it started.
type NodeStats struct {
	DeathsPublished   uint64 // deaths the edge stored for devices whose connection dropped
	DeathsSuppressed  uint64 // deaths held back by flap suppression and not needed
	CommandsQueued    uint64 // commands taken from the command stream to hand out
	CommandsDelivered uint64 // commands handed to their device
	CommandsExpired   uint64 // commands whose deadline passed first (expired ack stored)
	CommandsDuplicate uint64 // repeated commands not handed out again
	CommandsRejected  uint64 // commands the edge could not deliver (rejected ack stored when possible)
	StatusPublished   uint64 // status messages stored
	AlarmsRaised      uint64 // fill alarms raised
	AlarmsCleared     uint64 // fill alarms cleared
	PublishFailures   uint64 // the node's own messages the event stream refused
	RateLimited       uint64 // device connections closed for exceeding their publish rate
	Releases          uint64 // releases of what central had stored from the edge's streams (a purge, or on a stream of an earlier version an acknowledgement)
	// Repairs counts messages the node sent again because central held a
	// gap it would not source again (docs/edge-release.md).
	Repairs uint64
	// ResetsResent counts the consumer resets of its command source and
	// credential mirror that the node's server sent while the link was
	// down and the node sent again once it was back (docs/edge-release.md,
	// "Lost resets").
	ResetsResent uint64
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() NodeStats {
	c := &n.stats
	return NodeStats{
		DeathsPublished:   c.deathsPublished.Load(),
		DeathsSuppressed:  c.deathsSuppressed.Load(),
		CommandsQueued:    c.commandsQueued.Load(),
		CommandsDelivered: c.commandsDelivered.Load(),
		CommandsExpired:   c.commandsExpired.Load(),
		CommandsDuplicate: c.commandsDuplicate.Load(),
		CommandsRejected:  c.commandsRejected.Load(),
		StatusPublished:   c.statusPublished.Load(),
		AlarmsRaised:      c.alarmsRaised.Load(),
		AlarmsCleared:     c.alarmsCleared.Load(),
		PublishFailures:   c.publishFailures.Load(),
		RateLimited:       n.rate.limitedCount(),
		Releases:          c.releases.Load(),
		Repairs:           c.repairs.Load(),
		ResetsResent:      c.resetsResent.Load(),
	}
}
