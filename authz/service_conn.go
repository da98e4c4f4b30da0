package authz

import "github.com/nats-io/nats.go"

// ServiceOptions returns the options with which a service identity (a
// [ServiceUser], an [EdgeServiceUser]) connects to NATS: its user name and
// password, its own reply inbox ([UserInboxPrefix], the only one its
// permissions let it subscribe to, so without it every request and every
// JetStream call times out) and the user name as connection name. Append
// further options (reconnects, handlers) after them:
//
//	nc, err := nats.Connect(url, authz.ServiceOptions(user, password)...)
func ServiceOptions(user string, password Secret) []nats.Option {
	return []nats.Option{
		nats.UserInfo(user, password.Reveal()),
		nats.CustomInboxPrefix(UserInboxPrefix(user)),
		nats.Name(user),
	}
}
