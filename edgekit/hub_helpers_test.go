package edgekit_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// hubWait bounds every wait for a condition in the hub tests: generous, for
// a loaded 2-core machine under the race detector, where nats-server's own
// source retry could take 10 to 40 s if the hub's stall recovery did not
// work. Tests finish far sooner when it does.
const hubWait = 60 * time.Second

const (
	hubOrg     = "acme"
	hubService = "hub"
)

// hubTopo is a central server and edges linked to it through proxies, built
// from the authz inventory exactly as production renders them, with the
// central side run by an edgekit.Hub.
type hubTopo struct {
	t         testing.TB
	inv       *authz.Inventory
	st        *authz.State
	passwords map[string]string
	seeds     map[string]string
	cmdSeed   authz.Secret // central's command key of the org
	cmdPub    string

	central *natstest.Server
	hubNC   *nats.Conn
	hubJS   jetstream.JetStream
	hub     *edgekit.Hub
	sup     *edgekit.Supervisor
	edges   map[string]*hubEdge

	edgeServer func(*server.Options) // adjusts each edge's server options
}

// hubEdge is one edge server, provisioned as its edge service would.
type hubEdge struct {
	names  authz.EdgeNames
	srv    *natstest.Server
	proxy  *natstest.Proxy
	nc     *nats.Conn
	js     jetstream.JetStream
	things []topic.Thing
}

type hubTopoOptions struct {
	edges        []string              // edge codes; default "hq"
	absent       []string              // edges registered and provisioned that never start
	edgeServer   func(*server.Options) // adjusts each edge's server options last
	devices      int                   // sensors per edge; default 10
	noSupervisor bool                  // do not run the hub's stall recovery
	hubConfig    func(*edgekit.HubConfig)
	central      func(*hubServerTweaks)
}

// hubServerTweaks are the server options tweaks applied before start.
type hubServerTweaks = struct{ SyncAlways bool }

// startHubTopo starts central, the edges (each behind its own proxy), the
// hub (provisioned with every edge) and, unless told otherwise, its
// supervisor.
func startHubTopo(t testing.TB, o hubTopoOptions) *hubTopo {
	t.Helper()
	if len(o.edges) == 0 {
		o.edges = []string{"hq"}
	}
	if o.devices == 0 {
		o.devices = 10
	}
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: hubOrg}},
		Services: []authz.Service{{Name: hubService, Kind: authz.ServiceCentral, Org: hubOrg}},
	}
	for _, e := range append(o.edges, o.absent...) {
		inv.Edges = append(inv.Edges, authz.Edge{Org: hubOrg, Code: e})
		for i := range o.devices {
			inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: hubOrg, Edge: e, Type: "sensor", Code: fmt.Sprintf("s%d", i)}})
		}
	}
	h := &hubTopo{t: t, inv: inv, edges: map[string]*hubEdge{}, edgeServer: o.edgeServer}
	h.makeCredentials()

	copts, err := authz.CentralOptions(inv, h.st, authz.RenderOptions{
		Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
		StoreDir: t.TempDir(), MaxMemoryStore: 64 << 20, MaxFileStore: 2 << 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	copts.NoLog = true
	// Central would tell the edges its own leaf-node URL, and an edge would
	// then bypass the proxy when it reconnects after a cut.
	copts.LeafNode.NoAdvertise = true
	if o.central != nil {
		var x hubServerTweaks
		o.central(&x)
		copts.SyncAlways = x.SyncAlways
	}
	h.central, err = natstest.NewServer(copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.central.Close)

	for _, e := range o.edges {
		h.edges[e] = h.startEdge(e)
	}

	h.hubNC = h.connect(h.central, authz.ServiceUser(hubOrg, hubService))
	h.hubJS, err = jetstream.New(h.hubNC)
	if err != nil {
		t.Fatal(err)
	}
	cfg := edgekit.HubConfig{Org: hubOrg, Inventory: inv, CommandKey: h.cmdSeed}
	if o.hubConfig != nil {
		o.hubConfig(&cfg)
	}
	h.hub, err = edgekit.NewHub(h.hubJS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.hub.Provision(hubCtx(t), append(o.edges, o.absent...)...); err != nil {
		t.Fatal(err)
	}
	if !o.noSupervisor {
		if h.sup, err = h.hub.Supervise(hubCtx(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.sup.Stop)
	}
	for _, e := range h.edges {
		h.waitLeaf(e)
	}
	return h
}

func (h *hubTopo) makeCredentials() {
	h.st = &authz.State{Version: 1, Passwords: map[string]authz.PasswordCredential{}, EdgeKeys: map[string]authz.EdgeKey{}}
	h.passwords, h.seeds = map[string]string{}, map[string]string{}
	users, edgeKeys := h.inv.Identities()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			b := make([]byte, 18)
			_, _ = rand.Read(b)
			pw := base64.RawURLEncoding.EncodeToString(b)
			hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				h.t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			h.passwords[u] = pw
			h.st.Passwords[u] = authz.PasswordCredential{Hash: string(hash), Created: time.Unix(0, 0).UTC()}
		})
	}
	wg.Wait()
	for _, id := range edgeKeys {
		kp, err := nkeys.CreateUser()
		if err != nil {
			h.t.Fatal(err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		h.seeds[id] = string(seed)
		h.st.EdgeKeys[id] = authz.EdgeKey{PublicKey: pub, Created: time.Unix(0, 0).UTC()}
	}
	// Central's command key of the org, which devices trust.
	kp, err := nkeys.CreateUser()
	if err != nil {
		h.t.Fatal(err)
	}
	seed, _ := kp.Seed()
	h.cmdSeed = authz.NewSecret(string(seed))
	h.cmdPub, _ = kp.PublicKey()
}

// startEdge starts edge from authz.EdgeOptions with its leaf remote pointing
// at a proxy in front of central's leaf port, and provisions it as the edge
// service does: event stream, the "to-hub" consumer, command stream and
// credential mirror.
func (h *hubTopo) startEdge(edge string) *hubEdge {
	t := h.t
	t.Helper()
	n, err := authz.NamesFor(hubOrg, edge)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := natstest.NewProxy(h.central.LeafNodeAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	ro := authz.RenderOptions{
		ServerName: "edge-" + edge,
		Host:       "127.0.0.1", Port: -1,
		StoreDir: t.TempDir(), MaxMemoryStore: 64 << 20, MaxFileStore: 2 << 30,
		HubURLs:   []string{"nats-leaf://" + proxy.Addr()},
		ConfigDir: t.TempDir(), SeedFile: "leaf.seed",
	}
	if err := authz.WriteSeedFile(filepath.Join(ro.ConfigDir, ro.SeedFile), authz.NewSecret(h.seeds[authz.EdgeKeyID(hubOrg, edge)])); err != nil {
		t.Fatal(err)
	}
	opts, err := authz.EdgeOptions(h.inv, h.st, hubOrg, edge, ro)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog = true
	if h.edgeServer != nil {
		h.edgeServer(opts)
	}
	srv, err := natstest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := &hubEdge{names: n, srv: srv, proxy: proxy}
	e.nc = h.connect(srv, authz.EdgeServiceUser(hubOrg, edge))
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	ctx := hubCtx(t)
	if _, err := e.js.CreateOrUpdateStream(ctx, n.EventStreamConfig()); err != nil {
		t.Fatalf("edge %s event stream: %v", edge, err)
	}
	if _, err := e.js.CreateOrUpdatePushConsumer(ctx, n.EventStream, n.EventConsumerConfig()); err != nil {
		t.Fatalf("edge %s event consumer: %v", edge, err)
	}
	if _, err := e.js.CreateOrUpdateStream(ctx, n.TelemetryStreamConfig()); err != nil {
		t.Fatalf("edge %s telemetry stream: %v", edge, err)
	}
	if _, err := e.js.CreateOrUpdatePushConsumer(ctx, n.TelemetryStream, n.TelemetryConsumerConfig()); err != nil {
		t.Fatalf("edge %s telemetry consumer: %v", edge, err)
	}
	if _, err := e.js.CreateOrUpdateStream(ctx, n.PlatformStreamConfig()); err != nil {
		t.Fatalf("edge %s platform stream: %v", edge, err)
	}
	if _, err := e.js.CreateOrUpdatePushConsumer(ctx, n.PlatformStream, n.PlatformConsumerConfig()); err != nil {
		t.Fatalf("edge %s platform consumer: %v", edge, err)
	}
	if _, err := e.js.CreateOrUpdateStream(ctx, n.CommandStreamConfig()); err != nil {
		t.Fatalf("edge %s command stream: %v", edge, err)
	}
	if _, err := e.js.CreateOrUpdateKeyValue(ctx, n.CredentialMirrorConfig()); err != nil {
		t.Fatalf("edge %s credential mirror: %v", edge, err)
	}
	for _, th := range h.inv.Things {
		if th.Edge == edge {
			e.things = append(e.things, th.Thing)
		}
	}
	return e
}

// connect connects user to srv with its password and its own inbox prefix,
// reconnecting for ever.
func (h *hubTopo) connect(srv *natstest.Server, user string) *nats.Conn {
	h.t.Helper()
	nc, err := srv.Connect(
		nats.UserInfo(user, h.passwords[user]),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(user)),
		nats.Name(user),
	)
	if err != nil {
		h.t.Fatalf("connect %s: %v", user, err)
	}
	h.t.Cleanup(nc.Close)
	return nc
}

// waitLeaf waits until the edge's leaf link to central is up.
func (h *hubTopo) waitLeaf(e *hubEdge) {
	h.t.Helper()
	hubWaitFor(h.t, "leaf link of "+e.names.Edge, func() bool { return e.srv.Server().NumLeafNodes() == 1 })
}

// devices connects the edge's devices with devicekit, heartbeats off.
func (h *hubTopo) devices(e *hubEdge) []*devicekit.Client {
	h.t.Helper()
	var out []*devicekit.Client
	for _, th := range e.things {
		c, err := devicekit.Connect(hubCtx(h.t), devicekit.Config{
			Thing:             th,
			URLs:              []string{e.srv.ClientURL()},
			Password:          devicekit.Password(h.passwords[authz.DeviceUser(th)]),
			HeartbeatInterval: -1,
			ReconnectWait:     100 * time.Millisecond,
			CommandKeys:       []string{h.cmdPub},
		})
		if err != nil {
			h.t.Fatalf("device %s: %v", th, err)
		}
		h.t.Cleanup(func() { _ = c.Close() })
		out = append(out, c)
	}
	return out
}

// hubPublishEvents publishes perDevice events from each device concurrently,
// each acknowledged by the edge's stream.
func hubPublishEvents(t testing.TB, devs []*devicekit.Client, perDevice int) {
	t.Helper()
	ctx := hubCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, len(devs))
	for _, d := range devs {
		wg.Go(func() {
			for i := range perDevice {
				if _, err := d.PublishEvent(ctx, message.NameSensorReading, map[string]int{"n": i}); err != nil {
					errs <- fmt.Errorf("%s event %d: %w", d.Thing(), i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// hubStored is one message of a stream, decoded.
type hubStored struct {
	seq      uint64
	subject  string
	data     []byte
	received time.Time
	env      message.Envelope
}

// hubReadStream reads every message of stream with an ordered consumer.
func hubReadStream(t testing.TB, js jetstream.JetStream, stream string) []hubStored {
	t.Helper()
	ctx := hubCtx(t)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []hubStored
	for len(out) < int(info.State.Msgs) {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			st := hubStored{seq: md.Sequence.Stream, subject: m.Subject(), data: m.Data(), received: md.Timestamp}
			if err := message.DecodeJetStream(m, &st.env, nil); err != nil {
				t.Fatalf("%s seq %d: %v", stream, md.Sequence.Stream, err)
			}
			out = append(out, st)
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
		if n == 0 {
			if ctx.Err() != nil {
				t.Fatalf("read %d of %d messages of %s", len(out), info.State.Msgs, stream)
			}
			time.Sleep(10 * time.Millisecond) // waiting for the server to deliver, not for time to pass
		}
	}
	return out
}

// hubStreamMsgs returns the number of messages in stream, or -1.
func hubStreamMsgs(js jetstream.JetStream, stream string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}

// waitForwarded waits until central's event stream holds as many messages
// as the edges' event and telemetry streams together, plus central's record
// of each command in the org's command stream.
func (h *hubTopo) waitForwarded() {
	h.t.Helper()
	var want, got int
	defer func() {
		if h.t.Failed() {
			st, err := h.hub.Sources(context.Background())
			h.t.Logf("central holds %d, want %d; sources %+v (%v)", got, want, st, err)
			h.logMissing()
		}
	}()
	hubWaitFor(h.t, "central to hold every edge event", func() bool {
		want = hubStreamMsgs(h.hubJS, h.hub.CommandStream()) // central's records of the commands
		if want < 0 {
			return false
		}
		for _, e := range h.edges {
			for _, s := range []string{e.names.EventStream, e.names.TelemetryStream, e.names.PlatformStream} {
				n := hubStreamMsgs(e.js, s)
				if n < 0 {
					return false
				}
				want += n
			}
		}
		got = hubStreamMsgs(h.hubJS, h.hub.EventStream())
		return got == want
	})
}

// logMissing logs the edges' messages central does not hold.
func (h *hubTopo) logMissing() {
	central := map[message.ID]bool{}
	for _, m := range hubReadStream(h.t, h.hubJS, h.hub.EventStream()) {
		central[m.env.ID] = true
	}
	for _, e := range h.edges {
		if c, err := e.js.Consumer(context.Background(), e.names.EventStream, e.names.EventConsumer); err == nil {
			ci := c.CachedInfo()
			h.t.Logf("edge consumer: delivered %+v ack floor %+v pending %d ack pending %d redelivered %d",
				ci.Delivered, ci.AckFloor, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
		}
		for _, s := range []string{e.names.EventStream, e.names.TelemetryStream, e.names.PlatformStream} {
			for _, m := range hubReadStream(h.t, e.js, s) {
				if !central[m.env.ID] {
					h.t.Logf("missing at central: %s seq %d %s %s", s, m.seq, m.subject, m.env.Name)
				}
			}
		}
	}
}

// checkForwarded checks that central's event stream holds every message of
// the edges' event and telemetry streams exactly once, byte for byte, with
// each device's messages of each stream in the order of their sequence, and
// returns them by envelope ID.
func (h *hubTopo) checkForwarded() map[message.ID]hubStored {
	h.t.Helper()
	t := h.t
	// Central's records of the commands it sent are its own; the rest came
	// from the edges.
	central := slices.DeleteFunc(hubReadStream(t, h.hubJS, h.hub.EventStream()), func(m hubStored) bool {
		return m.env.Name == message.NameCommandSent && m.env.Source.Type == topic.ThingTypeSystem
	})
	byID := make(map[message.ID]hubStored, len(central))
	for _, m := range central {
		if prev, dup := byID[m.env.ID]; dup {
			t.Fatalf("envelope %s stored twice at central: seq %d and %d", m.env.ID, prev.seq, m.seq)
		}
		byID[m.env.ID] = m
	}
	total := 0
	for _, e := range h.edges {
		edge := append(hubReadStream(t, e.js, e.names.EventStream), hubReadStream(t, e.js, e.names.TelemetryStream)...)
		total += len(edge)
		for _, m := range edge {
			c, ok := byID[m.env.ID]
			if !ok {
				t.Fatalf("envelope %s (%s seq %d) of edge %s missing at central", m.env.ID, m.env.Source, m.env.Seq, e.names.Edge)
			}
			if string(c.data) != string(m.data) || c.subject != m.subject {
				t.Fatalf("envelope %s changed on its way to central", m.env.ID)
			}
		}
	}
	if total != len(central) {
		t.Fatalf("central holds %d messages, the edges %d", len(central), total)
	}
	// Events and telemetry come through separate sources, each in order.
	type key struct {
		thing topic.Thing
		boot  message.ID
		tlm   bool
	}
	last := map[key]uint64{}
	for _, m := range central {
		k := key{m.env.Source, m.env.BootID, m.env.Type == topic.Telemetry}
		if m.env.Seq <= last[k] {
			t.Fatalf("%s: seq %d after %d at central", m.env.Source, m.env.Seq, last[k])
		}
		last[k] = m.env.Seq
	}
	return byID
}

// hubCountEvents returns how many of msgs are events named name.
func hubCountEvents(msgs map[message.ID]hubStored, name string) int {
	n := 0
	for _, m := range msgs {
		if m.env.Type == topic.Event && m.env.Name == name {
			n++
		}
	}
	return n
}

func hubCtx(t testing.TB) context.Context { return testCtx(t, hubWait) }

// hubWaitFor polls cond until it holds, failing t after hubWait.
func hubWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitFor(t, hubWait, what, cond)
}

// hubRawMsg turns a stored JetStream message into a NATS message for
// message.DecodeMsg.
type hubRawMsg struct{ m *jetstream.RawStreamMsg }

func (x hubRawMsg) msg() *nats.Msg {
	return &nats.Msg{Subject: x.m.Subject, Header: x.m.Header, Data: x.m.Data}
}
