package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// opsTool returns the path of the external tool name; without it the test
// is skipped naming the Debian package pkg, or fails when
// LINTEL_REQUIRE_TOOLS=1.
func opsTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("LINTEL_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not found and LINTEL_REQUIRE_TOOLS=1: %v (apt-get install %s)", name, err, pkg)
		}
		t.Skipf("%s not found (apt-get install %s; LINTEL_REQUIRE_TOOLS=1 makes this a failure): %v", name, pkg, err)
	}
	return p
}

// opsShellcheck runs shellcheck as POSIX sh over files, failing on any
// finding, info level included.
func opsShellcheck(t *testing.T, files ...string) {
	t.Helper()
	bin := opsTool(t, "shellcheck", "shellcheck")
	for _, f := range files {
		if out, err := exec.Command(bin, "-s", "sh", "-S", "info", f).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", f, err, out)
		}
	}
}

// TestNebulaPKIScriptShellcheck checks the certificate script. It is run
// against nebula-cert and nebula by the tests of lintelctl nebula
// (apps/lintelctl/nebula_test.go), which generate the configurations it
// signs for.
func TestNebulaPKIScriptShellcheck(t *testing.T) {
	files, err := filepath.Glob("nebula/*.sh")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in nebula/: %v", err)
	}
	opsShellcheck(t, files...)
}
