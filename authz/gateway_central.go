package authz

import (
	"reflect"

	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/topic"
)

// The central gateway (docs/gateway.md): an HTTP gateway at central, for
// devices that reach no edge. It publishes each event of a device marked
// [Thing].CentralGateway into the org's gateway stream on an internal
// subject only its service user may publish, and takes their commands
// through a consumer central makes for it on the org's command stream.
// The names are internal/topology's; the permissions are here.

// centralGatewayCommandSubjects are what the central gateway of org
// publishes to read its command consumer: the consumer's info, its next
// messages, and the acknowledgements of what it got.
func centralGatewayCommandSubjects(org string) []string {
	stream, _ := CentralCommandStreamConfig(org)
	sc := stream.Name + "." + topology.GatewayCommandConsumer
	return []string{"$JS.API.CONSUMER.INFO." + sc, "$JS.API.CONSUMER.MSG.NEXT." + sc, "$JS.ACK." + sc + ".>"}
}

// CentralGatewayDevices returns the devices of org that inv marks
// [Thing].CentralGateway, in user-name order.
func (inv *Inventory) CentralGatewayDevices(org string) []topic.Thing {
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
	for _, t := range inv.CentralGatewayDevices(org) {
		for _, mt := range topology.GatewayTypes() {
			out = append(out, topology.GatewaySubject(t, mt))
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
	if err := topology.CheckOrg(a.org); err != nil {
		return nil, err
	}
	marked := make(map[string]bool)
	for _, t := range inv.CentralGatewayDevices(a.org) {
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
