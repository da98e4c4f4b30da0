package topic

import "strings"

// Wildcard tokens of a [Filter].
const (
	// Any matches exactly one token.
	Any = "*"
	// Rest matches one or more tokens; it may only be the last token.
	Rest = ">"
)

// Filter is a subject pattern for subscriptions and permissions. Each of its
// one to five tokens is a valid token or [Any]; the last may be [Rest]. A
// filter of fewer than five tokens must end in [Rest]. The zero value matches
// nothing; build filters with [NewFilter], [ParseFilter] or the helpers.
type Filter struct {
	tokens [NumTokens]string
	n      int
}

// NewFilter returns the five-token filter with the given parts, each of which
// may be [Any]. The message type, if not [Any], must be a built-in one (see
// [Registry.NewFilter] for extensions).
func NewFilter(org, edge, thingType, thingCode string, mt MessageType) (Filter, error) {
	return builtin.NewFilter(org, edge, thingType, thingCode, mt)
}

// NewFilter is [NewFilter] with the message types of r.
func (r *Registry) NewFilter(org, edge, thingType, thingCode string, mt MessageType) (Filter, error) {
	f := Filter{tokens: [NumTokens]string{org, edge, thingType, thingCode, string(mt)}, n: NumTokens}
	return f, r.validateFilter(f)
}

// OrgFilter returns the filter for everything of one organisation: "{org}.>".
func OrgFilter(org string) (Filter, error) {
	f := Filter{tokens: [NumTokens]string{org, Rest}, n: 2}
	return f, builtin.validateFilter(f)
}

// EdgeFilter returns the filter for everything of one edge: "{org}.{edge}.>".
func EdgeFilter(org, edge string) (Filter, error) {
	f := Filter{tokens: [NumTokens]string{org, edge, Rest}, n: 3}
	return f, builtin.validateFilter(f)
}

// MessageTypeFilter returns the filter for one message type across an edge:
// "{org}.{edge}.*.*.{mt}".
func MessageTypeFilter(org, edge string, mt MessageType) (Filter, error) {
	return NewFilter(org, edge, Any, Any, mt)
}

// ParseFilter parses and validates a filter with the built-in message types.
func ParseFilter(str string) (Filter, error) { return builtin.ParseFilter(str) }

// ParseFilter is [ParseFilter] with the message types of r.
func (r *Registry) ParseFilter(str string) (Filter, error) {
	toks, n := split(str)
	if n > NumTokens {
		return Filter{}, tokenCountError(PartFilter, str, n, "at most 5")
	}
	f := Filter{tokens: toks, n: n}
	return f, r.validateFilter(f)
}

func (r *Registry) validateFilter(f Filter) error {
	if f.n < NumTokens && f.tokens[f.n-1] != Rest {
		return tokenCountError(PartFilter, f.String(), f.n, "5, or fewer ending in '>'")
	}
	for i := 0; i < f.n; i++ {
		tok, part := f.tokens[i], partOrder[i]
		switch {
		case tok == Any:
		case tok == Rest:
			if i != f.n-1 {
				return &Error{Part: part, Value: tok, Reason: "'>' is allowed only as the last token", Err: ErrWildcard}
			}
		case part == PartMessageType:
			if err := r.validateType(MessageType(tok)); err != nil {
				return err
			}
		default:
			if err := validateToken(part, tok); err != nil {
				return err
			}
		}
	}
	return nil
}

// String returns the filter in its wire form, e.g. "acme.hq.*.*.evt".
func (f Filter) String() string { return strings.Join(f.tokens[:f.n], ".") }

// Tokens returns the filter's tokens.
func (f Filter) Tokens() []string { return append([]string(nil), f.tokens[:f.n]...) }

// Matches reports whether subject s matches f.
func (f Filter) Matches(s Subject) bool {
	toks := [NumTokens]string{s.Org, s.Edge, s.Type, s.Code, string(s.MessageType)}
	for i := 0; i < f.n; i++ {
		switch f.tokens[i] {
		case Rest:
			return true
		case Any:
		default:
			if f.tokens[i] != toks[i] {
				return false
			}
		}
	}
	return f.n == NumTokens
}

// Covers reports whether every subject matched by g is also matched by f,
// that is, whether g lies within f. Authorization code uses it to prove that
// a permission never reaches beyond what its owner may use.
func (f Filter) Covers(g Filter) bool {
	if f.n == 0 || g.n == 0 {
		return g.n == 0
	}
	for i := 0; i < f.n; i++ {
		ft := f.tokens[i]
		if ft == Rest {
			return i < g.n // g has at least one token here to match '>'
		}
		if i >= g.n {
			return false
		}
		gt := g.tokens[i]
		switch {
		case gt == Rest:
			return false // g matches any depth here; f does not
		case ft == Any:
		case ft != gt:
			return false
		}
	}
	return g.n == f.n
}
