package edgekit

import (
	"context"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nats.go/jetstream"
)

// eventDuplicateWindow is the event stream's deduplication window: a device
// repeats an unacknowledged publish with the same envelope ID within it.
const eventDuplicateWindow = 2 * time.Minute

// nodeEventStreamConfig returns the configuration of the edge's event
// stream as the node creates it: authz's names and subjects, with
//
//   - interest retention: a message is removed once central's durable
//     sourcing consumer (the only consumer) has acknowledged it, never
//     before, so no age limit can delete what central has not stored;
//   - a size bound with discard-new: a full stream refuses new messages,
//     and the device gets an error (devicekit.ErrStreamFull), instead of
//     losing old ones;
//   - deny_delete and deny_purge: nobody removes a message central has not
//     stored.
func nodeEventStreamConfig(names authz.EdgeNames, maxBytes int64) jetstream.StreamConfig {
	c := names.EventStreamConfig()
	c.Description = "Lintel edge events, held until central has stored them"
	c.Retention = jetstream.InterestPolicy
	c.Discard = jetstream.DiscardNew
	c.MaxBytes = maxBytes
	c.MaxMsgs = -1
	c.MaxAge = 0
	c.DenyDelete = true
	c.DenyPurge = true
	c.Duplicates = eventDuplicateWindow
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

// provision creates or updates the edge's streams and the consumer central
// sources events through, before any device can connect.
func (n *Node) provision(ctx context.Context) error {
	n.maxBytes = n.eventMaxBytes()
	if _, err := n.js.CreateOrUpdateStream(ctx, nodeEventStreamConfig(n.names, n.maxBytes)); err != nil {
		return fmt.Errorf("event stream %s: %w", n.names.EventStream, err)
	}
	if _, err := n.js.CreateOrUpdatePushConsumer(ctx, n.names.EventStream, n.names.EventConsumerConfig()); err != nil {
		return fmt.Errorf("event consumer %s: %w", n.names.EventConsumer, err)
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
