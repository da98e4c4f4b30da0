package topic

import "strings"

// ReplyAllowed reports whether a service may answer a request received on
// subject at the reply subject reply: only when reply lies in the own inbox
// of the thing that subject names, InboxPrefix()+"." followed by at least
// one token, without wildcards, spaces or empty tokens.
//
// nats-server does not check a request's reply subject against the
// requester's permissions, so a client can name any subject as its reply,
// such as a JetStream API subject or another thing's command subject, and
// a service that answers there publishes on the client's behalf. The
// subject a request arrived on is one the server let the requester publish
// on, and device permissions confine a device to its own subjects; the
// device's own inbox is then the one reply subject it is proven to listen
// on. A service drops a request whose reply fails this check, without
// answering it.
//
// subject must be a valid Lintel subject with the built-in message types
// ([Parse]); otherwise ReplyAllowed reports false.
func ReplyAllowed(subject, reply string) bool {
	s, err := Parse(subject)
	if err != nil {
		return false
	}
	return InInbox(s.Thing, reply)
}

// InInbox reports whether reply lies in t's own inbox: it begins with
// t.InboxPrefix()+"." and the rest is one or more non-empty tokens without
// wildcards or whitespace.
func InInbox(t Thing, reply string) bool {
	p := t.InboxPrefix()
	if len(reply) <= len(p)+1 || !strings.HasPrefix(reply, p) || reply[len(p)] != '.' {
		return false
	}
	rest := reply[len(p)+1:]
	for tok := range strings.SplitSeq(rest, ".") {
		if tok == "" || tok == Any || tok == Rest {
			return false
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return false
		}
	}
	return true
}
