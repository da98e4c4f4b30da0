package central

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/storage"
)

// orgGateway is what central runs for the central HTTP gateway of an org
// (docs/gateway.md): the org's gateway stream, into which the gateway
// (gateway.Central, apps/gateway in central mode) publishes the events of
// the devices the inventory marks authz.Thing.CentralGateway, and with a
// database the ingest of that stream, whose origin check believes only
// those devices. Both exist once the inventory marks a device of the org.
type orgGateway struct { // guarded by org.mu
	origins *authz.CentralGatewayOrigins
	ingest  *storage.Ingest
	run     *storage.IngestRun
}

// gatewayIngestDurable names the ingest of the gateway stream in the
// database, beside central's event stream's.
const gatewayIngestDurable = storage.DefaultDurable

// usesGateway reports whether inv marks a device of o's org for the
// central gateway.
func usesGateway(inv *authz.Inventory, o *org) bool {
	return len(authz.CentralGatewayDevices(inv, o.code)) > 0
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
	cfg, err := authz.CentralGatewayStreamConfig(o.code)
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
	if _, err := o.js.CreateOrUpdateConsumer(ctx, cmds.Name, authz.CentralGatewayCommandConsumerConfig(o.code)); err != nil {
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
		origins, err := authz.NewCentralGatewayOrigins(inv, o.code)
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
			Stream: authz.CentralGatewayStream(o.code), Durable: gatewayIngestDurable,
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
