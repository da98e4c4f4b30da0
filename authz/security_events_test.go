package authz_test

import (
	"testing"

	"github.com/lintel-io/lintel/authz"
)

// TestServerLogSecurityEvent classifies lines in the formats nats-server
// v2.15 logs (server/client.go authViolation, pubPermissionViolation,
// subPermissionViolation, replySubjectViolation); the edge and gateway
// tests observe the real ones.
func TestServerLogSecurityEvent(t *testing.T) {
	cases := []struct {
		name, line, event, user string
	}{
		{"login", `127.0.0.1:51234 - cid:7 - authentication error - User "acme.hq.reader.r1"`, authz.SecurityLoginFailed, "acme.hq.reader.r1"},
		{"login without user", `127.0.0.1:51234 - cid:7 - authentication error`, authz.SecurityLoginFailed, ""},
		{"publish", `127.0.0.1:59564 - cid:32 - "v1.55.0:go" - "acme/user:acme.hq.reader.r2" - Publish Violation - Subject "acme.hq.lock.l1.cmd"`,
			authz.SecurityPermissionViolation, "acme.hq.reader.r2"},
		{"subscription", `127.0.0.1:59564 - cid:32 - "v1.55.0:go" - "acme/user:acme.hq.reader.r2" - Subscription Violation - Subject "acme.>", SID 4`,
			authz.SecurityPermissionViolation, "acme.hq.reader.r2"},
		{"reply", `127.0.0.1:59564 - cid:32 - "v1.55.0:go" - "acme/user:acme.hq.reader.r2" - Publish Violation - Reply "x.y"`,
			authz.SecurityPermissionViolation, "acme.hq.reader.r2"},
		{"other", `Server is ready`, "", ""},
		{"slow consumer", `127.0.0.1:59564 - cid:32 - Slow Consumer Detected`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, user := authz.ServerLogSecurityEvent(c.line)
			if ev != c.event || user != c.user {
				t.Fatalf("ServerLogSecurityEvent = %q, %q; want %q, %q", ev, user, c.event, c.user)
			}
		})
	}
}
