package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/lintel-io/lintel/authz"
)

// Log keys of the API's security events beside authz.LogKeySecurity
// (docs/security-events.md).
const (
	logKeyUser   = "user"   // the principal's subject: "token:{id}" or the OIDC subject
	logKeyName   = "name"   // the principal's name: the token's or the user's
	logKeySource = "source" // the client's address
	logKeyReason = "reason"
	logKeyRoute  = "route"
	logKeyRole   = "role"
	logKeyNeeds  = "needs" // the role the route needs
)

// logRefusedCredentials logs as a failed login a request refused with
// err, a 401, although it presented bearer credentials (an API token or a
// JWT) in its Authorization header. A request without, or with a session
// cookie that is no longer valid (logged out, expired, its token
// revoked: the console's ordinary case), is not logged.
func (s *Server) logRefusedCredentials(r *http.Request, err error) {
	var p *Problem
	if r.Header.Get("Authorization") == "" || !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		return
	}
	s.loginFailed(r, p.Detail)
}

// loginFailed logs a refused login or credential of r's client, for
// reason (which never holds the credential).
func (s *Server) loginFailed(r *http.Request, reason string) {
	s.sec.Log(slog.LevelWarn, authz.SecurityLoginFailed, "api: login refused",
		logKeySource, s.clientAddr(r), logKeyRoute, r.Method+" "+r.URL.Path, logKeyReason, reason)
}

// logLoginThrottled logs a login refused without a check because r's client
// failed too often.
func (s *Server) logLoginThrottled(r *http.Request) {
	s.sec.Log(slog.LevelWarn, authz.SecurityLoginThrottled, "api: login throttled",
		logKeySource, s.clientAddr(r), logKeyRoute, r.Method+" "+r.URL.Path, logKeyReason, "address")
}
