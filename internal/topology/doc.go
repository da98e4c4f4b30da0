// Package topology fixes the names of the parts of Lintel's NATS topology
// that only Lintel's own packages use: the internal command subjects
// central's services write commands on, the central gateway's stream,
// subjects and command consumer (docs/gateway.md), and central's release
// bucket with the repairs an edge sends (docs/edge-release.md).
//
// It lies below package authz, which builds the permissions on these
// names and re-exports those its users need ([InternalPrefix],
// [SystemAccount], [ErrReservedName], the flows, [CommandSubject] and
// [ParseCommandSubject]).
package topology
