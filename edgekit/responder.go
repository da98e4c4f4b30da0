package edgekit

import (
	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nats.go"
)

// connectResponder opens the responder's in-process connection.
func (n *Node) connectResponder() (*nats.Conn, error) {
	return nats.Connect("",
		nats.InProcessServer(n.srv),
		nats.UserInfo(n.gate.respUser, n.gate.respToken),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(n.gate.respUser)),
		nats.Name("lintel edge responder "+authz.EdgeKeyID(n.cfg.Org, n.cfg.Edge)),
		nats.MaxReconnects(-1),
		nats.NoCallbacksAfterClientClose(),
	)
}

// ResponderConn returns the edge's responder connection, in-process, with
// the responder's permissions ([authz.EdgeResponderPermissions]): it may
// subscribe to the requests of the edge's devices and publish only into
// their inboxes; nil before start. A service takes device requests on it
// and answers them on it, after checking the reply subject with
// [topic.ReplyAllowed], so that no reply subject a device names can make
// the edge publish anywhere but into a device's inbox: not to JetStream,
// KV, a platform subject or another thing. Everything else (JetStream,
// events, commands) belongs on [Node.Conn]. Do not close it.
func (n *Node) ResponderConn() *nats.Conn { return n.rc }
