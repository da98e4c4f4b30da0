package authz

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The central gateway (docs/gateway.md): an HTTP gateway at central, for
// devices that reach no edge. It publishes each event of a device marked
// [Thing].CentralGateway into the org's gateway stream on an internal
// subject only its service user may publish; the stream stores it under
// the device's own subject, and central's storage ingests the stream as
// an origin of its own ([CentralGatewayOrigins]).

// centralGatewayToken is the token after the org in the gateway stream's
// subjects. It begins with '_', so no edge can be called that, and the
// subjects never meet an edge's internal ones ("_lintel.{org}.{edge}.…").
const centralGatewayToken = "_gw"

// centralGatewayTypes are the message types the central gateway stores.
var centralGatewayTypes = [...]topic.MessageType{topic.Event, topic.Telemetry, topic.State, topic.Ack}

// CentralGatewayStream returns the name of org's gateway stream on
// central, "gw-{org}".
func CentralGatewayStream(org string) string { return "gw-" + org }

// CentralGatewaySubject returns the subject on which the central gateway
// publishes a message of type mt of the device t into its org's gateway
// stream: "_lintel.{org}._gw.{edge}.{type}.{code}.{mt}". The stream stores
// it as t.Subject(mt).
func CentralGatewaySubject(t topic.Thing, mt topic.MessageType) string {
	return InternalPrefix + "." + t.Org + "." + centralGatewayToken + "." + t.Edge + "." + t.Type + "." + t.Code + "." + string(mt)
}

// CentralGatewayStreamConfig returns the configuration of org's gateway
// stream: it captures "_lintel.{org}._gw.*.*.*.*", file storage, and
// stores each message under the device subject its subject names (a
// subject transform), so that it reads like a device's message of the
// org to everything downstream. Retention limits, the duplicate window
// and replicas are left to the caller. It returns the error of
// [NamesFor] for a bad org.
func CentralGatewayStreamConfig(org string) (jetstream.StreamConfig, error) {
	if err := checkOrgName(org); err != nil {
		return jetstream.StreamConfig{}, err
	}
	src := InternalPrefix + "." + org + "." + centralGatewayToken + ".*.*.*.*"
	return jetstream.StreamConfig{
		Name:        CentralGatewayStream(org),
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

// CentralGatewayCommandSubject returns the subject on which central's
// services write a command for t, a device marked [Thing].CentralGateway,
// into the org's command stream: "_lintel.{org}.{edge}.gwcmd.{type}.{code}".
// No edge's consumer matches it, so the device's edge never hands the
// command out; the central gateway reads it through
// [CentralGatewayCommandConsumerConfig].
func CentralGatewayCommandSubject(t topic.Thing) string {
	return InternalPrefix + "." + t.Org + "." + t.Edge + "." + centralGatewayCommandToken + "." + t.Type + "." + t.Code
}

// ParseCentralGatewayCommandSubject returns the thing a
// [CentralGatewayCommandSubject] addresses; errors as
// [ParseCommandSubject].
func ParseCentralGatewayCommandSubject(s string) (topic.Thing, error) {
	return parseCommandSubject(s, centralGatewayCommandToken)
}

// CentralGatewayCommandConsumer is the durable consumer on the org's
// command stream through which the central gateway takes the commands of
// its devices.
const CentralGatewayCommandConsumer = "gw-commands"

// CentralGatewayCommandConsumerConfig returns the configuration of org's
// [CentralGatewayCommandConsumer]: a pull consumer filtered to
// [CentralGatewayCommandSubject] subjects, with explicit acks and no limit
// on redeliveries. Central creates it; the gateway's permissions let it
// read and acknowledge through it, never create or change a consumer, so
// it cannot see any other command.
func CentralGatewayCommandConsumerConfig(org string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       CentralGatewayCommandConsumer,
		Description:   "Lintel central gateway: commands of the devices it serves",
		FilterSubject: InternalPrefix + "." + org + ".*." + centralGatewayCommandToken + ".*.*",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 10000,
	}
}

// centralGatewayCommandSubjects are what the central gateway of org
// publishes to read its command consumer: the consumer's info, its next
// messages, and the acknowledgements of what it got.
func centralGatewayCommandSubjects(org string) []string {
	stream, _ := CentralCommandStreamConfig(org)
	sc := stream.Name + "." + CentralGatewayCommandConsumer
	return []string{"$JS.API.CONSUMER.INFO." + sc, "$JS.API.CONSUMER.MSG.NEXT." + sc, "$JS.ACK." + sc + ".>"}
}

// CentralGatewayDevices returns the devices of org that inv marks
// [Thing].CentralGateway, in user-name order.
func CentralGatewayDevices(inv *Inventory, org string) []topic.Thing {
	var out []topic.Thing
	for _, t := range sortedThings(inv) {
		if t.Org == org && t.CentralGateway {
			out = append(out, t.Thing)
		}
	}
	return out
}

// centralGatewaySubjects are the gateway-stream subjects the central
// gateway of org may publish: one per stored message type of each device
// marked for it.
func centralGatewaySubjects(inv *Inventory, org string) []string {
	var out []string
	for _, t := range CentralGatewayDevices(inv, org) {
		for _, mt := range centralGatewayTypes {
			out = append(out, CentralGatewaySubject(t, mt))
		}
	}
	return out
}

// NewCentralGatewayAuthenticator returns the password check of the
// central gateway of org: an [EdgeAuthenticator] whose table holds the
// devices of org that inv marks [Thing].CentralGateway, whatever their
// edge, with their generated device permissions, for
// [EdgeAuthenticator.VerifyPassword] (the same bcrypt hashes, cache,
// bcrypt bound and failure throttling as an edge's logins) and
// [EdgeAuthenticator.Update]. It is not a nats-server authenticator: do not
// Configure a server with it. It returns an error wrapping [ErrReservedName]
// or a [*topic.Error] for a bad org, and [ErrInvalid] for a service of
// unknown kind.
func NewCentralGatewayAuthenticator(inv *Inventory, st *State, org string, cfg EdgeAuthConfig) (*EdgeAuthenticator, error) {
	return newAuthenticator(inv, st, org, "", true, cfg)
}

// buildCentralGatewayTable builds the credential table of the central
// gateway's devices of a's org, reusing the entries of prev that did not
// change.
func (a *EdgeAuthenticator) buildCentralGatewayTable(inv *Inventory, st *State, prev *authTable) (*authTable, error) {
	if err := checkOrgName(a.org); err != nil {
		return nil, err
	}
	marked := make(map[string]bool)
	for _, t := range CentralGatewayDevices(inv, a.org) {
		marked[DeviceUser(t)] = true
	}
	ids, err := identitiesOf(inv)
	if err != nil {
		return nil, err
	}
	t := &authTable{users: make(map[string]*authUser)}
	var missing []string
	for _, id := range ids {
		if !marked[id.user] {
			continue
		}
		cred, ok := st.Passwords[id.user]
		if !ok || cred.Hash == "" {
			missing = append(missing, id.user)
			continue
		}
		u := &authUser{name: id.user, account: id.org, perms: id.perms,
			hash: cred.Hash, prevHash: cred.PreviousHash, prevUntil: cred.PreviousUntil}
		if prev != nil {
			if p := prev.users[id.user]; p != nil && p.hash == u.hash && p.prevHash == u.prevHash &&
				p.prevUntil.Equal(u.prevUntil) && reflect.DeepEqual(p.perms, u.perms) && p.mqttID == "" {
				u = p
			}
		}
		if u.server == nil {
			u.server = u.perms.Server()
		}
		t.users[id.user] = u
	}
	if len(missing) > 0 {
		a.log.Warn("authz: central gateway devices without credentials cannot log in", logKeyUsers, missing)
	}
	return t, nil
}

// CentralGatewayOrigins checks where a message of an org's gateway stream
// came from, for central's storage ingest of that stream (it implements
// the ingest's origin check, as [SourceTable] does for central's event
// stream). The gateway stream has no sources: its messages were published
// by the central gateway's service user, the only identity whose
// permissions allow its subjects, and stored under the device subject
// their internal subject named. Check therefore believes a message only
// on the subject of a device of the org that the inventory marks
// [Thing].CentralGateway, of a type the gateway stores. Build it with
// [NewCentralGatewayOrigins]; [CentralGatewayOrigins.Update] applies a
// changed inventory. It is safe for concurrent use.
type CentralGatewayOrigins struct {
	org string

	mu      sync.RWMutex
	devices map[topic.Thing]bool
}

// NewCentralGatewayOrigins returns the origin check of org's gateway
// stream with the devices inv marks for the central gateway. It returns an
// error wrapping [ErrReservedName] or a [*topic.Error] for a bad org.
func NewCentralGatewayOrigins(inv *Inventory, org string) (*CentralGatewayOrigins, error) {
	if err := checkOrgName(org); err != nil {
		return nil, err
	}
	o := &CentralGatewayOrigins{org: org}
	o.Update(inv)
	return o, nil
}

// Update makes the devices inv marks for the central gateway the ones
// whose messages Check believes.
func (o *CentralGatewayOrigins) Update(inv *Inventory) {
	devs := make(map[topic.Thing]bool)
	for _, t := range CentralGatewayDevices(inv, o.org) {
		devs[t] = true
	}
	o.mu.Lock()
	o.devices = devs
	o.mu.Unlock()
}

// Check reports whether a message stored in the org's gateway stream on
// subject with header h may be believed. Its origin is the gateway stream:
// Origin.Source is [CentralGatewayStream] and Origin.Edge the edge the
// device is registered at. It returns an [*OriginError] (wrapping
// [ErrOrigin]) for a message that carries a stream-source header (the
// gateway stream sources nothing), is not a thing's subject of the org,
// names a device the inventory does not mark for the central gateway, or
// is of a type the gateway does not store.
func (o *CentralGatewayOrigins) Check(subject string, h nats.Header) (Origin, error) {
	src := CentralGatewayStream(o.org)
	refuse := func(edge, reason string) (Origin, error) {
		return Origin{Edge: edge, Source: src}, &OriginError{Subject: subject, Source: src, Edge: edge, Reason: reason}
	}
	if h.Get(HeaderStreamSource) != "" {
		return refuse("", "sourced, but the gateway stream sources nothing")
	}
	subj, err := topic.Parse(subject)
	if err != nil {
		return refuse("", "not a thing's subject: "+err.Error())
	}
	switch {
	case subj.Org != o.org:
		return refuse("", fmt.Sprintf("the gateway stream of org %s, not %s", o.org, subj.Org))
	case !isCentralGatewayType(subj.MessageType):
		return refuse(subj.Edge, "message type "+string(subj.MessageType)+" is not stored through the central gateway")
	}
	o.mu.RLock()
	ok := o.devices[subj.Thing]
	o.mu.RUnlock()
	if !ok {
		return refuse(subj.Edge, "device "+subj.Thing.String()+" is not marked for the central gateway")
	}
	return Origin{Edge: subj.Edge, Source: src}, nil
}

func isCentralGatewayType(mt topic.MessageType) bool {
	return slices.Contains(centralGatewayTypes[:], mt)
}
