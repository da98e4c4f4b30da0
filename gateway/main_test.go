package gateway_test

import (
	"os"
	"testing"

	"github.com/lintel-io/lintel/testing/leaktest"
)

// TestMain checks, after the tests pass, that no goroutine of the gateway
// is left running: Close stops everything it started.
func TestMain(m *testing.M) {
	os.Exit(leaktest.Main(m, "github.com/lintel-io/lintel/gateway"))
}
