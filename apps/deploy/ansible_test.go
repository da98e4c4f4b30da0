package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/tooltest"
)

// ansibleCmd returns a command running bin in dir (the playbook's
// directory), with Ansible's and ansible-lint's own files in a temporary
// home and nothing downloaded.
func ansibleCmd(t *testing.T, dir, bin string, args ...string) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"),
		"ANSIBLE_NOCOLOR=1", "NO_COLOR=1", "ANSIBLE_FORCE_COLOR=0",
	)
	return cmd
}

// TestAnsibleSyntax runs ansible-playbook --syntax-check on the playbook
// with the example inventory.
func TestAnsibleSyntax(t *testing.T) {
	bin := tooltest.Path(t, "ansible-playbook", "ansible")
	dir, err := filepath.Abs("ansible")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ansibleCmd(t, dir, bin, "--syntax-check", "-i", "inventory/example/hosts.yml", "site.yml").CombinedOutput(); err != nil {
		t.Fatalf("ansible-playbook --syntax-check: %v\n%s", err, out)
	}
}

// TestAnsibleLint runs ansible-lint (offline, production profile) on the
// playbook and its roles, and on a copy with a task that breaks its rules,
// which it must refuse.
func TestAnsibleLint(t *testing.T) {
	bin := tooltest.Path(t, "ansible-lint", "ansible-lint")
	dir, err := filepath.Abs("ansible")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ansibleCmd(t, dir, bin, "--offline", "site.yml").CombinedOutput(); err != nil {
		t.Fatalf("ansible-lint: %v\n%s", err, out)
	}

	broken := filepath.Join(t.TempDir(), "ansible")
	if out, err := exec.Command("cp", "-R", dir, broken).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	tasks := filepath.Join(broken, "roles/lintel/tasks/main.yml")
	b, err := os.ReadFile(tasks)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, "\n- name: restart by hand\n  command: systemctl restart lintel-edge\n"...)
	if err := os.WriteFile(tasks, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := ansibleCmd(t, broken, bin, "--offline", "site.yml").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "fqcn") || !strings.Contains(string(out), "no-changed-when") {
		t.Fatalf("ansible-lint passed a task without FQCN or changed_when: %v\n%s", err, out)
	}
}

// TestAnsibleRender runs the playbook's first play for real on the
// control node (this machine) with the example inventory and address
// plan: lintelctl render and lintelctl nebula write central's, the edges'
// and the overlay's files. A second run changes nothing, and no secret it
// wrote appears in Ansible's output.
func TestAnsibleRender(t *testing.T) {
	bin := tooltest.Path(t, "ansible-playbook", "ansible")
	dir, err := filepath.Abs("ansible")
	if err != nil {
		t.Fatal(err)
	}
	lintelctl := filepath.Join(buildApps(t), "lintelctl")
	out := t.TempDir()
	run := func() string {
		t.Helper()
		cmd := ansibleCmd(t, dir, bin, "-i", "inventory/example/hosts.yml", "site.yml", "--limit", "localhost",
			"-e", "lintel_lintelctl="+lintelctl, "-e", "lintel_deploy_dir="+out,
			"-e", "lintel_inventory_file="+filepath.Join(dir, "inventory/example/lintel-inventory.json"),
			"-e", "nebula_plan_file="+filepath.Join(dir, "inventory/example/nebula-plan.json"),
			"-e", "nebula_out_dir="+filepath.Join(out, "nebula"),
			"-e", "lintel_state_file="+filepath.Join(out, "state.json"), "-e", `{"render_extra_args": ["--cost", "4"]}`)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ansible-playbook: %v\n%s", err, b)
		}
		return string(b)
	}
	recap := regexp.MustCompile(`localhost\s*:\s*ok=\d+\s+changed=(\d+)`)
	first := run()
	if m := recap.FindStringSubmatch(first); m == nil || m[1] != "1" {
		t.Fatalf("first run: want the render reported as the one change:\n%s", first)
	}
	for _, f := range []string{"central/central.json", "central/secrets/command-acme.seed", "edges/acme-hq/edge.json",
		"edges/acme-depot/secrets/leaf.seed", "nebula/hosts", "nebula/edge-acme-hq/config.yml", "nebula/central-1/config.yml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("not rendered: %v", err)
		}
	}
	second := run()
	if m := recap.FindStringSubmatch(second); m == nil || m[1] != "0" {
		t.Fatalf("second run: want no change:\n%s", second)
	}
	for _, s := range secretValues(t, out) {
		if strings.Contains(first+second, s) {
			t.Errorf("a secret of %s appears in Ansible's output", out)
		}
	}
}

// TestAnsibleNebula runs the playbook's Nebula part for real with this
// machine as an edge: the control node's play writes the overlay's host
// configurations, the nebula role signs the edge's certificate with
// nebula-cert through nebula-pki.sh and installs it with its
// configuration and key; a second run changes nothing, and one with
// nebula_rotate=true installs a new certificate for the same host.
func TestAnsibleNebula(t *testing.T) {
	bin := tooltest.Path(t, "ansible-playbook", "ansible")
	tooltest.Path(t, "nebula-cert", "nebula")
	dir, err := filepath.Abs("ansible")
	if err != nil {
		t.Fatal(err)
	}
	lintelctl := filepath.Join(buildApps(t), "lintelctl")
	tmp := t.TempDir()
	out, ca, pki := filepath.Join(tmp, "out"), filepath.Join(tmp, "ca"), filepath.Join(tmp, "pki")
	if b, err := exec.Command("sh", filepath.Join(dir, "../nebula/nebula-pki.sh"), "ca", ca).CombinedOutput(); err != nil {
		t.Fatalf("nebula-pki.sh ca: %v\n%s", err, b)
	}
	inventory := filepath.Join(tmp, "hosts.yml")
	if err := os.WriteFile(inventory, []byte(`all:
  children:
    control:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: "{{ ansible_playbook_python }}"
    edges:
      hosts:
        edge-under-test:
          ansible_connection: local
          ansible_python_interpreter: "{{ ansible_playbook_python }}"
          nebula_name: edge-acme-hq
`), 0o600); err != nil {
		t.Fatal(err)
	}
	user, group := "root", "root"
	if b, err := exec.Command("id", "-un").Output(); err == nil {
		user = strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("id", "-gn").Output(); err == nil {
		group = strings.TrimSpace(string(b))
	}
	run := func(extra ...string) string {
		t.Helper()
		args := append([]string{"-i", inventory, "site.yml", "--tags", "nebula",
			"-e", "ansible_become=false", "-e", "lintel_lintelctl=" + lintelctl, "-e", "lintel_deploy_dir=" + out,
			"-e", "lintel_state_file=" + filepath.Join(out, "state.json"), "-e", `{"render_extra_args": ["--cost", "4"]}`,
			"-e", "lintel_inventory_file=" + filepath.Join(dir, "inventory/example/lintel-inventory.json"),
			"-e", "nebula_plan_file=" + filepath.Join(dir, "inventory/example/nebula-plan.json"),
			"-e", "nebula_out_dir=" + filepath.Join(out, "nebula"), "-e", "nebula_ca_dir=" + ca,
			"-e", "nebula_pki_script=" + filepath.Join(dir, "../nebula/nebula-pki.sh"),
			"-e", "nebula_pki_dir=" + pki, "-e", "nebula_owner=" + user, "-e", "nebula_group=" + group,
			"-e", "nebula_manage_service=false"}, extra...)
		b, err := ansibleCmd(t, dir, bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ansible-playbook: %v\n%s", err, b)
		}
		return string(b)
	}
	printCert := func() string {
		t.Helper()
		b, err := exec.Command("nebula-cert", "print", "-json", "-path", filepath.Join(pki, "host.crt")).CombinedOutput()
		if err != nil {
			t.Fatalf("nebula-cert print: %v\n%s", err, b)
		}
		return string(b)
	}
	recap := regexp.MustCompile(`edge-under-test\s*:\s*ok=\d+\s+changed=(\d+)`)
	first := run()
	cert := printCert()
	if !strings.Contains(cert, `"edge-acme-hq"`) || !strings.Contains(cert, "10.42.1.1") {
		t.Fatalf("installed certificate:\n%s", cert)
	}
	for _, f := range []string{"config.yml", "ca.crt", "host.key"} {
		if _, err := os.Stat(filepath.Join(pki, f)); err != nil {
			t.Fatalf("not installed: %v\n%s", err, first)
		}
	}
	if fi, err := os.Stat(filepath.Join(pki, "host.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host.key: %v %v, want mode 0600", fi.Mode(), err)
	}
	if m := recap.FindStringSubmatch(run()); m == nil || m[1] != "0" {
		t.Fatalf("second run changed the edge: %v", m)
	}
	rotated := run("-e", "nebula_rotate=true")
	if m := recap.FindStringSubmatch(rotated); m == nil || m[1] == "0" {
		t.Fatalf("rotation changed nothing:\n%s", rotated)
	}
	if again := printCert(); again == cert || !strings.Contains(again, `"edge-acme-hq"`) {
		t.Fatalf("rotation: the certificate is the same, or not the host's:\n%s", again)
	}
	key, err := os.ReadFile(filepath.Join(pki, "host.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(key), "\n") {
		if line != "" && !strings.HasPrefix(line, "-----") && strings.Contains(first+rotated, line) {
			t.Fatal("the host key appears in Ansible's output")
		}
	}
}

// TestAnsibleLintelAndCaddy runs the playbook's lintel and caddy roles
// for real with this machine as edge acme.hq, into a staging prefix
// (lintel_manage_service and caddy_manage_service false: no user, unit
// or service): the control node renders, the lintel role installs the
// edge's binary, configuration, secrets and TLS files and checks them
// with the binary's -check, and the caddy role installs the Caddyfile,
// the site's certificates and Caddy's environment and validates them
// with caddy. The edge's configuration points at central on the overlay
// (the example's address plan). A second run changes nothing, and a
// configuration the binary refuses stops the play.
//
// The migrations role is not run here: central migrates its database when
// it starts, so that role needs the service.
func TestAnsibleLintelAndCaddy(t *testing.T) {
	bin := tooltest.Path(t, "ansible-playbook", "ansible")
	tooltest.Path(t, "caddy", "caddy")
	dir, err := filepath.Abs("ansible")
	if err != nil {
		t.Fatal(err)
	}
	apps := buildApps(t)
	tmp := t.TempDir()
	out, prefix := filepath.Join(tmp, "out"), filepath.Join(tmp, "prefix")
	if err := os.MkdirAll(filepath.Join(prefix, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	ca := natstest.TempCA(t)
	inventory := filepath.Join(tmp, "hosts.yml")
	if err := os.WriteFile(inventory, []byte(`all:
  children:
    control:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: "{{ ansible_playbook_python }}"
    edges:
      hosts:
        edge-under-test:
          ansible_connection: local
          ansible_python_interpreter: "{{ ansible_playbook_python }}"
          nebula_name: edge-acme-hq
          lintel_org: acme
          lintel_edge: hq
          caddy_gateway_site: https://gw.hq.acme.example:8443
`), 0o600); err != nil {
		t.Fatal(err)
	}
	user, group := "root", "root"
	if b, err := exec.Command("id", "-un").Output(); err == nil {
		user = strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("id", "-gn").Output(); err == nil {
		group = strings.TrimSpace(string(b))
	}
	tlsFiles := `{"lintel_tls_files": {"tls/edge.crt": "` + ca.ServerCertFile + `", "tls/edge.key": "` + ca.ServerKeyFile +
		`", "tls/central-ca.crt": "` + ca.CAFile + `"}}`
	run := func(extra ...string) (string, error) {
		t.Helper()
		args := append([]string{"-i", inventory, "site.yml", "--tags", "lintel,caddy",
			"-e", "ansible_become=false", "-e", "lintel_lintelctl=" + filepath.Join(apps, "lintelctl"), "-e", "lintel_deploy_dir=" + out,
			"-e", "lintel_state_file=" + filepath.Join(out, "state.json"), "-e", `{"render_extra_args": ["--cost", "4"]}`,
			"-e", "lintel_inventory_file=" + filepath.Join(dir, "inventory/example/lintel-inventory.json"),
			"-e", "nebula_plan_file=" + filepath.Join(dir, "inventory/example/nebula-plan.json"),
			"-e", "nebula_out_dir=" + filepath.Join(out, "nebula"),
			"-e", "lintel_build_dir=" + apps, "-e", "lintel_bin_dir=" + filepath.Join(prefix, "bin"),
			"-e", "lintel_etc_dir=" + filepath.Join(prefix, "etc/lintel"), "-e", "lintel_data_dir=" + filepath.Join(prefix, "db"),
			"-e", "lintel_user=" + user, "-e", "lintel_group=" + group,
			"-e", "lintel_root_user=" + user, "-e", "lintel_root_group=" + group, "-e", "lintel_manage_service=false",
			"-e", "caddy_config_dir=" + filepath.Join(prefix, "etc/caddy"), "-e", "caddy_owner=" + user, "-e", "caddy_group=" + group,
			"-e", "caddy_tls_cert_src=" + ca.ServerCertFile, "-e", "caddy_tls_key_src=" + ca.ServerKeyFile,
			"-e", "caddy_client_ca_src=" + ca.CAFile, "-e", "caddy_manage_service=false"}, extra...)
		b, err := ansibleCmd(t, dir, bin, args...).CombinedOutput()
		return string(b), err
	}
	first, err := run("-e", tlsFiles)
	if err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, first)
	}
	recap := regexp.MustCompile(`edge-under-test\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)`)
	if m := recap.FindStringSubmatch(first); m == nil || m[1] == "0" || m[2] != "0" {
		t.Fatalf("first run: want changes and no failure:\n%s", first)
	}
	if !strings.Contains(first, "Check the configuration with the new binary") || !strings.Contains(first, "Validate the Caddyfile") {
		t.Fatalf("first run: the checks did not run:\n%s", first)
	}

	// What the roles installed: the binary runs, the configuration links
	// to central's overlay address, the secrets are the owner's alone.
	if b, err := exec.Command(filepath.Join(prefix, "bin/lintel-edge"), "-config", filepath.Join(prefix, "etc/lintel/edge.json"), "-check").CombinedOutput(); err != nil {
		t.Fatalf("installed edge -check: %v\n%s", err, b)
	}
	edgeJSON, err := os.ReadFile(filepath.Join(prefix, "etc/lintel/edge.json"))
	if err != nil || !strings.Contains(string(edgeJSON), `"nats-leaf://10.42.0.2:7422"`) {
		t.Errorf("installed edge.json does not name central's overlay leaf listener (%v):\n%s", err, edgeJSON)
	}
	for _, f := range []string{"leaf.seed", "audit.seed", "hash.key"} {
		if fi, err := os.Stat(filepath.Join(prefix, "etc/lintel/secrets", f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("secret %s: %v, want mode 0600", f, err)
		}
	}
	env, err := os.ReadFile(filepath.Join(prefix, "etc/caddy/lintel.env"))
	if err != nil || !strings.Contains(string(env), "LINTEL_GATEWAY_SITE=https://gw.hq.acme.example:8443") {
		t.Errorf("Caddy's environment (%v):\n%s", err, env)
	}
	for _, f := range []string{"etc/caddy/Caddyfile", "etc/caddy/tls/site.crt", "etc/caddy/tls/site.key", "etc/caddy/tls/client-ca.crt"} {
		if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}

	second, err := run("-e", tlsFiles)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, second)
	}
	if m := recap.FindStringSubmatch(second); m == nil || m[1] != "0" {
		t.Fatalf("second run: want no change:\n%s", second)
	}
	for _, s := range secretValues(t, out) {
		if strings.Contains(first+second, s) {
			t.Errorf("a secret of %s appears in Ansible's output", out)
		}
	}

	// Without the CA of central's certificate, in a fresh prefix, the
	// binary's -check refuses the configuration, naming the field, and the
	// play stops there.
	o, err := run("-e", "lintel_etc_dir="+filepath.Join(prefix, "etc/lintel-broken"),
		"-e", `{"lintel_tls_files": {"tls/edge.crt": "`+ca.ServerCertFile+`", "tls/edge.key": "`+ca.ServerKeyFile+`"}}`)
	if m := recap.FindStringSubmatch(o); err == nil || m == nil || m[2] == "0" || !strings.Contains(o, "hub_tls.ca_file") {
		t.Fatalf("a configuration naming a missing file: %v, want the check to fail the play naming hub_tls.ca_file:\n%s", err, o)
	}
}
