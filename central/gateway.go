package central

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
)

// orgGateway is what central runs for the central HTTP gateway of an org
// (docs/gateway.md): the org's gateway stream, into which the gateway
// (gateway.Central, apps/gateway in central mode) publishes the events of
// the devices the inventory marks authz.Thing.CentralGateway, and with a
// database the ingest of that stream, whose origin check believes only
// those devices. Both exist once the inventory marks a device of the org.
type orgGateway struct { // guarded by org.mu
	origins *gatewayOrigins
	ingest  *storage.Ingest
	run     *storage.IngestRun
}

// gatewayIngestDurable names the ingest of the gateway stream in the
// database, beside central's event stream's.
const gatewayIngestDurable = storage.DefaultDurable

// usesGateway reports whether inv marks a device of o's org for the
// central gateway.
func usesGateway(inv *authz.Inventory, o *org) bool {
	return len(inv.CentralGatewayDevices(o.code)) > 0
}

// provisionGateway creates or updates o's gateway stream, and the central
// gateway's consumer on o's command stream, when inv marks a device of the
// org for the central gateway. It is idempotent. (It takes
// the inventory rather than reading it, since Update calls it holding
// c.mu.)
func (c *Central) provisionGateway(ctx context.Context, inv *authz.Inventory, o *org) error {
	if !usesGateway(inv, o) {
		return nil
	}
	cfg, err := topology.GatewayStreamConfig(o.code)
	if err != nil {
		return err
	}
	cfg.Replicas = c.cfg.Replicas
	if c.cfg.GatewayStream != nil {
		c.cfg.GatewayStream(&cfg)
	}
	if _, err := o.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("gateway stream %s: %w", cfg.Name, err)
	}
	// The gateway reads its devices' commands through a consumer central
	// makes, so that the gateway's permissions need no consumer creation.
	cmds, _ := authz.CentralCommandStreamConfig(o.code)
	if _, err := o.js.CreateOrUpdateConsumer(ctx, cmds.Name, topology.GatewayCommandConsumerConfig(o.code)); err != nil {
		return fmt.Errorf("gateway command consumer on %s: %w", cmds.Name, err)
	}
	return nil
}

// startGateway keeps o's gateway origins current with inv and, with a
// database, starts the ingest of o's gateway stream once inv marks a
// device for the central gateway. It may be called again: each step skips
// what is set up.
func (c *Central) startGateway(ctx context.Context, inv *authz.Inventory, o *org) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gw.origins == nil {
		origins, err := newGatewayOrigins(inv, o.code)
		if err != nil {
			return err
		}
		o.gw.origins = origins
	} else {
		o.gw.origins.Update(inv)
	}
	if c.store == nil || o.gw.run != nil || !usesGateway(inv, o) {
		return nil
	}
	if o.gw.ingest == nil {
		in, err := storage.NewIngest(c.store, o.js, storage.IngestConfig{
			Stream: topology.GatewayStream(o.code), Durable: gatewayIngestDurable,
			DeadLetterSubject: DeadLetterSubject(o.code), Origins: o.gw.origins, Logger: c.log,
		})
		if err != nil {
			return err
		}
		o.gw.ingest = in
	}
	run, err := o.gw.ingest.Start(ctx)
	if err != nil {
		return fmt.Errorf("gateway ingest: %w", err)
	}
	o.gw.run = run
	return nil
}

// stopGateway drains the ingest of o's gateway stream, as shutdown does
// the event stream's, and returns its failure.
func (c *Central) stopGateway(o *org) error {
	o.mu.Lock()
	r := o.gw.run
	o.mu.Unlock()
	if r == nil {
		return nil
	}
	go r.Drain()
	select {
	case <-r.Done():
	case <-time.After(c.cfg.Timeout):
		c.log.Warn("the gateway ingest did not drain in time; stopping it", "org", o.code)
		r.Stop()
	}
	if err := r.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("org %s: gateway ingest: %w", o.code, err)
	}
	return nil
}

// GatewayIngest returns the ingest of org's gateway stream, or nil when
// there is none (no database, or no device marked for the central
// gateway).
func (c *Central) GatewayIngest(org string) *storage.Ingest {
	if o := c.readyOrg(org); o != nil {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.gw.run != nil {
			return o.gw.ingest
		}
	}
	return nil
}

// gatewayOrigins checks where a message of an org's gateway stream came
// from, for the storage ingest of that stream (a [storage.OriginChecker],
// as [authz.SourceTable] is for central's event stream). The gateway
// stream has no sources: its messages were published by the central
// gateway's service user, the only identity whose permissions allow its
// subjects ([authz.GatewayPermissions]), and stored under the device
// subject their internal subject named. Check therefore believes a
// message only on the subject of a device of the org that the inventory
// marks authz.Thing.CentralGateway, of a type the gateway stores. Update
// applies a changed inventory. It is safe for concurrent use.
type gatewayOrigins struct {
	org string

	mu      sync.RWMutex
	devices map[topic.Thing]bool
}

var _ storage.OriginChecker = (*gatewayOrigins)(nil)

// newGatewayOrigins returns the origin check of org's gateway stream with
// the devices inv marks for the central gateway. It returns an error
// wrapping [authz.ErrReservedName] or a [*topic.Error] for a bad org.
func newGatewayOrigins(inv *authz.Inventory, org string) (*gatewayOrigins, error) {
	if err := topology.CheckOrg(org); err != nil {
		return nil, err
	}
	o := &gatewayOrigins{org: org}
	o.Update(inv)
	return o, nil
}

// Update makes the devices inv marks for the central gateway the ones
// whose messages Check believes.
func (o *gatewayOrigins) Update(inv *authz.Inventory) {
	devs := make(map[topic.Thing]bool)
	for _, t := range inv.CentralGatewayDevices(o.org) {
		devs[t] = true
	}
	o.mu.Lock()
	o.devices = devs
	o.mu.Unlock()
}

// Check reports whether a message stored in the org's gateway stream on
// subject with header h may be believed. Its origin is the gateway stream:
// Origin.Source is its name ([topology.GatewayStream]) and Origin.Edge the
// edge the device is registered at. It returns an [*authz.OriginError]
// (wrapping [authz.ErrOrigin]) for a message that carries a stream-source
// header (the gateway stream sources nothing), is not a thing's subject of
// the org, names a device the inventory does not mark for the central
// gateway, or is of a type the gateway does not store.
func (o *gatewayOrigins) Check(subject string, h nats.Header) (authz.Origin, error) {
	src := topology.GatewayStream(o.org)
	refuse := func(edge, reason string) (authz.Origin, error) {
		return authz.Origin{Edge: edge, Source: src}, &authz.OriginError{Subject: subject, Source: src, Edge: edge, Reason: reason}
	}
	if h.Get(authz.HeaderStreamSource) != "" {
		return refuse("", "sourced, but the gateway stream sources nothing")
	}
	subj, err := topic.Parse(subject)
	if err != nil {
		return refuse("", "not a thing's subject: "+err.Error())
	}
	switch {
	case subj.Org != o.org:
		return refuse("", fmt.Sprintf("the gateway stream of org %s, not %s", o.org, subj.Org))
	case !slices.Contains(topology.GatewayTypes(), subj.MessageType):
		return refuse(subj.Edge, "message type "+string(subj.MessageType)+" is not stored through the central gateway")
	}
	o.mu.RLock()
	ok := o.devices[subj.Thing]
	o.mu.RUnlock()
	if !ok {
		return refuse(subj.Edge, "device "+subj.Thing.String()+" is not marked for the central gateway")
	}
	return authz.Origin{Edge: subj.Edge, Source: src}, nil
}
