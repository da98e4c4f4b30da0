// Package natstest runs real NATS servers in-process for tests, the way
// net/http/httptest runs HTTP servers: on random loopback ports, with
// JetStream on a temporary store, ready for connections when the constructor
// returns, and gone after cleanup. Nothing is mocked; tests talk to the same
// nats-server code that runs in production.
//
// # One server
//
// In a test, one line gives a running server that [Run] shuts down when the
// test ends:
//
//	srv := natstest.Run(t, nil)
//	nc, err := srv.Connect()
//
// A nil *server.Options means [DefaultOptions]. Pass options of your own to
// test authorization, accounts or listeners: they are honoured as given,
// except that an empty Host or zero Port means 127.0.0.1 and a random port.
// Outside tests, for example in runnable examples, use [NewServer] and
// [Server.Close].
//
// [Server.Restart] bounces the server on the same ports and the same
// JetStream store, so streams survive and clients reconnect.
//
// # Hub and leaf
//
// [RunHubLeaf] (or [NewHubLeaf]) starts the shape of a cloud hub and an edge
// site: a hub with JetStream domain "hub" and a leaf node with JetStream
// domain "edge1", linked through a [Proxy] and authenticated with a fresh
// nkey that the hub allows only for leafnode connections:
//
//	hl := natstest.RunHubLeaf(t, natstest.HubLeafOptions{})
//	hub, err := hl.Hub.Connect()
//	edge, err := hl.Leaf.Connect()
//
// Messages cross the link both ways, and a hub client reaches the edge's
// JetStream with jetstream.NewWithDomain(hub, hl.LeafDomain).
//
// # Faults on demand
//
// [Proxy.Cut] drops the link, [Proxy.Stall] silences it until pings time
// out, and [Proxy.Restore] heals it; [Server.Restart] bounces either server.
// Wait for the outcome with [HubLeaf.WaitLeafDisconnected],
// [HubLeaf.WaitLeafConnected] and [Server.WaitInterest], which poll the
// servers until the condition holds, instead of sleeping.
package natstest
