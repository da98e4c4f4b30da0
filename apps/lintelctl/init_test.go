package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
)

func TestInitWritesLoadableInventory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	mustRun(t, "init", "--out", path)

	inv, err := config.LoadInventory(path)
	if err != nil {
		t.Fatalf("config.LoadInventory of init's output: %v", err)
	}
	if len(inv.Orgs) != 1 || len(inv.Edges) != 1 {
		t.Fatalf("%d orgs and %d edges, want one of each", len(inv.Orgs), len(inv.Edges))
	}
	org := inv.Orgs[0].Code
	var central int
	for _, s := range inv.Services {
		if s.Kind == authz.ServiceCentral && s.Org == org {
			central++
		}
	}
	if central != 1 {
		t.Errorf("%d central services for org %s, want 1", central, org)
	}
	if len(inv.Doors) != 1 {
		t.Fatalf("%d doors, want 1", len(inv.Doors))
	}
	d := inv.Doors[0]
	if len(d.Readers) == 0 || len(d.Locks) == 0 || len(d.Sensors) == 0 {
		t.Errorf("door %s lacks a reader, lock or sensor: %+v", d.Code, d)
	}
	if len(inv.Things) <= 3 {
		t.Errorf("%d things, want the door's and a few more", len(inv.Things))
	}
	data, _ := os.ReadFile(path)
	for _, section := range []string{`"orgs"`, `"edges"`, `"things"`, `"doors"`, `"services"`} {
		i := strings.Index(string(data), section)
		if i < 0 || !strings.Contains(lastLines(string(data[:i]), 2), "//") {
			t.Errorf("section %s has no comment before it", section)
		}
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, " \n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func TestInitRefusesToOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	if err := os.WriteFile(path, []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := lintelctl(t, "init", "--out", path)
	if r.code != exitError || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("init over an existing file: exit %d, stderr %q; want 1 and a hint at --force", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(path); string(b) != "mine\n" {
		t.Fatalf("init overwrote the file without --force: %q", b)
	}
	mustRun(t, "init", "--out", path, "--force")
	if _, err := config.LoadInventory(path); err != nil {
		t.Fatalf("init --force: %v", err)
	}
}

func TestInitToStdout(t *testing.T) {
	r := mustRun(t, "init", "--out", "-")
	if _, err := authz.ParseInventory(config.StripComments([]byte(r.stdout))); err != nil {
		t.Fatalf("init --out - printed an inventory that does not parse: %v", err)
	}
}
