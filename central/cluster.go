package central

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/lintel-io/lintel/authz"
)

// leadInterval is how often a clustered central retries starting its
// orgs and checks which node leads each org's event stream.
const leadInterval = time.Second

// clustered reports whether this node is one of a cluster of central
// nodes.
func (c *Central) clustered() bool { return c.cfg.Render.Cluster != nil }

// inventory and state return the current inventory and credential state.
func (c *Central) inventory() *authz.Inventory {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inv
}

func (c *Central) state() *authz.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// lead runs on a clustered central until Close. Every leadInterval it
// starts the orgs not started yet (JetStream has no quorum until enough
// nodes are up, so a node cannot do it at start) and runs each org's
// duties, the auditor and the supervisor, exactly while this node leads
// the org's event stream: the stream's leader is the one node whose
// JetStream writes that stream, and nats-server elects a new one when it
// fails. The ingest runs on every node and elects itself in the database.
func (c *Central) lead() {
	tick := time.NewTicker(leadInterval)
	defer tick.Stop()
	for {
		for _, o := range c.orgs {
			c.leadOrg(o)
		}
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

// leadOrg does one round of lead for o.
func (c *Central) leadOrg(o *org) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	go func() { // Close cuts a round short
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if !o.ready.Load() {
		// JetStream requests made before the cluster has elected its meta
		// leader go unanswered until they time out.
		if !c.metaLeader() {
			c.failing(o, "org not started yet; retrying", errNoMetaLeader)
			return
		}
		// nats-server leaves a request to create a stream unanswered while
		// another node's creation of it is in flight: one node provisions
		// at a time. The first time, when the org's streams do not exist
		// yet, the node of the meta leader does; afterwards the node that
		// leads the event stream (startDuties).
		exist := c.streamsExist(ctx, o)
		if !exist && !c.srv.JetStreamIsLeader() {
			c.failing(o, "org not started yet; retrying", errStreamsMissing)
			return
		}
		if err := c.startOrg(ctx, o, !exist); err != nil {
			c.failing(o, "org not started yet; retrying", err)
			return
		}
		o.ready.Store(true)
		c.log.Info("org started", "org", o.code)
	}
	leader, err := c.leads(ctx, o)
	if err != nil {
		c.failing(o, "event stream leader unknown; retrying", err)
		return
	}
	if !leader {
		if o.stopDuties() {
			c.log.Info("no longer the leader of the org's event stream: auditor and supervisor stopped", "org", o.code)
		}
		return
	}
	o.mu.Lock()
	running := o.sup != nil && o.auditor != nil
	o.mu.Unlock()
	if running {
		return
	}
	if err := c.startDuties(ctx, o); err != nil {
		c.failing(o, "leader of the org's event stream, but the auditor or supervisor did not start; retrying", err)
		return
	}
	c.log.Info("leader of the org's event stream: auditor and supervisor started", "org", o.code)
	o.mu.Lock()
	o.failing = ""
	o.mu.Unlock()
}

// errNoMetaLeader is why a clustered central waits.
var errNoMetaLeader = errors.New("JetStream cluster has no meta leader yet (fewer than a quorum of central nodes up?)")

// errStreamsMissing is why a clustered central node that is not the meta
// leader waits.
var errStreamsMissing = errors.New("waiting for the node of the JetStream meta leader to create the org's streams")

// streamsExist reports whether o's streams exist: the event stream and,
// with a database, the dead-letter stream, which central creates last.
func (c *Central) streamsExist(ctx context.Context, o *org) bool {
	if err := c.connectOrg(o); err != nil {
		return false
	}
	ev, err := authz.CentralEventStreamConfig(o.code)
	if err != nil {
		return false
	}
	want := []string{ev.Name}
	if c.store != nil {
		want = append(want, DeadLetterStream(o.code))
	}
	for _, name := range want {
		if _, err := o.js.Stream(ctx, name); err != nil {
			return false
		}
	}
	return true
}

// metaLeader reports whether the JetStream cluster has a meta leader.
func (c *Central) metaLeader() bool {
	jsz, err := c.srv.Jsz(&server.JSzOptions{})
	return err == nil && jsz.Meta != nil && jsz.Meta.Leader != ""
}

// leads reports whether this node leads o's event stream.
func (c *Central) leads(ctx context.Context, o *org) (bool, error) {
	str, err := o.js.Stream(ctx, o.hub.EventStream())
	if err != nil {
		return false, err
	}
	info := str.CachedInfo()
	return info.Cluster != nil && info.Cluster.Leader == c.srv.Name(), nil
}

// failing logs err for o once until it changes.
func (c *Central) failing(o *org, msg string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failing == err.Error() {
		return
	}
	o.failing = err.Error()
	c.log.Warn(msg, "org", o.code, "err", err)
}
