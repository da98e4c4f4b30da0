package rules

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors of the rules engine; compare with errors.Is. Validation
// errors arrive as a [*RuleError] wrapping one of ErrMalformed,
// ErrUnknownField, ErrDuplicate, ErrMissing or ErrInvalid.
var (
	// ErrMalformed reports a rule document that is not JSON, has data after
	// the document, or has a value of the wrong JSON type, such as a number
	// where a string belongs.
	ErrMalformed = errors.New("rules: malformed document")
	// ErrUnknownField reports a key the document format does not define.
	ErrUnknownField = errors.New("rules: unknown field")
	// ErrDuplicate reports a key that occurs twice in one JSON object, or
	// two rules with the same name.
	ErrDuplicate = errors.New("rules: duplicate")
	// ErrMissing reports a required field that is absent or empty.
	ErrMissing = errors.New("rules: missing field")
	// ErrInvalid reports a field whose value is not acceptable: a filter
	// that does not parse or reaches beyond the edge, an expression that
	// does not compile or is not boolean, a bad duration, target or name.
	ErrInvalid = errors.New("rules: invalid value")
	// ErrInvalidConfig reports a [Config] or [Scope] that cannot be used,
	// such as one without a connection or with an invalid org or edge.
	ErrInvalidConfig = errors.New("rules: invalid config")
	// ErrScope reports a [RuleSet] parsed for another edge than the
	// engine's.
	ErrScope = errors.New("rules: rule set of another edge")
	// ErrWatchClosed reports a KV watch that ended before its context.
	ErrWatchClosed = errors.New("rules: watch closed")
)

// RuleError describes why a rule document was rejected: which rule (its
// name, or "#i" for the i-th rule counting from 0 when it has no usable
// name; empty for the document as a whole), which field (a path such as
// "when" or "actions[1].command.ttl"; empty for the rule as a whole) and
// why:
//
//	rules: rule "too-hot": field "when": does not compile: unknown name paylod (1:1)
//
// Err is one of the package's sentinel errors, so callers can branch with
// errors.Is; Cause, when set, is the underlying error, such as the
// expression compiler's or package topic's, reachable with errors.As.
type RuleError struct {
	Rule   string // rule name, "#i", or "" for the document
	Field  string // field path within the rule (or document), or ""
	Reason string // human-readable reason
	Err    error  // sentinel: ErrMalformed, ErrUnknownField, ErrDuplicate, ErrMissing, ErrInvalid
	Cause  error  // underlying error, or nil
}

// Error returns "rules: rule {rule}: field {field}: {reason}", leaving out
// the parts that are empty.
func (e *RuleError) Error() string {
	var b strings.Builder
	b.WriteString("rules: ")
	if e.Rule != "" {
		b.WriteString("rule ")
		if strings.HasPrefix(e.Rule, "#") {
			b.WriteString(e.Rule)
		} else {
			b.WriteString(strconv.Quote(e.Rule))
		}
		b.WriteString(": ")
	} else {
		b.WriteString("document: ")
	}
	if e.Field != "" {
		b.WriteString("field ")
		b.WriteString(strconv.Quote(e.Field))
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the sentinel error and, when set, the underlying cause.
func (e *RuleError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}
