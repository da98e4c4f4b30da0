package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/internal/freeaddr"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/pgtest"
)

// binaries holds the apps built once for the package's tests.
var binaries struct {
	once sync.Once
	dir  string
	err  error
}

// buildApps builds central, edge, gateway and lintelctl into a temporary directory
// (removed by TestMain) and returns it.
func buildApps(t testing.TB) string {
	t.Helper()
	binaries.once.Do(func() {
		if binaries.dir, binaries.err = os.MkdirTemp("", "lintel-deploy-bin"); binaries.err != nil {
			return
		}
		for _, app := range []string{"central", "edge", "gateway", "lintelctl"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binaries.dir, app), "github.com/lintel-io/lintel/apps/"+app)
			if out, err := cmd.CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("go build %s: %v\n%s", app, err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// eventually polls cond until it holds or the wait is over.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// system is central, one edge (org acme, edge hq) and an HTTP gateway at
// the edge, each its own process, rendered by lintelctl.
type system struct {
	dir                                   string // lintelctl render's output
	centralAdmin, edgeAdmin, gatewayAdmin string
}

func freeAddr(t testing.TB) string {
	t.Helper()
	return freeaddr.Loopback(t)
}

// editJSON sets keys of the configuration file at path.
func editJSON(t testing.TB, path string, set map[string]any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(config.StripComments(b), &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for k, v := range set {
		m[k] = v
	}
	if b, err = json.MarshalIndent(m, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runSystem renders org acme with edge hq, a reader and a lock, starts
// central (with a PostgreSQL database when withDB) and the edge, and
// returns once both are ready and the edge is linked.
func runSystem(t *testing.T, withDB bool) *system {
	t.Helper()
	bin := buildApps(t)
	root := t.TempDir()
	inv := filepath.Join(root, "inventory.json")
	if err := os.WriteFile(inv, []byte(`{
  "orgs": [{"code": "acme"}],
  "edges": [{"org": "acme", "code": "hq"}],
  "services": [{"name": "central", "kind": "central", "org": "acme"}],
  "things": [{"org": "acme", "edge": "hq", "type": "reader", "code": "r1"},
             {"org": "acme", "edge": "hq", "type": "lock", "code": "l1"}]
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &system{dir: filepath.Join(root, "deploy"), centralAdmin: freeAddr(t), edgeAdmin: freeAddr(t), gatewayAdmin: freeAddr(t)}
	if out, err := exec.Command(filepath.Join(bin, "lintelctl"), "render", "--inventory", inv, "--out", s.dir, "--cost", "4").CombinedOutput(); err != nil {
		t.Fatalf("lintelctl render: %v\n%s", err, out)
	}
	ca := natstest.TempCA(t)
	tls := map[string]string{"cert_file": ca.ServerCertFile, "key_file": ca.ServerKeyFile}
	leaf := freeAddr(t)
	var database any
	if withDB {
		db := pgtest.NewDB(t)
		if err := os.WriteFile(filepath.Join(s.dir, "central/secrets/database.url"), []byte(db.DSN+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		database = map[string]any{"url_file": "secrets/database.url"}
	}
	editJSON(t, filepath.Join(s.dir, "central/central.json"), map[string]any{
		"store_dir": filepath.Join(root, "central-store"), "listen": freeAddr(t), "leaf_listen": leaf,
		"tls": tls, "leaf_tls": tls, "admin_listen": s.centralAdmin, "database": database,
	})
	devices := freeAddr(t)
	editJSON(t, filepath.Join(s.dir, "edges/acme-hq/edge.json"), map[string]any{
		"store_dir": filepath.Join(root, "edge-store"), "listen": devices,
		"hub_urls": []string{"nats-leaf://" + leaf}, "tls": tls, "hub_tls": map[string]string{"ca_file": ca.CAFile},
		"admin_listen": s.edgeAdmin,
	})
	startApp(t, filepath.Join(bin, "central"), "-config", filepath.Join(s.dir, "central/central.json"))
	startApp(t, filepath.Join(bin, "edge"), "-config", filepath.Join(s.dir, "edges/acme-hq/edge.json"))
	gateway := filepath.Join(s.dir, "edges/acme-hq/gateway.json")
	b, err := json.Marshal(map[string]any{
		"org": "acme", "edge": "hq", "inventory": "inventory.json", "state": "state.json",
		"edge_urls": []string{"tls://" + devices}, "edge_ca_file": ca.CAFile,
		"listen": freeAddr(t), "admin_listen": s.gatewayAdmin, "log": map[string]string{"format": "json"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gateway, b, 0o600); err != nil {
		t.Fatal(err)
	}
	startApp(t, filepath.Join(bin, "gateway"), "-config", gateway)
	linked := func() bool {
		body, err := httpGet("http://" + s.edgeAdmin + "/readyz")
		return err == nil && strings.Contains(body, `"link_up":true`) && readyz(s.centralAdmin) && readyz(s.gatewayAdmin)
	}
	if !eventually(linked) {
		t.Fatal("central, the edge and the gateway not ready, and the edge linked, in time")
	}
	return s
}

func readyz(addr string) bool {
	body, err := httpGet("http://" + addr + "/readyz")
	return err == nil && strings.Contains(body, `"status":"ready"`)
}

// startApp runs binary with args until the test ends; its stderr is
// logged when the test fails.
func startApp(t *testing.T, binary string, args ...string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(wait):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("%s stderr:\n%s", filepath.Base(binary), logs.String())
			mu.Unlock()
		}
	})
}

// secretValues returns the contents of every secret file lintelctl render
// wrote under dir (passwords, seeds, hash keys), trimmed.
func secretValues(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".password", ".seed", ".key":
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if s := strings.TrimSpace(string(b)); len(s) >= 8 {
				out = append(out, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no secrets under %s", dir)
	}
	return out
}
