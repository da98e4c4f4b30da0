package edgekit_test

import (
	"errors"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/topic"
)

// TestNodeDeviceAuthErrors attacks a real edge node with credentials it
// must refuse: devicekit.Connect reports each with devicekit.ErrAuth, for
// callers to branch on, and does not try again.
func TestNodeDeviceAuthErrors(t *testing.T) {
	env := newNodeEnv(t, 0)
	node := nodeStart(t, nodeTestConfig(t, env, ""))
	ghost := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "ghost"}
	cases := []struct {
		name     string
		thing    topic.Thing
		password string
	}{
		{"wrong password", nodeR1, "hunter2-wrong"},
		{"empty password", nodeR1, ""},
		{"another device's password", nodeR1, env.password(authz.DeviceUser(nodeR2))},
		{"unknown user", ghost, env.password(authz.DeviceUser(nodeR1))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := devicekit.Connect(nodeCtx(t), devicekit.Config{
				Thing: tc.thing, URLs: []string{node.ClientURL()}, Password: devicekit.Password(tc.password),
				HeartbeatInterval: -1,
			})
			if err == nil {
				_ = d.Close()
				t.Fatal("Connect with bad credentials succeeded")
			}
			if !errors.Is(err, devicekit.ErrAuth) {
				t.Fatalf("Connect = %v, want ErrAuth", err)
			}
		})
	}
}
