package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeEdge writes an edge configuration with its files beside it and
// returns its path.
func writeEdge(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"inventory.json", "state.json", "ca.pem", "cert.pem", "key.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{EdgeLeafSeed, EdgeAuditSeed, EdgeCommandSeed, EdgeHashKey} {
		if err := os.WriteFile(filepath.Join(dir, "secrets", f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "edge.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodEdge = `{
  // The site.
  "org": "acme", "edge": "hq",
  "inventory": "inventory.json", "state": "state.json", "secrets_dir": "secrets",
  "store_dir": "store",
  // Central, pinned to its CA.
  "hub_urls": ["nats-leaf://10.42.0.1:7422"],
  "hub_tls": {"ca_file": "ca.pem"},
  "tls": {"cert_file": "cert.pem", "key_file": "key.pem"}
}`

func TestLoadEdgeDefaultsAndPaths(t *testing.T) {
	p := writeEdge(t, goodEdge)
	e, err := LoadEdge(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if e.Listen != DefaultEdgeListen || e.Admin != DefaultEdgeAdmin || !*e.Access || !*e.Rules {
		t.Fatalf("defaults not applied: %+v", e)
	}
	if e.StoreDir != filepath.Join(dir, "store") || e.HubTLS.CAFile != filepath.Join(dir, "ca.pem") || e.TLS.KeyFile != filepath.Join(dir, "key.pem") {
		t.Fatalf("paths not resolved against the file's directory: %+v", e)
	}
}

func TestLoadEdgeEnvironment(t *testing.T) {
	p := writeEdge(t, goodEdge)
	t.Setenv("LINTEL_EDGE_LISTEN", "127.0.0.1:14222")
	t.Setenv("LINTEL_EDGE_LOG_LEVEL", "debug")
	e, err := LoadEdge(p)
	if err != nil {
		t.Fatal(err)
	}
	if e.Listen != "127.0.0.1:14222" || e.Log.Level != "debug" {
		t.Fatalf("environment not applied: listen %q, level %q", e.Listen, e.Log.Level)
	}
	t.Setenv("LINTEL_EDGE_PLAINTEXT", "maybe")
	if _, err := LoadEdge(p); err == nil || !strings.Contains(err.Error(), "LINTEL_EDGE_PLAINTEXT") {
		t.Fatalf("bad boolean in the environment: %v", err)
	}
}

func TestLoadEdgeErrorsNameFileAndField(t *testing.T) {
	cases := []struct{ name, key, value, want string }{
		{"unknown key", "colour", `"blue"`, `unknown field "colour"`},
		{"wrong type", "org", `7`, "field org: want string"},
		{"bad listen", "listen", `"4222"`, "listen: want host:port"},
		{"no TLS", "tls", `null`, "tls: required unless plaintext is true"},
		{"bad hub URL", "hub_urls", `["10.0.0.1"]`, "hub_urls[0]"},
		{"missing secrets", "secrets_dir", `"nope"`, "secrets_dir"},
		{"bad level", "log", `{"level": "loud"}`, "log.level"},
		{"bad duration", "log", `{"level": 3}`, "log.level"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(StripComments([]byte(goodEdge)), &m); err != nil {
				t.Fatal(err)
			}
			m[c.key] = json.RawMessage(c.value)
			body, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			p := writeEdge(t, string(body))
			_, err = LoadEdge(p)
			if err == nil {
				t.Fatalf("accepted:\n%s", body)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name %q and the file", err, c.want)
			}
		})
	}
	for _, c := range []struct{ name, body, want string }{
		{"trailing data", goodEdge + "{}", "data after the configuration object"},
		{"syntax", "{\n  \"org\": ,\n}", "line 2"},
		{"empty", "", "empty or truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeEdge(t, c.body)
			if _, err := LoadEdge(p); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestReadSecretRefusesOpenModes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(p, []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecret(p); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a world-readable secret: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSecret(p)
	if err != nil || s.Reveal() != "seed" {
		t.Fatalf("secret %q, %v", s.Reveal(), err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(goodEdge))
	f.Add([]byte("// only a comment\n{}"))
	f.Add([]byte(`{"org": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Edge
		err := Decode(data, &e)
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

func TestLoadContext(t *testing.T) {
	dir := t.TempDir()
	for f, mode := range map[string]os.FileMode{"ops.password": 0o600, "open.password": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("pw\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	good := &Context{Servers: []string{"nats://127.0.0.1:4222"}, Org: "acme", User: "_svc.acme.ops", PasswordFile: "ops.password"}
	path := filepath.Join(dir, "ctx.json")
	if err := WriteContext(path, good); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("context file mode: %v %v", fi.Mode(), err)
	}
	c, err := LoadContext(path)
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := c.Password(); err != nil || pw.Reveal() != "pw" {
		t.Fatalf("password relative to the file: %q %v", pw.Reveal(), err)
	}
	for what, f := range map[string]func() error{
		"command_seed_file": func() error { _, err := c.CommandKey(); return err },
		"hash_key_file":     func() error { _, err := c.HashKey(); return err },
		"inventory_file":    func() error { _, err := c.Inventory(); return err },
	} {
		if err := f(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), what+" is not set") {
			t.Errorf("%s missing: %v", what, err)
		}
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"servers": ["127.0.0.1:4222"], "password_file": "nope", "hash_key_file": "nope.key", "extra": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadContext(bad); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("unknown field: %v", err)
	}
	if err := os.WriteFile(bad, []byte(`{"servers": ["127.0.0.1:4222"], "password_file": "nope", "hash_key_file": "nope.key"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadContext(bad)
	for _, want := range []string{"servers[0]", "org", "user", "password_file", "hash_key_file", "bad.json"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadContext of a broken context: %v; want %q named", err, want)
		}
	}
	open := *good
	open.PasswordFile = "open.password"
	if err := WriteContext(path, &open); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadContext(path); err != nil {
		t.Fatal(err)
	} else if _, err := c.Password(); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a world-readable password: %v", err)
	}
}
