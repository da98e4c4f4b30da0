package gateway_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/topic"
	"golang.org/x/crypto/bcrypt"
)

// A gateway in front of an edge: a device on HTTP publishes an event, which
// the edge's stream stores as if the device had used NATS.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	reader := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "front-in"}
	inv := &authz.Inventory{
		Orgs:   []authz.Org{{Code: "acme"}},
		Edges:  []authz.Edge{{Org: "acme", Code: "hq"}},
		Things: []authz.Thing{{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "front-in"}}},
	}
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(ctx, inv, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, err := os.MkdirTemp("", "lintel-gateway")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := authz.WriteSeedFile(filepath.Join(dir, "leaf.seed"), res.Secrets.EdgeSeeds["acme.hq"]); err != nil {
		fmt.Println(err)
		return
	}
	node, err := edgekit.Start(ctx, edgekit.NodeConfig{
		Org: "acme", Edge: "hq", Inventory: inv, State: res.State,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, StoreDir: filepath.Join(dir, "store"), MaxFileStore: 64 << 20,
			HubURLs: []string{"nats-leaf://127.0.0.1:1"}, ConfigDir: dir, SeedFile: "leaf.seed"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Stop()

	// The gateway checks passwords against the same hashes as the edge.
	auth, err := authz.NewEdgeAuthenticator(inv, res.State, "acme", "hq", authz.EdgeAuthConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer auth.Close()
	gw, err := gateway.New(gateway.Config{Org: "acme", Edge: "hq", URLs: []string{node.ClientURL()}, Auth: auth})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gw.Close()
	srv := httptest.NewServer(gw) // in production: gateway.NewServer behind Caddy
	defer srv.Close()

	// The device's side: devicekit's HTTP client.
	dev, err := devicekit.ConnectHTTP(ctx, devicekit.HTTPConfig{
		Thing: reader, URL: srv.URL,
		Password: devicekit.Password(res.Secrets.Passwords[authz.DeviceUser(reader)].Reveal()),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dev.Close()
	if _, err := dev.PublishEvent(ctx, "door.opened", nil); err != nil {
		fmt.Println(err)
		return
	}
	s := gw.Stats()
	fmt.Println("stored:", s.Stored, "sessions:", s.Sessions)
	// Output: stored: 2 sessions: 1
}
