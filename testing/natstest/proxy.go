package natstest

import "github.com/lintel-io/lintel/internal/tcpproxy"

// Proxy is a TCP proxy on 127.0.0.1 in front of one target address, with
// network faults on demand: Cut breaks every connection, Stall silently
// holds the traffic, HalfOpen swallows it as a dead NAT would, Impair adds
// latency or a bandwidth limit, and Restore heals them all. Put it between a leaf node and
// its hub (as [HubLeaf] does), or between a client and a server, to test
// how code behaves when the link fails. A target that is down (for example
// during [Server.Restart]) makes the proxy close the accepted connection,
// as a refused connection would. The methods are safe for concurrent use.
type Proxy = tcpproxy.Proxy

// Impairment is latency and a bandwidth limit for [Proxy.Impair].
type Impairment = tcpproxy.Impairment

// Direction is the traffic an [Impairment] applies to.
type Direction = tcpproxy.Direction

// The directions of [Proxy.Impair].
const (
	ToTarget = tcpproxy.ToTarget // from the client to the target
	ToClient = tcpproxy.ToClient // from the target back to the client
	BothWays = tcpproxy.BothWays // both
)

// ProxyStats is a snapshot of a [Proxy]'s connection counters.
type ProxyStats = tcpproxy.Stats

// NewProxy starts a proxy listening on a random port of 127.0.0.1 that
// forwards to target, a host:port. The target need not be up yet. NewProxy
// returns an error only when the listener cannot be created.
func NewProxy(target string) (*Proxy, error) { return tcpproxy.New(target) }
