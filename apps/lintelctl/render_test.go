package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// deployment is a starter inventory in a temporary directory, with the
// directory render writes into.
type deployment struct {
	dir, inventory, state, out string
}

func newDeployment(t *testing.T) deployment {
	t.Helper()
	dir := t.TempDir()
	d := deployment{dir: dir, inventory: filepath.Join(dir, "inventory.json"),
		state: filepath.Join(dir, "state.json"), out: filepath.Join(dir, "out")}
	mustRun(t, "init", "--out", d.inventory)
	return d
}

// render renders d at bcrypt cost 4 and returns the JSON summary.
func (d deployment) render(t *testing.T, extra ...string) renderReport {
	t.Helper()
	r := mustRun(t, append([]string{"render", "--inventory", d.inventory, "--out", d.out, "--cost", "4", "--output", "json"}, extra...)...)
	var rep renderReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("render --output json printed %q: %v", r.stdout, err)
	}
	return rep
}

// editInventory replaces old with new in d's inventory.
func (d deployment) editInventory(t *testing.T, old, new string) {
	t.Helper()
	b, err := os.ReadFile(d.inventory)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("inventory lacks %q", old)
	}
	if err := os.WriteFile(d.inventory, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// secretFiles returns the content of every file under the secret
// directories of out, by path relative to out.
func secretFiles(t *testing.T, out string) map[string]string {
	t.Helper()
	files := make(map[string]string)
	err := filepath.WalkDir(out, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		if strings.Contains(rel, "/secrets/") || strings.HasPrefix(rel, "devices/") || strings.HasPrefix(rel, "services/") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", path, got, want)
	}
}

// readSecret returns a secret file's content without its newline.
func readSecret(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func TestRenderWritesLayout(t *testing.T) {
	d := newDeployment(t)
	rep := d.render(t)

	st, err := authz.LoadState(d.state)
	if err != nil {
		t.Fatalf("authz.LoadState: %v", err)
	}
	inv, err := config.LoadInventory(d.inventory)
	if err != nil {
		t.Fatal(err)
	}
	users, edgeKeys := inv.Identities()
	if got, want := rep.Created, slices.Sorted(slices.Values(append(slices.Clone(users), edgeKeys...))); !slices.Equal(got, want) {
		t.Errorf("created %v, want every identity %v", got, want)
	}
	if len(st.Passwords) != len(users) || len(st.EdgeKeys) != 1 {
		t.Fatalf("state holds %d passwords and %d edge keys, want %d and 1", len(st.Passwords), len(st.EdgeKeys), len(users))
	}
	wantMode(t, d.state, 0o600)

	central := filepath.Join(d.out, "central")
	secrets := filepath.Join(central, "secrets")
	edge := filepath.Join(d.out, "edges", "acme-hq")
	edgeSecrets := filepath.Join(edge, "secrets")
	devices := filepath.Join(d.out, "devices", "acme-hq")
	for _, dir := range []string{secrets, edgeSecrets, devices, filepath.Join(d.out, "services")} {
		wantMode(t, dir, 0o700)
	}
	files := secretFiles(t, d.out)
	for rel := range files {
		wantMode(t, filepath.Join(d.out, rel), 0o600)
	}
	if got, want := len(files), len(rep.Secrets); got != want {
		t.Errorf("%d secret files on disk, %d reported written", got, want)
	}

	// Central's password is its service user's, and matches the state.
	user := authz.ServiceUser("acme", "central")
	pw := readSecret(t, filepath.Join(secrets, config.CentralPasswordFile(user)))
	if !st.Passwords[user].Verify(pw, st.Passwords[user].Created) {
		t.Errorf("central's password file does not match the state's hash of %s", user)
	}
	// Every device's password matches its hash.
	for _, th := range inv.Things {
		u := th.Org + "." + th.Edge + "." + th.Type + "." + th.Code
		pw := readSecret(t, filepath.Join(devices, u+".password"))
		if bcrypt.CompareHashAndPassword([]byte(st.Passwords[u].Hash), []byte(pw)) != nil {
			t.Errorf("password file of %s does not match the state", u)
		}
	}
	// The edge service's password is handed out under services/.
	if _, err := os.Stat(filepath.Join(d.out, "services", authz.EdgeServiceUser("acme", "hq")+".password")); err != nil {
		t.Errorf("edge service password: %v", err)
	}
	// Seeds are the keys whose public halves the state holds.
	id := authz.EdgeKeyID("acme", "hq")
	for _, c := range []struct {
		file, pub string
	}{
		{filepath.Join(edgeSecrets, config.EdgeLeafSeed), st.EdgeKeys[id].PublicKey},
		{filepath.Join(edgeSecrets, config.EdgeAuditSeed), st.AuditKeys[id].PublicKey},
		{filepath.Join(edgeSecrets, config.EdgeCommandSeed), st.CommandKeys[id].PublicKey},
		{filepath.Join(secrets, config.CentralCommandSeed("acme")), st.CommandKeys["acme"].PublicKey},
	} {
		kp, err := nkeys.FromSeed([]byte(readSecret(t, c.file)))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if pub, _ := kp.PublicKey(); pub != c.pub {
			t.Errorf("%s: public key %s, the state holds %s", c.file, pub, c.pub)
		}
	}
	// Central and the edge share the org's hash key.
	ck, err := access.ReadHashKey(filepath.Join(secrets, config.CentralHashKey("acme")))
	if err != nil {
		t.Fatal(err)
	}
	ek, err := access.ReadHashKey(filepath.Join(edgeSecrets, config.EdgeHashKey))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ck, ek) {
		t.Error("the edge's hash key differs from central's")
	}
	// The copies are the inventory and the state.
	for _, dir := range []string{central, edge} {
		if _, err := config.LoadInventory(filepath.Join(dir, "inventory.json")); err != nil {
			t.Errorf("inventory copy: %v", err)
		}
		cp, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		orig, _ := os.ReadFile(d.state)
		if !bytes.Equal(cp, orig) {
			t.Errorf("%s/state.json is not a copy of the state", dir)
		}
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings on a first render: %v", rep.Warnings)
	}
}

func TestRenderedConfigsLoad(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	central := filepath.Join(d.out, "central", "central.json")
	edge := filepath.Join(d.out, "edges", "acme-hq", "edge.json")

	// Until the operator supplies the certificates, the apps refuse to
	// start, naming the field.
	if _, err := config.LoadCentral(central); err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Fatalf("LoadCentral without certificates: %v, want an error naming tls.cert_file", err)
	}
	if _, err := config.LoadEdge(edge); err == nil || !strings.Contains(err.Error(), "hub_tls.ca_file") {
		t.Fatalf("LoadEdge without certificates: %v, want an error naming hub_tls.ca_file", err)
	}
	for _, f := range []string{
		filepath.Join(d.out, "central", "tls", "central.crt"), filepath.Join(d.out, "central", "tls", "central.key"),
		filepath.Join(d.out, "edges", "acme-hq", "tls", "edge.crt"), filepath.Join(d.out, "edges", "acme-hq", "tls", "edge.key"),
		filepath.Join(d.out, "edges", "acme-hq", "tls", "central-ca.crt"),
	} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("PEM\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := config.LoadCentral(central)
	if err != nil {
		t.Fatalf("LoadCentral: %v", err)
	}
	if c.Secrets != filepath.Join(d.out, "central", "secrets") || c.StoreDir != "/var/db/lintel/central" || c.Plaintext {
		t.Errorf("central.json: secrets_dir %s, store_dir %s, plaintext %v", c.Secrets, c.StoreDir, c.Plaintext)
	}
	if _, err := config.LoadInventory(c.Inventory); err != nil {
		t.Errorf("central's inventory: %v", err)
	}
	if _, err := authz.LoadState(c.State); err != nil {
		t.Errorf("central's state: %v", err)
	}
	e, err := config.LoadEdge(edge)
	if err != nil {
		t.Fatalf("LoadEdge: %v", err)
	}
	if e.Org != "acme" || e.Edge != "hq" || !slices.Equal(e.HubURLs, []string{"nats-leaf://central.example:7422"}) {
		t.Errorf("edge.json: org %s, edge %s, hub_urls %v", e.Org, e.Edge, e.HubURLs)
	}

	// The configuration files are the operator's: render leaves them be.
	edited := []byte("{\"edited\": true}\n")
	if err := os.WriteFile(central, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	d.render(t)
	if b, _ := os.ReadFile(central); !bytes.Equal(b, edited) {
		t.Error("a second render overwrote central.json")
	}
}

func TestRenderAgainWritesOnlyWhatIsNew(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	before := secretFiles(t, d.out)

	// One device added: only its password is written.
	d.editInventory(t, `"things": [`, `"things": [
    {"org": "acme", "edge": "hq", "type": "sensor", "code": "attic-env"},`)
	rep := d.render(t)
	const added = "acme.hq.sensor.attic-env"
	if !slices.Equal(rep.Created, []string{added}) || len(rep.Removed) != 0 || len(rep.Rotated) != 0 {
		t.Fatalf("second render: created %v, rotated %v, removed %v; want created [%s] only", rep.Created, rep.Rotated, rep.Removed, added)
	}
	wantFile := "devices/acme-hq/" + added + ".password"
	if !slices.Equal(rep.Secrets, []string{wantFile}) {
		t.Fatalf("second render wrote secrets %v, want [%s]", rep.Secrets, wantFile)
	}
	after := secretFiles(t, d.out)
	for rel, v := range before {
		if after[rel] != v {
			t.Errorf("%s changed on the second render", rel)
		}
	}
	if len(after) != len(before)+1 || after[wantFile] == "" {
		t.Fatalf("after the second render %d secret files, want %d with %s", len(after), len(before)+1, wantFile)
	}
	st, err := authz.LoadState(d.state)
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword([]byte(st.Passwords[added].Hash), []byte(strings.TrimSpace(after[wantFile]))) != nil {
		t.Error("the new device's password does not match the state")
	}

	// One device removed: reported, revoked from the state, nothing written.
	d.editInventory(t, `{"org": "acme", "edge": "hq", "type": "sensor", "code": "lobby-env", "name": "Lobby temperature", "mqtt": true}`,
		`{"org": "acme", "edge": "hq", "type": "sensor", "code": "hall-env"}`)
	rep = d.render(t)
	if !slices.Equal(rep.Removed, []string{"acme.hq.sensor.lobby-env"}) || !slices.Equal(rep.Created, []string{"acme.hq.sensor.hall-env"}) {
		t.Fatalf("third render: created %v, removed %v; want hall-env created, lobby-env removed", rep.Created, rep.Removed)
	}
	st, err = authz.LoadState(d.state)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Passwords["acme.hq.sensor.lobby-env"]; ok {
		t.Error("the removed device is still in the state")
	}

	// The table says the same.
	r := mustRun(t, "render", "--inventory", d.inventory, "--out", d.out, "--cost", "4")
	if !strings.Contains(r.stdout, "ACTION") || !strings.Contains(r.stdout, "0 created, 0 rotated, 0 removed; 0 secret files") {
		t.Errorf("table summary of an unchanged render:\n%s", r.stdout)
	}
}

func TestRenderTableSummary(t *testing.T) {
	d := newDeployment(t)
	r := mustRun(t, "render", "--inventory", d.inventory, "--out", d.out, "--cost", "4")
	for _, want := range []string{
		"created  device        acme.hq.reader.front-in",
		"created  edge-key      acme.hq",
		"created  service       _svc.acme.central",
		"wrote    secret        devices/acme-hq/acme.hq.reader.front-in.password",
		"wrote    file          central/central.json",
		"state saved to " + d.state,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestRenderRejectsBadInventory(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		want           []string // in the error
	}{
		{"syntax", `"orgs": [`, `"orgs": [[`, []string{"inventory.json"}},
		{"unknown key", `{"code": "acme", "name"`, `{"kode": "acme", "name"`, []string{`unknown key "kode"`, `did you mean "code"`}},
		{"dangling door reader", `"readers": ["front-in"]`, `"readers": ["back-in"]`, []string{"back-in"}},
		{"no central service", `{"name": "central", "kind": "central", "org": "acme"}`,
			`{"name": "ops", "kind": "operator", "org": "acme"}`, []string{`org "acme" has no central service`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment(t)
			d.editInventory(t, tc.old, tc.new)
			r := lintelctl(t, "render", "--inventory", d.inventory, "--out", d.out, "--cost", "4")
			if r.code != exitError {
				t.Fatalf("exit %d (%v), want %d", r.code, r.err, exitError)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error %q does not name the problem (%q)", r.stderr, w)
				}
			}
			for _, p := range []string{d.out, d.state} {
				if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s written by a failed render (%v)", p, err)
				}
			}
		})
	}
}

func TestRenderRefusesSharedEdgeDirectory(t *testing.T) {
	d := newDeployment(t)
	d.editInventory(t, `{"code": "acme", "name": "Acme Corporation"}`, `{"code": "acme"}, {"code": "acme-hq"}`)
	d.editInventory(t, `"edges": [`, `"edges": [
    {"org": "acme-hq", "code": "x"}, {"org": "acme", "code": "hq-x"},`)
	d.editInventory(t, `"services": [`, `"services": [
    {"name": "central", "kind": "central", "org": "acme-hq"},`)
	r := lintelctl(t, "render", "--inventory", d.inventory, "--out", d.out, "--cost", "4")
	if r.code != exitError || !strings.Contains(r.stderr, "edges/acme-hq-x") {
		t.Fatalf("exit %d, stderr %q; want an error naming edges/acme-hq-x", r.code, r.stderr)
	}
}

func TestRenderRefusesToRekeyWithoutState(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	before := secretFiles(t, d.out)
	if err := os.Rename(d.state, d.state+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	r := lintelctl(t, "render", "--inventory", d.inventory, "--out", d.out, "--cost", "4")
	if r.code != exitError || !strings.Contains(r.stderr, "--state") || !strings.Contains(r.stderr, d.state) {
		t.Fatalf("render without its state: exit %d, stderr %q; want an error naming the state file", r.code, r.stderr)
	}
	if after := secretFiles(t, d.out); len(after) != len(before) {
		t.Fatalf("refused render changed the secrets")
	}
	// With --state pointing at it, all is well and nothing is re-keyed.
	rep := d.render(t, "--state", d.state+".elsewhere")
	if len(rep.Created) != 0 || len(rep.Secrets) != 0 {
		t.Fatalf("render with the state moved: created %v, secrets %v; want nothing new", rep.Created, rep.Secrets)
	}
}

func TestRenderWarnsOfMissingSecrets(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	leaf := filepath.Join(d.out, "edges", "acme-hq", "secrets", config.EdgeLeafSeed)
	if err := os.Remove(leaf); err != nil {
		t.Fatal(err)
	}
	rep := d.render(t)
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "edges/acme-hq/secrets/leaf.seed is missing") {
		t.Fatalf("warnings %v, want one about the missing leaf.seed", rep.Warnings)
	}
}

func TestRenderRefusesDifferentHashKeys(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	other, err := access.GenerateHashKey()
	if err != nil {
		t.Fatal(err)
	}
	edgeKey := filepath.Join(d.out, "edges", "acme-hq", "secrets", config.EdgeHashKey)
	if err := access.WriteHashKey(edgeKey, other); err != nil {
		t.Fatal(err)
	}
	r := lintelctl(t, "render", "--inventory", d.inventory, "--out", d.out, "--cost", "4")
	if r.code != exitError || !strings.Contains(r.stderr, edgeKey) {
		t.Fatalf("exit %d, stderr %q; want an error naming %s", r.code, r.stderr, edgeKey)
	}
}

func TestRenderKeepsTheHashKey(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	path := filepath.Join(d.out, "central", "secrets", config.CentralHashKey("acme"))
	k1, err := access.ReadHashKey(path)
	if err != nil {
		t.Fatal(err)
	}
	// Central's copy lost: the edge's copy brings it back, not a new key.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	d.render(t)
	k2, err := access.ReadHashKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("render made a new hash key for an org that had one")
	}
}

func TestRenderProgressOnTerminal(t *testing.T) {
	d := newDeployment(t)
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr, terminal: true}
	if err := a.execute(context.Background(), []string{"render", "--inventory", d.inventory, "--out", d.out, "--cost", "4"}); err != nil {
		t.Fatalf("render: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "hashing passwords") {
		t.Fatalf("no progress bar on a terminal; stderr:\n%q", stderr.String())
	}
	if strings.Contains(stdout.String(), "hashing") {
		t.Fatal("progress went to stdout")
	}
}

func TestRenderInterrupted(t *testing.T) {
	d := newDeployment(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"render", "--inventory", d.inventory, "--out", d.out, "--cost", "4"}, &stdout, &stderr)
	if exitCode(err) != exitError || !strings.Contains(stderr.String(), "nothing written") {
		t.Fatalf("interrupted render: %v, stderr %q", err, stderr.String())
	}
	if _, err := os.Stat(d.state); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("interrupted render wrote the state (%v)", err)
	}
}

// TestRenderLinksNebulaPlan: with nebula-plan.json beside the inventory,
// the configurations render writes put central's leaf listener on its
// overlay address and point each edge at every central node's, on the
// plan's leaf port; a plan that does not fit the inventory is refused,
// naming it, and nothing is written; --nebula-plan names another file.
func TestRenderLinksNebulaPlan(t *testing.T) {
	d := newDeployment(t)
	plan := filepath.Join(d.dir, "nebula-plan.json")
	if err := os.WriteFile(plan, []byte(`{"network": "10.42.0.0/16",
		"central": [{"name": "central-1", "ip": "10.42.0.2", "lighthouse": true, "public": "203.0.113.10:4242"}, {"name": "central-2", "ip": "10.42.0.3"}],
		"edges": {"acme.hq": "10.42.1.1"}, "ports": {"leaf": 7500}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d.render(t)
	central, err := os.ReadFile(filepath.Join(d.out, "central", "central.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		LeafListen string `json:"leaf_listen"`
	}
	if err := json.Unmarshal(config.StripComments(central), &c); err != nil || c.LeafListen != "10.42.0.2:7500" {
		t.Errorf("central.json: leaf_listen %q (%v), want 10.42.0.2:7500", c.LeafListen, err)
	}
	edge := filepath.Join(d.out, "edges", "acme-hq", "edge.json")
	for _, f := range []string{filepath.Join(d.out, "edges", "acme-hq", "tls", "edge.crt"), filepath.Join(d.out, "edges", "acme-hq", "tls", "edge.key"),
		filepath.Join(d.out, "edges", "acme-hq", "tls", "central-ca.crt")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("PEM\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e, err := config.LoadEdge(edge)
	if err != nil {
		t.Fatalf("LoadEdge: %v", err)
	}
	if want := []string{"nats-leaf://10.42.0.2:7500", "nats-leaf://10.42.0.3:7500"}; !slices.Equal(e.HubURLs, want) {
		t.Errorf("edge.json: hub_urls %v, want %v", e.HubURLs, want)
	}

	// A plan that lacks an edge of the inventory is refused before
	// anything is written.
	d2 := newDeployment(t)
	if err := os.WriteFile(filepath.Join(d2.dir, "nebula-plan.json"), []byte(`{"network": "10.42.0.0/16",
		"central": [{"name": "central-1", "ip": "10.42.0.2", "lighthouse": true, "public": "203.0.113.10:4242"}], "edges": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := lintelctl(t, "render", "--inventory", d2.inventory, "--out", d2.out, "--cost", "4")
	if r.code != exitError || !strings.Contains(r.stderr, "nebula plan "+filepath.Join(d2.dir, "nebula-plan.json")) ||
		!strings.Contains(r.stderr, "edge acme.hq of the inventory") {
		t.Fatalf("render with a plan lacking the edge: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(d2.out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused render wrote %s: %v", d2.out, err)
	}
	if _, err := os.Stat(d2.state); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused render wrote %s: %v", d2.state, err)
	}
	// --nebula-plan names a plan elsewhere; a missing one is an error.
	elsewhere := filepath.Join(t.TempDir(), "plan.json")
	if err := os.Rename(plan, elsewhere); err != nil {
		t.Fatal(err)
	}
	d3 := deployment{dir: d.dir, inventory: d.inventory, state: d.state, out: filepath.Join(d.dir, "out3")}
	d3.render(t, "--nebula-plan", elsewhere)
	if b, err := os.ReadFile(filepath.Join(d3.out, "edges", "acme-hq", "edge.json")); err != nil || !strings.Contains(string(b), `"nats-leaf://10.42.0.3:7500"`) {
		t.Errorf("--nebula-plan: edge.json %s (%v)", b, err)
	}
	if r := lintelctl(t, "render", "--inventory", d.inventory, "--out", d3.out, "--cost", "4", "--nebula-plan", plan); r.code != exitError || !strings.Contains(r.stderr, plan) {
		t.Errorf("a missing --nebula-plan: exit %d, stderr %q", r.code, r.stderr)
	}
}
