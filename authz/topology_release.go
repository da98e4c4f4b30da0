package authz

import "github.com/lintel-io/lintel/internal/topology"

// Flows of an edge, as the release marks name them: the edge's held
// streams that central sources.
const (
	FlowEvents    = topology.FlowEvents    // "events"
	FlowTelemetry = topology.FlowTelemetry // "telemetry"
	FlowPlatform  = topology.FlowPlatform  // "platform"
)

// ReleaseKey returns "{edge}.{flow}", the key of the edge's mark of flow
// in its org's release bucket on central ("release-{org}").
func (n EdgeNames) ReleaseKey(flow string) string { return n.Edge + "." + flow }

// ReleaseGet returns the JetStream direct-get subject through which the
// edge reads its mark of flow at central, the only keys of the release
// bucket it may read ([LeafPermissions]).
func (n EdgeNames) ReleaseGet(flow string) string {
	b := topology.ReleaseBucket(n.Org)
	return apiPrefix(HubDomain) + ".DIRECT.GET.KV_" + b + ".$KV." + b + "." + n.ReleaseKey(flow)
}

// ReleaseReplyPrefix is the edge's namespace for the answers to
// [EdgeNames.ReleaseGet] (central → edge).
func (n EdgeNames) ReleaseReplyPrefix() string { return n.deliverPrefix + ".release" }

// FlowOf returns the flow of the edge's sourced stream named name (the
// first token of a [HeaderStreamSource] header, [SourceName]).
func (n EdgeNames) FlowOf(name string) (string, bool) {
	for i, src := range n.Sources() {
		if SourceName(src) == name {
			return []string{FlowEvents, FlowTelemetry, FlowPlatform}[i], true
		}
	}
	return "", false
}
