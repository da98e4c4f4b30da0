package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/oidctest"
	"github.com/lintel-io/lintel/topic"
)

const wait = 30 * time.Second

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

var (
	reader = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	lock   = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	// labReader is at edge lab, which the fixture does not start.
	labReader = topic.Thing{Org: "acme", Edge: "lab", Type: "reader", Code: "r2"}
)

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func inventory() *authz.Inventory {
	return &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"}},
		Edges:    []authz.Edge{{Org: "acme", Code: "hq"}, {Org: "acme", Code: "lab"}},
		Things: []authz.Thing{{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}}, {Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}},
			{Thing: topic.Thing{Org: "acme", Edge: "lab", Type: "reader", Code: "r2"}}},
		Doors: []authz.Door{{Org: "acme", Edge: "hq", Code: "front", Readers: []string{"r1"}, Locks: []string{"l1"}}},
	}
}

// fixture is a running central with the API in front of it, an OIDC
// provider the API trusts, and optionally edge hq linked.
type fixture struct {
	t         testing.TB
	inv       *authz.Inventory
	st        *authz.State
	passwords map[string]authz.Secret
	dir       string
	c         *central.Central
	prov      *oidctest.Provider
	srv       *api.Server
	web       *httptest.Server
	handler   atomic.Pointer[http.Handler]
	node      *edgekit.Node
	proxy     *natstest.Proxy // the link's proxy, with fixtureOptions.linkProxy
	// admin is the bootstrap API token.
	admin     string
	tokenFile string
	// hashKey is the org's credential hash key; auditSeeds the edges'
	// audit keys, for an access service (startAccess).
	hashKey    []byte
	auditSeeds map[string]authz.Secret
}

type fixtureOptions struct {
	db   *pgxpool.Pool
	edge bool
	// linkProxy links the edges to central through fixture.proxy, which
	// can cut the link.
	linkProxy bool
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{t: t, passwords: map[string]authz.Secret{}, dir: t.TempDir()}
	gctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(gctx, inventory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.inv, f.st, f.auditSeeds = inventory(), res.State, res.Secrets.AuditSeeds
	for u, p := range res.Secrets.Passwords {
		f.passwords[u] = p
	}
	for id, seed := range res.Secrets.EdgeSeeds {
		if err := authz.WriteSeedFile(filepath.Join(f.dir, id+".seed"), seed); err != nil {
			t.Fatal(err)
		}
	}
	key, err := access.GenerateHashKey()
	if err != nil {
		t.Fatal(err)
	}
	f.hashKey = key
	orgs := map[string]central.OrgSecrets{"acme": {Service: "central", Password: f.passwords[authz.ServiceUser("acme", "central")],
		CommandKey: res.Secrets.CommandSeeds["acme"], HashKey: key}}
	f.c, err = central.Start(ctx(t), central.Config{
		Inventory: f.inv, State: f.st, Orgs: orgs, Database: o.db,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
			StoreDir: t.TempDir(), MaxFileStore: 256 << 20, PingInterval: time.Second},
		// Behind the link's proxy, edges must reconnect through it, not to
		// central's own address.
		ServerOptions: func(so *server.Options) { so.LeafNode.NoAdvertise = o.linkProxy },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.c.Stop)
	if o.linkProxy {
		if f.proxy, err = natstest.NewProxy(f.c.LeafAddr()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.proxy.Close)
	}
	f.prov = oidctest.New(t, oidctest.Config{})
	f.web = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*f.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(f.web.Close)
	f.tokenFile = filepath.Join(f.dir, "admin.token")
	f.srv = f.startAPI(t)
	h := f.srv.Handler()
	f.handler.Store(&h)
	f.admin = f.readToken(t)
	if o.edge {
		f.node = f.startEdge(t, "hq")
		waitFor(t, "hq's link", f.node.LinkUp)
	}
	return f
}

// startAPI starts an API server on the fixture's central.
func (f *fixture) startAPI(t testing.TB) *api.Server {
	t.Helper()
	srv, err := api.Start(ctx(t), api.Config{Central: f.c, BootstrapTokenFile: f.tokenFile, Timeout: 10 * time.Second,
		OIDC: &api.OIDCConfig{Issuer: f.prov.Issuer(), ClientID: f.prov.ClientID(), ClientSecret: f.prov.ClientSecret(),
			RedirectURL: f.web.URL + api.PathPrefix + "/auth/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func (f *fixture) readToken(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (f *fixture) startEdge(t testing.TB, edge string) *edgekit.Node {
	t.Helper()
	hub := f.c.LeafAddr()
	if f.proxy != nil {
		hub = f.proxy.Addr()
	}
	n, err := edgekit.Start(ctx(t), edgekit.NodeConfig{
		Org: "acme", Edge: edge, Inventory: f.inv, State: f.st,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), MaxFileStore: 256 << 20,
			PingInterval: time.Second, HubURLs: []string{"nats-leaf://" + hub}, ConfigDir: f.dir,
			SeedFile: authz.EdgeKeyID("acme", edge) + ".seed"},
		LeafReconnectInterval: 100 * time.Millisecond, CheckInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("start edge %s: %v", edge, err)
	}
	t.Cleanup(n.Stop)
	return n
}

// startAccess starts the access service of edge hq (the fixture's node)
// with its real audit key, and waits for its first sync with central.
func (f *fixture) startAccess(t testing.TB) *access.Service {
	t.Helper()
	seed := filepath.Join(f.dir, "hq-audit.seed")
	if err := authz.WriteSeedFile(seed, f.auditSeeds[authz.EdgeKeyID("acme", "hq")]); err != nil {
		t.Fatal(err)
	}
	kp, err := access.ReadAuditKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := access.StartService(ctx(t), f.node, access.ServiceConfig{HashKey: f.hashKey, AuditKey: kp, Inventory: f.inv,
		SyncInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	waitFor(t, "hq's access service synced", func() bool { return svc.Loaded() && !svc.SyncedAt().IsZero() })
	return svc
}

// device connects th to the fixture's edge.
func (f *fixture) device(t testing.TB, th topic.Thing) *devicekit.Client {
	t.Helper()
	return f.deviceAt(t, f.node, th)
}

// deviceAt connects th to the edge node n.
func (f *fixture) deviceAt(t testing.TB, n *edgekit.Node, th topic.Thing) *devicekit.Client {
	t.Helper()
	dev, err := devicekit.Connect(ctx(t), devicekit.Config{Thing: th, URLs: []string{n.ClientURL()},
		Password: devicekit.Password(f.passwords[authz.DeviceUser(th)].Reveal()), HeartbeatInterval: -1,
		CommandKeys: f.st.CommandPublicKeys("acme", th.Edge)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	return dev
}

// response is an HTTP response with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes the body as a problem, failing unless it is one.
func (r response) problem(t testing.TB) api.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != api.ContentTypeProblem {
		t.Fatalf("status %d, Content-Type %q, not a problem: %s", r.status, ct, r.body)
	}
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != r.status || !strings.HasPrefix(p.Type, api.ProblemTypePrefix) || p.Title == "" {
		t.Fatalf("malformed problem for status %d: %s", r.status, r.body)
	}
	return p
}

// decode decodes the body into v, failing on an error status.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if r.status >= 300 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request with a bearer token ("" for none) and a body (nil,
// a []byte or a value to encode as JSON).
func (f *fixture) do(t testing.TB, method, path, token string, body any) response {
	t.Helper()
	return f.doWith(t, noRedirect, method, path, body, func(r *http.Request) {
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
	})
}

func (f *fixture) doWith(t testing.TB, client *http.Client, method, path string, body any, edit func(*http.Request)) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx(t), method, f.web.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if edit != nil {
		edit(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		// A live stream does not end: its headers are the answer.
		return response{status: resp.StatusCode, header: resp.Header}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// token returns an API token of role, created by the bootstrap admin.
func (f *fixture) token(t testing.TB, name, role string) (id, token string) {
	t.Helper()
	var out struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	f.do(t, "POST", api.PathPrefix+"/tokens", f.admin, map[string]string{"name": name, "role": role}).decode(t, &out)
	if out.Token == "" || out.ID == "" {
		t.Fatalf("no token created for %s", name)
	}
	return out.ID, out.Token
}

// auditLog returns the operator audit log, newest first.
func (f *fixture) auditLog(t testing.TB) []api.AuditEntry {
	t.Helper()
	var p struct {
		Items []api.AuditEntry `json:"items"`
	}
	f.do(t, "GET", api.PathPrefix+"/audit-log?limit=1000", f.admin, nil).decode(t, &p)
	return p.Items
}

// decide stores an access decision of reader r1 at door, as hq's access
// service records one: into the edge's platform stream, from where
// central's event stream sources it. It returns the decision's id.
func (f *fixture) decide(t testing.TB, door, holder string, granted bool) string {
	t.Helper()
	th := access.DecisionThing("acme", "hq", "r1")
	var gen message.IDGenerator
	e := &message.Envelope{ID: gen.New(), Time: time.Now().UTC(), Source: th, Type: topic.Event}
	d := message.AccessDecision{Granted: granted, Door: door, Holder: holder, Credential: strings.Repeat("ab", 32), CredentialSetVersion: 1}
	if !granted {
		d.Reason = message.DenyUnknown
	}
	e.Name = d.MessageName()
	if err := message.SetPayload(e, d); err != nil {
		t.Fatal(err)
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := f.node.Names()
	msg.Subject = n.PlatformSubject(th, topic.Event)
	if _, err := f.node.JetStream().PublishMsg(ctx(t), msg, jetstream.WithExpectStream(n.PlatformStream)); err != nil {
		t.Fatal(err)
	}
	return e.ID.String()
}

// decisions returns the ids the API lists for query, all pages.
func (f *fixture) decisions(t testing.TB, token, query string) []api.DecisionItem {
	t.Helper()
	var out []api.DecisionItem
	cursor := ""
	for range 20 {
		u := api.PathPrefix + "/decisions?limit=2&" + query
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var p struct {
			Items []api.DecisionItem `json:"items"`
			Next  string             `json:"next"`
		}
		f.do(t, "GET", u, token, nil).decode(t, &p)
		out = append(out, p.Items...)
		if cursor = p.Next; cursor == "" {
			return out
		}
	}
	t.Fatal("paging does not end")
	return nil
}

// testDecisions: access decisions recorded at hq are listed, filtered by
// door and outcome, with the credential's hash and no card number.
func testDecisions(t *testing.T, f *fixture) {
	v := f.prov.Token(t, "vera", "viewer")
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	granted := f.decide(t, "front", "alice-"+tag, true)
	denied := f.decide(t, "front", "bob-"+tag, false)
	other := f.decide(t, "side", "carol-"+tag, true)
	ids := func(ds []api.DecisionItem) []string {
		var out []string
		for _, d := range ds {
			if strings.HasSuffix(d.Holder, tag) {
				out = append(out, d.ID)
			}
		}
		return out
	}
	waitFor(t, "the decisions at central", func() bool { return len(ids(f.decisions(t, v, "edge=hq&since=1h"))) == 3 })
	if got := ids(f.decisions(t, v, "edge=hq&since=1h")); !slices.Equal(got, []string{granted, denied, other}) {
		t.Fatalf("decisions: %v, want %v", got, []string{granted, denied, other})
	}
	if got := ids(f.decisions(t, v, "door=front&since=1h&desc=true")); !slices.Equal(got, []string{denied, granted}) {
		t.Fatalf("front, newest first: %v", got)
	}
	ds := f.decisions(t, v, "door=front&granted=false&since=1h")
	if got := ids(ds); !slices.Equal(got, []string{denied}) {
		t.Fatalf("denied at front: %v", got)
	}
	for _, d := range ds {
		if d.ID == denied && (d.Granted || d.Reason != string(message.DenyUnknown) || d.Reader != "r1" || d.Credential != strings.Repeat("ab", 32)) {
			t.Fatalf("denied decision: %+v", d)
		}
	}
	if res := f.do(t, "GET", api.PathPrefix+"/decisions?granted=perhaps", v, nil); res.status != http.StatusBadRequest || res.problem(t).Field != "granted" {
		t.Fatalf("granted=perhaps: %d %s", res.status, res.body)
	}
}

// eventPages reads the events route at query (a path with its filters,
// without limit, desc or cursor) page by page, limit items a page, newest
// first with desc, following the cursor to the end; it returns the items
// in the order read and how many pages it took.
func (f *fixture) eventPages(t testing.TB, token, query string, limit int, desc bool) (items []api.EventItem, pages int) {
	t.Helper()
	cursor := ""
	for range 1000 {
		u := fmt.Sprintf("%s&limit=%d", query, limit)
		if desc {
			u += "&desc=true"
		}
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var p struct {
			Items []api.EventItem `json:"items"`
			Next  string          `json:"next"`
		}
		f.do(t, "GET", u, token, nil).decode(t, &p)
		pages++
		items = append(items, p.Items...)
		if cursor = p.Next; cursor == "" {
			return items, pages
		}
	}
	t.Fatalf("paging %s does not end", query)
	return nil, 0
}

// eventIDs returns the ids of items.
func eventIDs(items []api.EventItem) []string {
	ids := make([]string, len(items))
	for i, e := range items {
		ids[i] = e.ID
	}
	return ids
}
