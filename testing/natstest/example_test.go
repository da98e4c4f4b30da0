package natstest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/testing/natstest"
)

func ExampleNewServer() {
	srv, err := natstest.NewServer(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	nc, err := srv.Connect()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	sub, err := nc.SubscribeSync("greetings")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := nc.Publish("greetings", []byte("hello, natstest")); err != nil {
		fmt.Println(err)
		return
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %s\n", msg.Subject, msg.Data)
	// Output: greetings: hello, natstest
}

func ExampleNewHubLeaf() {
	hl, err := natstest.NewHubLeaf(natstest.HubLeafOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hl.Close()

	hub, err := hl.Hub.Connect()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hub.Close()
	edge, err := hl.Leaf.Connect()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer edge.Close()

	// Subscribe in the cloud, then wait until the edge knows about it.
	sub, err := hub.SubscribeSync("acme.site1.reader.door-1.evt")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := hub.Flush(); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hl.Leaf.WaitInterest(ctx, "acme.site1.reader.door-1.evt"); err != nil {
		fmt.Println(err)
		return
	}

	if err := edge.Publish("acme.site1.reader.door-1.evt", []byte("opened")); err != nil {
		fmt.Println(err)
		return
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("hub received %q from the edge\n", msg.Data)

	// Cut the link, as a network failure would.
	hl.Proxy.Cut()
	if err := hl.WaitLeafDisconnected(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("link down:", !hl.LeafConnected())

	hl.Proxy.Restore()
	if err := hl.WaitLeafConnected(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("link up:", hl.LeafConnected())
	// Output:
	// hub received "opened" from the edge
	// link down: true
	// link up: true
}
