package devicekit

import (
	"testing"

	"github.com/lintel-io/lintel/authz"
)

// TestLogKeySecurity keeps the key of the device's security events the
// one a SIEM matches on for every other component.
func TestLogKeySecurity(t *testing.T) {
	if logKeySecurity != authz.LogKeySecurity {
		t.Errorf("devicekit logs security events under %q, authz.LogKeySecurity is %q", logKeySecurity, authz.LogKeySecurity)
	}
}
