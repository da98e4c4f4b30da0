package edgekit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/topic"
	"golang.org/x/crypto/bcrypt"
)

// An edge starts without central, and a device's event is stored at the
// edge until central can take it.
func ExampleStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The inventory and credentials, normally read from files.
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
	dir, err := os.MkdirTemp("", "lintel-edge")
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
		Render: authz.RenderOptions{
			Host: "127.0.0.1", Port: -1, StoreDir: filepath.Join(dir, "store"), MaxFileStore: 64 << 20,
			HubURLs:   []string{"nats-leaf://127.0.0.1:1"}, // central is not there (yet)
			ConfigDir: dir, SeedFile: "leaf.seed",
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Stop()

	dev, err := devicekit.Connect(ctx, devicekit.Config{
		Thing:    reader,
		URLs:     []string{node.ClientURL()},
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

	st, err := node.Status(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("link up:", st.LinkUp)
	// The event stream holds the birth and the event until central has
	// them. (Backlog counts them too, from central's consumer, whose
	// count may trail the stream by a moment.)
	fmt.Println("held for central:", st.StreamMsgs >= 2)
	// Output:
	// link up: false
	// held for central: true
}
