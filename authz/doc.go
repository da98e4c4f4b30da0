// Package authz turns one declarative [Inventory] into the NATS security of a
// Lintel deployment: accounts, users, permissions, NKeys and server
// configurations for central and for every edge.
//
// [ParseInventory] reads and validates an inventory (problems are an
// [*InventoryError] wrapping sentinels such as [ErrInvalid] or
// [ErrUnknownReference]); [Generator.Generate] makes its credentials, kept
// apart from the inventory in a [State]: a random password for each user,
// stored as a bcrypt hash, and an NKey for each edge's leaf link to
// central. The Generate example runs both. Every identity's subject permissions are generated
// here and enforced by NATS itself. The package also fixes the topology
// names that the rest of Lintel relies on: JetStream domains ([HubDomain]
// for central, the edge code for each edge), stream and bucket names and
// deliver prefixes; [NamesFor] returns every name, and [EdgeNames] builds
// the stream, bucket and consumer configurations.
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
// [RenderCentral] and [RenderEdge] render nats-server configuration files,
// [CentralOptions] and [EdgeOptions] the same as nats-server options for an
// embedded server. An embedded edge authenticates its clients with an
// [EdgeAuthenticator], which caches verified credentials and applies new
// ones without a configuration reload.
//
// Domains, accounts and the flows between them: docs/authz-topology.md.
// What each identity may do, attack by attack: docs/threat-model.md.
package authz
