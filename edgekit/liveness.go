package edgekit

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DeviceState is a device's liveness as the edge sees it.
type DeviceState string

// Device liveness states.
const (
	// DeviceOffline: not connected, or never seen since the node started.
	DeviceOffline DeviceState = "offline"
	// DeviceOnline: connected and heard from (birth, heartbeat or another
	// state message) within its heartbeat allowance.
	DeviceOnline DeviceState = "online"
	// DeviceStale: still connected as far as the server knows, but silent
	// for more than NodeConfig.HeartbeatMisses heartbeat intervals.
	DeviceStale DeviceState = "stale"
)

// DeathReasonConnectionLost is the reason of the deaths the edge publishes
// for a device whose connection dropped without its own death.
const DeathReasonConnectionLost = "connection_lost"

// liveChanSize is the buffer between the edge service's connection and the
// liveness goroutine; the state subjects and the server's disconnect events
// share it, so that they are handled in the order the server sent them (a
// device's own death always before its disconnect).
const liveChanSize = 1 << 16

// liveThing is one device's liveness.
type liveThing struct {
	state     DeviceState
	boot      message.ID
	hb        time.Duration
	lastSeen  time.Time
	lastDeath time.Time  // when the edge last published a death for it
	deathDue  time.Time  // a death held back by flap suppression; zero for none
	deathBoot message.ID // the boot of the held-back death
}

// liveTracker follows the births, heartbeats and deaths on the edge's state
// subjects and the server's disconnect events, and publishes a death for a
// device whose connection drops.
type liveTracker struct {
	n      *Node
	mu     sync.Mutex
	things map[topic.Thing]*liveThing
	ch     chan *nats.Msg
	subs   []*nats.Subscription
	quit   chan struct{}
	wg     sync.WaitGroup
}

func newLiveTracker(n *Node) *liveTracker {
	return &liveTracker{n: n, things: make(map[topic.Thing]*liveThing), quit: make(chan struct{})}
}

// disconnectSubject and connectSubject are the system account's client
// events of the org, which the edge configuration exports to the org's
// account for the edge service.
func disconnectSubject(org string) string { return "$SYS.ACCOUNT." + org + ".DISCONNECT" }
func connectSubject(org string) string    { return "$SYS.ACCOUNT." + org + ".CONNECT" }

func (l *liveTracker) start() error {
	n := l.n
	l.ch = make(chan *nats.Msg, liveChanSize)
	for _, s := range []string{
		n.cfg.Org + "." + n.cfg.Edge + ".*.*." + string(topic.State),
		disconnectSubject(n.cfg.Org),
	} {
		sub, err := n.nc.ChanSubscribe(s, l.ch)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", s, err)
		}
		_ = sub.SetPendingLimits(-1, -1)
		l.subs = append(l.subs, sub)
	}
	if err := n.nc.FlushTimeout(n.cfg.Timeout); err != nil {
		return err
	}
	l.wg.Go(l.run)
	return nil
}

func (l *liveTracker) stop() {
	for _, s := range l.subs {
		_ = s.Unsubscribe()
	}
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	l.wg.Wait()
}

func (l *liveTracker) run() {
	for {
		select {
		case <-l.quit:
			return
		case m := <-l.ch:
			l.handle(m)
		}
	}
}

func (l *liveTracker) handle(m *nats.Msg) {
	if strings.HasPrefix(m.Subject, "$SYS.") {
		var ev server.DisconnectEventMsg
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			l.n.log.Warn("undecodable disconnect event", message.LogKeyError, err)
			return
		}
		if t, ok := l.n.deviceOfUser(ev.Client.User); ok {
			l.disconnected(t, ev.Client.ID)
		}
		return
	}
	e := new(message.Envelope)
	if err := message.DecodeMsg(m, e, nil); err != nil {
		l.n.log.Debug("undecodable state message", message.LogKeySubject, m.Subject, message.LogKeyError, err)
		return
	}
	if topic.IsReserved(e.Source.Type) {
		return
	}
	switch e.Name {
	case message.NameThingDeath:
		d, _ := message.DecodePayload[message.Death](e)
		l.dead(e.Source, d.BootID)
	case message.NameThingBirth:
		b, _ := message.DecodePayload[message.Birth](e)
		l.alive(e.Source, e.BootID, b.HeartbeatInterval, true)
	default:
		l.alive(e.Source, e.BootID, 0, false)
	}
}

func (l *liveTracker) get(t topic.Thing) *liveThing {
	lt := l.things[t]
	if lt == nil {
		lt = &liveThing{state: DeviceOffline, hb: l.n.cfg.DeviceHeartbeat}
		l.things[t] = lt
	}
	return lt
}

// alive records a message from t: a birth starts a boot, anything else
// carries on the current one.
func (l *liveTracker) alive(t topic.Thing, boot message.ID, hb time.Duration, birth bool) {
	now := l.n.cfg.Now()
	l.mu.Lock()
	lt := l.get(t)
	prev := lt.state
	if birth || lt.boot.IsZero() {
		lt.boot = boot
		if hb > 0 {
			lt.hb = hb
		} else if birth {
			lt.hb = l.n.cfg.DeviceHeartbeat
		}
	}
	lt.lastSeen = now
	lt.state = DeviceOnline
	if !lt.deathDue.IsZero() {
		lt.deathDue = time.Time{}
		l.n.stats.deathsSuppressed.Add(1)
	}
	l.mu.Unlock()
	if prev != DeviceOnline {
		l.n.log.Debug("device online", message.LogKeyThing, t.String(), logKeyState, string(DeviceOnline))
		l.n.report.changed()
	}
}

// dead records a death seen on t's state subject, the device's own or one
// the edge published.
func (l *liveTracker) dead(t topic.Thing, boot message.ID) {
	l.mu.Lock()
	lt := l.get(t)
	prev := lt.state
	lt.state = DeviceOffline
	if !lt.deathDue.IsZero() && lt.deathBoot == boot {
		lt.deathDue = time.Time{}
	}
	l.mu.Unlock()
	if prev != DeviceOffline {
		l.n.report.changed()
	}
}

// disconnected handles the end of t's connection cid: when it has no
// other, t is offline and the edge publishes its death, at most one per
// flap window. The server may still list cid as open while it sends the
// disconnect event, so cid itself never counts.
func (l *liveTracker) disconnected(t topic.Thing, cid uint64) {
	if l.n.connections(t, "", cid) > 0 {
		return
	}
	now := l.n.cfg.Now()
	l.mu.Lock()
	lt := l.things[t]
	if lt == nil || lt.state == DeviceOffline {
		l.mu.Unlock()
		return
	}
	lt.state = DeviceOffline
	boot := lt.boot
	publish := l.n.cfg.FlapWindow < 0 || lt.lastDeath.IsZero() || now.Sub(lt.lastDeath) >= l.n.cfg.FlapWindow
	if publish {
		lt.lastDeath = now
	} else {
		lt.deathDue = lt.lastDeath.Add(l.n.cfg.FlapWindow)
		lt.deathBoot = boot
	}
	l.mu.Unlock()
	l.n.report.changed()
	if publish {
		l.publishDeath(t, boot, now)
	}
}

// tick marks silent devices stale and publishes the deaths flap
// suppression held back whose device is still offline.
func (l *liveTracker) tick() {
	now := l.n.cfg.Now()
	type death struct {
		t    topic.Thing
		boot message.ID
	}
	var deaths []death
	changed := false
	l.mu.Lock()
	for t, lt := range l.things {
		if lt.state == DeviceOnline && now.Sub(lt.lastSeen) > time.Duration(l.n.cfg.HeartbeatMisses)*lt.hb {
			lt.state = DeviceStale
			changed = true
		}
		if !lt.deathDue.IsZero() && !now.Before(lt.deathDue) {
			if lt.state == DeviceOffline {
				deaths = append(deaths, death{t, lt.deathBoot})
				lt.lastDeath = now
			}
			lt.deathDue = time.Time{}
		}
	}
	l.mu.Unlock()
	if changed {
		l.n.report.changed()
	}
	for _, d := range deaths {
		l.publishDeath(d.t, d.boot, now)
	}
}

// publishDeath stores a death of t's boot in the event stream, on t's
// state subject, on the device's behalf.
func (l *liveTracker) publishDeath(t topic.Thing, boot message.ID, now time.Time) {
	e := &message.Envelope{
		ID:     l.n.cfg.IDs.NewAt(now),
		Time:   now.UTC(),
		Source: t,
		Type:   topic.State,
		Name:   message.NameThingDeath,
		BootID: boot,
	}
	if err := message.SetPayload(e, message.Death{BootID: boot, Reason: DeathReasonConnectionLost}); err != nil {
		l.n.log.Error("death not encoded", message.LogKeyThing, t.String(), message.LogKeyError, err)
		return
	}
	ctx, cancel := l.n.opCtx()
	defer cancel()
	if err := l.n.publishEnvelope(ctx, e, ""); err != nil {
		l.n.log.Error("death not stored", message.LogKeyThing, t.String(), message.LogKeyError, err)
		return
	}
	l.n.stats.deathsPublished.Add(1)
	l.n.log.Info("device lost", message.LogKeyThing, t.String(), message.LogKeyMsgID, e.ID.String())
}

// state returns t's liveness.
func (l *liveTracker) state(t topic.Thing) DeviceState {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lt := l.things[t]; lt != nil {
		return lt.state
	}
	return DeviceOffline
}

// counts returns how many devices are online and stale.
func (l *liveTracker) counts() (online, stale int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lt := range l.things {
		switch lt.state {
		case DeviceOnline:
			online++
		case DeviceStale:
			stale++
		}
	}
	return online, stale
}

// DeviceState returns the liveness of device t: [DeviceOffline] for a
// device the node has not heard from since it started.
func (n *Node) DeviceState(t topic.Thing) DeviceState { return n.live.state(t) }

// deviceOfUser returns the thing of a device user name of this edge.
func (n *Node) deviceOfUser(user string) (topic.Thing, bool) {
	p := strings.Split(user, ".")
	if len(p) != 4 || p[0] != n.cfg.Org || p[1] != n.cfg.Edge || topic.IsReserved(p[2]) {
		return topic.Thing{}, false
	}
	t := topic.Thing{Org: p[0], Edge: p[1], Type: p[2], Code: p[3]}
	return t, t.Validate() == nil
}

// connections returns the number of open connections of device t other
// than except (0: none excepted), only those subscribed to subject when it
// is not empty.
func (n *Node) connections(t topic.Thing, subject string, except uint64) int {
	cz, err := n.srv.Connz(&server.ConnzOptions{
		Username:      true,
		User:          authz.DeviceUser(t),
		Account:       n.cfg.Org,
		FilterSubject: subject,
		State:         server.ConnOpen,
		Limit:         1 << 16,
	})
	if err != nil {
		return 0
	}
	count := 0
	for _, c := range cz.Conns {
		if c.Cid != except {
			count++
		}
	}
	return count
}
