package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"golang.org/x/crypto/bcrypt"
)

const wait = 60 * time.Second

var reader = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}

// site writes an inventory and a state for edge acme.hq, starts the edge
// node, and returns the directory, the reader's password and the node.
func site(t *testing.T) (string, string, *edgekit.Node) {
	dir, pass, node, _ := siteConfig(t)
	return dir, pass, node
}

// siteConfig is site that also returns the node's configuration, with
// which the node can be started again.
func siteConfig(t *testing.T) (string, string, *edgekit.Node, edgekit.NodeConfig) {
	t.Helper()
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
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := authz.SaveState(filepath.Join(dir, "state.json"), res.State); err != nil {
		t.Fatal(err)
	}
	if err := authz.WriteSeedFile(filepath.Join(dir, "leaf.seed"), res.Secrets.EdgeSeeds[authz.EdgeKeyID("acme", "hq")]); err != nil {
		t.Fatal(err)
	}
	cfg := edgekit.NodeConfig{
		Org: "acme", Edge: "hq", Inventory: inv, State: res.State,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), MaxFileStore: 64 << 20,
			HubURLs: []string{"nats-leaf://127.0.0.1:1"}, ConfigDir: dir, SeedFile: "leaf.seed"},
	}
	node := startNode(t, cfg)
	return dir, res.Secrets.Passwords[authz.DeviceUser(reader)].Reveal(), node, cfg
}

// startNode starts an edge node of cfg, stopped in cleanup.
func startNode(t *testing.T, cfg edgekit.NodeConfig) *edgekit.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	node, err := edgekit.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	return node
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "gateway.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheck checks a good and a broken configuration with -check.
func TestCheck(t *testing.T) {
	dir, _, node := site(t)
	good := writeConfig(t, dir, `{
  // the edge of this site
  "org": "acme", "edge": "hq", "inventory": "inventory.json", "state": "state.json",
  "edge_urls": ["`+node.ClientURL()+`"], "listen": "127.0.0.1:0", "admin_listen": "off"
}`)
	var stderr bytes.Buffer
	if code := run([]string{"-config", good, "-check"}, &stderr); code != 0 {
		t.Fatalf("-check of a good configuration: exit %d: %s", code, stderr.String())
	}
	for name, body := range map[string]string{
		"unknown key":   `{"org": "acme", "edge": "hq", "inventory": "inventory.json", "state": "state.json", "edge_urls": ["nats://127.0.0.1:4222"], "lisen": "x"}`,
		"no edge_urls":  `{"org": "acme", "edge": "hq", "inventory": "inventory.json", "state": "state.json"}`,
		"bad proxy":     `{"org": "acme", "edge": "hq", "inventory": "inventory.json", "state": "state.json", "edge_urls": ["nats://127.0.0.1:4222"], "trusted_proxies": ["10.0.0.1"]}`,
		"bad edge URL":  `{"org": "acme", "edge": "hq", "inventory": "inventory.json", "state": "state.json", "edge_urls": ["http://x"]}`,
		"missing files": `{"org": "acme", "edge": "hq", "inventory": "nope.json", "state": "state.json", "edge_urls": ["nats://127.0.0.1:4222"]}`,
	} {
		stderr.Reset()
		p := writeConfig(t, t.TempDir(), body)
		if name != "missing files" && name != "unknown key" {
			for _, f := range []string{"inventory.json", "state.json"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				_ = os.WriteFile(filepath.Join(filepath.Dir(p), f), b, 0o600)
			}
		}
		if code := run([]string{"-config", p, "-check"}, &stderr); code != 2 {
			t.Errorf("%s: exit %d, want 2: %s", name, code, stderr.String())
		}
	}
}

// process is a running gateway binary.
type process struct {
	cmd           *exec.Cmd
	exited        chan error
	listen, admin string
	logMu         sync.Mutex
	logged        strings.Builder // every line, for the secrets check
}

// binDir holds the binary the tests build, removed by TestMain.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// gatewayBin builds the binary once per test run.
var gatewayBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "lintel-gateway-bin")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "gateway")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lintel-io/lintel/apps/gateway").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

// startBinary starts the gateway binary on config file cfg, with env
// added to its environment, and waits until it listens.
func startBinary(t *testing.T, cfg string, env []string) *process {
	t.Helper()
	bin, err := gatewayBin()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: exec.Command(bin, "-config", cfg), exited: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan map[string]any, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logMu.Lock()
			p.logged.Write(sc.Bytes())
			p.logged.WriteByte('\n')
			p.logMu.Unlock()
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	timeout := time.After(wait)
	for p.listen == "" {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("gateway exited: %v", <-p.exited)
			}
			if m["msg"] == "gateway started" {
				p.listen, p.admin = m["listen"].(string), m["admin"].(string)
			}
		case <-timeout:
			t.Fatal("gateway did not start")
		}
	}
	go func() {
		for range lines { // keep draining
		}
	}()
	return p
}

// TestBinary builds the gateway, runs it as a process in front of an edge
// node, posts an event through it, and reads its admin endpoints:
// /healthz answers 200 throughout, /readyz 200 with the counters while the
// edge is up, an error while the edge is stopped, and 200 again once the
// edge is back on its address. SIGTERM stops it: exit code 0.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir, pass, node, nodeCfg := siteConfig(t)
	cfg := writeConfig(t, dir, `{"org": "acme", "edge": "hq", "inventory": "inventory.json", "state": "state.json",
  "edge_urls": ["`+node.ClientURL()+`"], "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0"}`)
	p := startBinary(t, cfg, nil)
	listen, admin, cmd, exited := p.listen, p.admin, p.cmd, p.exited
	logMu, logged := &p.logMu, &p.logged

	var ids message.IDGenerator
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: reader, Type: topic.Event, Name: "door.opened"}
	body, err := e.AppendCloudEvent(nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+listen+gateway.PathEvents, bytes.NewReader(body))
	req.Header.Set("Content-Type", message.ContentTypeCloudEventsJSON)
	req.SetBasicAuth(authz.DeviceUser(reader), pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("post: %d", res.StatusCode)
	}
	// A login with a wrong password, which the gateway logs as a security
	// event: neither password may appear in the log.
	wrong := "not-" + pass
	req, _ = http.NewRequest("POST", "http://"+listen+gateway.PathEvents, bytes.NewReader(body))
	req.Header.Set("Content-Type", message.ContentTypeCloudEventsJSON)
	req.SetBasicAuth(authz.DeviceUser(reader), wrong)
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("post with a wrong password: %d, want 401", res.StatusCode)
	}
	if code, body := get(t, admin, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, admin, "/readyz"); code != http.StatusOK || !strings.Contains(body, "Stored") {
		t.Fatalf("/readyz: %d %s", code, body)
	}

	// The edge stops: not ready, though alive; back on its address: ready.
	u, err := url.Parse(node.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	node.Stop()
	code, down := waitStatus(t, admin, "/readyz", func(code int) bool { return code < 200 || code > 299 })
	if !strings.Contains(down, u.Host) {
		t.Errorf("/readyz with the edge down: %d %s; want the edge's address named", code, down)
	}
	if code, body := get(t, admin, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with the edge down: %d %s", code, body)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	nodeCfg.Render.Port = port
	node = startNode(t, nodeCfg)
	if code, body := waitStatus(t, admin, "/readyz", func(code int) bool { return code == http.StatusOK }); !strings.Contains(body, "Stored") {
		t.Errorf("/readyz with the edge back: %d %s", code, body)
	}
	res, err = http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	_, _ = metrics.ReadFrom(res.Body)
	res.Body.Close()
	if !strings.Contains(metrics.String(), "lintel_gateway_stored_total 1") {
		t.Errorf("/metrics lacks the stored event:\n%s", metrics.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("gateway did not stop on SIGTERM")
	}
	logMu.Lock()
	defer logMu.Unlock()
	log := logged.String()
	if !strings.Contains(log, `"`+authz.LogKeySecurity+`":"`+authz.SecurityLoginFailed+`"`) {
		t.Errorf("the refused login is not logged as a security event:\n%s", log)
	}
	for what, secret := range map[string]string{"the device's password": pass, "the wrong password": wrong} {
		if strings.Contains(log, secret) {
			t.Errorf("the gateway logged %s", what)
		}
	}
}

// get requests path of the admin listener at addr and returns the status
// and body.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return res.StatusCode, b.String()
}

// waitStatus requests path until its status satisfies ok, and returns
// that answer; the test fails when none does within wait.
func waitStatus(t *testing.T, addr, path string, ok func(int) bool) (int, string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		code, body := get(t, addr, path)
		if ok(code) {
			return code, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d %s after %v", path, code, body, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBinaryCentral runs the binary in central mode in front of a real
// central: a device marked for the central gateway posts an event, which
// lands in the org's gateway stream, and takes a command central sends it
// by long-poll, whose ack reaches central's hub.
func TestBinaryCentral(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	sensor := topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}
	inv := &authz.Inventory{
		Orgs:   []authz.Org{{Code: "acme"}},
		Edges:  []authz.Edge{{Org: "acme", Code: "hq"}},
		Things: []authz.Thing{{Thing: sensor, CentralGateway: true}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"},
			{Name: "gw", Kind: authz.ServiceGateway, Org: "acme"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(ctx, inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := central.Start(ctx, central.Config{
		Inventory: inv, State: res.State,
		Orgs: map[string]central.OrgSecrets{"acme": {Service: "central",
			Password: res.Secrets.Passwords[authz.ServiceUser("acme", "central")], CommandKey: res.Secrets.CommandSeeds["acme"]}},
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1, StoreDir: t.TempDir(), MaxFileStore: 64 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	dir := t.TempDir()
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := authz.SaveState(filepath.Join(dir, "state.json"), res.State); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, `{"mode": "central", "org": "acme", "inventory": "inventory.json", "state": "state.json",
  "central_urls": ["`+c.ClientURL()+`"], "service": "gw", "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0"}`)
	gwPass := res.Secrets.Passwords[authz.ServiceUser("acme", "gw")].Reveal()
	p := startBinary(t, cfg, []string{"LINTEL_GATEWAY_PASSWORD=" + gwPass})
	pass := res.Secrets.Passwords[authz.DeviceUser(sensor)].Reveal()
	call := func(method, path string, body []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+p.listen+path, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", message.ContentTypeCloudEventsJSON)
		}
		req.SetBasicAuth(authz.DeviceUser(sensor), pass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out bytes.Buffer
		_, _ = out.ReadFrom(res.Body)
		return res.StatusCode, out.Bytes()
	}

	var ids message.IDGenerator
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: sensor, Type: topic.Event, Name: "tamper"}
	body, err := e.AppendCloudEvent(nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, out := call("POST", gateway.PathEvents, body); st != http.StatusOK {
		t.Fatalf("post: %d %s", st, out)
	}
	st, err := c.JetStream("acme").Stream(ctx, topology.GatewayStream("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := st.GetLastMsgForSubject(ctx, sensor.Subject(topic.Event).String()); err != nil || m.Header.Get(message.HeaderMsgID) != e.ID.String() {
		t.Fatalf("the event is not in the gateway stream: %v", err)
	}

	sent, err := c.Hub("acme").SendCommand(ctx, sensor, message.Command{Action: "calibrate",
		Deadline: time.Now().Add(time.Minute), IdempotencyKey: "cal-1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	code, out := call("GET", gateway.PathCommands+"?wait=30s", nil)
	var cmds []map[string]any
	if code != http.StatusOK || json.Unmarshal(out, &cmds) != nil || len(cmds) != 1 || cmds[0]["id"] != sent.ID().String() {
		t.Fatalf("poll: %d %s", code, out)
	}
	a := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: sensor, Type: topic.Ack, Name: message.NameAck, CorrelationID: sent.ID()}
	if err := message.SetPayload(a, message.Ack{CommandID: sent.ID(), Status: message.AckCompleted}); err != nil {
		t.Fatal(err)
	}
	if body, err = a.AppendCloudEvent(nil); err != nil {
		t.Fatal(err)
	}
	if st, out := call("POST", gateway.PathEvents, body); st != http.StatusOK {
		t.Fatalf("post the ack: %d %s", st, out)
	}
	o, err := sent.Wait(ctx)
	if err != nil || o.Status != message.AckCompleted {
		t.Fatalf("outcome %+v: %v", o, err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("gateway did not stop on SIGTERM")
	}
	p.logMu.Lock()
	defer p.logMu.Unlock()
	for what, secret := range map[string]string{"the device's password": pass, "the gateway's password": gwPass} {
		if strings.Contains(p.logged.String(), secret) {
			t.Errorf("the gateway logged %s", what)
		}
	}
}
