package api_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/internal/freeaddr"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/tooltest"
)

// TestSessions: console sessions are recorded at central. A logged-out
// cookie is refused; a session begun with an API token ends, live event
// stream included, when the token is revoked; a session survives the
// API server's restart (a new server on the same central).
func TestSessions(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	start := func(t *testing.T) *fixture {
		t.Helper()
		srv, err := api.Start(ctx(t), api.Config{Central: f.c, TokenLogin: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		web := httptest.NewServer(srv.Handler())
		t.Cleanup(web.Close)
		return &fixture{web: web}
	}
	// login starts a session with tok at o and returns its cookie.
	login := func(t *testing.T, o *fixture, tok string) *http.Cookie {
		t.Helper()
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		if res := o.doWith(t, &http.Client{Jar: jar}, "POST", api.PathPrefix+"/auth/token", map[string]string{"token": tok}, nil); res.status != http.StatusOK {
			t.Fatalf("token login: %d %s", res.status, res.body)
		}
		u, _ := url.Parse(o.web.URL)
		for _, c := range jar.Cookies(u) {
			if c.Name == "lintel_session" {
				return c
			}
		}
		t.Fatal("no session cookie after login")
		return nil
	}
	me := func(t *testing.T, o *fixture, c *http.Cookie) int {
		t.Helper()
		return o.doWith(t, noRedirect, "GET", api.PathPrefix+"/me", nil, func(r *http.Request) { r.AddCookie(c) }).status
	}

	t.Run("LogoutEndsTheSession", func(t *testing.T) {
		o := start(t)
		_, tok := f.token(t, "logout", "viewer")
		c := login(t, o, tok)
		if got := me(t, o, c); got != http.StatusOK {
			t.Fatalf("with the session: %d", got)
		}
		if res := o.doWith(t, noRedirect, "POST", api.PathPrefix+"/auth/logout", nil, func(r *http.Request) { r.AddCookie(c) }); res.status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", res.status, res.body)
		}
		// The old cookie, kept by a client that ignores the logout's
		// clearing, no longer works, on this server or another.
		if got := me(t, o, c); got != http.StatusUnauthorized {
			t.Fatalf("the logged-out cookie: %d, want 401", got)
		}
		if got := me(t, start(t), c); got != http.StatusUnauthorized {
			t.Fatalf("the logged-out cookie on another server: %d, want 401", got)
		}
		page := o.doWith(t, noRedirect, "GET", api.ConsolePath, nil, func(r *http.Request) { r.AddCookie(c) })
		if strings.Contains(string(page.body), `id="whoami"`) {
			t.Fatal("the console shows a logged-out session as logged in")
		}
	})

	t.Run("RevokedTokenEndsItsSessionAndStream", func(t *testing.T) {
		o := start(t)
		id, tok := f.token(t, "revoked", "viewer")
		c := login(t, o, tok)
		sctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		req, err := http.NewRequestWithContext(sctx, "GET", o.web.URL+api.PathPrefix+"/events/stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(c)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %d", resp.StatusCode)
		}
		lines := make(chan string, 64)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		if l := <-lines; !strings.HasPrefix(l, ":") {
			t.Fatalf("first line %q", l)
		}
		if res := f.do(t, "DELETE", api.PathPrefix+"/tokens/"+id, f.admin, nil); res.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", res.status, res.body)
		}
		if got := me(t, o, c); got != http.StatusUnauthorized {
			t.Fatalf("the session of a revoked token: %d, want 401", got)
		}
		// The open stream ends: the server closes it, not the client's
		// deadline.
		ended := false
		for l := range lines {
			ended = ended || l == "event: ended"
		}
		if sctx.Err() != nil {
			t.Fatal("the live stream of the revoked token's session did not end")
		}
		if !ended {
			t.Fatal("the stream ended without saying why")
		}
	})

	t.Run("SurvivesRestart", func(t *testing.T) {
		_, tok := f.token(t, "restart", "operator")
		first := start(t)
		c := login(t, first, tok)
		first.web.Close()
		second := start(t)
		var p api.Principal
		second.doWith(t, noRedirect, "GET", api.PathPrefix+"/me", nil, func(r *http.Request) { r.AddCookie(c) }).decode(t, &p)
		if p.Via != "session" || p.Role != api.RoleOperator || p.Name != "restart" {
			t.Fatalf("the session after a restart: %+v", p)
		}
	})
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip, as a distinct client host would; with to, they go
// to that address whatever the URL's host.
func clientFrom(t *testing.T, ip, to string, tlsConf *tls.Config) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	dial := d.DialContext
	if to != "" {
		dial = func(ctx context.Context, network, _ string) (net.Conn, error) { return d.DialContext(ctx, network, to) }
	}
	tr := &http.Transport{DialContext: dial, TLSClientConfig: tlsConf}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: noRedirect.CheckRedirect}
}

// checkThrottlePerClient fails 6 token logins of client a through base
// (each with another forged X-Forwarded-For), which ends throttled, and
// checks that client b, behind the same proxy, is not.
func checkThrottlePerClient(t *testing.T, base string, a, b *http.Client) {
	t.Helper()
	o := &fixture{web: &httptest.Server{URL: base}}
	bad := map[string]string{"token": "lintel_0123456789abcdef_" + strings.Repeat("B", 43)}
	var statuses []int
	for i := range 6 {
		res := o.doWith(t, a, "POST", api.PathPrefix+"/auth/token", bad, func(r *http.Request) {
			r.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1))
		})
		statuses = append(statuses, res.status)
	}
	if statuses[0] != http.StatusUnauthorized || statuses[5] != http.StatusTooManyRequests {
		t.Fatalf("client a's failed logins: %v, want 401s then 429", statuses)
	}
	if res := o.doWith(t, b, "POST", api.PathPrefix+"/auth/token", bad, nil); res.status != http.StatusUnauthorized {
		t.Fatalf("client b behind the same proxy: %d %s, want 401 (its own throttle)", res.status, res.body)
	}
}

// TestLoginThrottlePerClientBehindProxy: behind a trusted reverse proxy
// (httputil.ReverseProxy, which appends the client to X-Forwarded-For),
// failed logins are throttled per client, not per proxy; a client that
// is not a trusted proxy cannot escape its throttle with a forged
// X-Forwarded-For.
func TestLoginThrottlePerClientBehindProxy(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	start := func(t *testing.T) *httptest.Server {
		srv, err := api.Start(ctx(t), api.Config{Central: f.c, TokenLogin: true,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		web := httptest.NewServer(srv.Handler())
		t.Cleanup(web.Close)
		return web
	}
	t.Run("ThroughTheProxy", func(t *testing.T) {
		web := start(t)
		target, _ := url.Parse(web.URL)
		proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
		t.Cleanup(proxy.Close)
		// The proxy's own port on 127.0.0.1: clients from other loopback
		// addresses reach it, and it reaches the API from 127.0.0.1.
		checkThrottlePerClient(t, proxy.URL, clientFrom(t, "127.0.0.2", "", nil), clientFrom(t, "127.0.0.3", "", nil))
	})
	t.Run("ForgedHeaderFromUntrustedPeer", func(t *testing.T) {
		web := start(t)
		// Straight to the API from 127.0.0.4, not a trusted proxy: its
		// forged X-Forwarded-For is ignored, and it is throttled as
		// itself; 127.0.0.5 is another client.
		checkThrottlePerClient(t, web.URL, clientFrom(t, "127.0.0.4", "", nil), clientFrom(t, "127.0.0.5", "", nil))
	})
}

// TestLoginThrottleThroughCaddy: the same through a real Caddy running
// the reference Caddyfile's central site in front of the API.
func TestLoginThrottleThroughCaddy(t *testing.T) {
	bin := tooltest.Path(t, "caddy", "caddy")
	f := newFixture(t, fixtureOptions{})
	srv, err := api.Start(ctx(t), api.Config{Central: f.c, TokenLogin: true,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	web := httptest.NewServer(srv.Handler())
	t.Cleanup(web.Close)

	ca := natstest.TempCA(t)
	port := strconv.Itoa(freeaddr.Port(t))
	home := t.TempDir()
	cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", "Caddyfile")
	cmd.Dir = filepath.Join("..", "..", "apps", "deploy")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home,
		"LINTEL_CADDY_SITE=central", "LINTEL_CENTRAL_SITE=https://localhost:"+port,
		"LINTEL_TLS_CERT="+ca.ServerCertFile, "LINTEL_TLS_KEY="+ca.ServerKeyFile,
		"LINTEL_CENTRAL_UPSTREAM="+web.Listener.Addr().String())
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("caddy:\n%s", logs.String())
		}
	})
	tlsConf := &tls.Config{RootCAs: ca.CertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	// The site is localhost's (Caddy answers another host with an empty
	// 200): the clients ask for it, and connect to 127.0.0.1.
	a, b := clientFrom(t, "127.0.0.2", "127.0.0.1:"+port, tlsConf), clientFrom(t, "127.0.0.3", "127.0.0.1:"+port, tlsConf)
	base := "https://localhost:" + port
	deadline := time.Now().Add(wait)
	for {
		resp, err := a.Get(base + api.PathPrefix + "/openapi.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == "application/json" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // caddy is starting
	}
	checkThrottlePerClient(t, base, a, b)
}

// syncBuffer is a strings.Builder safe for a process's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
