package authz

import (
	"fmt"
	"time"

	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

// Topology constants shared by central, every edge and the permissions
// generated for them.
const (
	// HubDomain is the JetStream domain of central. Each edge runs JetStream
	// in its own domain, named after its edge code, so no edge may be called
	// HubDomain. Separate domains are what let an edge keep its own streams
	// while the leaf link is down, and what make the server deny the plain
	// "$JS.API.>" and "$KV.>" across the leaf link: cross-domain traffic must
	// name its domain ("$JS.hub.API.…"), which permissions can then confine.
	HubDomain = "hub"

	// SystemAccount is the name of the NATS system account on central and on
	// every edge. No org may be called SystemAccount.
	SystemAccount = topology.SystemAccount // "SYS"

	// InternalPrefix is the first token of the platform's own subjects that
	// are not device subjects: command intake on central and the per-edge
	// deliver subjects of stream sourcing and mirroring. It begins with '_',
	// so no org code can produce it.
	InternalPrefix = topology.InternalPrefix // "_lintel"

	// sourceHeartbeat is the idle heartbeat nats-server requires of a
	// consumer with the flow-control ack policy (it is the server's own
	// source health interval).
	sourceHeartbeat = time.Second
	// sourceMaxAckPending bounds the messages a sourcing consumer has in
	// flight across the leaf link before the sourcing side acknowledges them
	// through flow control.
	sourceMaxAckPending = 10000
)

// eventMessageTypes are the message types the edge's event stream captures
// and central sources: what a device reports and what the platform must keep
// and forward, the audit trail. Telemetry, which a device may send at a high
// rate, has a stream of its own on the edge (EdgeNames.TelemetryStream), so
// that it never queues ahead of these. Commands travel in the command
// streams; configuration and requests are live request/reply traffic.
var eventMessageTypes = [...]topic.MessageType{topic.Event, topic.State, topic.Ack}

// EdgeNames are the JetStream and subject names of one edge, fixed here so
// that the edge service, central's services and the generated permissions
// agree on them. Build it with [NamesFor]. For org "acme" and edge "hq":
//
//	Domain               hq                        the edge's JetStream domain
//	EventStream          events-acme-hq            on the edge: evt, state, ack of the edge
//	EventConsumer        to-hub                    durable on EventStream, read by central
//	TelemetryStream      telemetry-acme-hq         on the edge: tlm of the edge, persisted asynchronously
//	TelemetryConsumer    to-hub-tlm                durable on TelemetryStream, read by central
//	PlatformStream       platform-acme-hq          on the edge: the platform's own records (audit trail), no device writes it
//	PlatformConsumer     to-hub-platform           durable on PlatformStream, read by central
//	CentralEventStream   events-acme               on central: sources every edge's EventStream, TelemetryStream and PlatformStream
//	CredentialBucket     creds-acme-hq             KV bucket on central, and its mirror on the edge
//	CredentialStream     KV_creds-acme-hq          the bucket's stream, on both sides
//	CredentialConsumer   to-hq                     durable on central's CredentialStream
//	CredentialInfo       $JS.hub.API.STREAM.INFO.KV_creds-acme-hq   the edge asks central how far its bucket is
//	CredentialGet        $JS.hub.API.DIRECT.GET.KV_creds-acme-hq   the edge reads one entry of its bucket at central
//	CredentialReset      $JS.hub.API.CONSUMER.RESET.KV_creds-acme-hq.to-hq   the edge rewinds its mirror's consumer
//	CommandReset         $JS.hub.API.CONSUMER.RESET.commands-acme.to-hq      the edge resends its command source's lost reset
//	SyncReplyPrefix      _lintel.acme.hq.fwd.sync  replies to both (central → edge)
//	CentralCommandStream commands-acme             on central: every command of the org
//	CommandFilter        _lintel.acme.hq.cmd.*.*   the edge's part of CentralCommandStream
//	CommandConsumer      to-hq                     durable on CentralCommandStream
//	CommandStream        commands-acme-hq          on the edge: sources the edge's commands
//
// Every cross-domain flow is a durable, flow-controlled sourcing consumer
// that the origin side creates ([EdgeNames.EventConsumerConfig],
// [EdgeNames.TelemetryConsumerConfig], [EdgeNames.CredentialConsumerConfig],
// [EdgeNames.CommandConsumerConfig])
// with a fixed deliver subject under the edge's private namespace
// "_lintel.{org}.{edge}.fwd" (the deliver subjects are kept unexported). The
// sourcing side only asks the origin to reset that consumer, so the leaf
// permissions allow exactly one API subject per flow, and an edge can
// neither create consumers on central (which could deliver anywhere) nor
// see or feed another edge's deliver subjects; the shared "$JS.S.…" and
// "$JS.M.…" subjects of ephemeral sourcing are never used.
type EdgeNames struct {
	Org  string // org code: the NATS account on central and on the edge
	Edge string // edge code

	Domain string // the edge's JetStream domain: its edge code

	// deliverPrefix is the edge's private namespace for sourcing and
	// mirroring deliveries, "_lintel.{org}.{edge}.fwd"; the deliver
	// subjects below lie in it.
	deliverPrefix string

	EventStream        string   // the edge's event stream, on the edge's domain
	eventSubjects      []string // what EventStream captures: "{org}.{edge}.*.*.{evt,state,ack}"
	EventConsumer      string   // durable on EventStream that CentralEventStream sources through
	eventDeliver       string   // deliver subject of EventConsumer (edge → central)
	CentralEventStream string   // central's event stream of the org: sources every edge, captures only CentralEventSubjects

	TelemetryStream   string   // the edge's telemetry stream, on the edge's domain
	telemetrySubjects []string // what TelemetryStream captures: "{org}.{edge}.*.*.tlm"
	TelemetryConsumer string   // durable on TelemetryStream that CentralEventStream sources through
	telemetryDeliver  string   // deliver subject of TelemetryConsumer (edge → central)

	// PlatformStream is the edge's stream of platform records (see
	// [EdgeNames.PlatformStreamConfig]), captured below
	// "_lintel.{org}.{edge}.rec", which no device may publish.
	PlatformStream   string
	platformPrefix   string // see PlatformStream
	PlatformConsumer string // durable on PlatformStream that CentralEventStream sources through
	platformDeliver  string // deliver subject of PlatformConsumer (edge → central)

	CredentialBucket   string // KV bucket on central holding the edge's credentials, mirrored on the edge under the same name
	CredentialStream   string // the stream behind CredentialBucket: "KV_" + CredentialBucket
	CredentialConsumer string // durable on central's CredentialStream that the edge's mirror reads through
	credentialDeliver  string // deliver subject of CredentialConsumer (central → edge)
	// CredentialInfo is the JetStream API subject of central's stream info
	// of CredentialStream. The edge service asks it, with a reply subject
	// below SyncReplyPrefix, to learn the last revision central holds, and
	// so to confirm that its mirror has caught up: the only JetStream API
	// request an edge sends to central besides its consumer resets.
	CredentialInfo string
	// CredentialGet is the JetStream direct-get subject of central's
	// CredentialStream. The edge service reads the current entry of one
	// key at central through CredentialGet + "." + the key's subject
	// ("$KV.{bucket}.{key}") while its mirror has not yet caught up after
	// a reconnection, so that a pending revocation is never overlooked.
	CredentialGet string
	// CredentialReset is the JetStream API subject that resets
	// CredentialConsumer on central. The edge's mirror sends it (empty: back
	// to the consumer's ack floor) whenever it sets up; the edge service
	// sends it, with the sequence after the last one its rebuilt mirror
	// holds, when its store was replaced or wiped, so that central delivers
	// what the edge lacks. Its answer goes to SyncReplyPrefix + ".{id}".
	CredentialReset string
	// CommandReset is the JetStream API subject that resets central's
	// consumer (CommandConsumer) through which the edge's server sources
	// its commands: the edge node sends again one its server sent while
	// the link was down.
	CommandReset string
	// SyncReplyPrefix is the edge's namespace for the replies to
	// CredentialInfo and CredentialGet, "_lintel.{org}.{edge}.fwd.sync";
	// replies go to SyncReplyPrefix + ".{id}".
	SyncReplyPrefix string

	CentralCommandStream string // central's command stream of the org, fed on CommandSubject subjects
	CommandFilter        string // the edge's commands within CentralCommandStream
	CommandConsumer      string // durable on CentralCommandStream, filtered by CommandFilter
	commandDeliver       string // deliver subject of CommandConsumer (central → edge)
	CommandStream        string // the edge's command stream: sources only its own commands from central
}

// NamesFor returns the topology names of edge at org. It returns an error
// wrapping [ErrReservedName] when edge is [HubDomain] or org is
// [SystemAccount], and a [*topic.Error] when either is not a valid,
// non-reserved token.
func NamesFor(org, edge string) (EdgeNames, error) {
	if err := checkTopologyNames(org, edge); err != nil {
		return EdgeNames{}, err
	}
	fwd := InternalPrefix + "." + org + "." + edge + ".fwd"
	n := EdgeNames{
		Org:    org,
		Edge:   edge,
		Domain: edge,

		deliverPrefix: fwd,

		EventStream:        "events-" + org + "-" + edge,
		EventConsumer:      "to-" + HubDomain,
		eventDeliver:       fwd + ".evt",
		CentralEventStream: "events-" + org,

		TelemetryStream:   "telemetry-" + org + "-" + edge,
		telemetrySubjects: []string{org + "." + edge + ".*.*." + string(topic.Telemetry)},
		TelemetryConsumer: "to-" + HubDomain + "-" + string(topic.Telemetry),
		telemetryDeliver:  fwd + "." + string(topic.Telemetry),

		PlatformStream:   "platform-" + org + "-" + edge,
		platformPrefix:   InternalPrefix + "." + org + "." + edge + ".rec",
		PlatformConsumer: "to-" + HubDomain + "-platform",
		platformDeliver:  fwd + ".platform",

		CredentialBucket:   "creds-" + org + "-" + edge,
		CredentialConsumer: "to-" + edge,
		credentialDeliver:  fwd + ".creds",
		SyncReplyPrefix:    fwd + ".sync",

		CentralCommandStream: "commands-" + org,
		CommandFilter:        InternalPrefix + "." + org + "." + edge + ".cmd.*.*",
		CommandConsumer:      "to-" + edge,
		commandDeliver:       fwd + ".cmd",
		CommandStream:        "commands-" + org + "-" + edge,
	}
	n.CredentialStream = "KV_" + n.CredentialBucket
	n.CredentialInfo = apiPrefix(HubDomain) + ".STREAM.INFO." + n.CredentialStream
	n.CredentialGet = apiPrefix(HubDomain) + ".DIRECT.GET." + n.CredentialStream
	n.CredentialReset = apiPrefix(HubDomain) + ".CONSUMER.RESET." + n.CredentialStream + "." + n.CredentialConsumer
	n.CommandReset = apiPrefix(HubDomain) + ".CONSUMER.RESET." + n.CentralCommandStream + "." + n.CommandConsumer
	for _, mt := range eventMessageTypes {
		n.eventSubjects = append(n.eventSubjects, org+"."+edge+".*.*."+string(mt))
	}
	return n, nil
}

// checkTopologyNames validates org and edge as topology names: valid
// non-reserved tokens, and not the names the topology keeps for itself.
func checkTopologyNames(org, edge string) error {
	if err := topology.CheckOrg(org); err != nil {
		return err
	}
	if _, err := topic.EdgeFilter(org, edge); err != nil {
		return err
	}
	if edge == HubDomain {
		return fmt.Errorf("%w: edge %q: it is central's JetStream domain", ErrReservedName, edge)
	}
	return nil
}

// validateTopology reports the org and edge codes of inv that the NATS
// topology cannot use ([ErrReservedName]): an edge named [HubDomain], an
// org named [SystemAccount]. It complements [Inventory.Validate], which it
// does not call.
func validateTopology(inv *Inventory) error {
	for _, o := range inv.Orgs {
		if o.Code == SystemAccount {
			return fmt.Errorf("%w: org %q: it is the system account", ErrReservedName, o.Code)
		}
	}
	for _, e := range inv.Edges {
		if e.Code == HubDomain {
			return fmt.Errorf("%w: edge %q: it is central's JetStream domain", ErrReservedName, e.Code)
		}
	}
	return nil
}

// apiPrefix returns the JetStream API prefix of a domain, "$JS.{domain}.API".
// A client of another domain reaches the domain's JetStream through it.
func apiPrefix(domain string) string { return "$JS." + domain + ".API" }

// CommandSubject returns the subject on which central's services write a
// command for thing t into the org's command stream:
// "_lintel.{org}.{edge}.cmd.{type}.{code}". Commands never travel live on the
// device's own cmd subject across the leaf link; the edge service takes them
// from its command stream and is the only publisher on
// "{org}.{edge}.{type}.{code}.cmd".
func CommandSubject(t topic.Thing) string { return topology.CommandSubject(t) }

// ParseCommandSubject returns the thing a [CommandSubject] addresses. It
// returns an error wrapping [topic.ErrTokenCount] for a subject of another
// shape and a [*topic.Error] for an invalid token.
func ParseCommandSubject(s string) (topic.Thing, error) { return topology.ParseCommandSubject(s) }

// UserInboxPrefix returns the reply-inbox prefix of a NATS user,
// "_INBOX.{user}": for a device it is [topic.Thing.InboxPrefix]. Every
// identity subscribes only below its own prefix, so replies cannot be read
// by anyone else; connect with nats.CustomInboxPrefix(UserInboxPrefix(user)).
func UserInboxPrefix(user string) string { return "_INBOX." + user }

// EventStreamConfig returns the configuration of the edge's event stream,
// created on the edge (domain n.Domain) by the edge service. Devices publish
// into it with a JetStream acknowledgement to their own inbox. Retention
// limits are left to the caller.
func (n EdgeNames) EventStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:      n.EventStream,
		Subjects:  append([]string(nil), n.eventSubjects...),
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
	}
}

// EventConsumerConfig returns the durable consumer that the edge service
// creates on its event stream for central to source from: it pushes to
// n.eventDeliver and is acknowledged through flow control, as nats-server
// requires of a durable sourcing consumer.
func (n EdgeNames) EventConsumerConfig() jetstream.ConsumerConfig {
	return sourcingConsumer(n.EventConsumer, n.eventDeliver, "")
}

// EventSource returns the entry for this edge in the Sources of central's
// event stream ([CentralEventStreamConfig]).
func (n EdgeNames) EventSource() *jetstream.StreamSource {
	return &jetstream.StreamSource{
		Name:     n.EventStream,
		External: &jetstream.ExternalStream{APIPrefix: apiPrefix(n.Domain)},
		Consumer: &jetstream.StreamConsumerSource{Name: n.EventConsumer, DeliverSubject: n.eventDeliver},
	}
}

// TelemetryStreamConfig returns the configuration of the edge's telemetry
// stream, created on the edge (domain n.Domain) by the edge service. Devices
// publish telemetry into it, with or without a JetStream acknowledgement. It
// is persisted asynchronously (PersistMode async): nats-server then does not
// fsync it per write even when the server runs with sync_interval "always",
// so a telemetry flood neither pays nor delays the fsync of the event
// stream; a power loss of the edge may lose the telemetry of the last
// moments that central had not yet stored. Retention limits are left to the
// caller.
func (n EdgeNames) TelemetryStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        n.TelemetryStream,
		Subjects:    append([]string(nil), n.telemetrySubjects...),
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		PersistMode: jetstream.AsyncPersistMode,
	}
}

// TelemetryConsumerConfig returns the durable consumer that the edge
// service creates on its telemetry stream for central to source from, like
// [EdgeNames.EventConsumerConfig]: it pushes to n.telemetryDeliver and is
// acknowledged through flow control.
func (n EdgeNames) TelemetryConsumerConfig() jetstream.ConsumerConfig {
	return sourcingConsumer(n.TelemetryConsumer, n.telemetryDeliver, "")
}

// TelemetrySource returns the entry for this edge's telemetry in the
// Sources of central's event stream ([CentralEventStreamConfig]).
func (n EdgeNames) TelemetrySource() *jetstream.StreamSource {
	return &jetstream.StreamSource{
		Name:     n.TelemetryStream,
		External: &jetstream.ExternalStream{APIPrefix: apiPrefix(n.Domain)},
		Consumer: &jetstream.StreamConsumerSource{Name: n.TelemetryConsumer, DeliverSubject: n.telemetryDeliver},
	}
}

// CentralEventStreamConfig returns the configuration of the org's event
// stream on central, sourcing the event stream, the telemetry stream and the
// platform stream of each of edges, in that order ([EdgeNames.Sources]). Its
// only subjects are central's own events about an edge,
// [CentralEventSubjects]: events of devices reach central both live and
// through sourcing, and subjects overlapping their
// "{org}.{edge}.*.*.*" would store each event twice; the leaf link carries
// no "_sys" subject in either direction ([LeafPermissions]). It returns the
// error of [NamesFor] for a bad org or edge.
func CentralEventStreamConfig(org string, edges ...string) (jetstream.StreamConfig, error) {
	if err := topology.CheckOrg(org); err != nil {
		return jetstream.StreamConfig{}, err
	}
	cfg := jetstream.StreamConfig{
		Name:      "events-" + org,
		Subjects:  CentralEventSubjects(org),
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
	}
	for _, e := range edges {
		n, err := NamesFor(org, e)
		if err != nil {
			return jetstream.StreamConfig{}, err
		}
		cfg.Sources = append(cfg.Sources, n.Sources()...)
	}
	return cfg, nil
}

// CentralEventSubjects returns the subjects of the events that central
// itself raises about an edge, which central's event stream captures
// directly: "{org}.*._sys.*.evt", from things of type [topic.ThingTypeSystem]
// such as "acme.hq._sys.audit" (audit-chain alarms). No edge can publish
// or receive them across the leaf link.
func CentralEventSubjects(org string) []string {
	return []string{org + ".*." + topic.ThingTypeSystem + ".*." + string(topic.Event)}
}

// CredentialBucketConfig returns the configuration of the central KV bucket
// that holds the edge's credentials.
func (n EdgeNames) CredentialBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: n.CredentialBucket, Storage: jetstream.FileStorage}
}

// CredentialConsumerConfig returns the durable consumer that central creates
// on n.CredentialStream for the edge's mirror to read through.
func (n EdgeNames) CredentialConsumerConfig() jetstream.ConsumerConfig {
	return sourcingConsumer(n.CredentialConsumer, n.credentialDeliver, "")
}

// CredentialMirrorConfig returns the configuration of the edge's mirror of
// its credential bucket, created on the edge. The mirror reads through
// central's durable [EdgeNames.CredentialConsumerConfig]; reads are local,
// so the edge authenticates its devices while the leaf link is down.
func (n EdgeNames) CredentialMirrorConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:  n.CredentialBucket,
		Storage: jetstream.FileStorage,
		Mirror: &jetstream.StreamSource{
			Name:     n.CredentialStream,
			External: &jetstream.ExternalStream{APIPrefix: apiPrefix(HubDomain)},
			Consumer: &jetstream.StreamConsumerSource{Name: n.CredentialConsumer, DeliverSubject: n.credentialDeliver},
		},
	}
}

// CentralCommandStreamConfig returns the configuration of the org's command
// stream on central. Central's services write commands into it on
// [CommandSubject] subjects, which each edge sources its own of through
// [EdgeNames.CommandConsumerConfig], and, for the devices marked
// [Thing].CentralGateway, on "_lintel.{org}.{edge}.gwcmd.{type}.{code}"
// subjects, which the central gateway reads through a consumer of its own.
func CentralCommandStreamConfig(org string) (jetstream.StreamConfig, error) {
	if err := topology.CheckOrg(org); err != nil {
		return jetstream.StreamConfig{}, err
	}
	return jetstream.StreamConfig{
		Name:      "commands-" + org,
		Subjects:  topology.CommandStreamSubjects(org),
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
	}, nil
}

// CommandConsumerConfig returns the durable consumer that central creates on
// the org's command stream for the edge: only the edge's commands
// (n.CommandFilter), pushed to n.commandDeliver.
func (n EdgeNames) CommandConsumerConfig() jetstream.ConsumerConfig {
	return sourcingConsumer(n.CommandConsumer, n.commandDeliver, n.CommandFilter)
}

// CommandStreamConfig returns the configuration of the edge's command
// stream, created on the edge: it sources the edge's commands from central
// and has no subjects of its own.
func (n EdgeNames) CommandStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:      n.CommandStream,
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
		Sources: []*jetstream.StreamSource{{
			Name:     n.CentralCommandStream,
			External: &jetstream.ExternalStream{APIPrefix: apiPrefix(HubDomain)},
			Consumer: &jetstream.StreamConsumerSource{Name: n.CommandConsumer, DeliverSubject: n.commandDeliver},
		}},
	}
}

// sourcingConsumer returns a durable push consumer that a sourcing or
// mirroring stream in another domain can reset and read through: flow
// control acknowledgement (nats-server requires flow control, a 1s idle
// heartbeat and a bound on pending messages with it).
func sourcingConsumer(name, deliver, filter string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        name,
		DeliverSubject: deliver,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckFlowControlPolicy,
		FlowControl:    true,
		IdleHeartbeat:  sourceHeartbeat,
		MaxAckPending:  sourceMaxAckPending,
		FilterSubject:  filter,
	}
}
