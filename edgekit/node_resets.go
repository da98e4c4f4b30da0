package edgekit

import (
	"github.com/lintel-io/lintel/authz"
)

// peerCentral is the peer of an edge node's reset watch.
const peerCentral = "central"

// watchResets starts the node's reset watch (see resetWatch) over the two
// flows its server keeps from central: the command stream's source and
// the credential mirror, whose consumers live on central.
func (n *Node) watchResets() (*resetWatch, error) {
	return startResetWatch(&resetWatch{
		nc: n.nc, log: n.log, peerKey: logKeyPeer, take: n.centralReset, resent: &n.stats.resetsResent,
		// Linked once central's interest in its consumer API has crossed
		// the link, so that the reset sent again reaches it.
		links: func() map[string]uint64 {
			if id := LeafDomains(n.srv, n.cfg.Org)[authz.HubDomain]; id != 0 {
				return map[string]uint64{peerCentral: id}
			}
			return nil
		},
	}, []string{n.names.CredentialReset, n.names.CommandReset}, []string{
		"$JSC.R." + authz.HubDomain + ".*." + n.names.CredentialStream + "." + n.names.CredentialConsumer + ".*",
		"$JSC.R." + authz.HubDomain + ".*." + n.names.CentralCommandStream + "." + n.names.CommandConsumer + ".*",
	})
}

// centralReset reports whether subject and reply are a reset that the
// node's server sent for its command source or credential mirror, with
// nats-server's scoped reply (the access service's own resets of the
// mirror's consumer have replies of its own, and are left alone).
func (n *Node) centralReset(subject, reply string) (string, bool) {
	domain, stream, consumer, ok := resetSubject(subject)
	if !ok || domain != authz.HubDomain {
		return "", false
	}
	if (stream == n.names.CentralCommandStream && consumer == n.names.CommandConsumer) ||
		(stream == n.names.CredentialStream && consumer == n.names.CredentialConsumer) {
		return peerCentral, scopedReply(reply, authz.HubDomain, stream, consumer)
	}
	return "", false
}
