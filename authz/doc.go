// Package authz turns one declarative [Inventory] into the NATS security of a
// Lintel deployment: accounts, users, permissions, NKeys and server
// configurations for central and for every edge.
//
// [ParseInventory] reads and validates an inventory (problems are an
// [*InventoryError] wrapping sentinels such as [ErrInvalid]);
// [Generator.Generate] makes its credentials, kept apart from the inventory
// in a [State]: a bcrypt-hashed random password for each user and an NKey
// for each edge's leaf link. The Generate example runs both. Every
// identity's subject permissions ([Permissions], e.g. [DevicePermissions])
// are generated here and enforced by NATS itself; [Policy.Allowed] answers
// the same questions without a server, for the HTTP gateway.
//
// [RenderCentral] and [RenderEdge] render nats-server configuration files,
// [CentralOptions] and [EdgeOptions] the same as options for an embedded
// server, whose clients an [EdgeAuthenticator] logs in. The package also
// fixes the topology names the rest of Lintel relies on: [HubDomain] and
// the edges' domains, and the streams, buckets and consumers [NamesFor]
// returns.
//
// Domains, accounts, flows and every identity's permissions:
// docs/authz-topology.md. What each identity may do, attack by attack:
// docs/threat-model.md.
package authz
