package edgekit

import (
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults of the per-device publish rate limit ([NodeConfig].DeviceRate).
const (
	// DefaultDeviceRate is how many messages a second one device
	// connection may publish into the edge, sustained.
	DefaultDeviceRate = 1000
	// DefaultDeviceBurst is how many messages above DefaultDeviceRate a
	// device may publish in a burst.
	DefaultDeviceBurst = 2000
	// DefaultDeviceBanFor is how long a device that went over its rate is
	// refused before it may log in again.
	DefaultDeviceBanFor = 10 * time.Second
)

// Log key and value of a device disconnected for its rate.
const (
	logKeySecurity       = "security"
	securityRateExceeded = "rate_exceeded"
)

// rateGuard bounds the publish rate of each device connection. nats-server
// has no per-user publish rate limit, and per-subject stream limits bound
// what a device holds, not how often it makes the edge write and fsync. So
// the node reads every device connection's inbound message counter at each
// check and keeps a token bucket per connection; a connection that empties
// its bucket is closed and its user refused for BanFor, after which it may
// log in again with a full bucket. The edge's own connections and services
// (users beginning with '_') are not limited.
type rateGuard struct {
	rate   float64 // messages a second; <= 0: no limit
	burst  float64
	banFor time.Duration
	now    func() time.Time

	mu      sync.Mutex
	conns   map[uint64]*connBucket
	banned  map[string]time.Time // user → refused until
	limited uint64
}

type connBucket struct {
	in     int64
	at     time.Time
	tokens float64
}

func newRateGuard(cfg NodeConfig) *rateGuard {
	return &rateGuard{
		rate:   cfg.DeviceRate,
		burst:  cfg.DeviceBurst,
		banFor: cfg.DeviceBanFor,
		now:    cfg.Now,
		conns:  make(map[uint64]*connBucket),
		banned: make(map[string]time.Time),
	}
}

// refused reports whether user may not log in now.
func (g *rateGuard) refused(user string) bool {
	if g == nil || g.rate <= 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.banned[user]
	if !ok {
		return false
	}
	if !g.now().Before(until) {
		delete(g.banned, user)
		return false
	}
	return true
}

// over is one connection found over its rate.
type over struct {
	cid  uint64
	user string
	msgs int64
}

// check reads the device connections of account acc on srv and returns
// those over their rate, banning their users.
func (g *rateGuard) check(srv *server.Server, acc string) []over {
	if g == nil || g.rate <= 0 || srv == nil {
		return nil
	}
	cz, err := srv.Connz(&server.ConnzOptions{Account: acc, Username: true, Limit: 1 << 20})
	if err != nil {
		return nil
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := make(map[uint64]bool, len(cz.Conns))
	var out []over
	for _, c := range cz.Conns {
		user := c.AuthorizedUser
		if user == "" || strings.HasPrefix(user, "_") {
			continue
		}
		seen[c.Cid] = true
		b := g.conns[c.Cid]
		if b == nil {
			// A new connection starts with a full bucket, less what it
			// has already published.
			g.conns[c.Cid] = &connBucket{in: c.InMsgs, at: now, tokens: g.burst - float64(c.InMsgs)}
			b = g.conns[c.Cid]
		} else {
			b.tokens += now.Sub(b.at).Seconds() * g.rate
			b.tokens = min(b.tokens, g.burst)
			b.tokens -= float64(c.InMsgs - b.in)
			b.in, b.at = c.InMsgs, now
		}
		if b.tokens < 0 {
			out = append(out, over{cid: c.Cid, user: user, msgs: c.InMsgs})
			g.banned[user] = now.Add(g.banFor)
			delete(g.conns, c.Cid)
			g.limited++
		}
	}
	for cid := range g.conns {
		if !seen[cid] {
			delete(g.conns, cid)
		}
	}
	return out
}

// limitedCount returns how many connections were closed for their rate.
func (g *rateGuard) limitedCount() uint64 {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limited
}

// enforceRate closes the device connections over their rate.
func (n *Node) enforceRate() {
	for _, o := range n.rate.check(n.srv, n.cfg.Org) {
		n.log.Warn("device over its publish rate: disconnected and refused for a while",
			logKeySecurity, securityRateExceeded, "user", o.user, "in_msgs", o.msgs,
			"rate", n.cfg.DeviceRate, "ban", n.cfg.DeviceBanFor)
		_ = n.srv.DisconnectClientByID(o.cid)
	}
}
