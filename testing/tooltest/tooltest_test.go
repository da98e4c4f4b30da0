package tooltest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how Path ended the test.
type recorder struct {
	testing.TB
	how, msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.how, r.msg = "failed", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.how, r.msg = "skipped", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// path runs Path with r as the test, as the test's goroutine would.
func path(r *recorder, name, pkg string) string {
	var p string
	done := make(chan struct{})
	go func() {
		defer close(done)
		p = Path(r, name, pkg)
	}()
	<-done
	return p
}

// TestPath: a tool in PATH is found; a missing one skips the test, or
// fails it with LINTEL_REQUIRE_TOOLS=1, naming the package to install.
func TestPath(t *testing.T) {
	t.Setenv("LINTEL_REQUIRE_TOOLS", "")
	if p := path(&recorder{TB: t}, "sh", "dash"); p == "" {
		t.Fatal("sh not found")
	}
	const missing = "lintel-no-such-tool"
	for _, tc := range []struct{ env, how string }{{"", "skipped"}, {"1", "failed"}} {
		t.Setenv("LINTEL_REQUIRE_TOOLS", tc.env)
		r := &recorder{TB: t}
		if p := path(r, missing, "lintel-pkg"); p != "" || r.how != tc.how || !strings.Contains(r.msg, "apt-get install lintel-pkg") {
			t.Errorf("LINTEL_REQUIRE_TOOLS=%q: %q, %s: %s", tc.env, p, r.how, r.msg)
		}
	}
}
