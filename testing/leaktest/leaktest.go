// Package leaktest checks that a test binary leaves none of its package's
// goroutines running, as bbolt's btesting checks consistency after each
// test. Call [Main] from TestMain:
//
//	func TestMain(m *testing.M) {
//		os.Exit(leaktest.Main(m, "github.com/lintel-io/lintel/devicekit"))
//	}
//
// Unlike a general goroutine-leak detector it looks only at goroutines whose
// stacks run code of the named packages, so the embedded nats-server's own
// background goroutines never count against the code under test.
package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// DefaultWait is how long [Main] waits for goroutines to finish.
const DefaultWait = 10 * time.Second

// Main runs the tests and, when they pass, waits up to [DefaultWait] for
// every goroutine running code of a package whose import path begins with one
// of prefixes to end. It returns the exit code for os.Exit: the tests' own,
// or 1 with the leaked stacks printed to stderr.
func Main(m *testing.M, prefixes ...string) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	if leaked := Wait(DefaultWait, prefixes...); leaked != "" {
		fmt.Fprintf(os.Stderr, "leaktest: goroutines left running after the tests:\n%s\n", leaked)
		return 1
	}
	return 0
}

// Wait waits up to d until no goroutine runs code of a package whose import
// path begins with one of prefixes, and returns the stacks of those still
// running after d ("" when none).
func Wait(d time.Duration, prefixes ...string) string {
	deadline := time.Now().Add(d)
	for {
		leaked := running(prefixes)
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running returns the stacks of the goroutines, other than TestMain's, that
// run code of one of prefixes.
func running(prefixes []string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.(*M).Run") || strings.Contains(g, ".TestMain(") || strings.Contains(g, "leaktest.running") {
			continue
		}
		for _, p := range prefixes {
			if strings.Contains(g, p) {
				leaked = append(leaked, g)
				break
			}
		}
	}
	return leaked
}
