package authz_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// waitTimeout bounds every wait for a condition: generous, for a loaded
// 2-core machine running the race detector.
const waitTimeout = 30 * time.Second

// natsInv returns the inventory the server tests use: org acme with edges
// hq and wh.
func natsInv() *authz.Inventory {
	return &authz.Inventory{
		Orgs:  []authz.Org{{Code: "acme"}},
		Edges: []authz.Edge{{Org: "acme", Code: "hq"}, {Org: "acme", Code: "wh"}},
		Things: []authz.Thing{
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}},
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r2"}},
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}},
			{Thing: topic.Thing{Org: "acme", Edge: "wh", Type: "reader", Code: "r9"}},
		},
		Services: []authz.Service{
			{Name: "ingest", Kind: authz.ServiceCentral, Org: "acme"},
			{Name: "ops", Kind: authz.ServiceOperator, Org: "acme"},
			{Name: "gw", Kind: authz.ServiceGateway, Org: "acme"},
			{Name: "gw-hq", Kind: authz.ServiceGateway, Org: "acme", Edge: "hq"},
		},
	}
}

// natsCreds are the clear-text credentials behind a test State.
type natsCreds struct {
	st        *authz.State
	passwords map[string]string // by user
	seeds     map[string]string // by edge key ID
}

// newNatsCreds builds a State for inv directly, as Generate would: a random
// password per user hashed with bcrypt at cost, and an NKey per edge.
func newNatsCreds(t testing.TB, inv *authz.Inventory, cost int) *natsCreds {
	t.Helper()
	c := &natsCreds{
		st:        &authz.State{Version: 1, Passwords: map[string]authz.PasswordCredential{}, EdgeKeys: map[string]authz.EdgeKey{}},
		passwords: map[string]string{},
		seeds:     map[string]string{},
	}
	users, edgeKeys := identitiesOf(inv)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			pw := randomPassword(t)
			h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			c.passwords[u] = pw
			c.st.Passwords[u] = authz.PasswordCredential{Hash: string(h), Created: time.Unix(0, 0).UTC()}
		})
	}
	wg.Wait()
	for _, id := range edgeKeys {
		c.newEdgeKey(t, id)
	}
	return c
}

func (c *natsCreds) newEdgeKey(t testing.TB, id string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	c.seeds[id] = string(seed)
	c.st.EdgeKeys[id] = authz.EdgeKey{PublicKey: pub, Created: time.Unix(0, 0).UTC()}
}

// identitiesOf lists inv's users and edge keys (as Inventory.Identities
// does, without depending on it).
func identitiesOf(inv *authz.Inventory) (users, edgeKeys []string) {
	for _, th := range inv.Things {
		users = append(users, authz.DeviceUser(th.Thing))
	}
	for _, s := range inv.Services {
		users = append(users, authz.ServiceUser(s.Org, s.Name))
	}
	for _, e := range inv.Edges {
		users = append(users, authz.EdgeServiceUser(e.Org, e.Code))
		edgeKeys = append(edgeKeys, authz.EdgeKeyID(e.Org, e.Code))
	}
	return users, edgeKeys
}

func randomPassword(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func mkThing(org, edge, typ, code string) topic.Thing {
	return topic.Thing{Org: org, Edge: edge, Type: typ, Code: code}
}

// testRender returns render options for a test server: loopback, random
// ports, a temporary store, small JetStream limits.
func testRender(t testing.TB) authz.RenderOptions {
	return authz.RenderOptions{
		Host:           "127.0.0.1",
		Port:           -1,
		LeafHost:       "127.0.0.1",
		LeafPort:       -1,
		StoreDir:       t.TempDir(),
		MaxMemoryStore: 64 << 20,
		MaxFileStore:   256 << 20,
	}
}

// startCentral starts central from CentralOptions.
func startCentral(t testing.TB, inv *authz.Inventory, c *natsCreds) *natstest.Server {
	t.Helper()
	opts, err := authz.CentralOptions(inv, c.st, testRender(t))
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog = true
	return natstest.Run(t, opts)
}

// edgeSetup says how startEdge starts an edge.
type edgeSetup struct {
	seed          string                  // seed to connect with; default the edge's own
	authenticator bool                    // authenticate with an EdgeAuthenticator
	authConfig    authz.EdgeAuthConfig    // its configuration
	tweak         func(o *server.Options) // last changes to the options
}

// testEdge is a running edge server.
type testEdge struct {
	*natstest.Server
	auth *authz.EdgeAuthenticator
	opts *server.Options // as started, before ports were resolved
}

// startEdge starts edge at acme from EdgeOptions, as a leaf of hub.
func startEdge(t testing.TB, inv *authz.Inventory, c *natsCreds, edge string, hub *natstest.Server, setup edgeSetup) *testEdge {
	t.Helper()
	ro := testRender(t)
	ro.HubURLs = []string{"nats-leaf://" + hub.LeafNodeAddr()}
	ro.ConfigDir = t.TempDir()
	seed := setup.seed
	if seed == "" {
		seed = c.seeds[authz.EdgeKeyID("acme", edge)]
	}
	if err := authz.WriteSeedFile(filepath.Join(ro.ConfigDir, "leaf.seed"), authz.NewSecret(seed)); err != nil {
		t.Fatal(err)
	}
	ro.SeedFile = "leaf.seed"
	opts, err := authz.EdgeOptions(inv, c.st, "acme", edge, ro)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog = true
	e := &testEdge{}
	if setup.authenticator {
		e.auth, err = authz.NewEdgeAuthenticator(inv, c.st, "acme", edge, setup.authConfig)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.auth.Close)
		e.auth.Configure(opts)
	}
	if setup.tweak != nil {
		setup.tweak(opts)
	}
	srv, err := natstest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if e.auth != nil {
		e.auth.Attach(srv.Server())
	}
	e.Server = srv
	e.opts = opts
	return e
}

// waitLeaf waits until edge has a leaf connection to central.
func waitLeaf(t testing.TB, e *testEdge) {
	t.Helper()
	waitFor(t, "leaf connection", func() bool { return e.Server.Server().NumLeafNodes() == 1 })
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// natsClient is a NATS connection that records the asynchronous errors the
// server sends it, permission violations among them.
type natsClient struct {
	*nats.Conn
	errs chan error
}

// connectAs connects user with its password to s, with the user's own
// inbox prefix.
func connectAs(t testing.TB, s *natstest.Server, c *natsCreds, user string, opts ...nats.Option) *natsClient {
	t.Helper()
	return connectWith(t, s, user, c.passwords[user], opts...)
}

func connectWith(t testing.TB, s *natstest.Server, user, password string, opts ...nats.Option) *natsClient {
	t.Helper()
	cl := &natsClient{errs: make(chan error, 64)}
	all := append([]nats.Option{
		nats.UserInfo(user, password),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case cl.errs <- err:
			default:
			}
		}),
		nats.Timeout(waitTimeout),
	}, opts...)
	nc, err := s.Connect(all...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	cl.Conn = nc
	return cl
}

// expectViolation waits for the server to report a permission violation of
// op ("Publish" or "Subscription") on subject.
func (cl *natsClient) expectViolation(t testing.TB, op, subject string) {
	t.Helper()
	want := strings.ToLower(fmt.Sprintf("permissions violation for %s to %q", op, subject))
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case err := <-cl.errs:
			if strings.Contains(strings.ToLower(err.Error()), want) {
				return
			}
			t.Logf("other async error: %v", err)
		case <-timer.C:
			t.Fatalf("no %s violation on %q reported within %v", op, subject, waitTimeout)
		}
	}
}

// noViolation fails if the server reported a permission violation so far
// (call it after a round trip to the server).
func (cl *natsClient) noViolation(t testing.TB) {
	t.Helper()
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cl.errs:
		t.Fatalf("unexpected async error: %v", err)
	default:
	}
}

// testCtx returns a context bounded by waitTimeout.
func testCtx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

// writeTestFile writes data to dir/name.
func writeTestFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
