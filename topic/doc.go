// Package topic builds, parses and validates Lintel subjects and the filters
// that subscriptions and permissions are made of.
//
// Every Lintel message travels on a five-token NATS subject:
//
//	{org}.{edge}.{thing_type}.{thing_code}.{message_type}
//
// for example acme.hq.reader.door-1.evt. A [Subject] holds the five parts;
// [Parse] and [Subject.String] convert between the two forms, and
// [AppendSubject] builds a subject into a caller's buffer without allocating.
//
// # Tokens
//
// Each part is a token: non-empty, at most [MaxTokenLen] bytes, made only of
// ASCII letters, digits, '_' and '-'. Nothing can smuggle '.', '*', '>',
// whitespace or non-ASCII bytes into a subject, so a token can never widen a
// subscription or a permission. Errors name the part and the reason:
//
//	topic: thing_code "door 1": space not allowed
//
// # Message types
//
// The last token is a [MessageType] from a documented set ([Event],
// [Telemetry], [State], [Command], [Ack], [Config], [Request]). Applications
// that need more build their own [Registry] with [NewRegistry]; the package
// keeps no mutable state of its own.
//
// # Reserved names
//
// Tokens that begin with '_' are reserved for the platform. Organisations and
// edges can never use them (they would collide with NATS's own _INBOX
// subjects); thing types beginning with '_' carry the platform's own messages,
// such as the edge node's status ([ThingTypeEdge]) and system events
// ([ThingTypeSystem]), and no device can be registered under them
// ([ValidateThing]).
//
// # Filters
//
// A [Filter] is a subject pattern for subscriptions and permissions: any part
// may be the single-token wildcard "*" and the tail may be ">". Helpers build
// the common ones: [OrgFilter], [EdgeFilter], [Thing.Filter] and
// [MessageTypeFilter]. [Filter.Covers] tells whether one filter lies within
// another, which authorization code uses to prove that a permission never
// reaches beyond its owner.
package topic
