package authz

import "github.com/lintel-io/lintel/topic"

// EdgeResponderUser returns the NATS user name of an edge's responder, the
// identity on which the edge's services take device requests and answer
// them: "_edge.{org}.{edge}.responder". It runs in the edge node's process
// and logs in there; it has no password in [State].
func EdgeResponderUser(org, edge string) string { return EdgeServiceUser(org, edge) + ".responder" }

// EdgeResponderPermissions returns the permissions of the responder of edge
// at org: the connection that receives device requests and whose messages
// a device can steer by the reply subject it names.
//
//   - subscribe only to the requests of the edge's devices,
//     "{org}.{edge}.*.*.req";
//   - publish only into the inboxes of the edge's devices,
//     "_INBOX.{org}.{edge}.*.*.>".
//
// Nothing else: no "$JS", "$KV" or "$SYS" subject, no "{org}.{edge}" subject
// (no other thing's commands, no platform event such as
// "{org}.{edge}._sys.audit.evt"), no allow_responses. Even a reply subject
// that slips past the services' own check ([topic.ReplyAllowed]) can then
// only reach a device's inbox. JetStream administration and the edge's own
// publications (decision events, unlock commands) use the edge service's
// connection ([EdgeServicePermissions]), which never publishes to a subject
// a client named.
func EdgeResponderPermissions(org, edge string) Permissions {
	return Permissions{
		Publish:   rules([]string{"_INBOX." + org + "." + edge + ".*.*.>"}),
		Subscribe: rules([]string{org + "." + edge + ".*.*." + string(topic.Request)}),
	}
}
