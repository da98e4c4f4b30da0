package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeGateway writes a gateway configuration with its inventory, state
// and the service's password (mode 0600) beside it, and returns its path.
func writeGateway(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"inventory.json", "state.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "gw.password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "open.password"), []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "gateway.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const centralGateway = `{
  "mode": "central", "org": "acme",
  "inventory": "inventory.json", "state": "state.json",
  "central_urls": ["tls://10.42.0.1:4222"],
  "service": "gw", "password_file": "gw.password"
}`

// TestLoadGatewayCentralMode: a central gateway needs central's URLs, its
// service and its password (from a file of mode 0600, or the environment),
// and no edge; the mode is edge by default and nothing else.
func TestLoadGatewayCentralMode(t *testing.T) {
	t.Setenv("LINTEL_GATEWAY_PASSWORD", "")
	g, err := LoadGateway(writeGateway(t, centralGateway))
	if err != nil {
		t.Fatal(err)
	}
	if !g.Central() || g.Password().Reveal() != "s3cret" || len(g.URLs()) != 1 || g.URLs()[0] != "tls://10.42.0.1:4222" {
		t.Fatalf("central gateway: %+v, password set %v", g, !g.Password().IsZero())
	}

	edge, err := LoadGateway(writeGateway(t, `{"org": "acme", "edge": "hq", "inventory": "inventory.json", "state": "state.json",
		"edge_urls": ["nats://127.0.0.1:4222"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if edge.Central() || edge.Mode != GatewayModeEdge || edge.URLs()[0] != "nats://127.0.0.1:4222" {
		t.Fatalf("edge gateway: %+v", edge)
	}

	bad := []struct{ name, from, to, field string }{
		{"no central URLs", `"central_urls": ["tls://10.42.0.1:4222"],`, "", "central_urls"},
		{"bad central URL", `"tls://10.42.0.1:4222"`, `"http://x"`, "central_urls[0]"},
		{"no service", `"service": "gw", `, "", "service"},
		{"no password file", `, "password_file": "gw.password"`, "", "password_file"},
		{"password readable by others", `"gw.password"`, `"open.password"`, "password_file"},
		{"an edge", `"org": "acme",`, `"org": "acme", "edge": "hq",`, "edge"},
		{"unknown mode", `"central"`, `"cloud"`, "mode"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadGateway(writeGateway(t, strings.Replace(centralGateway, c.from, c.to, 1)))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.field+":") {
				t.Fatalf("got %v, want an error naming %s", err, c.field)
			}
		})
	}

	t.Setenv("LINTEL_GATEWAY_PASSWORD", "from-env")
	g, err = LoadGateway(writeGateway(t, strings.Replace(centralGateway, `, "password_file": "gw.password"`, "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if g.Password().Reveal() != "from-env" {
		t.Fatal("LINTEL_GATEWAY_PASSWORD not used")
	}
}
