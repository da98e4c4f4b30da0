package central

import (
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// leafLinks returns the edges of org linked to srv, each with the ID of
// its leaf connection: a leaf of org's account that carries its edge's
// JetStream API ("$JS.{edge}.API.CONSUMER.>"), the interest through
// which central's sources reach the edge. The hub's supervisor sends a
// source's lost consumer reset again once its edge is in it
// (edgekit.HubConfig.LeafLinks). A node of a clustered central sees only
// the edges linked to itself.
func leafLinks(srv *server.Server, org string) map[string]uint64 {
	lz, err := srv.Leafz(&server.LeafzOptions{Account: org, Subscriptions: true})
	if err != nil {
		return nil
	}
	out := map[string]uint64{}
	for _, l := range lz.Leafs {
		for _, sub := range l.Subs {
			t := strings.Split(sub, ".")
			if len(t) == 5 && t[0] == "$JS" && t[2] == "API" && t[3] == "CONSUMER" && t[4] == ">" {
				out[t[1]] = l.ID
			}
		}
	}
	return out
}
