package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/edgekit/access"
)

// TestStartAPI: the api section starts the API on its listener with the
// bootstrap token written; stop ends it.
func TestStartAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inv := &authz.Inventory{Orgs: []authz.Org{{Code: "acme"}}, Edges: []authz.Edge{{Org: "acme", Code: "hq"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"}}}
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(ctx, inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := access.GenerateHashKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := central.Start(ctx, central.Config{Inventory: inv, State: res.State,
		Orgs: map[string]central.OrgSecrets{"acme": {Service: "central", Password: res.Secrets.Passwords[authz.ServiceUser("acme", "central")],
			CommandKey: res.Secrets.CommandSeeds["acme"], HashKey: key}},
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1, StoreDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	a, err := startAPI(ctx, &config.API{Listen: "127.0.0.1:0", BootstrapTokenFile: tokenFile}, 0, c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			a.stop()
		}
	}()
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+a.addr+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me struct {
		Role string `json:"role"`
	}
	err = json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || me.Role != "admin" {
		t.Fatalf("GET /me with the bootstrap token: %d %v %+v", resp.StatusCode, err, me)
	}
	stopped = true
	a.stop()
	if _, err := http.Get("http://" + a.addr + "/api/v1/openapi.json"); err == nil {
		t.Fatal("the API still answers after stop")
	}
}
