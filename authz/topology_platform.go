package authz

import (
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

// PlatformSubject returns the subject on which the edge's own services
// publish a platform record of thing t (a reserved thing type such as
// [topic.ThingTypeAccess] or [topic.ThingTypeEdge]) with message type mt
// into the edge's platform stream: "_lintel.{org}.{edge}.rec.{type}.{code}.{mt}".
// The stream stores it under t's own subject, "{org}.{edge}.{type}.{code}.{mt}"
// ([EdgeNames.PlatformStreamConfig]).
func (n EdgeNames) PlatformSubject(t topic.Thing, mt topic.MessageType) string {
	return n.platformPrefix + "." + t.Type + "." + t.Code + "." + string(mt)
}

// PlatformStreamConfig returns the configuration of the edge's platform
// stream, created on the edge (domain n.Domain) by the edge service: the
// records of the platform itself (the access service's decisions, the audit
// trail) apart from everything devices write. It captures
// "_lintel.{org}.{edge}.rec.*.*.*", a subject no device or leaf may publish
// ([DevicePermissions], [LeafPermissions]), and stores each record under the
// subject of the thing it is about, "{org}.{edge}.{type}.{code}.{msgtype}"
// (a subject transform), so that central and storage read it like any other
// event. Being a stream of its own, devices can neither fill it nor share
// its deduplication window. Retention limits are left to the caller.
func (n EdgeNames) PlatformStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:      n.PlatformStream,
		Subjects:  []string{n.platformPrefix + ".*.*.*"},
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
		SubjectTransform: &jetstream.SubjectTransformConfig{
			Source:      n.platformPrefix + ".*.*.*",
			Destination: n.Org + "." + n.Edge + ".{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}",
		},
	}
}

// PlatformConsumerConfig returns the durable consumer that the edge service
// creates on its platform stream for central to source from, like
// [EdgeNames.EventConsumerConfig].
func (n EdgeNames) PlatformConsumerConfig() jetstream.ConsumerConfig {
	return sourcingConsumer(n.PlatformConsumer, n.platformDeliver, "")
}

// PlatformSource returns the entry for this edge's platform records in the
// Sources of central's event stream ([CentralEventStreamConfig]).
func (n EdgeNames) PlatformSource() *jetstream.StreamSource {
	return &jetstream.StreamSource{
		Name:     n.PlatformStream,
		External: &jetstream.ExternalStream{APIPrefix: apiPrefix(n.Domain)},
		Consumer: &jetstream.StreamConsumerSource{Name: n.PlatformConsumer, DeliverSubject: n.platformDeliver},
	}
}

// Sources returns the entries for this edge in the Sources of central's
// event stream, in order: [EdgeNames.EventSource],
// [EdgeNames.TelemetrySource] and [EdgeNames.PlatformSource]. It is the one
// list of the streams an edge sources to central: central's stream
// configuration ([CentralEventStreamConfig]) and its origin checks are both
// made from it.
func (n EdgeNames) Sources() []*jetstream.StreamSource {
	return []*jetstream.StreamSource{n.EventSource(), n.TelemetrySource(), n.PlatformSource()}
}
