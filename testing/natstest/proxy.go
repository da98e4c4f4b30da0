package natstest

import "github.com/lintel-io/lintel/internal/tcpproxy"

// Proxy is a TCP proxy on 127.0.0.1 in front of one target address, with
// network faults on demand: Cut breaks every connection, Stall silently
// stops the traffic, and Restore heals both. Put it between a leaf node and
// its hub (as [HubLeaf] does), or between a client and a server, to test
// how code behaves when the link fails. A target that is down (for example
// during [Server.Restart]) makes the proxy close the accepted connection,
// as a refused connection would. The methods are safe for concurrent use.
type Proxy = tcpproxy.Proxy

// ProxyStats is a snapshot of a [Proxy]'s connection counters.
type ProxyStats = tcpproxy.Stats

// NewProxy starts a proxy listening on a random port of 127.0.0.1 that
// forwards to target, a host:port. The target need not be up yet. NewProxy
// returns an error only when the listener cannot be created.
func NewProxy(target string) (*Proxy, error) { return tcpproxy.New(target) }
