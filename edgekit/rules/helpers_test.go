package rules_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/leaktest"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// TestMain checks, after the tests pass, that no goroutine of the rules
// engine is left running: Stop ends everything the engine started.
func TestMain(m *testing.M) {
	os.Exit(leaktest.Main(m, "github.com/lintel-io/lintel/edgekit/rules."))
}

// wait bounds every wait of the tests: generous, for a loaded 2-core
// machine under the race detector.
const wait = 30 * time.Second

// Things of the tests, at edge acme.hq.
var (
	doorD1   = topic.Thing{Org: "acme", Edge: "hq", Type: "door_sensor", Code: "d1"}
	doorD2   = topic.Thing{Org: "acme", Edge: "hq", Type: "door_sensor", Code: "d2"}
	doorD3   = topic.Thing{Org: "acme", Edge: "hq", Type: "door_sensor", Code: "d3"}
	sounder  = topic.Thing{Org: "acme", Edge: "hq", Type: "sounder", Code: "s1"}
	sensorT1 = topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "t1"}
	hvacH1   = topic.Thing{Org: "acme", Edge: "hq", Type: "hvac", Code: "h1"}
	edgeSelf = topic.Thing{Org: "acme", Edge: "hq", Type: topic.ThingTypeEdge, Code: "hq"}
)

// edgeEvt is the subject of the edge's own events, where rule events go.
var edgeEvt = edgeSelf.Subject(topic.Event).String()

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	tb.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing tb after wait.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// edge is a real edge node for the end-to-end tests, without central.
type edge struct {
	node    *edgekit.Node
	secrets *authz.Secrets
	st      *authz.State
}

// startEdge starts edge acme.hq with the test things, unreachable
// central, and stops it at cleanup.
func startEdge(tb testing.TB) *edge {
	tb.Helper()
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Edges:    []authz.Edge{{Org: "acme", Code: "hq"}},
		Services: []authz.Service{{Name: "ingest", Kind: authz.ServiceCentral, Org: "acme"}},
	}
	for _, t := range []topic.Thing{doorD1, doorD2, doorD3, sounder, sensorT1, hvacH1} {
		inv.Things = append(inv.Things, authz.Thing{Thing: t})
	}
	g := &authz.Generator{Cost: bcrypt.MinCost}
	res, err := g.Generate(context.Background(), inv, nil)
	if err != nil {
		tb.Fatal(err)
	}
	configDir := tb.TempDir()
	if err := authz.WriteSeedFile(filepath.Join(configDir, "leaf.seed"), res.Secrets.EdgeSeeds[authz.EdgeKeyID("acme", "hq")]); err != nil {
		tb.Fatal(err)
	}
	n, err := edgekit.Start(testCtx(tb), edgekit.NodeConfig{
		Org: "acme", Edge: "hq",
		Inventory: inv, State: res.State,
		Render: authz.RenderOptions{
			Host: "127.0.0.1", Port: -1,
			StoreDir:     tb.TempDir(),
			MaxFileStore: 256 << 20,
			PingInterval: time.Second,
			HubURLs:      []string{"nats-leaf://127.0.0.1:1"}, // nobody listens: central unreachable
			ConfigDir:    configDir,
			SeedFile:     "leaf.seed",
		},
		LeafReconnectInterval: time.Second,
		CheckInterval:         50 * time.Millisecond,
		SyncInterval:          time.Second, // the tests need no fsync per message
		CommandKey:            res.Secrets.CommandSeeds[authz.EdgeKeyID("acme", "hq")],
	})
	if err != nil {
		tb.Fatalf("start node: %v", err)
	}
	tb.Cleanup(n.Stop)
	return &edge{node: n, secrets: res.Secrets, st: res.State}
}

// device connects device t to the edge and closes it at cleanup.
func (e *edge) device(tb testing.TB, t topic.Thing) *devicekit.Client {
	tb.Helper()
	d, err := devicekit.Connect(testCtx(tb), devicekit.Config{
		Thing:               t,
		URLs:                []string{e.node.ClientURL()},
		Password:            devicekit.Password(e.secrets.Passwords[authz.DeviceUser(t)].Reveal()),
		HeartbeatInterval:   -1,
		ReconnectWait:       50 * time.Millisecond,
		Timeout:             wait,
		ReconnectBufferSize: -1,
		CommandKeys:         e.st.CommandPublicKeys("acme", "hq"),
	})
	if err != nil {
		tb.Fatalf("connect device %s: %v", t, err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d
}

// engine starts a rules engine on the edge service's connection with doc
// and stops it at cleanup.
func (e *edge) engine(tb testing.TB, doc string) *rules.Engine {
	tb.Helper()
	rs, err := rules.Parse([]byte(doc), scope)
	if err != nil {
		tb.Fatal(err)
	}
	eng, err := rules.Start(testCtx(tb), rules.Config{Org: "acme", Edge: "hq", Conn: e.node.Conn(), JetStream: e.node.JetStream(), SignCommand: e.node.SignCommand}, rs)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(eng.Stop)
	return eng
}

// stored is a message read from a stream.
type stored struct {
	env    *message.Envelope
	header nats.Header
}

// streamMessages returns the messages stream holds on subject, read one by
// one (no consumer, which on an interest stream would count as interest).
func streamMessages(tb testing.TB, js jetstream.JetStream, stream, subject string) []stored {
	tb.Helper()
	ctx := testCtx(tb)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return nil
	}
	var out []stored
	for seq := st.FirstSeq; seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			tb.Fatalf("stream %s seq %d: %v", stream, seq, err)
		}
		if m.Subject != subject {
			continue
		}
		e := new(message.Envelope)
		if err := message.DecodeMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, e, nil); err != nil {
			tb.Fatalf("message on %s: %v", m.Subject, err)
		}
		out = append(out, stored{env: e, header: m.Header})
	}
	return out
}

// named returns the messages of ms with envelope name name.
func named(ms []stored, name string) []stored {
	var out []stored
	for _, m := range ms {
		if m.env.Name == name {
			out = append(out, m)
		}
	}
	return out
}

// commands records the commands a device receives through HandleCommands.
type commands struct {
	mu  sync.Mutex
	got []devicekit.Command
}

// handleCommands makes d record its commands, completing each.
func handleCommands(tb testing.TB, d *devicekit.Client) *commands {
	tb.Helper()
	c := &commands{}
	sub, err := d.HandleCommands(testCtx(tb), devicekit.HandlerFunc(func(_ context.Context, cmd devicekit.Command) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.got = append(c.got, cmd)
		return nil
	}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sub.Stop)
	return c
}

func (c *commands) all() []devicekit.Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]devicekit.Command(nil), c.got...)
}

// actions returns the actions of the commands received, in order.
func (c *commands) actions() []string {
	var out []string
	for _, cmd := range c.all() {
		out = append(out, cmd.Action)
	}
	return out
}

// bus is a plain NATS server with an event stream for edge acme.hq, for
// the tests that need no devices.
type bus struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// busStream is the bus's event stream.
const busStream = "events"

func startBus(tb testing.TB) *bus {
	tb.Helper()
	srv := natstest.Run(tb, nil)
	nc, err := srv.Connect()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := js.CreateStream(testCtx(tb), jetstream.StreamConfig{
		Name: busStream, Subjects: []string{"acme.hq.*.*.evt", "acme.hq.*.*.state"}, Storage: jetstream.MemoryStorage,
	}); err != nil {
		tb.Fatal(err)
	}
	return &bus{nc: nc, js: js}
}

// engine starts a rules engine on the bus with doc and stops it at
// cleanup.
func (b *bus) engine(tb testing.TB, doc string, tweak func(*rules.Config)) *rules.Engine {
	tb.Helper()
	var rs *rules.RuleSet
	if doc != "" {
		var err error
		if rs, err = rules.Parse([]byte(doc), scope); err != nil {
			tb.Fatal(err)
		}
	}
	key, err := nkeys.CreateUser()
	if err != nil {
		tb.Fatal(err)
	}
	sign := func(m *nats.Msg, t topic.Thing) error { return message.SignCommand(m, t, key) }
	cfg := rules.Config{Org: "acme", Edge: "hq", Conn: b.nc, SignCommand: sign}
	if tweak != nil {
		tweak(&cfg)
	}
	eng, err := rules.Start(testCtx(tb), cfg, rs)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(eng.Stop)
	return eng
}

// envelope returns a stamped envelope from t of type mt named name with
// payload (nil for none).
func envelope(tb testing.TB, t topic.Thing, mt topic.MessageType, name string, payload any) *message.Envelope {
	tb.Helper()
	var ids message.IDGenerator
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: t, Type: mt, Name: name}
	if payload != nil {
		if err := message.SetPayload(e, payload); err != nil {
			tb.Fatal(err)
		}
	}
	return e
}

// publish publishes e on the bus with extra headers.
func (b *bus) publish(tb testing.TB, e *message.Envelope, hdr nats.Header) {
	tb.Helper()
	msg, err := e.ToMsg(nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range hdr {
		msg.Header[k] = v
	}
	if err := b.nc.PublishMsg(msg); err != nil {
		tb.Fatal(err)
	}
}

// event publishes an event named name from t on the bus.
func (b *bus) event(tb testing.TB, t topic.Thing, name string) *message.Envelope {
	tb.Helper()
	e := envelope(tb, t, topic.Event, name, nil)
	b.publish(tb, e, nil)
	return e
}

// recorder collects the messages on a subject.
type recorder struct {
	mu   sync.Mutex
	msgs []*nats.Msg
}

func (b *bus) record(tb testing.TB, subject string) *recorder {
	tb.Helper()
	r := &recorder{}
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := b.nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	return r
}

// names returns the envelope names of the recorded messages.
func (r *recorder) names(tb testing.TB) []string {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.msgs))
	for _, m := range r.msgs {
		e, err := message.FromMsg(m)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, e.Name)
	}
	return out
}

func (r *recorder) all() []*nats.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*nats.Msg(nil), r.msgs...)
}

// clock is a manual clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
