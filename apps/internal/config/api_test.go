package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCentral writes a central configuration with its files beside it
// and returns its path.
func writeCentral(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"inventory.json", "state.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "oidc.secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "central.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const centralWithAPI = `{
  "inventory": "inventory.json", "state": "state.json", "secrets_dir": "secrets",
  "store_dir": "store", "plaintext": true,
  "api": {
    "bootstrap_token_file": "secrets/admin.token", "token_login": true,
    // The provider the console logs in with.
    "oidc": {"issuer": "https://login.example.com/realms/acme", "client_id": "lintel",
             "client_secret_file": "secrets/oidc.secret",
             "redirect_url": "https://lintel.example.com/api/v1/auth/callback",
             "role_claim": "groups", "roles": {"lintel-admins": "admin", "staff": "viewer"}}
  }
}`

func TestLoadCentralAPI(t *testing.T) {
	p := writeCentral(t, centralWithAPI)
	c, err := LoadCentral(p)
	if err != nil {
		t.Fatal(err)
	}
	a := c.API
	if a.Listen != DefaultAPIListen || !a.TokenLogin || a.BootstrapTokenFile != filepath.Join(filepath.Dir(p), "secrets", "admin.token") {
		t.Fatalf("defaults and paths: %+v", a)
	}
	if ps := a.Proxies(); len(ps) != 2 || ps[0].String() != "127.0.0.1/32" || ps[1].String() != "::1/128" {
		t.Fatalf("trusted proxies default to loopback: %v", ps)
	}
	if a.OIDC.ClientSecret().Reveal() != "s3cret" || a.OIDC.RoleClaim != "groups" || a.OIDC.Roles["lintel-admins"] != "admin" {
		t.Fatalf("oidc: %+v", a.OIDC)
	}
}

func TestLoadCentralAPIErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		`"listen": "nowhere"`: "api.listen",
		`"oidc": {"issuer": "login.example.com", "client_id": "x"}`:                                                                         "api.oidc.issuer",
		`"oidc": {"issuer": "https://login.example.com"}`:                                                                                   "api.oidc.client_id",
		`"oidc": {"issuer": "https://l.example.com", "client_id": "x", "redirect_url": "https://c/cb"}`:                                     "api.oidc.client_secret_file",
		`"oidc": {"issuer": "https://l.example.com", "client_id": "x", "roles": {"g": "root"}}`:                                             "api.oidc.roles.g",
		`"oidc": {"issuer": "https://l.example.com", "client_id": "x", "redirect_url": "/cb", "client_secret_file": "secrets/oidc.secret"}`: "api.oidc.redirect_url",
		`"stale_after": "-1s"`:            "api.stale_after",
		`"trusted_proxies": ["10.0.0.1"]`: "api.trusted_proxies[0]",
		`"operator_audit_max_age": "-1h"`: "api.operator_audit_max_age",
		`"listn": "127.0.0.1:1"`:          "listn",
	}
	for api, field := range cases {
		body := `{"inventory": "inventory.json", "state": "state.json", "secrets_dir": "secrets", "store_dir": "s", "plaintext": true, "api": {` + api + `}}`
		_, err := LoadCentral(writeCentral(t, body))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("api {%s}: %v, want an error naming %s", api, err, field)
		}
	}
}

func TestLoadCentralDatabaseMaintenance(t *testing.T) {
	t.Setenv("LINTEL_CENTRAL_DATABASE_URL", "postgres://lintel@db.example.com/lintel")
	load := func(db string) (*Central, error) {
		body := `{"inventory": "inventory.json", "state": "state.json", "secrets_dir": "secrets", "store_dir": "s", "plaintext": true, "database": {` + db + `}}`
		return LoadCentral(writeCentral(t, body))
	}
	c, err := load(`"retention": "720h", "maintenance": {"every": "10m", "refresh_window": "48h"}`)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Database.Maintenance.Config(c.Database.Retention)
	if m == nil || m.Every != 10*time.Minute || m.Retention != 720*time.Hour || m.RefreshWindow != 48*time.Hour || m.CompressAfter != 0 {
		t.Fatalf("maintenance config %+v", m)
	}
	if c, err = load(``); err != nil || c.Database.Maintenance.Config(c.Database.Retention) == nil {
		t.Fatalf("default: %v; central maintains its database unless told otherwise", err)
	}
	if c, err = load(`"maintenance": {"scheduler": true}`); err != nil || c.Database.Maintenance.Config(c.Database.Retention) != nil {
		t.Fatalf("scheduler: %v; want no maintenance by central", err)
	}
	for db, field := range map[string]string{
		`"maintenance": {"every": "-1m"}`:                       "database.maintenance",
		`"maintenance": {"refresh_window": "1h"}`:               "database.maintenance.refresh_window",
		`"maintenance": {"scheduler": true, "every": "1h"}`:     "database.maintenance",
		`"maintenance": {"scheduler": true}, "retention": "1h"`: "database.retention",
		`"maintenance": {"evry": "1h"}`:                         "evry",
	} {
		if _, err := load(db); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("database {%s}: %v, want an error naming %s", db, err, field)
		}
	}
}
