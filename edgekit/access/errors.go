package access

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors of the credential model; compare with [errors.Is]. Problems
// with one credential, door group, schedule or door policy arrive wrapped in
// a [*FieldError] that names it and the field.
var (
	// ErrMalformed reports a value that is not the JSON its format
	// requires: a syntax error, a value of the wrong JSON type (a number
	// where a string belongs), a key given twice in one object, or data
	// after the top-level object.
	ErrMalformed = errors.New("access: malformed JSON")
	// ErrUnknownField reports a JSON key that is not part of the format,
	// usually a typo. Keys are matched exactly, case included.
	ErrUnknownField = errors.New("access: unknown field")
	// ErrInvalid reports a value that breaks a rule of its own: a missing
	// holder, a bad door code, a validity that ends before it begins, a
	// day or time of day that does not exist, a hash key that is too
	// short. A bad door, group or schedule name also wraps the
	// [*topic.Error] that explains it.
	ErrInvalid = errors.New("access: invalid value")
	// ErrMirrorIncomplete reports an edge whose mirror of its credential
	// bucket reached central's last revision with entries missing, or is
	// being rebuilt because of it; the edge rebuilds it by itself (see
	// [Service], "A replaced or wiped store").
	ErrMirrorIncomplete = errors.New("access: credential mirror incomplete")
	// ErrUnsigned reports an audit record without the edge's signature
	// headers ([HeaderAuditKey], [HeaderAuditSig]).
	ErrUnsigned = errors.New("access: audit record not signed")
	// ErrBadSignature reports an audit record whose signature does not
	// verify, or whose signing key is not one of the edge's audit keys.
	ErrBadSignature = errors.New("access: audit record signature invalid")
)

// Kinds of entry a [FieldError] can be about.
const (
	kindCredential = "credential"
	kindGroup      = "group"
	kindSchedule   = "schedule"
	kindPolicy     = "door policy"
)

// FieldError reports what is wrong with one credential, door group, schedule
// or door policy, and where:
//
//	access: credential 3fa2b1c0…: field "valid_until": not after valid_from
//	access: schedule office: field "intervals[1].from": "25:00" is not a time of day HH:MM
//	access: door policy front: field "fallbak": unknown field (did you mean "fallback"?)
//
// Err wraps the sentinel that classifies the problem ([ErrMalformed],
// [ErrUnknownField] or [ErrInvalid]) and, for a bad token, the
// [*topic.Error] too; test it with [errors.Is] and [errors.As], not ==.
type FieldError struct {
	Kind   string // "credential", "group", "schedule" or "door policy"
	Name   string // the credential id, group name, schedule name or door code; may be empty
	Field  string // the JSON field path, e.g. "valid_until" or "intervals[1].from"; empty when not about one field
	Reason string // what is wrong, without the prefix
	Err    error  // the sentinel (and cause) classifying it
}

// Error returns "access: {Kind} {Name}: field {Field}: {Reason}", leaving out
// the parts that are empty. Credential ids, 64 hex characters, are cut to
// their first 8 and "…"; a name that is not a plain token is quoted.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("access: ")
	b.WriteString(e.Kind)
	if e.Name != "" {
		b.WriteByte(' ')
		b.WriteString(displayName(e.Kind, e.Name))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString("field ")
		b.WriteString(strconv.Quote(e.Field))
		b.WriteString(": ")
	}
	switch {
	case e.Reason != "":
		b.WriteString(e.Reason)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("invalid")
	}
	return b.String()
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// displayName shortens a credential id to 8 characters and quotes a name
// that is not a plain token, so an error message stays one readable line
// whatever the input was.
func displayName(kind, name string) string {
	const short = 8
	if kind == kindCredential && len(name) > short+4 {
		name = name[:short] // may cut a multi-byte rune; quoting below shows it as \x..
		if !plainToken(name) {
			return strconv.Quote(name) + "…"
		}
		return name + "…"
	}
	if !plainToken(name) {
		return strconv.Quote(name)
	}
	return name
}

// plainToken reports whether s consists of [A-Za-z0-9_-] only.
func plainToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
