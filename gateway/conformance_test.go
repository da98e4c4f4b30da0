package gateway_test

import (
	"context"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nkeys"
)

// TestHTTPDeviceConformance runs devicekit's conformance suite, the one
// the NATS client passes, against devicekit's HTTP client talking to a
// real gateway in front of a real edge node.
func TestHTTPDeviceConformance(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, func(c *gateway.Config) { c.Rate = -1 })
	kp, err := nkeys.FromSeed([]byte(e.secrets.CommandSeeds[authz.EdgeKeyID("acme", "hq")].Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	devicetest.Run(t, devicetest.Harness{
		Things: []topic.Thing{r1, r2, l1},
		Connect: func(ctx context.Context, thing topic.Thing) (devicekit.Device, error) {
			return devicekit.ConnectHTTP(ctx, devicekit.HTTPConfig{
				Thing: thing, URL: g.url, Password: devicekit.Password(e.password(thing)),
				CommandKeys: []string{pub},
			})
		},
		Edge:       n.Conn(),
		Stream:     n.Names().EventStream,
		CommandKey: kp,
	})
}
