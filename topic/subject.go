package topic

import (
	"fmt"
	"strings"
)

// Reserved thing types for the platform's own messages. No device can be
// registered under a thing type beginning with '_'.
const (
	// ThingTypeEdge carries the edge node's own messages, with the edge code as
	// thing code: its status, the liveness of its things and its alarms, e.g.
	// acme.hq._edge.hq.state.
	ThingTypeEdge = "_edge"
	// ThingTypeSystem carries platform system events that belong to no device,
	// e.g. audit-chain alarms raised by central: acme.hq._sys.audit.evt.
	ThingTypeSystem = "_sys"
	// ThingTypeAccess carries the edge's access decisions, the records of
	// its audit trail, with the code of the reader that asked as thing
	// code: acme.hq._access.r1.evt.
	ThingTypeAccess = "_access"
)

// Thing identifies one thing (a device, or a platform component under a
// reserved thing type): the first four parts of a subject.
type Thing struct {
	Org  string `json:"org"`  // organisation
	Edge string `json:"edge"` // edge (site) code
	Type string `json:"type"` // thing type, e.g. "reader", "lock", "sensor"
	Code string `json:"code"` // thing code, unique within its edge and type
}

// Validate reports whether every part of t is a valid token. Reserved thing
// types are accepted; use [ValidateThing] for things a device may register as.
func (t Thing) Validate() error {
	if err := validateToken(PartOrg, t.Org); err != nil {
		return err
	}
	if err := validateToken(PartEdge, t.Edge); err != nil {
		return err
	}
	if err := validateToken(PartThingType, t.Type); err != nil {
		return err
	}
	return validateToken(PartThingCode, t.Code)
}

// ValidateThing is [Thing.Validate] for things that devices register as: it
// also rejects reserved thing types with [ErrReserved].
func ValidateThing(t Thing) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if IsReserved(t.Type) {
		return &Error{Part: PartThingType, Value: t.Type, Reason: "thing types beginning with '_' are reserved for the platform", Err: ErrReserved}
	}
	return nil
}

// Subject returns the subject on which t sends or receives messages of type mt.
func (t Thing) Subject(mt MessageType) Subject { return Subject{Thing: t, MessageType: mt} }

// String returns the thing's four tokens joined by '.', e.g. "acme.hq.reader.r1".
func (t Thing) String() string {
	return t.Org + "." + t.Edge + "." + t.Type + "." + t.Code
}

// InboxPrefix returns the thing's own reply-inbox prefix,
// "_INBOX.{org}.{edge}.{type}.{code}". Devices use it instead of the shared
// "_INBOX" so that permissions can confine each device to its own replies.
func (t Thing) InboxPrefix() string { return "_INBOX." + t.String() }

// Filter returns the filter that matches every message type of t,
// "{org}.{edge}.{type}.{code}.*", after validating t: a part such as "*"
// would otherwise widen the filter to other things.
func (t Thing) Filter() (Filter, error) {
	f := Filter{tokens: [NumTokens]string{t.Org, t.Edge, t.Type, t.Code, Any}, n: NumTokens}
	return f, t.Validate()
}

// Subject is a parsed Lintel subject, {org}.{edge}.{thing_type}.{thing_code}.{message_type}.
// The zero value is not a valid subject; build one with [New] or [Parse], or
// fill the fields and call [Subject.Validate].
type Subject struct {
	Thing
	MessageType MessageType // the last token, such as [Event] ("evt")
}

// New returns the subject with the given parts after validating them with
// the built-in message types. Errors are [*Error] values naming the part.
func New(org, edge, thingType, thingCode string, mt MessageType) (Subject, error) {
	s := Subject{Thing: Thing{Org: org, Edge: edge, Type: thingType, Code: thingCode}, MessageType: mt}
	return s, s.Validate()
}

// Validate reports whether s is a valid subject with one of the built-in
// message types. Use [Registry.Validate] to accept registered extensions.
func (s Subject) Validate() error { return builtin.Validate(s) }

// String returns the subject in its wire form. It does not validate s.
func (s Subject) String() string {
	return s.Thing.String() + "." + string(s.MessageType)
}

// AppendSubject appends the wire form of s to dst and returns the extended
// buffer. It allocates only when dst lacks capacity, and does not validate s.
func AppendSubject(dst []byte, s Subject) []byte {
	dst = append(dst, s.Org...)
	dst = append(dst, '.')
	dst = append(dst, s.Edge...)
	dst = append(dst, '.')
	dst = append(dst, s.Type...)
	dst = append(dst, '.')
	dst = append(dst, s.Code...)
	dst = append(dst, '.')
	return append(dst, s.MessageType...)
}

// Parse parses and validates a subject with the built-in message types. The
// returned parts share memory with str; Parse does not allocate on success.
func Parse(str string) (Subject, error) { return builtin.Parse(str) }

// split cuts str into exactly NumTokens tokens on '.'.
func split(str string) (toks [NumTokens]string, n int) {
	for n < NumTokens {
		i := strings.IndexByte(str, '.')
		if i < 0 {
			toks[n] = str
			return toks, n + 1
		}
		toks[n] = str[:i]
		str = str[i+1:]
		n++
	}
	// More tokens than NumTokens: count the rest for the error message.
	return toks, n + 1 + strings.Count(str, ".")
}

func tokenCountError(part Part, str string, n int, want string) error {
	noun := "tokens"
	if n == 1 {
		noun = "token"
	}
	return &Error{Part: part, Value: str, Reason: fmt.Sprintf("%d %s, want %s", n, noun, want), Err: ErrTokenCount}
}
