package edgekit

// ResponderLogin returns the user and token with which the node's
// responder logs in, so that tests can open a connection of their own with
// the responder's permissions.
func ResponderLogin(n *Node) (user, token string) { return n.gate.respUser, n.gate.respToken }
