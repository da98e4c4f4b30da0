package deploy_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lintel-io/lintel/testing/tooltest"
)

// opsShellcheck runs shellcheck as POSIX sh over files, failing on any
// finding, info level included.
func opsShellcheck(t *testing.T, files ...string) {
	t.Helper()
	bin := tooltest.Path(t, "shellcheck", "shellcheck")
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
