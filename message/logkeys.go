package message

// Log keys shared by every package of the module, so that one query finds
// the records about an org, an edge, a thing or a message whichever
// package wrote them. A package adds keys of its own only for what is
// particular to it; security events are marked with authz.LogKeySecurity.
const (
	// LogKeyError is the key of an error.
	LogKeyError = "err"
	// LogKeyOrg is the key of an org's code.
	LogKeyOrg = "org"
	// LogKeyEdge is the key of an edge's code.
	LogKeyEdge = "edge"
	// LogKeyThing is the key of a thing, as topic.Thing.String writes it
	// ("org.edge.type.code").
	LogKeyThing = "thing"
	// LogKeySubject is the key of a NATS subject.
	LogKeySubject = "subject"
	// LogKeyMsgID is the key of an envelope's ID.
	LogKeyMsgID = "msg_id"
	// LogKeyBootID is the key of a device boot's ID.
	LogKeyBootID = "boot_id"
)
