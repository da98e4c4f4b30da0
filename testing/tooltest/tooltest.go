// Package tooltest finds the external tools that tests run (shellcheck,
// caddy, nebula, ansible...). A test whose tool is missing is skipped,
// naming the Debian package that has it, unless the environment sets
// LINTEL_REQUIRE_TOOLS=1, as CI does: then it fails.
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Path returns the path of the external tool name, looked up in PATH.
// Without it, Path skips the test naming pkg, the Debian package that has
// it, or fails it when LINTEL_REQUIRE_TOOLS=1.
func Path(t testing.TB, name, pkg string) string {
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
