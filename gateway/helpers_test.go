package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// wait bounds every wait of the tests: generous, for a loaded 2-core
// machine under the race detector.
const wait = 30 * time.Second

// Things of the tests' inventory: edge acme.hq, and a reader of edge
// acme.lab and of org other.
var (
	r1    = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	r2    = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r2"}
	l1    = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	s1    = topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}
	labR1 = topic.Thing{Org: "acme", Edge: "lab", Type: "reader", Code: "lab1"}
	othR1 = topic.Thing{Org: "other", Edge: "east", Type: "reader", Code: "r1"}
)

// env is a deployment for the tests: inventory, credentials and the
// edge's seed file.
type env struct {
	inv       *authz.Inventory
	st        *authz.State
	secrets   *authz.Secrets
	configDir string
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	return newEnvN(tb, 0)
}

// newEnvN is newEnv with extra sensors sensor(0) .. sensor(extra-1) at hq.
func newEnvN(tb testing.TB, extra int) *env {
	tb.Helper()
	inv := &authz.Inventory{
		Orgs:  []authz.Org{{Code: "acme"}, {Code: "other"}},
		Edges: []authz.Edge{{Org: "acme", Code: "hq"}, {Org: "acme", Code: "lab"}, {Org: "other", Code: "east"}},
		Services: []authz.Service{
			{Name: "ingest", Kind: authz.ServiceCentral, Org: "acme"},
		},
	}
	for _, t := range []topic.Thing{r1, r2, l1, s1, labR1, othR1} {
		inv.Things = append(inv.Things, authz.Thing{Thing: t})
	}
	for i := range extra {
		t := sensor(i)
		inv.Things = append(inv.Things, authz.Thing{Thing: t})
	}
	g := &authz.Generator{Cost: bcrypt.MinCost}
	res, err := g.Generate(context.Background(), inv, nil)
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{inv: inv, st: res.State, secrets: res.Secrets, configDir: tb.TempDir()}
	seed := res.Secrets.EdgeSeeds[authz.EdgeKeyID("acme", "hq")]
	if err := authz.WriteSeedFile(filepath.Join(e.configDir, "leaf.seed"), seed); err != nil {
		tb.Fatal(err)
	}
	return e
}

// sensor returns the extra sensor i of newEnvN.
func sensor(i int) topic.Thing {
	return topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "x" + strconv.Itoa(i)}
}

func (e *env) password(t topic.Thing) string {
	return e.secrets.Passwords[authz.DeviceUser(t)].Reveal()
}

// central is central's server, with the command stream and the event
// stream sourcing edge hq.
type central struct {
	srv    *natstest.Server
	js     jetstream.JetStream
	cmdKey nkeys.KeyPair
}

func startCentral(tb testing.TB, e *env) *central {
	tb.Helper()
	opts, err := authz.CentralOptions(e.inv, e.st, authz.RenderOptions{
		Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
		StoreDir: tb.TempDir(), MaxMemoryStore: 64 << 20, MaxFileStore: 256 << 20,
		PingInterval: time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	opts.NoLog = true
	srv := natstest.Run(tb, opts)
	user := authz.ServiceUser("acme", "ingest")
	nc, err := srv.Connect(nats.UserInfo(user, e.secrets.Passwords[user].Reveal()), nats.CustomInboxPrefix(authz.UserInboxPrefix(user)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := testCtx(tb)
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
	cmdKey, err := nkeys.FromSeed([]byte(e.secrets.CommandSeeds["acme"].Reveal()))
	if err != nil {
		tb.Fatal(err)
	}
	// Central's release tracker: the edge releases only what it marks.
	hub, err := edgekit.NewHub(js, edgekit.HubConfig{Org: "acme", Inventory: e.inv})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(hub.TrackReleases().Stop)
	return &central{srv: srv, js: js, cmdKey: cmdKey}
}

func (c *central) hubURL() string { return "nats-leaf://" + c.srv.LeafNodeAddr() }

// startNode starts edge acme.hq, linked to central when c is not nil.
func startNode(tb testing.TB, e *env, c *central) *edgekit.Node {
	tb.Helper()
	return startNodeWith(tb, e, c, nil)
}

// startNodeWith is startNode with tweak applied to the node's configuration.
func startNodeWith(tb testing.TB, e *env, c *central, tweak func(*edgekit.NodeConfig)) *edgekit.Node {
	tb.Helper()
	hub := "nats-leaf://127.0.0.1:1" // nobody listens: central unreachable
	if c != nil {
		hub = c.hubURL()
	}
	cfg := edgekit.NodeConfig{
		Org: "acme", Edge: "hq",
		Inventory: e.inv, State: e.st,
		Render: authz.RenderOptions{
			Host: "127.0.0.1", Port: -1,
			StoreDir:     tb.TempDir(),
			MaxFileStore: 256 << 20,
			PingInterval: time.Second,
			HubURLs:      []string{hub},
			ConfigDir:    e.configDir,
			SeedFile:     "leaf.seed",
		},
		LeafReconnectInterval: 100 * time.Millisecond,
		CheckInterval:         50 * time.Millisecond,
		CommandKey:            e.secrets.CommandSeeds[authz.EdgeKeyID("acme", "hq")],
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := edgekit.Start(testCtx(tb), cfg)
	if err != nil {
		tb.Fatalf("start node: %v", err)
	}
	tb.Cleanup(n.Stop)
	return n
}

// gw is a gateway in front of a node, served by an httptest server.
type gw struct {
	*gateway.Gateway
	url  string
	auth *authz.EdgeAuthenticator
}

func startGateway(tb testing.TB, e *env, n *edgekit.Node, tweak func(*gateway.Config)) *gw {
	tb.Helper()
	auth, err := authz.NewEdgeAuthenticator(e.inv, e.st, "acme", "hq", authz.EdgeAuthConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(auth.Close)
	cfg := gateway.Config{Org: "acme", Edge: "hq", URLs: []string{n.ClientURL()}, Auth: auth, PublishTimeout: wait}
	if tweak != nil {
		tweak(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(g)
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = g.Close()
	})
	return &gw{Gateway: g, url: srv.URL, auth: auth}
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	tb.Cleanup(cancel)
	return ctx
}

// response is an HTTP response, read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) problem(tb testing.TB) gateway.Problem {
	tb.Helper()
	if ct := r.header.Get("Content-Type"); ct != gateway.ContentTypeProblem {
		tb.Fatalf("status %d, Content-Type %q, want %s: %s", r.status, ct, gateway.ContentTypeProblem, r.body)
	}
	var p gateway.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("problem %s: %v", r.body, err)
	}
	return p
}

// do sends a request as thing (zero: no credentials) with password pass
// ("" for the thing's own).
func do(tb testing.TB, e *env, method, url string, as topic.Thing, pass string, h http.Header, body []byte) *response {
	tb.Helper()
	req, err := http.NewRequestWithContext(testCtx(tb), method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if as != (topic.Thing{}) {
		if pass == "" {
			pass = e.password(as)
		}
		req.SetBasicAuth(authz.DeviceUser(as), pass)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}
}

func ceHeader() http.Header {
	return http.Header{"Content-Type": {message.ContentTypeCloudEventsJSON}}
}

var ids message.IDGenerator

// event returns an event of t as CloudEvents JSON.
func event(tb testing.TB, t topic.Thing, mt topic.MessageType, name string, payload any) (*message.Envelope, []byte) {
	tb.Helper()
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: t, Type: mt, Name: name}
	if payload != nil {
		if err := message.SetPayload(e, payload); err != nil {
			tb.Fatal(err)
		}
	}
	b, err := e.AppendCloudEvent(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return e, b
}

// storedEnvelopes returns the envelopes stream holds on subject.
func storedEnvelopes(tb testing.TB, js jetstream.JetStream, stream, subject string) []*message.Envelope {
	tb.Helper()
	ctx := testCtx(tb)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		tb.Fatal(err)
	}
	var out []*message.Envelope
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil || m.Subject != subject {
			continue
		}
		e := new(message.Envelope)
		if err := message.DecodeMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, e, nil); err != nil {
			tb.Fatalf("stored message %d: %v", seq, err)
		}
		out = append(out, e)
	}
	return out
}

// waitFor polls cond until it holds or the wait ends.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
