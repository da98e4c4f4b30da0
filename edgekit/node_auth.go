package edgekit

import (
	"crypto/subtle"
	"fmt"
	"sync/atomic"

	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nats-server/v2/server"
)

// nodeGate is the node's client authentication: the edge's
// [authz.EdgeAuthenticator], behind a gate that lets only the node's own
// in-process edge service in until the node is ready. Devices are kept out
// until the held streams and central's consumers on them exist, so that
// every device message lands in a stream central sources.
//
// The node's edge service logs in as the edge service user with a random
// per-process token instead of the inventory's password, which the node
// then need not be given; it gets the same account and permissions
// ([authz.EdgeServicePermissions]). The inventory's password keeps working
// for other edge-service processes, through the authenticator.
type nodeGate struct {
	inner   *authz.EdgeAuthenticator
	user    string
	token   string
	account string
	perms   *server.Permissions
	// The responder: the connection on which the edge's services take
	// device requests (see responder.go).
	respUser  string
	respToken string
	respPerms *server.Permissions
	rate      *rateGuard // devices refused for a while after exceeding their rate
	srv       atomic.Pointer[server.Server]
	isOpen    atomic.Bool
}

var _ server.Authentication = (*nodeGate)(nil)

func newNodeGate(inner *authz.EdgeAuthenticator, org, edge string) (*nodeGate, error) {
	tok, err := nodeRandomToken()
	if err != nil {
		return nil, fmt.Errorf("edgekit: edge service token: %w", err)
	}
	respTok, err := nodeRandomToken()
	if err != nil {
		return nil, fmt.Errorf("edgekit: edge responder token: %w", err)
	}
	return &nodeGate{
		inner:     inner,
		user:      authz.EdgeServiceUser(org, edge),
		token:     tok,
		account:   org,
		perms:     authz.EdgeServicePermissions(org, edge).Server(),
		respUser:  authz.EdgeResponderUser(org, edge),
		respToken: respTok,
		respPerms: authz.EdgeResponderPermissions(org, edge).Server(),
	}, nil
}

func (g *nodeGate) attach(srv *server.Server) { g.srv.Store(srv) }

// open lets devices in.
func (g *nodeGate) open() { g.isOpen.Store(true) }

// Check implements server.Authentication.
func (g *nodeGate) Check(c server.ClientAuthentication) bool {
	if o := c.GetOpts(); o != nil && c.Kind() == server.CLIENT {
		for _, own := range [...]struct {
			user, token string
			perms       *server.Permissions
		}{{g.user, g.token, g.perms}, {g.respUser, g.respToken, g.respPerms}} {
			if o.Username != own.user || subtle.ConstantTimeCompare([]byte(o.Password), []byte(own.token)) != 1 {
				continue
			}
			srv := g.srv.Load()
			if srv == nil {
				return false
			}
			acc, err := srv.LookupAccount(g.account)
			if err != nil {
				return false
			}
			c.RegisterUser(&server.User{Username: own.user, Account: acc, Permissions: own.perms})
			return true
		}
	}
	if !g.isOpen.Load() {
		return false
	}
	if o := c.GetOpts(); o != nil && g.rate.refused(o.Username) {
		return false
	}
	return g.inner.Check(c)
}
