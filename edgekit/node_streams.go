package edgekit

import (
	"context"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// nodeEventStreamConfig returns the configuration of the edge's event
// stream as the node creates it: authz's names and subjects, with the
// guarantees of [holdUntilStored].
//
// Each subject (one device's events, states or acks) holds at most
// perSubject messages, with discard-new per subject, and no message is
// larger than maxMsgSize (either without bound when negative): a device
// that floods while the link is down has its own new messages refused and
// cannot take the other devices' share. Central's stream, which sources
// this one, has no such limit: a refused sequence there would stall the
// whole edge's source.
func nodeEventStreamConfig(names authz.EdgeNames, maxBytes, perSubject int64, maxMsgSize int32, window time.Duration) jetstream.StreamConfig {
	c := holdUntilStored(names.EventStreamConfig(), "Lintel edge events, held until central has stored them", maxBytes, window)
	if perSubject > 0 {
		c.MaxMsgsPerSubject = perSubject
		c.DiscardNewPerSubject = true
	}
	if maxMsgSize > 0 {
		c.MaxMsgSize = maxMsgSize
	}
	return c
}

// nodePlatformStreamConfig returns the configuration of the edge's
// platform stream as the node creates it: authz's names, subjects and
// subject transform, and the guarantees of [holdUntilStored]. Only the
// edge's own services write it (devices may not publish its subjects), so
// no device can fill it or share its deduplication window.
func nodePlatformStreamConfig(names authz.EdgeNames, maxBytes int64, window time.Duration) jetstream.StreamConfig {
	return holdUntilStored(names.PlatformStreamConfig(), "Lintel platform records of the edge (audit trail), held until central has stored them", maxBytes, window)
}

// nodeTelemetryStreamConfig returns the configuration of the edge's
// telemetry stream as the node creates it: authz's names, subjects and
// asynchronous persistence (no fsync per write, even with the node's
// sync_interval "always"), and the guarantees of [holdUntilStored].
// Telemetry thus never waits behind, nor delays, the fsync of the event
// stream, and is kept until central has stored it; only a power loss of the
// edge may lose the telemetry of its last moments.
func nodeTelemetryStreamConfig(names authz.EdgeNames, maxBytes int64, window time.Duration) jetstream.StreamConfig {
	return holdUntilStored(names.TelemetryStreamConfig(), "Lintel edge telemetry, held until central has stored it", maxBytes, window)
}

// holdUntilStored returns c configured so that only central's storing a
// message can remove it:
//
//   - limits retention with neither an age nor a count limit, and
//     deny_delete: nothing removes a message but the node's release
//     ([Node.release]), which purges a stream up to the acknowledgement
//     floor of central's durable sourcing consumer, that is, what central
//     has stored. Releasing in ranges, off the link's read loop, costs one
//     fsync per purge instead of one per message (docs/edge-release.md);
//   - a size bound with discard-new: a full stream refuses new messages,
//     and the device gets an error (devicekit.ErrStreamFull), instead of
//     losing old ones;
//   - a deduplication window (NodeConfig.DuplicateWindow): a message
//     repeated with the same Nats-Msg-Id (a device's envelope ID) within
//     it is acknowledged as a duplicate and not stored again. nats-server
//     rebuilds the window's IDs from the stored messages when it restarts,
//     so a repeat after a restart of the node is dropped as well; an ID
//     the node has released (central stored it) within the window is
//     still remembered, as purging does not clear the window.
//
// Purging stays allowed, as the release needs it; only the node reaches the
// edge's JetStream API (devices cannot, and central's leaf user may only
// reset its sourcing consumers: see authz.LeafPermissions).
func holdUntilStored(c jetstream.StreamConfig, description string, maxBytes int64, window time.Duration) jetstream.StreamConfig {
	c.Description = description
	c.Retention = jetstream.LimitsPolicy
	c.Discard = jetstream.DiscardNew
	c.MaxBytes = maxBytes
	c.MaxMsgs = -1
	c.MaxAge = 0
	c.DenyDelete = true
	c.DenyPurge = false
	c.Duplicates = window
	return c
}

// heldByInterest returns c as an earlier version created it: interest
// retention, where central's acknowledgement removes each message, and
// deny_purge, which nats-server never lets an update take back. The node
// keeps such a stream as it is (see [Node.provisionHeld]).
func heldByInterest(c jetstream.StreamConfig) jetstream.StreamConfig {
	c.Retention = jetstream.InterestPolicy
	c.DenyPurge = true
	return c
}

// nodeCredentialMirrorConfig returns the stream behind the edge's mirror of
// its credential bucket: authz's KV mirror, as nats.go would create it,
// with asynchronous persistence, since central holds the bucket and the
// mirror refills from its last stored sequence after a crash.
func nodeCredentialMirrorConfig(names authz.EdgeNames) jetstream.StreamConfig {
	kv := names.CredentialMirrorConfig()
	m := *kv.Mirror
	return jetstream.StreamConfig{
		Name:              names.CredentialStream,
		Description:       "Lintel credentials of the edge, mirrored from central",
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          1,
		AllowRollup:       true,
		DenyDelete:        true,
		AllowDirect:       true,
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
		Mirror:            &m,
		MirrorDirect:      true,
		PersistMode:       jetstream.AsyncPersistMode,
	}
}

// eventMaxBytes returns the event stream's size bound from the config and
// the store.
func (n *Node) eventMaxBytes() int64 {
	mb := n.cfg.EventStreamMaxBytes
	switch {
	case mb < 0:
		return -1
	case mb == 0:
		mb = DefaultEventStreamMaxBytes
		if n.storeMax > 0 && mb > n.storeMax/4*3 {
			mb = n.storeMax / 4 * 3
		}
	}
	return mb
}

// platformMaxBytes returns the platform stream's size bound from the
// config and the store.
func (n *Node) platformMaxBytes() int64 {
	mb := n.cfg.PlatformStreamMaxBytes
	switch {
	case mb < 0:
		return -1
	case mb == 0:
		mb = DefaultPlatformStreamMaxBytes
		if n.storeMax > 0 && mb > n.storeMax/16 {
			mb = n.storeMax / 16
		}
	}
	return mb
}

// eventLimits returns the event stream's per-subject bound and maximum
// message size from the config (-1: none).
func (n *Node) eventLimits() (int64, int32) {
	per, size := n.cfg.EventMaxMsgsPerSubject, n.cfg.EventMaxMsgSize
	if per == 0 {
		per = DefaultEventMaxMsgsPerSubject
	}
	if size == 0 {
		size = DefaultEventMaxMsgSize
	}
	return max(per, -1), max(size, -1)
}

// telemetryMaxBytes returns the telemetry stream's size bound from the
// config and the store.
func (n *Node) telemetryMaxBytes() int64 {
	mb := n.cfg.TelemetryStreamMaxBytes
	switch {
	case mb < 0:
		return -1
	case mb == 0:
		mb = DefaultTelemetryStreamMaxBytes
		if n.storeMax > 0 && mb > n.storeMax/8 {
			mb = n.storeMax / 8
		}
	}
	return mb
}

// provision creates or updates the edge's streams and the consumers central
// sources events and telemetry through, before any device can connect.
// The event stream comes first: an event stream of an earlier version that
// also captured telemetry gives up the telemetry subjects before the
// telemetry stream claims them (what it already holds still reaches
// central through it).
func (n *Node) provision(ctx context.Context) error {
	n.maxBytes = n.eventMaxBytes()
	per, size := n.eventLimits()
	if err := n.provisionHeld(ctx, nodeEventStreamConfig(n.names, n.maxBytes, per, size, n.cfg.DuplicateWindow), n.names.EventConsumer, authz.FlowEvents); err != nil {
		return fmt.Errorf("event stream %s: %w", n.names.EventStream, err)
	}
	if _, err := n.js.CreateOrUpdatePushConsumer(ctx, n.names.EventStream, n.names.EventConsumerConfig()); err != nil {
		return fmt.Errorf("event consumer %s: %w", n.names.EventConsumer, err)
	}
	n.tlmBytes = n.telemetryMaxBytes()
	if err := n.provisionHeld(ctx, nodeTelemetryStreamConfig(n.names, n.tlmBytes, n.cfg.DuplicateWindow), n.names.TelemetryConsumer, authz.FlowTelemetry); err != nil {
		return fmt.Errorf("telemetry stream %s: %w", n.names.TelemetryStream, err)
	}
	if _, err := n.js.CreateOrUpdatePushConsumer(ctx, n.names.TelemetryStream, n.names.TelemetryConsumerConfig()); err != nil {
		return fmt.Errorf("telemetry consumer %s: %w", n.names.TelemetryConsumer, err)
	}
	n.recBytes = n.platformMaxBytes()
	if err := n.provisionHeld(ctx, nodePlatformStreamConfig(n.names, n.recBytes, n.cfg.DuplicateWindow), n.names.PlatformConsumer, authz.FlowPlatform); err != nil {
		return fmt.Errorf("platform stream %s: %w", n.names.PlatformStream, err)
	}
	if _, err := n.js.CreateOrUpdatePushConsumer(ctx, n.names.PlatformStream, n.names.PlatformConsumerConfig()); err != nil {
		return fmt.Errorf("platform consumer %s: %w", n.names.PlatformConsumer, err)
	}
	cs := n.names.CommandStreamConfig()
	cs.MaxAge = n.cfg.CommandStreamMaxAge
	cs.Description = "Lintel commands for the edge's devices, sourced from central"
	if _, err := n.js.CreateOrUpdateStream(ctx, cs); err != nil {
		return fmt.Errorf("command stream %s: %w", n.names.CommandStream, err)
	}
	if _, err := n.js.CreateOrUpdateStream(ctx, nodeCredentialMirrorConfig(n.names)); err != nil {
		return fmt.Errorf("credential mirror %s: %w", n.names.CredentialStream, err)
	}
	return nil
}
