package natstest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Defaults for [HubLeafOptions].
const (
	// DefaultHubDomain is the hub's JetStream domain unless
	// HubLeafOptions.HubDomain says otherwise.
	DefaultHubDomain = "hub"
	// DefaultLeafDomain is the leaf's JetStream domain unless
	// HubLeafOptions.LeafDomain says otherwise.
	DefaultLeafDomain = "edge1"
	// DefaultPingInterval is the servers' ping interval unless
	// HubLeafOptions.PingInterval says otherwise; short, so that a stalled
	// link is noticed within seconds.
	DefaultPingInterval = time.Second
	// DefaultReconnectInterval is the leaf's reconnect interval unless
	// HubLeafOptions.ReconnectInterval says otherwise.
	DefaultReconnectInterval = 250 * time.Millisecond
)

// HubClientUser is the user the hub assigns to client connections that
// present no credentials (the hub's NoAuthUser). It may not be used by leaf
// nodes.
const HubClientUser = "natstest"

const (
	// defaultWaitTimeout bounds the Wait helpers when the caller's context
	// has no deadline.
	defaultWaitTimeout = 30 * time.Second
	// waitPollInterval is how often the Wait helpers look at the servers.
	waitPollInterval = 10 * time.Millisecond
)

// HubLeafOptions configures [NewHubLeaf] and [RunHubLeaf]. The zero value
// means the defaults.
type HubLeafOptions struct {
	// HubDomain is the hub's JetStream domain; empty means DefaultHubDomain.
	HubDomain string
	// LeafDomain is the leaf's JetStream domain; empty means DefaultLeafDomain.
	LeafDomain string
	// PingInterval is the ping interval of both servers, which bounds how
	// long a stalled link goes unnoticed (about three intervals); zero means
	// DefaultPingInterval.
	PingInterval time.Duration
	// ReconnectInterval is how long the leaf waits between attempts to
	// reconnect to the hub (after a failed dial, nats-server adds a random
	// jitter of up to the same again); zero means DefaultReconnectInterval.
	ReconnectInterval time.Duration
	// NoWait makes NewHubLeaf and RunHubLeaf return without waiting for the
	// leaf to connect, for tests of links that must not come up.
	NoWait bool

	// Hub, when set, modifies the hub's options after the defaults are
	// applied and before the hub starts. They already register the leaf's
	// nkey user and the client no-auth user in Nkeys, Users and NoAuthUser;
	// append to those lists rather than replacing them.
	Hub func(*server.Options)
	// Leaf, when set, modifies the leaf's options after the defaults are
	// applied and before the leaf starts. LeafNode.Remotes[0] is the link to
	// the hub through the proxy.
	Leaf func(*server.Options)
}

// HubLeaf is a hub server and a leaf node server linked through a [Proxy],
// each with its own JetStream domain: the shape of a cloud hub and an edge
// site. Create one with [NewHubLeaf] or [RunHubLeaf].
//
// The hub's client port needs no credentials: connections without any are
// the user HubClientUser in the global account. Its leafnode port only
// accepts the leaf, which authenticates with an nkey: the hub registers
// LeafPublicKey as an nkey user allowed only LEAFNODE connections, and the
// leaf's remote carries LeafSeed in server.RemoteLeafOpts.Nkey, signing the
// hub's nonce with it. Both sides bind the link to their global account, in
// which JetStream is enabled. The leaf's own client port needs no
// credentials.
//
// Fault injection goes through Proxy: Proxy.Cut or Proxy.Stall break the
// link, Proxy.Restore heals it, and Hub.Restart or Leaf.Restart bounce a
// server; the leaf reconnects on its own every ReconnectInterval. Wait for
// the link with [HubLeaf.WaitLeafConnected] and [HubLeaf.WaitLeafDisconnected].
type HubLeaf struct {
	// Hub is the hub server. Its leafnode listener is the proxy's target.
	Hub *Server
	// Leaf is the leaf node server. Its only remote is the proxy.
	Leaf *Server
	// Proxy sits between the leaf and the hub's leafnode listener.
	Proxy *Proxy

	// HubDomain and LeafDomain are the JetStream domains in use.
	HubDomain  string
	LeafDomain string // see HubDomain

	// LeafSeed is the leaf's nkey user seed (a secret, "SU...").
	LeafSeed string
	// LeafPublicKey is the public key of LeafSeed ("U..."), registered on
	// the hub.
	LeafPublicKey string
}

// NewHubLeaf starts a hub, a proxy in front of the hub's leafnode listener
// and a leaf node connected to the hub through the proxy, then waits (unless
// opts.NoWait) until the link is up on both sides, for up to 30 seconds.
//
// It returns an error from [NewServer] or [NewProxy], [ErrNoLeafNodeListener]
// when opts.Hub removed the hub's leafnode listener, or an error wrapping
// context.DeadlineExceeded when the link does not come up. Nothing is left
// running when it fails.
func NewHubLeaf(opts HubLeafOptions) (*HubLeaf, error) {
	hl, err := newHubLeaf(opts)
	if err != nil {
		return nil, err
	}
	if !opts.NoWait {
		if err := hl.WaitLeafConnected(context.Background()); err != nil {
			hl.Close()
			return nil, err
		}
	}
	return hl, nil
}

// RunHubLeaf is [NewHubLeaf] for tests: it fails tb at once on error and
// closes everything in tb.Cleanup.
func RunHubLeaf(tb testing.TB, opts HubLeafOptions) *HubLeaf {
	tb.Helper()
	hl, err := NewHubLeaf(opts)
	if err != nil {
		tb.Fatalf("natstest.RunHubLeaf: %v", err)
	}
	tb.Cleanup(hl.Close)
	return hl
}

func newHubLeaf(opts HubLeafOptions) (_ *HubLeaf, err error) {
	hl := &HubLeaf{
		HubDomain:  valueOr(opts.HubDomain, DefaultHubDomain),
		LeafDomain: valueOr(opts.LeafDomain, DefaultLeafDomain),
	}
	ping := valueOr(opts.PingInterval, DefaultPingInterval)
	reconnect := valueOr(opts.ReconnectInterval, DefaultReconnectInterval)

	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("natstest: create leaf nkey: %w", err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("natstest: leaf nkey seed: %w", err)
	}
	hl.LeafSeed = string(seed)
	if hl.LeafPublicKey, err = kp.PublicKey(); err != nil {
		return nil, fmt.Errorf("natstest: leaf nkey public key: %w", err)
	}

	defer func() {
		if err != nil {
			hl.Close()
		}
	}()

	hubOpts := DefaultOptions()
	hubOpts.ServerName = "natstest-hub"
	hubOpts.JetStreamDomain = hl.HubDomain
	hubOpts.PingInterval = ping
	hubOpts.LeafNode.Host = loopback
	hubOpts.LeafNode.Port = server.RANDOM_PORT
	// Without NoAdvertise the hub tells the leaf its real leafnode URL, and
	// after the first reconnect the leaf may dial it directly, bypassing the
	// proxy, so later cuts would do nothing.
	hubOpts.LeafNode.NoAdvertise = true
	hubOpts.Nkeys = []*server.NkeyUser{{
		Nkey:                   hl.LeafPublicKey,
		AllowedConnectionTypes: connectionTypes(jwt.ConnectionTypeLeafnode),
	}}
	// Declaring the nkey user turns authentication on for every connection
	// type. Clients without credentials become this user; it may not be
	// used by leaf nodes, so an unauthenticated leaf is refused.
	hubOpts.Users = []*server.User{{
		Username: HubClientUser,
		AllowedConnectionTypes: connectionTypes(
			jwt.ConnectionTypeStandard,
			jwt.ConnectionTypeWebsocket,
			jwt.ConnectionTypeMqtt,
			jwt.ConnectionTypeMqttWS,
			jwt.ConnectionTypeInProcess,
		),
	}}
	hubOpts.NoAuthUser = HubClientUser
	if opts.Hub != nil {
		opts.Hub(hubOpts)
	}
	if hl.Hub, err = NewServer(hubOpts); err != nil {
		return nil, fmt.Errorf("natstest: start hub: %w", err)
	}
	if hl.Hub.LeafNodeAddr() == "" {
		return nil, ErrNoLeafNodeListener
	}

	if hl.Proxy, err = NewProxy(hl.Hub.LeafNodeAddr()); err != nil {
		return nil, err
	}

	leafOpts := DefaultOptions()
	leafOpts.ServerName = "natstest-leaf"
	leafOpts.JetStreamDomain = hl.LeafDomain
	leafOpts.PingInterval = ping
	leafOpts.LeafNode.ReconnectInterval = reconnect
	leafOpts.LeafNode.Remotes = []*server.RemoteLeafOpts{{
		URLs: []*url.URL{{Scheme: "nats-leaf", Host: hl.Proxy.Addr()}},
		Nkey: hl.LeafSeed,
	}}
	if opts.Leaf != nil {
		opts.Leaf(leafOpts)
	}
	if hl.Leaf, err = NewServer(leafOpts); err != nil {
		return nil, fmt.Errorf("natstest: start leaf: %w", err)
	}
	return hl, nil
}

// Close stops the leaf, the proxy and the hub, in that order, and waits
// until they are down. It is idempotent.
func (hl *HubLeaf) Close() {
	if hl.Leaf != nil {
		hl.Leaf.Close()
	}
	if hl.Proxy != nil {
		hl.Proxy.Close()
	}
	if hl.Hub != nil {
		hl.Hub.Close()
	}
}

// LeafConnected reports whether the link is up on both sides right now: the
// hub has accepted the leaf and the leaf has registered the connection.
func (hl *HubLeaf) LeafConnected() bool {
	return hl.Hub.Server().NumLeafNodes() > 0 && hl.Leaf.Server().NumLeafNodes() > 0
}

// leafDisconnected reports whether neither side has a leafnode connection.
func (hl *HubLeaf) leafDisconnected() bool {
	return hl.Hub.Server().NumLeafNodes() == 0 && hl.Leaf.Server().NumLeafNodes() == 0
}

// WaitLeafConnected waits until [HubLeaf.LeafConnected] holds. When ctx has
// no deadline, it waits for at most 30 seconds. It returns nil, or an error
// wrapping the context's error.
//
// Subscription interest crosses the link shortly after it comes up, so a
// message published right after WaitLeafConnected returns may still find no
// subscriber on the other side; wait for it with [Server.WaitInterest] on the
// publishing side.
func (hl *HubLeaf) WaitLeafConnected(ctx context.Context) error {
	return waitFor(ctx, "leaf connected", hl.LeafConnected)
}

// WaitLeafDisconnected waits until neither the hub nor the leaf has a
// leafnode connection. When ctx has no deadline, it waits for at most 30
// seconds. It returns nil, or an error wrapping the context's error.
//
// After [Proxy.Cut] this takes no time; after [Proxy.Stall] it takes about
// three ping intervals, until both servers give up on their pings.
func (hl *HubLeaf) WaitLeafDisconnected(ctx context.Context) error {
	return waitFor(ctx, "leaf disconnected", hl.leafDisconnected)
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, what string, cond func() bool) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWaitTimeout)
		defer cancel()
	}
	tick := time.NewTicker(waitPollInterval)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			err := ctx.Err()
			if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
				err = fmt.Errorf("%w (%w)", err, cause)
			}
			return fmt.Errorf("natstest: waiting for %s: %w", what, err)
		case <-tick.C:
		}
	}
}

func connectionTypes(types ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(types))
	for _, t := range types {
		m[t] = struct{}{}
	}
	return m
}

func valueOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
