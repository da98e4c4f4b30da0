package edgekit_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// nodeWait bounds every wait of the node tests: generous, for a loaded
// 2-core machine under the race detector.
const nodeWait = 30 * time.Second

// Things of the node tests' inventory, at edge acme.hq.
var (
	nodeR1 = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	nodeR2 = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r2"}
	nodeL1 = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	nodeS1 = topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}
)

// nodeInventory returns org acme with edge hq and its devices, plus extra
// sensors s2..s{extra+1}.
func nodeInventory(extra int) *authz.Inventory {
	inv := &authz.Inventory{
		Orgs:  []authz.Org{{Code: "acme"}},
		Edges: []authz.Edge{{Org: "acme", Code: "hq"}},
		Services: []authz.Service{
			{Name: "ingest", Kind: authz.ServiceCentral, Org: "acme"},
		},
	}
	for _, t := range []topic.Thing{nodeR1, nodeR2, nodeL1, nodeS1} {
		inv.Things = append(inv.Things, authz.Thing{Thing: t, MQTT: t == nodeS1})
	}
	for i := range extra {
		inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s" + strconv.Itoa(i+2)}})
	}
	return inv
}

// nodeEnv is a deployment for the node tests: inventory, credentials and
// the edge's seed file.
type nodeEnv struct {
	inv       *authz.Inventory
	st        *authz.State
	secrets   *authz.Secrets
	configDir string
}

func newNodeEnv(tb testing.TB, extra int) *nodeEnv {
	tb.Helper()
	inv := nodeInventory(extra)
	g := &authz.Generator{Cost: bcrypt.MinCost}
	res, err := g.Generate(context.Background(), inv, nil)
	if err != nil {
		tb.Fatal(err)
	}
	env := &nodeEnv{inv: inv, st: res.State, secrets: res.Secrets, configDir: tb.TempDir()}
	seed := res.Secrets.EdgeSeeds[authz.EdgeKeyID("acme", "hq")]
	if err := authz.WriteSeedFile(filepath.Join(env.configDir, "leaf.seed"), seed); err != nil {
		tb.Fatal(err)
	}
	return env
}

func (e *nodeEnv) password(user string) string { return e.secrets.Passwords[user].Reveal() }

// central is central's server for the node tests, with a proxy in front of
// its leaf-node port so that tests can cut the link.
type nodeCentral struct {
	srv   *natstest.Server
	proxy *natstest.Proxy
	js    jetstream.JetStream
	nc    *nats.Conn
	// cmdKey is central's command key of org acme, which signs commands.
	cmdKey nkeys.KeyPair
}

// nodeStartCentral starts central from authz.CentralOptions and provisions
// what central holds for edge hq: the command stream and the edge's command
// consumer, the credential bucket and its consumer, and the event stream
// sourcing the edge.
func nodeStartCentral(tb testing.TB, env *nodeEnv) *nodeCentral {
	tb.Helper()
	opts, err := authz.CentralOptions(env.inv, env.st, authz.RenderOptions{
		Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
		StoreDir: tb.TempDir(), MaxMemoryStore: 64 << 20, MaxFileStore: 256 << 20,
		PingInterval: time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	opts.NoLog = true
	opts.LeafNode.NoAdvertise = true // the edge reconnects through the proxy, not to central's own address
	srv := natstest.Run(tb, opts)
	proxy, err := natstest.NewProxy(srv.LeafNodeAddr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(proxy.Close)
	user := authz.ServiceUser("acme", "ingest")
	nc, err := srv.Connect(nats.UserInfo(user, env.password(user)), nats.CustomInboxPrefix(authz.UserInboxPrefix(user)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := nodeCtx(tb)
	n, _ := authz.NamesFor("acme", "hq")
	cmdCfg, _ := authz.CentralCommandStreamConfig("acme")
	if _, err := js.CreateOrUpdateStream(ctx, cmdCfg); err != nil {
		tb.Fatal(err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, n.CredentialBucketConfig()); err != nil {
		tb.Fatal(err)
	}
	if _, err := js.CreateOrUpdatePushConsumer(ctx, n.CredentialStream, n.CredentialConsumerConfig()); err != nil {
		tb.Fatal(err)
	}
	if _, err := js.CreateOrUpdatePushConsumer(ctx, n.CentralCommandStream, n.CommandConsumerConfig()); err != nil {
		tb.Fatal(err)
	}
	evCfg, _ := authz.CentralEventStreamConfig("acme", "hq")
	if _, err := js.CreateOrUpdateStream(ctx, evCfg); err != nil {
		tb.Fatal(err)
	}
	cmdKey, err := nkeys.FromSeed([]byte(env.secrets.CommandSeeds["acme"].Reveal()))
	if err != nil {
		tb.Fatal(err)
	}
	// Central's release tracker: the edge releases only what it marks.
	hub, err := edgekit.NewHub(js, edgekit.HubConfig{Org: "acme", Inventory: env.inv})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(hub.TrackReleases().Stop)
	return &nodeCentral{srv: srv, proxy: proxy, js: js, nc: nc, cmdKey: cmdKey}
}

// hubURL is the leaf URL the edge dials: through the proxy.
func (c *nodeCentral) hubURL() string { return "nats-leaf://" + c.proxy.Addr() }

// nodeTestConfig returns a node configuration for the tests: loopback,
// random ports, a temporary store, fast checks.
func nodeTestConfig(tb testing.TB, env *nodeEnv, hubURL string) edgekit.NodeConfig {
	tb.Helper()
	if hubURL == "" {
		hubURL = "nats-leaf://127.0.0.1:1" // nobody listens: central unreachable
	}
	return edgekit.NodeConfig{
		Org: "acme", Edge: "hq",
		Inventory: env.inv, State: env.st,
		Render: authz.RenderOptions{
			Host: "127.0.0.1", Port: -1,
			StoreDir:     tb.TempDir(),
			MaxFileStore: 256 << 20,
			PingInterval: time.Second,
			HubURLs:      []string{hubURL},
			ConfigDir:    env.configDir,
			SeedFile:     "leaf.seed",
		},
		LeafReconnectInterval: 100 * time.Millisecond,
		CheckInterval:         50 * time.Millisecond,
		CommandKey:            env.secrets.CommandSeeds[authz.EdgeKeyID("acme", "hq")],
	}
}

// nodeStart starts a node and stops it at cleanup.
func nodeStart(tb testing.TB, cfg edgekit.NodeConfig) *edgekit.Node {
	tb.Helper()
	n, err := edgekit.Start(nodeCtx(tb), cfg)
	if err != nil {
		tb.Fatalf("start node: %v", err)
	}
	tb.Cleanup(n.Stop)
	return n
}

// nodeConnectDevice connects device t to url with its password.
func nodeConnectDevice(tb testing.TB, env *nodeEnv, url string, t topic.Thing, tweak func(*devicekit.Config)) *devicekit.Client {
	tb.Helper()
	cfg := devicekit.Config{
		Thing:               t,
		URLs:                []string{url},
		Password:            devicekit.Password(env.password(authz.DeviceUser(t))),
		HeartbeatInterval:   time.Second,
		ReconnectWait:       50 * time.Millisecond,
		Timeout:             nodeWait,
		ReconnectBufferSize: -1,
		CommandKeys:         env.st.CommandPublicKeys("acme", "hq"),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	d, err := devicekit.Connect(nodeCtx(tb), cfg)
	if err != nil {
		tb.Fatalf("connect device %s: %v", t, err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d
}

func nodeCtx(tb testing.TB) context.Context { return testCtx(tb, nodeWait) }

// nodeWaitFor polls cond until it holds, failing after nodeWait.
func nodeWaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	waitFor(tb, nodeWait, what, cond)
}

// testCtx returns a context that ends after within or with the test.
func testCtx(tb testing.TB, within time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	tb.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing tb after within.
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nodeStreamEnvelopes returns the envelopes stream holds on subject (a
// filter), read message by message (no consumer, which on an interest
// stream would count as interest).
func nodeStreamEnvelopes(tb testing.TB, js jetstream.JetStream, stream, subject string) []*message.Envelope {
	tb.Helper()
	ctx := nodeCtx(tb)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	// An ordered consumer filtered on subject reads only its messages, in
	// batches: after a flood the stream holds thousands of others. A
	// stream that allows no more consumers (central's) is read message by
	// message.
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if errors.Is(err, jetstream.ErrMaximumConsumersLimit) {
		return nodeStreamEnvelopesBySeq(tb, ctx, s, subject)
	}
	if err != nil {
		tb.Fatalf("stream %s: consumer on %s: %v", stream, subject, err)
	}
	pending := c.CachedInfo().NumPending
	var out []*message.Envelope
	for uint64(len(out)) < pending {
		if ctx.Err() != nil {
			tb.Fatalf("stream %s: %d of %d messages on %s read: %v", stream, len(out), pending, subject, ctx.Err())
		}
		batch, err := c.Fetch(int(min(pending-uint64(len(out)), 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			tb.Fatalf("stream %s: fetch %s: %v", stream, subject, err)
		}
		for m := range batch.Messages() {
			e := new(message.Envelope)
			if err := message.DecodeJetStream(m, e, nil); err != nil {
				tb.Fatalf("message on %s: %v", m.Subject(), err)
			}
			out = append(out, e)
		}
	}
	return out
}

// nodeStreamEnvelopesBySeq is nodeStreamEnvelopes reading every message
// of s by sequence.
func nodeStreamEnvelopesBySeq(tb testing.TB, ctx context.Context, s jetstream.Stream, subject string) []*message.Envelope {
	tb.Helper()
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	var out []*message.Envelope
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			tb.Fatalf("stream %s seq %d: %v", info.Config.Name, seq, err)
		}
		if !nodeSubjectMatches(subject, m.Subject) {
			continue
		}
		e := new(message.Envelope)
		if err := message.DecodeMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, e, nil); err != nil {
			tb.Fatalf("message on %s: %v", m.Subject, err)
		}
		out = append(out, e)
	}
	return out
}

// nodeSubjectMatches reports whether subject matches filter (with * and >).
func nodeSubjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

// nodeWaitEnvelope waits until stream holds an envelope on subject that match
// accepts, and returns it.
func nodeWaitEnvelope(tb testing.TB, js jetstream.JetStream, stream, subject string, match func(*message.Envelope) bool) *message.Envelope {
	tb.Helper()
	var found *message.Envelope
	nodeWaitFor(tb, "a matching message on "+subject+" in "+stream, func() bool {
		for _, e := range nodeStreamEnvelopes(tb, js, stream, subject) {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// nodeAckOf decodes e as an ack, returning the zero ack otherwise.
func nodeAckOf(e *message.Envelope) message.Ack {
	a, _ := message.DecodePayload[message.Ack](e)
	return a
}

// nodeSendCommand writes a command for t into central's command stream, as
// central's services do, and returns its envelope.
func nodeSendCommand(tb testing.TB, c *nodeCentral, t topic.Thing, cmd message.Command) *message.Envelope {
	tb.Helper()
	e := nodeNewCommand(tb, t, cmd)
	nodeWriteCommand(tb, c, e, "")
	return e
}

func nodeNewCommand(tb testing.TB, t topic.Thing, cmd message.Command) *message.Envelope {
	tb.Helper()
	var ids message.IDGenerator
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: t, Type: topic.Command, Name: message.NameCommand}
	if err := message.SetPayload(e, cmd); err != nil {
		tb.Fatal(err)
	}
	return e
}

// nodeWriteCommand writes e into central's command stream, with msgID as
// the deduplication ID when set.
func nodeWriteCommand(tb testing.TB, c *nodeCentral, e *message.Envelope, msgID string) {
	tb.Helper()
	msg, err := e.ToMsg(nil)
	if err != nil {
		tb.Fatal(err)
	}
	msg.Subject = authz.CommandSubject(e.Source)
	if msgID != "" {
		msg.Header.Set(message.HeaderMsgID, msgID)
	}
	if err := message.SignCommand(msg, e.Source, c.cmdKey); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.js.PublishMsg(nodeCtx(tb), msg); err != nil {
		tb.Fatalf("command intake: %v", err)
	}
}
