// Package gateway is Lintel's HTTP-to-NATS gateway for an edge: an
// [http.Handler] through which devices that cannot use NATS publish
// events, send requests and receive commands over HTTP, as first-class
// devices of the edge, with the same identity, permissions and guarantees
// as a NATS device.
//
// Mount a [Gateway] in any HTTP server (behind a TLS-terminating proxy such
// as Caddy, or with TLS of its own), or serve it with [NewServer], which
// sets the timeouts and header limits a public listener needs:
//
//	auth, _ := authz.NewEdgeAuthenticator(inv, st, "acme", "hq", authz.EdgeAuthConfig{})
//	gw, _ := gateway.New(gateway.Config{Org: "acme", Edge: "hq", URLs: []string{edgeURL}, Auth: auth})
//	defer gw.Close()
//	srv := gateway.NewServer(":8443", gw, log)
//
// A device authenticates every request with HTTP Basic: its NATS user name
// (the thing, "acme.hq.reader.r1") and password, checked against the
// bcrypt hashes of its NATS login with the same cache and flood protection
// ([authz.EdgeAuthenticator.VerifyPassword]). The gateway then speaks to
// the edge over a NATS connection logged in as that device, so that the
// edge's nats-server applies the device's own generated permissions; the
// gateway checks them as well ([authz.Permissions.Allowed]) to answer a
// refusal with 403 rather than a timeout. A device can only speak as
// itself.
//
// Endpoints ([Gateway.ServeHTTP]): POST /v1/events (CloudEvents 1.0 in
// structured, batch or binary content mode, answered once the edge's
// stream stored them, deduplicated by the event's id), POST /v1/requests,
// and GET /v1/commands (long-poll or Server-Sent Events). Errors are RFC
// 9457 problem details ([Problem]).
//
// For devices off every edge's network, [Central] (from [ConnectCentral])
// serves POST /v1/events at central: devices the inventory marks for it
// post as themselves into the org's gateway stream, which central's
// storage ingests exactly once. It does not hand out commands yet.
//
// Design, trust choices, presence for commands and figures:
// docs/gateway.md.
package gateway
