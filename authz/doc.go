// Package authz turns one declarative [Inventory] into the NATS security of a
// Lintel deployment: accounts, users, permissions, NKeys and server
// configurations for central and for every edge.
//
// [ParseInventory] reads and validates an inventory; [Generator.Generate]
// makes its credentials, kept apart in a [State] (its example runs both);
// [RenderCentral] and [RenderEdge] write the servers' configuration,
// [CentralOptions] and [EdgeOptions] an embedded server's. NATS enforces the
// generated [Permissions]; [Policy.Allowed] checks them without a server.
// [NamesFor] fixes the topology's names, explained in docs/authz-topology.md
// (threats: docs/threat-model.md).
package authz
