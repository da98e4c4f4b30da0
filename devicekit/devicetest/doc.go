// Package devicetest is the conformance suite of [devicekit.Device], the way
// testing/slogtest is for slog handlers, and a stand-in edge to run it
// against.
//
// Every implementation of the device contract, the NATS [devicekit.Client]
// and the HTTP gateway's client alike, calls [Run] with a [Harness]:
//
//	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
//	devicetest.Run(t, edge.Harness())
//
// [StartEdge] starts an in-process NATS server (package natstest) set up as
// an edge node: the JetStream stream that captures the devices' evt, tlm,
// state and ack subjects, one user per device whose permissions confine it to
// its own subjects, and an edge-service user with broad rights for the edge
// side of tests. [Edge.Harness] connects devices with [devicekit.Connect];
// another transport builds its own Harness around the same Edge.
//
// The edge-side helpers, [NewCommand], [PublishCommand], [RecordAcks] and
// [Stored], are what the suite itself uses to send commands, watch acks and
// read the stream.
package devicetest
