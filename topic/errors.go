package topic

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped by [*Error]; compare with [errors.Is].
var (
	// ErrEmpty reports an empty token.
	ErrEmpty = errors.New("topic: empty token")
	// ErrTooLong reports a token longer than MaxTokenLen bytes.
	ErrTooLong = errors.New("topic: token too long")
	// ErrInvalidChar reports a byte outside [A-Za-z0-9_-] in a token.
	ErrInvalidChar = errors.New("topic: invalid character")
	// ErrTokenCount reports a subject or filter with the wrong number of tokens.
	ErrTokenCount = errors.New("topic: wrong number of tokens")
	// ErrUnknownMessageType reports a message type that is not registered.
	ErrUnknownMessageType = errors.New("topic: unknown message type")
	// ErrDuplicate reports a message type registered twice.
	ErrDuplicate = errors.New("topic: duplicate")
	// ErrReserved reports a name reserved for the platform used where it is not allowed.
	ErrReserved = errors.New("topic: reserved name")
	// ErrWildcard reports a wildcard where it is not allowed.
	ErrWildcard = errors.New("topic: misplaced wildcard")
)

// Part names one position of a subject; errors use it to say which part is wrong.
type Part string

// The parts of a subject, in order, and the subject as a whole.
const (
	PartOrg         Part = "org"
	PartEdge        Part = "edge"
	PartThingType   Part = "thing_type"
	PartThingCode   Part = "thing_code"
	PartMessageType Part = "message_type"
	PartSubject     Part = "subject"
	PartFilter      Part = "filter"
)

var partOrder = [NumTokens]Part{PartOrg, PartEdge, PartThingType, PartThingCode, PartMessageType}

// Error describes why a subject, filter or token was rejected. It names the
// part, quotes the offending value and gives the reason:
//
//	topic: thing_code "door 1": space not allowed
//
// Err is one of the package's sentinel errors, so callers can branch with
// [errors.Is].
type Error struct {
	Part   Part   // which part was rejected
	Value  string // the rejected value
	Reason string // human-readable reason
	Err    error  // sentinel: ErrEmpty, ErrTooLong, ErrInvalidChar, ...
}

// Error returns "topic: {Part} {quoted Value}: {Reason}".
func (e *Error) Error() string {
	return fmt.Sprintf("topic: %s %q: %s", e.Part, e.Value, e.Reason)
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }
