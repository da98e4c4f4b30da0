// Package deploy_test checks the deployment files of apps/deploy against
// the real tools that read them.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/internal/freeaddr"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/tooltest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

const wait = 30 * time.Second

// caddyEnv returns the environment the Caddyfile reads, with Caddy's own
// files in a temporary home.
func caddyEnv(t *testing.T, ca *natstest.CA, site, upstream string) []string {
	home := t.TempDir()
	return append(os.Environ(),
		"HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home,
		"LINTEL_GATEWAY_SITE="+site,
		"LINTEL_TLS_CERT="+ca.ServerCertFile, "LINTEL_TLS_KEY="+ca.ServerKeyFile,
		"LINTEL_CLIENT_CA="+ca.CAFile,
		"LINTEL_GATEWAY_UPSTREAM="+upstream,
	)
}

// centralEnv returns the environment of the Caddyfile's central site.
func centralEnv(t *testing.T, ca *natstest.CA, site, upstream string) []string {
	home := t.TempDir()
	env := append(os.Environ(),
		"HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home,
		"LINTEL_CADDY_SITE=central", "LINTEL_CENTRAL_SITE="+site,
		"LINTEL_TLS_CERT="+ca.ServerCertFile, "LINTEL_TLS_KEY="+ca.ServerKeyFile,
	)
	if upstream != "" {
		env = append(env, "LINTEL_CENTRAL_UPSTREAM="+upstream)
	}
	return env
}

// TestCaddyfileValid runs `caddy validate` on the Caddyfile, for each of
// its sites, and finds the site chosen: the gateway by default.
func TestCaddyfileValid(t *testing.T) {
	bin := tooltest.Path(t, "caddy", "caddy")
	ca := natstest.TempCA(t)
	for _, c := range []struct {
		name string
		env  []string
		want string // in the adapted JSON
	}{
		{"gateway", caddyEnv(t, ca, "https://localhost:8443", "127.0.0.1:8480"), `"127.0.0.1:8480"`},
		{"central", centralEnv(t, ca, "https://localhost:8444", ""), `"127.0.0.1:8080"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, "validate", "--adapter", "caddyfile", "--config", "Caddyfile")
			cmd.Env = c.env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("caddy validate: %v\n%s", err, out)
			}
			cmd = exec.Command(bin, "adapt", "--adapter", "caddyfile", "--config", "Caddyfile")
			cmd.Env = c.env
			out, err := cmd.Output()
			if err != nil || !strings.Contains(string(out), c.want) {
				t.Fatalf("caddy adapt: %v; no upstream %s in\n%s", err, c.want, out)
			}
		})
	}
	// A site that does not exist is refused, and named.
	cmd := exec.Command(bin, "validate", "--adapter", "caddyfile", "--config", "Caddyfile")
	cmd.Env = append(centralEnv(t, ca, "https://localhost:8444", ""), "LINTEL_CADDY_SITE=centrl")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "centrl") {
		t.Fatalf("caddy validate of an unknown site: %v\n%s", err, out)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	return freeaddr.Port(t)
}

// TestEventThroughCaddy runs a real Caddy with the Caddyfile in front of a
// gateway and an edge node, the gateway configured as the Caddyfile
// expects: reading the client certificate from X-Lintel-Client-Cert,
// Caddy (on loopback) its trusted proxy, and requiring a certificate. A
// device presenting its certificate to Caddy posts an event over TLS
// through it, whatever it sends in that header itself, and the event is
// stored in the edge's stream; its command stream through Caddy opens. A
// client that presents no certificate but forges the header, even with
// the device's genuine certificate (which is no secret), is refused: Caddy
// replaced the header, so the gateway saw no certificate.
func TestEventThroughCaddy(t *testing.T) {
	bin := tooltest.Path(t, "caddy", "caddy")
	thing := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Edges:    []authz.Edge{{Org: "acme", Code: "hq"}},
		Things:   []authz.Thing{{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}}},
		Services: []authz.Service{{Name: "ingest", Kind: authz.ServiceCentral, Org: "acme"}},
	}
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(context.Background(), inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := authz.WriteSeedFile(filepath.Join(dir, "leaf.seed"), res.Secrets.EdgeSeeds[authz.EdgeKeyID("acme", "hq")]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	node, err := edgekit.Start(ctx, edgekit.NodeConfig{
		Org: "acme", Edge: "hq", Inventory: inv, State: res.State,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), MaxFileStore: 64 << 20,
			HubURLs: []string{"nats-leaf://127.0.0.1:1"}, ConfigDir: dir, SeedFile: "leaf.seed"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	auth, err := authz.NewEdgeAuthenticator(inv, res.State, "acme", "hq", authz.EdgeAuthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	devCA := newDeviceCA(t)
	devCert := devCA.issue(t, authz.DeviceUser(thing))
	gw, err := gateway.New(gateway.Config{Org: "acme", Edge: "hq", URLs: []string{node.ClientURL()}, Auth: auth,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, ClientCertHeader: clientCertHeader,
		ClientCAs: devCA.pool(), RequireClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := gateway.NewServer(ln.Addr().String(), gw, nil)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = gw.Close(); _ = srv.Close() })

	ca := natstest.TempCA(t)
	port := freePort(t)
	cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", "Caddyfile")
	cmd.Env = append(caddyEnv(t, ca, "https://localhost:"+strconv.Itoa(port), ln.Addr().String()), "LINTEL_CLIENT_CA="+devCA.file)
	var logs bytes.Buffer
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

	// The device presents its certificate; the forger presents none.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.CertPool(), MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{devCert.tls}}}}
	defer client.CloseIdleConnections()
	forger := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.CertPool(), MinVersion: tls.VersionTLS12}}}
	defer forger.CloseIdleConnections()
	var ids message.IDGenerator
	newEvent := func() (*message.Envelope, []byte) {
		e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: thing, Type: topic.Event, Name: "door.opened"}
		if err := message.SetPayload(e, map[string]string{"door": "front"}); err != nil {
			t.Fatal(err)
		}
		body, err := e.AppendCloudEvent(nil)
		if err != nil {
			t.Fatal(err)
		}
		return e, body
	}
	url := "https://localhost:" + strconv.Itoa(port) + gateway.PathEvents
	post := func(c *http.Client, body []byte, certHeader string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", message.ContentTypeCloudEventsJSON)
		req.Header.Set(clientCertHeader, certHeader)
		req.SetBasicAuth(authz.DeviceUser(thing), res.Secrets.Passwords[authz.DeviceUser(thing)].Reveal())
		return c.Do(req)
	}
	e, body := newEvent()
	deadline := time.Now().Add(wait)
	for {
		resp, err := post(client, body, "forged")
		if err == nil {
			var st gateway.Stored
			derr := json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || derr != nil || st.ID != e.ID.String() {
				t.Fatalf("through caddy: %d %+v %v", resp.StatusCode, st, derr)
			}
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("caddy exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // caddy is starting
	}
	msg, err := node.JetStream().Stream(ctx, node.Names().EventStream)
	if err != nil {
		t.Fatal(err)
	}
	got, err := msg.GetLastMsgForSubject(ctx, thing.Subject(topic.Event).String())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := message.FromMsg(&nats.Msg{Subject: got.Subject, Header: got.Header, Data: got.Data})
	if err != nil || stored.ID != e.ID {
		t.Fatalf("stored %v, %v; want %s", stored, err, e.ID)
	}

	// Forged headers, without a certificate in the handshake: had Caddy
	// passed them on, the gateway (which trusts Caddy) would have taken
	// the genuine one as the device's and stored the event, and refused
	// the garbage as "not base64 DER" rather than as missing.
	for _, forged := range []struct{ name, value string }{
		{"the device's genuine certificate", devCert.base64},
		{"garbage", "forged"},
	} {
		t.Run("forged header: "+forged.name, func(t *testing.T) {
			fe, fb := newEvent()
			resp, err := post(forger, fb, forged.value)
			if err != nil {
				t.Fatal(err)
			}
			var p gateway.Problem
			derr := json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || derr != nil || p.Field != clientCertHeader || !strings.Contains(p.Detail, "required") {
				t.Fatalf("forged %s: %d %+v %v; want 401 for a missing certificate", clientCertHeader, resp.StatusCode, p, derr)
			}
			last, err := msg.GetLastMsgForSubject(ctx, thing.Subject(topic.Event).String())
			if err != nil || last.Header.Get(message.HeaderMsgID) != e.ID.String() {
				t.Fatalf("last event stored: %v (%v); want still the device's %s, not the forger's %s", last, err, e.ID, fe.ID)
			}
		})
	}

	// The command stream passes through at once (flush_interval -1).
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", "https://localhost:"+strconv.Itoa(port)+gateway.PathCommands, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.SetBasicAuth(authz.DeviceUser(thing), res.Secrets.Passwords[authz.DeviceUser(thing)].Reveal())
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != 200 || !strings.HasPrefix(line, ":") {
		t.Fatalf("command stream through caddy: %d %q %v", resp.StatusCode, line, err)
	}
}

// clientCertHeader is the header in which the Caddyfile passes a verified
// client certificate to the gateway.
const clientCertHeader = "X-Lintel-Client-Cert"

// deviceCA issues device client certificates, with its certificate in file
// for Caddy's client_auth.
type deviceCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newDeviceCA(t *testing.T) *deviceCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "device CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "device-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &deviceCA{cert: cert, key: key, file: file}
}

func (ca *deviceCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// deviceCert is a client certificate: for a TLS handshake, and as the
// base64 DER Caddy passes on.
type deviceCert struct {
	tls    tls.Certificate
	base64 string
}

// issue returns a client certificate with common name cn.
func (ca *deviceCA) issue(t *testing.T, cn string) deviceCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return deviceCert{tls: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, base64: base64.StdEncoding.EncodeToString(der)}
}

// runCaddy runs caddy with the Caddyfile and env until the test ends.
func runCaddy(t *testing.T, bin string, env []string) {
	t.Helper()
	cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", "Caddyfile")
	cmd.Env = env
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
}

// syncBuffer is a bytes.Buffer safe for the writes of a process's output
// and a test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// TestCentralThroughCaddy runs a real Caddy with the Caddyfile's central
// site in front of an upstream that stands for central's API and console
// listener: requests for /api/* and / reach it over TLS with the client's
// address as Caddy saw it (a forged X-Forwarded-For is not passed on), and
// every response carries the security headers, the upstream's Server
// header and weaker framing policy replaced; a Content-Security-Policy of
// the upstream's own is kept.
func TestCentralThroughCaddy(t *testing.T) {
	const consoleCSP = "default-src 'self'; frame-ancestors 'none'"
	bin := tooltest.Path(t, "caddy", "caddy")
	type seen struct{ path, xff, proto string }
	got := make(chan seen, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.URL.Path, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto")}
		w.Header().Set("Server", "lintel-central/1")
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		if strings.HasPrefix(r.URL.Path, "/console/") {
			w.Header().Set("Content-Security-Policy", consoleCSP)
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(up.Close)

	upstream := func(t *testing.T) seen {
		t.Helper()
		select {
		case s := <-got:
			return s
		case <-time.After(wait):
			t.Fatal("the request never reached the upstream")
			return seen{}
		}
	}

	ca := natstest.TempCA(t)
	port := strconv.Itoa(freePort(t))
	runCaddy(t, bin, centralEnv(t, ca, "https://localhost:"+port, up.Listener.Addr().String()))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.CertPool(), MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()

	get := func(path string) (*http.Response, string, error) {
		req, _ := http.NewRequest("GET", "https://localhost:"+port+path, nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.66")
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	deadline := time.Now().Add(wait)
	for {
		if _, _, err := get("/healthz-probe"); err == nil {
			upstream(t)
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("caddy never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // caddy is starting
	}

	for _, c := range []struct{ path, cache, csp string }{
		{"/api/v1/things", "no-store", "frame-ancestors 'none'"},
		{"/", "", "frame-ancestors 'none'"},
		{"/console/doors", "", consoleCSP},
	} {
		t.Run(c.path, func(t *testing.T) {
			resp, body, err := get(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || body != "upstream "+c.path {
				t.Fatalf("%s: %d %q", c.path, resp.StatusCode, body)
			}
			s := upstream(t)
			if s.path != c.path || s.xff != "127.0.0.1" || s.proto != "https" {
				t.Fatalf("the upstream saw %+v; want path %s from 127.0.0.1 over https", s, c.path)
			}
			for h, want := range map[string]string{
				"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
				"X-Content-Type-Options":    "nosniff",
				"Referrer-Policy":           "no-referrer",
				"X-Frame-Options":           "DENY",
				"Content-Security-Policy":   c.csp,
				"Server":                    "",
				"Cache-Control":             c.cache,
			} {
				if v := resp.Header.Values(h); strings.Join(v, ",") != want {
					t.Errorf("%s: %q, want %q", h, v, want)
				}
			}
		})
	}
}
