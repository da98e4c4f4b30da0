package topology

import (
	"time"

	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

// The central gateway (docs/gateway.md): an HTTP gateway at central, for
// devices that reach no edge. It publishes each event of a device marked
// for it into the org's gateway stream on an internal subject only its
// service user may publish; the stream stores it under the device's own
// subject, and central's storage ingests the stream as an origin of its
// own. Central's services write the commands of such a device on
// [GatewayCommandSubject] subjects, which the central gateway reads
// through [GatewayCommandConsumer].

// gatewayToken is the token after the org in the gateway stream's
// subjects. It begins with '_', so no edge can be called that, and the
// subjects never meet an edge's internal ones ("_lintel.{org}.{edge}.…").
const gatewayToken = "_gw"

// GatewayTypes returns the message types the central gateway stores:
// event, telemetry, state and ack.
func GatewayTypes() []topic.MessageType {
	return []topic.MessageType{topic.Event, topic.Telemetry, topic.State, topic.Ack}
}

// GatewayStream returns the name of org's central gateway stream on
// central, "gw-{org}".
func GatewayStream(org string) string { return "gw-" + org }

// GatewaySubject returns the subject on which the central gateway
// publishes a message of type mt of the device t into its org's gateway
// stream: "_lintel.{org}._gw.{edge}.{type}.{code}.{mt}". The stream stores
// it as t.Subject(mt).
func GatewaySubject(t topic.Thing, mt topic.MessageType) string {
	return InternalPrefix + "." + t.Org + "." + gatewayToken + "." + t.Edge + "." + t.Type + "." + t.Code + "." + string(mt)
}

// GatewayStreamConfig returns the configuration of org's central gateway
// stream: it captures "_lintel.{org}._gw.*.*.*.*", file storage, and
// stores each message under the device subject its subject names (a
// subject transform), so that it reads like a device's message of the
// org to everything downstream. Retention limits, the duplicate window
// and replicas are left to the caller. It returns the error of
// [CheckOrg] for a bad org.
func GatewayStreamConfig(org string) (jetstream.StreamConfig, error) {
	if err := CheckOrg(org); err != nil {
		return jetstream.StreamConfig{}, err
	}
	src := InternalPrefix + "." + org + "." + gatewayToken + ".*.*.*.*"
	return jetstream.StreamConfig{
		Name:        GatewayStream(org),
		Description: "Lintel events of devices posted to the central HTTP gateway",
		Subjects:    []string{src},
		SubjectTransform: &jetstream.SubjectTransformConfig{
			Source:      src,
			Destination: org + ".{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.{{wildcard(4)}}",
		},
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
	}, nil
}

// GatewayCommandSubject returns the subject on which central's services
// write a command for t, a device marked for the central gateway, into
// the org's command stream: "_lintel.{org}.{edge}.gwcmd.{type}.{code}".
// No edge's consumer matches it, so the device's edge never hands the
// command out; the central gateway reads it through
// [GatewayCommandConsumerConfig].
func GatewayCommandSubject(t topic.Thing) string {
	return commandSubject(t, gatewayCommandToken)
}

// ParseGatewayCommandSubject returns the thing a [GatewayCommandSubject]
// addresses; errors as [ParseCommandSubject].
func ParseGatewayCommandSubject(s string) (topic.Thing, error) {
	return parseCommandSubject(s, gatewayCommandToken)
}

// GatewayCommandConsumer is the durable consumer on the org's command
// stream through which the central gateway takes the commands of its
// devices.
const GatewayCommandConsumer = "gw-commands"

// GatewayCommandConsumerConfig returns the configuration of org's
// [GatewayCommandConsumer]: a pull consumer filtered to
// [GatewayCommandSubject] subjects, with explicit acks and no limit on
// redeliveries. Central creates it; the gateway's permissions let it read
// and acknowledge through it, never create or change a consumer, so it
// cannot see any other command.
func GatewayCommandConsumerConfig(org string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       GatewayCommandConsumer,
		Description:   "Lintel central gateway: commands of the devices it serves",
		FilterSubject: commandFilter(org, gatewayCommandToken),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 10000,
	}
}
