package authz_test

import (
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

// authClock is an injectable clock for overlap windows.
type authClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *authClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *authClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeClient is a server.ClientAuthentication for calling Check directly.
type fakeClient struct {
	opts       server.ClientOpts
	kind       int
	registered *server.User
}

func (f *fakeClient) GetOpts() *server.ClientOpts                 { return &f.opts }
func (f *fakeClient) GetTLSConnectionState() *tls.ConnectionState { return nil }
func (f *fakeClient) RegisterUser(u *server.User)                 { f.registered = u }
func (f *fakeClient) RemoteAddress() net.Addr                     { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (f *fakeClient) GetNonce() []byte                            { return nil }
func (f *fakeClient) Kind() int                                   { return f.kind }
func (f *fakeClient) GetID() uint64                               { return 1 }

func login(user, password string) *fakeClient {
	return &fakeClient{opts: server.ClientOpts{Username: user, Password: password}, kind: server.CLIENT}
}

// newAttachedAuth returns an authenticator for hq attached to a server
// built (not started) from hq's options, for account lookups.
func newAttachedAuth(t *testing.T, inv *authz.Inventory, c *natsCreds, cfg authz.EdgeAuthConfig) *authz.EdgeAuthenticator {
	t.Helper()
	a, err := authz.NewEdgeAuthenticator(inv, c.st, "acme", "hq", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ro := testRender(t)
	ro.HubURLs = []string{"nats-leaf://127.0.0.1:1"}
	ro.ConfigDir = t.TempDir()
	if err := authz.WriteSeedFile(ro.ConfigDir+"/leaf.seed", authz.NewSecret(c.seeds["acme.hq"])); err != nil {
		t.Fatal(err)
	}
	ro.SeedFile = "leaf.seed"
	opts, err := authz.EdgeOptions(inv, c.st, "acme", "hq", ro)
	if err != nil {
		t.Fatal(err)
	}
	a.Configure(opts)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	a.Attach(srv)
	return a
}

func TestEdgeAuthenticatorCheck(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	r1 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r1"))
	r9 := authz.DeviceUser(mkThing("acme", "wh", "reader", "r9"))

	t.Run("not attached", func(t *testing.T) {
		a, err := authz.NewEdgeAuthenticator(inv, c.st, "acme", "hq", authz.EdgeAuthConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if a.Check(login(r1, c.passwords[r1])) {
			t.Fatal("accepted before Attach")
		}
	})

	a := newAttachedAuth(t, inv, c, authz.EdgeAuthConfig{})
	for _, tc := range []struct {
		name string
		cl   *fakeClient
		want bool
	}{
		{"device", login(r1, c.passwords[r1]), true},
		{"edge service", login(authz.EdgeServiceUser("acme", "hq"), c.passwords[authz.EdgeServiceUser("acme", "hq")]), true},
		{"edge gateway", login(authz.ServiceUser("acme", "gw-hq"), c.passwords[authz.ServiceUser("acme", "gw-hq")]), true},
		{"wrong password", login(r1, "wrong"), false},
		{"no password", login(r1, ""), false},
		{"device of another edge", login(r9, c.passwords[r9]), false},
		{"central service", login(authz.ServiceUser("acme", "ingest"), c.passwords[authz.ServiceUser("acme", "ingest")]), false},
		{"org gateway (central)", login(authz.ServiceUser("acme", "gw"), c.passwords[authz.ServiceUser("acme", "gw")]), false},
		{"unknown user", login("acme.hq.reader.nobody", "x"), false},
		{"leaf connection", &fakeClient{opts: server.ClientOpts{Username: r1, Password: c.passwords[r1]}, kind: server.LEAF}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Check(tc.cl); got != tc.want {
				t.Fatalf("Check = %v, want %v", got, tc.want)
			}
			if !tc.want {
				return
			}
			u := tc.cl.registered
			if u == nil || u.Account == nil || u.Account.Name != "acme" || u.Username != tc.cl.opts.Username || u.Password != "" {
				t.Fatalf("registered %+v", u)
			}
			pol, _ := authz.NewPolicy(inv)
			want, _ := pol.Permissions(tc.cl.opts.Username)
			if u.Permissions == nil || !equalPerms(u.Permissions, want.Server()) {
				t.Fatalf("permissions %+v, want %+v", u.Permissions, want.Server())
			}
		})
	}
}

func equalPerms(a, b *server.Permissions) bool {
	eq := func(x, y *server.SubjectPermission) bool {
		return strings.Join(x.Allow, ",") == strings.Join(y.Allow, ",") && strings.Join(x.Deny, ",") == strings.Join(y.Deny, ",")
	}
	return eq(a.Publish, b.Publish) && eq(a.Subscribe, b.Subscribe)
}

func TestEdgeAuthenticatorCache(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	r1 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r1"))
	a := newAttachedAuth(t, inv, c, authz.EdgeAuthConfig{})

	for i := range 3 {
		if !a.Check(login(r1, c.passwords[r1])) {
			t.Fatalf("login %d rejected", i)
		}
	}
	if s := a.Stats(); s.Bcrypts != 1 || s.CacheHits != 2 || s.Accepted != 3 {
		t.Fatalf("after 3 logins: %+v, want 1 bcrypt and 2 cache hits", s)
	}
	// Failed logins never enter the cache: each costs a bcrypt.
	for i := range 2 {
		if a.Check(login(r1, "guess"+strconv.Itoa(i))) {
			t.Fatal("wrong password accepted")
		}
	}
	if s := a.Stats(); s.Bcrypts != 3 || s.Rejected != 2 {
		t.Fatalf("after 2 failures: %+v, want 3 bcrypts", s)
	}

	t.Run("disabled", func(t *testing.T) {
		a := newAttachedAuth(t, inv, c, authz.EdgeAuthConfig{DisableCache: true})
		for range 3 {
			a.Check(login(r1, c.passwords[r1]))
		}
		if s := a.Stats(); s.Bcrypts != 3 || s.CacheHits != 0 {
			t.Fatalf("%+v, want 3 bcrypts", s)
		}
	})
}

// TestEdgeAuthenticatorOverlap rotates a password with an overlap window:
// both passwords work until the window ends by the injected clock, the
// cache follows, and connections made with the old password are closed
// when the window ends.
func TestEdgeAuthenticatorOverlap(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	clock := &authClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	central := startCentral(t, inv, c)
	hq := startEdge(t, inv, c, "hq", central, edgeSetup{authenticator: true, authConfig: authz.EdgeAuthConfig{Now: clock.Now}})
	r1 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r1"))
	oldPW := c.passwords[r1]
	before := connectAs(t, hq.Server, c, r1, nats.NoReconnect())

	// Rotate: the overlap window ends 500ms (of real time) from now.
	newPW := randomPassword(t)
	h, _ := bcrypt.GenerateFromPassword([]byte(newPW), bcrypt.MinCost)
	cred := c.st.Passwords[r1]
	cred.PreviousHash, cred.PreviousUntil, cred.Hash = cred.Hash, clock.Now().Add(500*time.Millisecond), string(h)
	c.st.Passwords[r1] = cred
	if err := hq.auth.Update(inv, c.st); err != nil {
		t.Fatal(err)
	}
	if before.IsClosed() {
		t.Fatal("rotation with overlap closed the connection at once")
	}
	withOld := connectWith(t, hq.Server, r1, oldPW, nats.NoReconnect())
	withNew := connectWith(t, hq.Server, r1, newPW, nats.NoReconnect())

	// The window ends: connections that used the old password are closed
	// (the one made before the rotation, and the one made with it since),
	// the one made with the new password stays.
	waitFor(t, "old-password connections to close", func() bool { return before.IsClosed() && withOld.IsClosed() })
	if withNew.IsClosed() {
		t.Fatal("connection with the new password closed")
	}
	clock.Advance(time.Second)
	if _, err := nats.Connect(hq.ClientURL(), nats.UserInfo(r1, oldPW)); err == nil {
		t.Fatal("old password accepted after the window")
	}
	hits := hq.auth.Stats().CacheHits
	again := connectWith(t, hq.Server, r1, newPW, nats.NoReconnect())
	again.Close()
	if hq.auth.Stats().CacheHits != hits+1 {
		t.Fatal("new password not served from the cache")
	}
}

// TestEdgeAuthenticatorUpdate checks that Update disconnects revoked users,
// users whose password changed without overlap and users whose permissions
// changed, leaves everyone else connected, and needs no reload.
func TestEdgeAuthenticatorUpdate(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central := startCentral(t, inv, c)
	hq := startEdge(t, inv, c, "hq", central, edgeSetup{authenticator: true})
	r1 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r1"))
	r2 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r2"))
	l1 := authz.DeviceUser(mkThing("acme", "hq", "lock", "l1"))
	gw := authz.ServiceUser("acme", "gw-hq")
	svc := authz.EdgeServiceUser("acme", "hq")
	conns := map[string]*natsClient{}
	for _, u := range []string{r1, r2, l1, gw, svc} {
		conns[u] = connectAs(t, hq.Server, c, u, nats.NoReconnect())
	}
	expectClosed := func(t *testing.T, closed ...string) {
		t.Helper()
		waitFor(t, "disconnects", func() bool {
			for _, u := range closed {
				if !conns[u].IsClosed() {
					return false
				}
			}
			return true
		})
		for u, nc := range conns {
			if nc.IsClosed() && !contains(closed, u) {
				t.Errorf("%s disconnected", u)
			}
		}
	}

	t.Run("revoked device", func(t *testing.T) {
		inv.Things = slicesDelete(inv.Things, func(th authz.Thing) bool { return th.Code == "r2" })
		delete(c.st.Passwords, r2)
		if err := hq.auth.Update(inv, c.st); err != nil {
			t.Fatal(err)
		}
		// Removing r2 also narrows the edge gateway's permissions.
		expectClosed(t, r2, gw)
		if _, err := nats.Connect(hq.ClientURL(), nats.UserInfo(r2, c.passwords[r2])); err == nil {
			t.Fatal("revoked device logged in")
		}
		delete(conns, r2)
		delete(conns, gw)
	})

	t.Run("password changed without overlap", func(t *testing.T) {
		h, _ := bcrypt.GenerateFromPassword([]byte("brand new"), bcrypt.MinCost)
		cred := c.st.Passwords[l1]
		cred.Hash = string(h)
		c.st.Passwords[l1] = cred
		if err := hq.auth.Update(inv, c.st); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, l1)
		if _, err := nats.Connect(hq.ClientURL(), nats.UserInfo(l1, c.passwords[l1])); err == nil {
			t.Fatal("old password accepted")
		}
		connectWith(t, hq.Server, l1, "brand new").Close()
		delete(conns, l1)
	})

	t.Run("unchanged users keep working", func(t *testing.T) {
		for _, u := range []string{r1, svc} {
			if conns[u].IsClosed() {
				t.Fatalf("%s disconnected", u)
			}
		}
		dev := conns[r1]
		if err := dev.Publish("acme.hq.reader.r1.evt", []byte("still here")); err != nil {
			t.Fatal(err)
		}
		dev.noViolation(t)
	})

	t.Run("errors keep the table", func(t *testing.T) {
		other := natsInv()
		other.Edges = other.Edges[1:] // no hq
		if err := hq.auth.Update(other, c.st); !errors.Is(err, authz.ErrEdgeNotFound) {
			t.Fatalf("Update without the edge: %v", err)
		}
		connectAs(t, hq.Server, c, r1).Close()
	})
}

// TestEdgeAuthenticatorReloadCostsNoBcrypt reloads the embedded edge's
// configuration with an authorization change (a new account). nats-server
// then drops every client it cannot match to a configured user, which with
// a custom authenticator is all of them; they reconnect at once, and the
// cache lets them in without a bcrypt comparison.
func TestEdgeAuthenticatorReloadCostsNoBcrypt(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central := startCentral(t, inv, c)
	hq := startEdge(t, inv, c, "hq", central, edgeSetup{authenticator: true})
	waitLeaf(t, hq)
	users := []string{
		authz.DeviceUser(mkThing("acme", "hq", "reader", "r1")),
		authz.DeviceUser(mkThing("acme", "hq", "reader", "r2")),
		authz.EdgeServiceUser("acme", "hq"),
	}
	var reconnects atomic.Int32
	var conns []*natsClient
	for _, u := range users {
		conns = append(conns, connectAs(t, hq.Server, c, u,
			nats.ReconnectHandler(func(*nats.Conn) { reconnects.Add(1) })))
	}
	before := hq.auth.Stats()
	opts := hq.opts.Clone()
	opts.Port = hq.Port()
	opts.Accounts = append(opts.Accounts, server.NewAccount("spare"))
	if err := hq.Server.Server().ReloadOptions(opts); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "clients to reconnect", func() bool { return int(reconnects.Load()) == len(users) })
	after := hq.auth.Stats()
	if after.Bcrypts != before.Bcrypts {
		t.Fatalf("reload cost %d bcrypts", after.Bcrypts-before.Bcrypts)
	}
	if after.CacheHits < before.CacheHits+uint64(len(users)) {
		t.Fatalf("%d logins from the cache, want %d", after.CacheHits-before.CacheHits, len(users))
	}
	for _, nc := range conns {
		nc.noViolation(t)
	}
	waitLeaf(t, hq)
}

// TestEdgeAuthenticatorConcurrentUpdate logs in while credentials change,
// for the race detector.
func TestEdgeAuthenticatorConcurrentUpdate(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	a := newAttachedAuth(t, inv, c, authz.EdgeAuthConfig{})
	r1 := authz.DeviceUser(topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"})
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				a.Check(login(r1, c.passwords[r1]))
			}
		})
	}
	for i := range 51 {
		st := *c.st
		if i%2 == 1 {
			st.Passwords = map[string]authz.PasswordCredential{}
		}
		if err := a.Update(inv, &st); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if !a.Check(login(r1, c.passwords[r1])) {
		t.Fatal("final table rejects r1")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func slicesDelete[T any](s []T, del func(T) bool) []T {
	out := s[:0:0]
	for _, v := range s {
		if !del(v) {
			out = append(out, v)
		}
	}
	return out
}

// TestEdgeAuthenticatorSheds refuses a login that waits longer than
// MaxBcryptWait for a bcrypt turn, without a bcrypt comparison of its own.
func TestEdgeAuthenticatorSheds(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	r1 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r1"))
	r2 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r2"))
	slow, err := bcrypt.GenerateFromPassword([]byte(c.passwords[r1]), 11)
	if err != nil {
		t.Fatal(err)
	}
	c.st.Passwords[r1] = authz.PasswordCredential{Hash: string(slow)}
	a := newAttachedAuth(t, inv, c, authz.EdgeAuthConfig{MaxConcurrentBcrypt: 1, MaxBcryptWait: time.Millisecond})
	done := make(chan bool)
	go func() { done <- a.Check(login(r1, c.passwords[r1])) }()
	waitFor(t, "the slow comparison to start", func() bool { return a.Stats().Bcrypts == 1 })
	if a.Check(login(r2, c.passwords[r2])) {
		t.Fatal("login accepted while the only bcrypt turn was taken")
	}
	if !<-done {
		t.Fatal("slow login rejected")
	}
	if s := a.Stats(); s.Shed != 1 || s.Bcrypts != 1 {
		t.Fatalf("%+v, want 1 shed login and 1 bcrypt", s)
	}
	if !a.Check(login(r2, c.passwords[r2])) {
		t.Fatal("login refused once the turn was free")
	}
}
