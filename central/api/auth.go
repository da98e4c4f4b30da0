package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Role is what a caller may do. Roles are ordered: each may do what the
// ones below it may.
type Role int

// Roles, lowest first. RolePublic marks the routes that need no
// authentication (the OpenAPI document, the login).
const (
	RolePublic Role = iota
	RoleViewer
	RoleOperator
	RoleAdmin
)

// String returns the role's name: public, viewer, operator or admin.
func (r Role) String() string {
	switch r {
	case RolePublic:
		return "public"
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role's name, as [ParseRole].
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseRole returns the role named s: viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RolePublic, fmt.Errorf("role %q: want viewer, operator or admin", s)
}

// Principal is who made a request, as authentication established.
type Principal struct {
	// Subject identifies the caller: the OIDC subject, or "token:" and the
	// API token's id.
	Subject string `json:"subject"`
	// Name is a readable name: the email or the token's name.
	Name string `json:"name,omitempty"`
	// Via is how the caller authenticated: "oidc" (a bearer JWT),
	// "session" (the console's cookie) or "token" (an API token).
	Via string `json:"via"`
	// Role is the caller's role.
	Role Role `json:"role"`

	session string // the console session's id, for a session
	token   string // the API token's id, for a token or a session begun from one
}

// who returns the principal as the operator audit log and commands'
// RequestedBy record it.
func (p *Principal) who() string {
	if p.Name != "" && p.Name != p.Subject {
		return p.Subject + " (" + p.Name + ")"
	}
	return p.Subject
}

type principalKey struct{}

// principalOf returns the request's principal, or nil on a public route.
func principalOf(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// authenticate establishes who made r: a bearer API token, a bearer JWT
// of the OIDC provider, or the console's session cookie (with the CSRF
// header on unsafe methods). It returns a 401 problem when none is
// presented or what is presented does not verify.
func (s *Server) authenticate(r *http.Request) (*Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
			return nil, problemf(http.StatusUnauthorized, slugUnauthorized, "Authorization", "want \"Authorization: Bearer TOKEN\"")
		}
		if strings.HasPrefix(cred, tokenPrefix) {
			return s.tokens.verify(r.Context(), cred)
		}
		if s.oidc == nil {
			return nil, problemf(http.StatusUnauthorized, slugUnauthorized, "Authorization", "not an API token, and no OIDC provider is configured")
		}
		return s.oidc.verifyBearer(r.Context(), cred)
	}
	if c, err := r.Cookie(sessionCookie); err == nil && s.sessions() {
		sess, err := s.sessionOf(r.Context(), c.Value)
		if errors.Is(err, errSessionEnded) {
			return nil, problemf(http.StatusUnauthorized, slugUnauthorized, "", "the session is not valid (%v): log in again", err)
		}
		if err != nil {
			return nil, err
		}
		if !safeMethod(r.Method) {
			h := r.Header.Get(csrfHeader)
			if h == "" || subtle.ConstantTimeCompare([]byte(h), []byte(sess.CSRF)) != 1 {
				return nil, problemf(http.StatusForbidden, slugCSRF, csrfHeader, "a cookie-authenticated %s needs the session's CSRF token in the %s header", r.Method, csrfHeader)
			}
		}
		return &Principal{Subject: sess.Subject, Name: sess.Name, Via: "session", Role: sess.Role, session: sess.ID, token: sess.Token}, nil
	}
	return nil, problemf(http.StatusUnauthorized, slugUnauthorized, "Authorization", "no credentials: send \"Authorization: Bearer TOKEN\"")
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// rolesFromClaims returns the highest role that the claim's values map
// to: the claim is a string or an array of strings.
func rolesFromClaims(raw json.RawMessage, mapping map[string]Role) Role {
	var values []string
	if err := json.Unmarshal(raw, &values); err != nil {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return RolePublic
		}
		values = strings.Fields(one)
	}
	best := RolePublic
	for _, v := range values {
		if r, ok := mapping[v]; ok && r > best {
			best = r
		}
	}
	return best
}
