package edgekit

import (
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
)

// watchResets starts the reset watch of central's sources of the org's
// edges (see resetWatch). The hub's connection sees the resets and their
// answers: nats-server sends the resets in the org's account on central,
// and the edges answer there.
func (s *Supervisor) watchResets(links func() map[string]uint64) (*resetWatch, error) {
	return startResetWatch(&resetWatch{
		nc: s.h.js.Conn(), log: s.h.log, peerKey: message.LogKeyEdge, take: s.sourceReset, links: links, resent: &s.resent,
		// A kick restarts the sources itself, and an answer must not reach
		// a source added again.
		busy: func(edge string) bool { _, kicking := s.kicking.Load(edge); return kicking },
	}, []string{"$JS.*.API.CONSUMER.RESET.*.*"}, []string{"$JSC.R.*.*.*.*.*"})
}

// sourceReset returns the edge whose source's reset subject is subject,
// "$JS.{edge}.API.CONSUMER.RESET.{stream}.{consumer}", when it names one
// of the flows of a registered edge of the hub's org and reply is
// nats-server's scoped reply for that flow.
func (s *Supervisor) sourceReset(subject, reply string) (string, bool) {
	edge, stream, consumer, ok := resetSubject(subject)
	if !ok || edge == authz.HubDomain {
		return "", false
	}
	n, err := authz.NamesFor(s.h.cfg.Org, edge)
	if err != nil || !s.h.known.Load().edges[edge] {
		return "", false
	}
	for _, f := range flows {
		src := f.source(n)
		if src.Name == stream && src.Consumer != nil && src.Consumer.Name == consumer {
			return edge, scopedReply(reply, edge, stream, consumer)
		}
	}
	return "", false
}
