// Package deploy_test checks the deployment files of apps/deploy against
// the real tools that read them.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

const wait = 30 * time.Second

// caddy returns the path of the caddy binary; without one the test is
// skipped, or fails when LINTEL_REQUIRE_TOOLS=1.
func caddy(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("caddy")
	if err != nil {
		if os.Getenv("LINTEL_REQUIRE_TOOLS") == "1" {
			t.Fatalf("caddy not found and LINTEL_REQUIRE_TOOLS=1: %v (apt-get install caddy)", err)
		}
		t.Skipf("caddy not found (apt-get install caddy; LINTEL_REQUIRE_TOOLS=1 makes this a failure): %v", err)
	}
	return p
}

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

// TestCaddyfileValid runs `caddy validate` on the Caddyfile.
func TestCaddyfileValid(t *testing.T) {
	bin := caddy(t)
	ca := natstest.TempCA(t)
	cmd := exec.Command(bin, "validate", "--adapter", "caddyfile", "--config", "Caddyfile")
	cmd.Env = caddyEnv(t, ca, "https://localhost:8443", "127.0.0.1:8480")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestEventThroughCaddy runs a real Caddy with the Caddyfile in front of a
// gateway and an edge node, posts an event over TLS through it, and finds
// the event stored in the edge's stream; a command stream through it
// opens. A client sending its own X-Lintel-Client-Cert gets no further.
func TestEventThroughCaddy(t *testing.T) {
	bin := caddy(t)
	thing := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Edges:    []authz.Edge{{Org: "acme", Code: "hq"}},
		Things:   []authz.Thing{{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}},
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
	gw, err := gateway.New(gateway.Config{Org: "acme", Edge: "hq", URLs: []string{node.ClientURL()}, Auth: auth})
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
	cmd.Env = caddyEnv(t, ca, "https://localhost:"+strconv.Itoa(port), ln.Addr().String())
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

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.CertPool(), MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	var ids message.IDGenerator
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: thing, Type: topic.Event, Name: "door.opened"}
	if err := message.SetPayload(e, map[string]string{"door": "front"}); err != nil {
		t.Fatal(err)
	}
	body, err := e.AppendCloudEvent(nil)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://localhost:" + strconv.Itoa(port) + gateway.PathEvents
	deadline := time.Now().Add(wait)
	for {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", message.ContentTypeCloudEventsJSON)
		req.Header.Set("X-Lintel-Client-Cert", "forged")
		req.SetBasicAuth(authz.DeviceUser(thing), res.Secrets.Passwords[authz.DeviceUser(thing)].Reveal())
		resp, err := client.Do(req)
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
