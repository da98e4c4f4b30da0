package topic

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxTokenLen is the longest a token may be, in bytes.
const MaxTokenLen = 64

// NumTokens is the number of tokens in a subject.
const NumTokens = 5

// tokenByte marks the bytes allowed in a token: [A-Za-z0-9_-].
var tokenByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['_'], t['-'] = true, true
	return t
}()

// IsReserved reports whether token is reserved for the platform: it begins
// with '_'.
func IsReserved(token string) bool { return strings.HasPrefix(token, "_") }

// ValidateToken reports whether s is a valid token for part, returning an
// [*Error] naming the part and the reason when it is not. It checks only the
// character rules; reserved names are checked by the callers that forbid them.
func ValidateToken(part Part, s string) error {
	if s == "" {
		return &Error{Part: part, Value: s, Reason: "empty", Err: ErrEmpty}
	}
	if len(s) > MaxTokenLen {
		return &Error{Part: part, Value: s, Reason: fmt.Sprintf("%d bytes, at most %d allowed", len(s), MaxTokenLen), Err: ErrTooLong}
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return &Error{Part: part, Value: s, Reason: badChar(s, i), Err: ErrInvalidChar}
		}
	}
	return nil
}

// validateToken is ValidateToken plus the reserved-name rule for org and edge.
func validateToken(part Part, s string) error {
	if err := ValidateToken(part, s); err != nil {
		return err
	}
	if (part == PartOrg || part == PartEdge) && IsReserved(s) {
		return &Error{Part: part, Value: s, Reason: "names beginning with '_' are reserved", Err: ErrReserved}
	}
	return nil
}

// badChar describes the disallowed byte at s[i].
func badChar(s string, i int) string {
	c := s[i]
	switch {
	case c == ' ':
		return "space not allowed"
	case c == '.':
		return "'.' not allowed (it separates tokens)"
	case c == '*' || c == '>':
		return fmt.Sprintf("wildcard %q not allowed", c)
	case c == '\t' || c == '\n' || c == '\r':
		return "whitespace not allowed"
	case c < 0x20 || c == 0x7f:
		return fmt.Sprintf("control character %#02x not allowed", c)
	case c >= utf8.RuneSelf:
		return fmt.Sprintf("non-ASCII byte %#02x not allowed", c)
	default:
		return fmt.Sprintf("character %q not allowed, only [A-Za-z0-9_-]", c)
	}
}
