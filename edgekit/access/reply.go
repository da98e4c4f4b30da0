package access

import (
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// Keys and values of the security events the service logs, at warn level.
const (
	// LogKeySecurity names the kind of a security event; its values are
	// the Security* constants.
	LogKeySecurity = "security"
	// LogKeyReply is the reply subject a request named.
	LogKeyReply = "reply"
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
		LogKeySecurity, SecurityReplyRefused, edgeLogSubject, m.Subject, LogKeyReply, m.Reply)
	return false
}
