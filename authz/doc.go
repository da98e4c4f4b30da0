// Package authz turns one declarative [Inventory] into the NATS security of a
// Lintel deployment: accounts, users, permissions, NKeys and server
// configurations for central and for every edge.
//
// Devices log in to their edge's NATS with a user and a password hashed with
// bcrypt; edges log in to central as leaf nodes with NKeys; every identity's
// subject permissions are generated here and enforced by NATS itself.
// Credentials are kept apart from the inventory, in a [State], so that
// generation is deterministic and re-rendering after one rotation costs no
// bcrypt beyond the rotated device.
//
// The package also fixes the topology names that the rest of Lintel relies
// on: JetStream domains, stream and bucket names and deliver prefixes.
//
// # Topology
//
// Central runs JetStream in domain [HubDomain] ("hub"); each edge runs its own
// JetStream in a domain named after its edge code, so it keeps its streams
// while the leaf link is down, and nats-server keeps the plain "$JS.API.>"
// and "$KV.>" from crossing the link. Each org is one NATS account, named by
// its code, on central and on each of its edges; the leaf link binds the
// edge's org account to the same account on central. [SystemAccount] is the
// system account everywhere; on an edge it exports the org's client connect
// and disconnect events ("$SYS.ACCOUNT.{org}.CONNECT", ".DISCONNECT") to the
// org's account, where only the edge service may read them, for liveness.
//
// Data crosses domains only through durable, flow-controlled sourcing
// consumers with fixed deliver subjects in the edge's private namespace
// "_lintel.{org}.{edge}.fwd": central's event stream sources each edge's
// event stream and, as a second flow, its telemetry stream (kept apart so
// that high-rate telemetry, persisted asynchronously, never queues ahead of
// the fsynced audit trail), each edge mirrors its credential bucket from
// central and sources its own commands from central's command stream. [NamesFor] returns
// every name, and [EdgeNames] builds the stream, bucket and consumer
// configurations. Central's services write commands on [CommandSubject]
// subjects; only the edge service publishes on a device's cmd subject.
//
// # Permissions
//
// Every identity gets explicit allow lists ([Permissions]): a device only its
// own subjects and its own reply inbox ([DevicePermissions]); the edge
// service its edge and its JetStream ([EdgeServicePermissions]); central
// services, operators and gateways their org or scope
// ([ServicePermissions]). [Policy.Allowed] answers the same questions
// without a server, for the HTTP gateway. The leaf link is confined to its
// edge in both directions by the edge's NKey user on central
// ([LeafPermissions]), backed by deny lists on the edge's side
// ([LeafDenyImports], [LeafDenyExports]).
//
// # Servers
//
// [RenderCentral] and [RenderEdge] render nats-server configuration files,
// [CentralOptions] and [EdgeOptions] the same as nats-server options for an
// embedded server. An embedded edge authenticates its clients with an
// [EdgeAuthenticator], which caches verified credentials and applies new
// ones without a configuration reload.
package authz
