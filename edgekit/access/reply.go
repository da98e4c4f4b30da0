package access

import (
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// Security events the service logs at warn level, values of
// authz.LogKeySecurity.
const (
	// SecurityReplyRefused is a request dropped unanswered because its
	// reply subject was not the requester's own inbox.
	SecurityReplyRefused = "reply_refused"
)

// replyAllowed reports whether the service may act on and answer request
// m: a request without a reply subject is acted on without an answer; one
// whose reply subject is not the requester's own inbox
// ([topic.ReplyAllowed]) is dropped, counted and logged as a security
// event, so that no request can make the service publish anywhere but
// back to its sender.
func (s *Service) replyAllowed(m *nats.Msg) bool {
	if m.Reply == "" || topic.ReplyAllowed(m.Subject, m.Reply) {
		return true
	}
	s.repliesRefused.Add(1)
	s.log.Warn("request dropped: reply subject outside the requester's inbox",
		authz.LogKeySecurity, SecurityReplyRefused, message.LogKeySubject, m.Subject, logKeyReply, m.Reply)
	return false
}
