// Package api is central's HTTP API for one org, under /api/v1: the
// edges (link, backlog, credential sync), the things (online, stale, last
// seen), history (events, access decisions, commands, with keyset paging),
// credentials (create, update, suspend, reinstate, revoke; a card number
// or PIN is hashed by central and never stored or echoed), door groups,
// schedules, rules documents, commands with their acks, the audit status
// of each edge, the operator audit log and API tokens.
//
// Start one with [Start] on a running [central.Central] and serve
// [Server.Handler]:
//
//	srv, err := api.Start(ctx, api.Config{Central: c, BootstrapTokenFile: "admin.token"})
//	http.ListenAndServe(":8080", srv.Handler())
//
// The routes are one table ([Server.Routes]) from which both the mux and
// the OpenAPI 3.1 document ([Server.OpenAPI], served at
// /api/v1/openapi.json) are built. Every route declares the lowest [Role]
// it needs: viewer < operator < admin. A request without credentials gets
// 401, one whose role is too low 403; errors are RFC 9457 problem details
// ([Problem]) naming the field at fault.
//
// Callers authenticate with a bearer API token (random, stored at central
// as its SHA-256 hash in the KV bucket [TokenBucket], revocable), with a
// bearer JWT of an OpenID Connect provider ([OIDCConfig]; roles from a
// configurable claim), or with the console's session cookie, set by the
// provider's authorization-code login, whose unsafe requests need the
// X-CSRF-Token header ([Config].TokenLogin lets an API token start such a
// session where there is no provider). Sessions are recorded at central
// ([SessionBucket], cookies signed with the org's key in
// [SessionKeyBucket]): they survive a restart, hold on every node, and end
// at logout or when the API token that began one is revoked. Failed logins
// are throttled per client, read from X-Forwarded-For of
// [Config].TrustedProxies only. [Config].BootstrapTokenFile gives a
// first administrator a token.
//
// The same handler serves the console at [ConsolePath]: one page, a script
// and a style sheet embedded in the package, under a strict
// Content-Security-Policy, working through the API with the session
// cookie: edges, doors with lock and unlock, live events (server-sent
// events), the access log and credentials.
//
// Every change is validated, stored at central (from where the edges
// mirror it, or, for a command, delivered) and written to the operator
// audit log ([AuditEntry], stream [OperatorAuditStream]): who, what, when,
// before and after. Without a database history comes from central's event
// stream, within its limits; with one, from PostgreSQL (package storage).
// docs/api.md describes the API.
package api
