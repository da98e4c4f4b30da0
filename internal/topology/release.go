package topology

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Flows of an edge, as the release marks name them: the edge's held
// streams that central sources (authz exports them under the same names).
const (
	FlowEvents    = "events"    // the edge's event stream
	FlowTelemetry = "telemetry" // the edge's telemetry stream
	FlowPlatform  = "platform"  // the edge's platform stream
)

// ReleaseBucket names org's release bucket on central: for each edge and
// flow (key "{edge}.{flow}", authz.EdgeNames.ReleaseKey), how far
// central's event stream holds the edge's stream of that flow without a
// gap ([ReleaseMark]). The edge releases nothing beyond it
// (docs/edge-release.md).
func ReleaseBucket(org string) string { return "release-" + org }

// ReleaseBucketConfig returns the configuration of org's release bucket.
func ReleaseBucketConfig(org string) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      ReleaseBucket(org),
		Description: "Lintel: how far central holds each edge's streams without a gap",
		History:     1,
		Storage:     jetstream.FileStorage,
	}
}

// ParseRepairOf parses the value of the authz.HeaderRepairOf header of a
// message an edge sent again, "{flow} {sequence}". It reports false
// unless flow is [FlowEvents], [FlowTelemetry] or [FlowPlatform] and
// sequence a decimal number above zero.
func ParseRepairOf(v string) (flow string, seq uint64, ok bool) {
	f, s, found := strings.Cut(v, " ")
	if !found {
		return "", 0, false
	}
	var n uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return "", 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return f, n, n > 0 && (f == FlowEvents || f == FlowTelemetry || f == FlowPlatform)
}

// ReleaseMark is what central holds of one flow of an edge, as its release
// bucket keeps it (JSON): every sequence up to Stored, and, when Next is
// not zero, Next and some sequences after it, so that Stored+1 up to
// Next-1 is a gap. At is when the tracker last wrote it, by central's
// clock; the tracker writes every mark again every few seconds, so that an
// edge can tell a gap that lasts from a tracker that stopped.
type ReleaseMark struct {
	Stored uint64    `json:"stored"`         // central holds every sequence up to this one
	Next   uint64    `json:"next,omitempty"` // first sequence held after the gap; 0 when there is none
	At     time.Time `json:"at"`             // when the tracker last wrote the mark, by central's clock
}
