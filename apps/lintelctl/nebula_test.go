package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/testing/tooltest"
)

// nebulaPKIScript is the certificate script of the reference deployment.
const nebulaPKIScript = "../deploy/nebula/nebula-pki.sh"

// nebulaSite is an inventory and an address plan in a temporary directory.
type nebulaSite struct {
	dir, inventory, plan, out string
}

const nebulaInventory = `{
  "orgs": [{"code": "acme"}, {"code": "globex"}],
  "edges": [{"org": "acme", "code": "hq"}, {"org": "acme", "code": "depot"}, {"org": "globex", "code": "lab"}],
  "things": [{"org": "acme", "edge": "hq", "type": "reader", "code": "r1"}],
  "services": [{"name": "ingest", "kind": "central", "org": "acme"}, {"name": "ingest", "kind": "central", "org": "globex"}]
}`

const nebulaPlanJSON = `// The overlay of the test site.
{
  "network": "10.42.0.0/16",
  "lighthouses": [{"name": "lighthouse", "ip": "10.42.0.1", "public": "203.0.113.10:4242"}],
  "central": [{"name": "central-1", "ip": "10.42.0.2"}, {"name": "central-2", "ip": "10.42.0.3", "lighthouse": true, "public": "203.0.113.11:4242"}],
  "monitoring": [{"name": "zabbix", "ip": "10.42.0.10"}],
  "edges": {"acme.hq": "10.42.1.1", "acme.depot": "10.42.1.2", "globex.lab": "10.42.2.1"}
}`

func newNebulaSite(t *testing.T, inventory, plan string) nebulaSite {
	t.Helper()
	dir := t.TempDir()
	s := nebulaSite{dir: dir, inventory: filepath.Join(dir, "inventory.json"), plan: filepath.Join(dir, "plan.json"), out: filepath.Join(dir, "nebula")}
	if err := os.WriteFile(s.inventory, []byte(inventory), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.plan, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// generate runs lintelctl nebula with the PKI in each host's own
// directory, as the tests run nebula from there.
func (s nebulaSite) generate(t *testing.T) []nebulaHost {
	t.Helper()
	r := mustRun(t, "nebula", "--inventory", s.inventory, "--plan", s.plan, "--out", s.out, "--pki-dir", ".", "--output", "json")
	var hosts []nebulaHost
	if err := json.Unmarshal([]byte(r.stdout), &hosts); err != nil {
		t.Fatalf("nebula --output json printed %q: %v", r.stdout, err)
	}
	return hosts
}

// issue creates a CA and signs every host of the hosts file with the
// deployment's script.
func (s nebulaSite) issue(t *testing.T) {
	t.Helper()
	tooltest.Path(t, "nebula-cert", "nebula")
	ca := filepath.Join(s.dir, "ca")
	for _, args := range [][]string{{"ca", ca, "Lintel test"}, {"sign", ca, s.out}} {
		cmd := exec.Command("sh", append([]string{nebulaPKIScript}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nebula-pki.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// certInfo is what nebula-cert print -json shows of a certificate.
type certInfo struct {
	Fingerprint string `json:"fingerprint"`
	Details     struct {
		Name   string   `json:"name"`
		IPs    []string `json:"ips"`
		Groups []string `json:"groups"`
	} `json:"details"`
}

func printCert(t *testing.T, path string) certInfo {
	t.Helper()
	out, err := exec.Command(tooltest.Path(t, "nebula-cert", "nebula"), "print", "-json", "-path", path).Output()
	if err != nil {
		t.Fatalf("nebula-cert print %s: %v", path, err)
	}
	var c certInfo
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("nebula-cert print %s: %q: %v", path, out, err)
	}
	return c
}

// nebulaTest runs `nebula -test` on a host's configuration from its
// directory.
func nebulaTest(t *testing.T, dir string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(tooltest.Path(t, "nebula", "nebula"), "-test", "-config", nebulaConfigFile)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// TestNebulaConfigsPassNebulaTest generates the overlay of a three-edge
// deployment, issues every certificate with nebula-pki.sh and has nebula
// itself check every host's configuration; the certificates carry the
// names, addresses and groups the inventory and plan give.
func TestNebulaConfigsPassNebulaTest(t *testing.T) {
	tooltest.Path(t, "nebula", "nebula")
	s := newNebulaSite(t, nebulaInventory, nebulaPlanJSON)
	hosts := s.generate(t)
	s.issue(t)

	want := map[string]struct {
		ip     string
		groups []string
	}{
		"lighthouse":      {"10.42.0.1/16", []string{"lighthouse"}},
		"central-1":       {"10.42.0.2/16", []string{"central"}},
		"central-2":       {"10.42.0.3/16", []string{"central", "lighthouse"}},
		"zabbix":          {"10.42.0.10/16", []string{"monitoring"}},
		"edge-acme-hq":    {"10.42.1.1/16", []string{"edge", "org-acme"}},
		"edge-acme-depot": {"10.42.1.2/16", []string{"edge", "org-acme"}},
		"edge-globex-lab": {"10.42.2.1/16", []string{"edge", "org-globex"}},
	}
	if len(hosts) != len(want) {
		t.Fatalf("%d hosts, want %d: %+v", len(hosts), len(want), hosts)
	}
	for _, h := range hosts {
		w, ok := want[h.Name]
		if !ok {
			t.Fatalf("unexpected host %q", h.Name)
		}
		dir := filepath.Join(s.out, h.Name)
		c := printCert(t, filepath.Join(dir, "host.crt"))
		if c.Details.Name != h.Name || !slices.Equal(c.Details.IPs, []string{w.ip}) || !slices.Equal(c.Details.Groups, w.groups) {
			t.Errorf("%s: certificate %+v, want ip %s groups %v", h.Name, c.Details, w.ip, w.groups)
		}
		out, err := nebulaTest(t, dir)
		if err != nil {
			t.Errorf("nebula -test %s: %v\n%s", h.Name, err, out)
		}
		// Nebula reads the firewall rules we meant.
		cfg, err := os.ReadFile(filepath.Join(dir, nebulaConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(h.Name, "edge-"):
			site := "site-" + strings.TrimPrefix(h.Name, "edge-")
			for _, port := range []string{"4222", "8883", "443"} {
				if !hasRule(h.Inbound, port, "tcp", site) || !strings.Contains(string(out), `"endPort":`+port+`,"groups":["`+site+`"]`) {
					t.Errorf("%s: port %s not admitted from %s:\n%s", h.Name, port, site, out)
				}
			}
			if strings.Contains(string(cfg), "7422") || strings.Contains(string(out), `"groups":["edge"]`) {
				t.Errorf("%s: an edge admits other edges:\n%s", h.Name, cfg)
			}
			// The edge's and the gateway's admin listeners, from monitoring only.
			for _, port := range []string{"9471", "9472"} {
				if !hasRule(h.Inbound, port, "tcp", "monitoring") || !strings.Contains(string(out), `"endPort":`+port+`,"groups":["monitoring"]`) {
					t.Errorf("%s: admin port %s not admitted from monitoring:\n%s", h.Name, port, out)
				}
			}
			if strings.Count(string(out), `"groups":["monitoring"]`) != 2 {
				t.Errorf("%s: monitoring admitted to more than the two admin ports:\n%s", h.Name, out)
			}
		case h.Role == "central":
			if !hasRule(h.Inbound, "7422", "tcp", "edge") || !strings.Contains(string(out), `"endPort":7422,"groups":["edge"]`) {
				t.Errorf("%s: leaf port not admitted from edges:\n%s", h.Name, out)
			}
			if !hasRule(h.Inbound, "6222", "tcp", "central") {
				t.Errorf("%s: route port not admitted from central: %+v", h.Name, h.Inbound)
			}
			if !hasRule(h.Inbound, "9470", "tcp", "monitoring") || !strings.Contains(string(out), `"endPort":9470,"groups":["monitoring"]`) ||
				strings.Count(string(out), `"groups":["monitoring"]`) != 1 {
				t.Errorf("%s: admin port not admitted from monitoring alone:\n%s", h.Name, out)
			}
		case h.Role == "monitoring":
			if len(h.Inbound) != 1 || strings.Contains(string(out), `"groups":[`) {
				t.Errorf("%s: a monitoring host admits more than ICMP: %+v\n%s", h.Name, h.Inbound, out)
			}
		}
		if len(h.Inbound) == 0 || h.Inbound[0].Proto != "icmp" {
			t.Errorf("%s: first rule %+v, want icmp", h.Name, h.Inbound)
		}
	}

	// The check is real: a host holding another host's key fails it.
	mixed := filepath.Join(s.out, "edge-acme-hq")
	other, err := os.ReadFile(filepath.Join(s.out, "edge-globex-lab", "host.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mixed, "host.key"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := nebulaTest(t, mixed); err == nil {
		t.Fatalf("nebula -test passed with another host's key:\n%s", out)
	}
}

func hasRule(rules []nebulaRule, port, proto, group string) bool {
	return slices.Contains(rules, nebulaRule{Port: port, Proto: proto, Group: group})
}

// TestNebulaPKIKeepsAndRotates signs again: existing certificates are
// kept, -f issues new ones, and a second CA is refused.
func TestNebulaPKIKeepsAndRotates(t *testing.T) {
	s := newNebulaSite(t, nebulaInventory, nebulaPlanJSON)
	s.generate(t)
	s.issue(t)
	crt := filepath.Join(s.out, "edge-acme-hq", "host.crt")
	before, err := os.ReadFile(crt)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(s.dir, "ca")
	run := func(args ...string) (string, error) {
		out, err := exec.Command("sh", append([]string{nebulaPKIScript}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("sign", ca, s.out); err != nil || !strings.Contains(out, "edge-acme-hq: already signed, kept") {
		t.Fatalf("second sign: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(crt); string(again) != string(before) {
		t.Fatal("second sign replaced a certificate")
	}
	if out, err := run("sign", "-f", ca, s.out, "edge-acme-hq"); err != nil || strings.Contains(out, "central-1") {
		t.Fatalf("sign -f one host: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(crt); string(again) == string(before) {
		t.Fatal("sign -f kept the old certificate")
	}
	if out, err := run("sign", ca, s.out, "edge-nowhere"); err == nil || !strings.Contains(out, "edge-nowhere is not in") {
		t.Fatalf("sign of an unknown host: %v\n%s", err, out)
	}
	if out, err := run("ca", ca); err == nil || !strings.Contains(out, "refusing to replace") {
		t.Fatalf("second ca: %v\n%s", err, out)
	}
	// A device signed into a site gets the site's group.
	if out, err := run("device", ca, s.dir, "door-panel", "10.42.1.50/16", "site-acme-hq"); err != nil {
		t.Fatalf("device: %v\n%s", err, out)
	}
	if c := printCert(t, filepath.Join(s.dir, "door-panel", "host.crt")); !slices.Equal(c.Details.Groups, []string{"site-acme-hq"}) {
		t.Fatalf("device certificate groups %v", c.Details.Groups)
	}
}

// TestNebulaPlanErrors checks that every mistake in the plan is reported,
// naming the entry at fault.
func TestNebulaPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name, plan string
		want       []string
	}{
		{"missing edge", `{"network": "10.42.0.0/16", "central": [{"name": "c", "ip": "10.42.0.2", "lighthouse": true, "public": "h:4242"}],
			"edges": {"acme.hq": "10.42.1.1", "acme.depot": "10.42.1.2"}}`,
			[]string{`edge globex.lab of the inventory (edges[2]) has no address in the plan`}},
		{"stale edge and outside", `{"network": "10.42.0.0/16", "central": [{"name": "c", "ip": "10.43.0.2", "lighthouse": true, "public": "h:4242"}],
			"edges": {"acme.hq": "10.42.1.1", "acme.depot": "10.42.1.2", "globex.lab": "10.42.2.1", "acme.gone": "10.42.9.9"}}`,
			[]string{`edges["acme.gone"]: no such edge`, `central[0] (c): ip 10.43.0.2 is outside the network 10.42.0.0/16`}},
		{"duplicates", `{"network": "10.42.0.0/16", "central": [{"name": "c", "ip": "10.42.0.2", "lighthouse": true, "public": "h:4242"}, {"name": "c", "ip": "10.42.1.1"}],
			"edges": {"acme.hq": "10.42.1.1", "acme.depot": "10.42.1.2", "globex.lab": "10.42.2.1"}}`,
			[]string{`central[1] (c): name "c" is also central[0] (c)`, `edges["acme.hq"]: ip 10.42.1.1 is also central[1] (c)'s`}},
		{"no lighthouse", `{"network": "10.42.0.0/16", "central": [{"name": "c", "ip": "10.42.0.2"}],
			"edges": {"acme.hq": "10.42.1.1", "acme.depot": "10.42.1.2", "globex.lab": "10.42.2.1"}}`,
			[]string{`lighthouses: none`}},
		{"bad network and public", `{"network": "10.42.0.1/16", "lighthouses": [{"name": "l", "ip": "10.42.0.1", "public": "nowhere"}], "central": [{"name": "c", "ip": "10.42.0.2"}],
			"edges": {}}`,
			[]string{`host bits set; did you mean 10.42.0.0/16?`, `lighthouses[0] (l): public "nowhere": want host:port`}},
		{"unknown key", `{"network": "10.42.0.0/16", "centrals": []}`, []string{`unknown field "centrals"`}},
		{"bad port", `{"network": "10.42.0.0/16", "central": [{"name": "c", "ip": "10.42.0.2", "lighthouse": true, "public": "h:4242"}],
			"edges": {"acme.hq": "10.42.1.1", "acme.depot": "10.42.1.2", "globex.lab": "10.42.2.1"}, "ports": {"devices": [4222, 70000]}}`,
			[]string{`ports.devices[1] 70000: want 1 to 65535`}},
		{"bad monitoring", `{"network": "10.42.0.0/16", "central": [{"name": "c", "ip": "10.42.0.2", "lighthouse": true, "public": "h:4242"}],
			"monitoring": [{"name": "zabbix", "ip": "10.42.0.2", "lighthouse": true}],
			"edges": {"acme.hq": "10.42.1.1", "acme.depot": "10.42.1.2", "globex.lab": "10.42.2.1"}, "ports": {"edge_admin": [0], "central_admin": 65536}}`,
			[]string{`monitoring[0] (zabbix): a monitoring host is not a lighthouse`, `monitoring[0] (zabbix): ip 10.42.0.2 is also central[0] (c)'s`,
				`ports.edge_admin[0] 0: want 1 to 65535`, `ports.central_admin 65536: want 1 to 65535`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newNebulaSite(t, nebulaInventory, tc.plan)
			r := lintelctl(t, "nebula", "--inventory", s.inventory, "--plan", s.plan, "--out", s.out)
			if r.code != exitError {
				t.Fatalf("exit %d (%v), want %d", r.code, r.err, exitError)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if _, err := os.Stat(s.out); err == nil {
				t.Errorf("a failed run wrote %s", s.out)
			}
		})
	}
}

func TestNebulaUsageErrors(t *testing.T) {
	s := newNebulaSite(t, nebulaInventory, nebulaPlanJSON)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no plan", []string{"nebula", "--inventory", s.inventory, "--out", s.out}, `"plan" not set`},
		{"bad output", []string{"nebula", "--inventory", s.inventory, "--plan", s.plan, "--out", s.out, "-o", "xml"}, `--output "xml": want table or json`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := lintelctl(t, tc.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d naming %q", r.code, r.stderr, exitUsage, tc.want)
			}
		})
	}
	// An inventory that does not load is named.
	bad := filepath.Join(s.dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"orgs": [{"code": "a b"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := lintelctl(t, "nebula", "--inventory", bad, "--plan", s.plan, "--out", s.out); r.code != exitError || !strings.Contains(r.stderr, bad) {
		t.Fatalf("bad inventory: exit %d, stderr %q", r.code, r.stderr)
	}
}
