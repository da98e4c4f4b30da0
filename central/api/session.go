package api

import (
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// sessions reports whether the console's cookie sessions are enabled: by
// the OIDC login, or by the API-token login.
func (s *Server) sessions() bool { return s.oidc != nil || s.cfg.TokenLogin }

func (s *Server) sessionTTL() time.Duration {
	if s.oidc != nil {
		return s.oidc.cfg.SessionTTL
	}
	return DefaultSessionTTL
}

// secure reports whether cookies set for r must be Secure: the request
// came over TLS, through a proxy that says so, or the OIDC redirect URL is
// https.
func (s *Server) secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" ||
		(s.cfg.OIDC != nil && strings.HasPrefix(s.cfg.OIDC.RedirectURL, "https:"))
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration, httpOnly bool) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: httpOnly, Secure: s.secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge / time.Second)}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// startSession sets the session cookie of p, and the CSRF cookie the
// console's script sends back in the X-CSRF-Token header.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ttl := s.sessionTTL()
	sess := session{Subject: p.Subject, Name: p.Name, Role: p.Role, CSRF: randomString(), Expires: time.Now().Add(ttl)}
	v, err := s.seal(sessionCookie, sess)
	if err != nil {
		return err
	}
	s.setCookie(w, r, sessionCookie, v, ttl, true)
	s.setCookie(w, r, csrfCookie, sess.CSRF, ttl, false)
	s.log.Info("login", "subject", p.Subject, "role", p.Role, "via", p.Via)
	return nil
}

// loginThrottled reports whether the client at addr has failed to log in
// too often: 5 failures, then one more a minute. With failed it counts a
// failure first.
func (s *Server) loginThrottled(addr string, failed bool) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	s.failMu.Lock()
	defer s.failMu.Unlock()
	l := s.failures[host]
	if l == nil {
		if !failed {
			return false
		}
		if len(s.failures) > 10000 {
			clear(s.failures)
		}
		l = rate.NewLimiter(rate.Every(time.Minute), 5)
		s.failures[host] = l
	}
	if failed {
		return !l.Allow()
	}
	return l.Tokens() < 1
}

// handleLogout ends the console's session.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	for _, c := range []string{sessionCookie, csrfCookie, loginCookie} {
		s.setCookie(w, r, c, "", -1, c != csrfCookie)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tokenLogin starts a console session from an API token, when
// Config.TokenLogin allows it: for a deployment without an OIDC provider,
// such as the demo. Failures are throttled as the OIDC login's are.
func (s *Server) tokenLogin(c *call) (any, error) {
	if !s.cfg.TokenLogin {
		return nil, problemf(http.StatusNotFound, slugNotFound, "", "login with an API token is not enabled")
	}
	if s.loginThrottled(c.r.RemoteAddr, false) {
		return nil, problemf(http.StatusTooManyRequests, slugLoginThrottle, "", "too many failed logins from this address; try again in a minute")
	}
	// JSON only: a cross-site form cannot send it without the browser's
	// preflight, so no other site can log a browser in.
	if ct := c.r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, problemf(http.StatusUnsupportedMediaType, slugInvalid, "Content-Type", "want application/json, not %q", ct)
	}
	var b struct {
		Token string `json:"token"`
	}
	if err := c.decode(&b); err != nil {
		return nil, err
	}
	p, err := s.tokens.verify(c.r.Context(), strings.TrimSpace(b.Token))
	if err != nil {
		s.loginThrottled(c.r.RemoteAddr, true)
		return nil, problemf(http.StatusUnauthorized, slugLoginFailed, "token", "the API token is not valid (unknown, revoked or malformed)")
	}
	if err := s.startSession(c.w, c.r, p); err != nil {
		return nil, err
	}
	return p, nil
}
