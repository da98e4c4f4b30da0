package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// SessionBucket names the KV bucket on central holding org's console
// sessions, one key per session, each kept for the session's lifetime:
// a session whose key is gone (logged out, expired) is refused.
func SessionBucket(org string) string { return "api-sessions-" + org }

// SessionKeyBucket names the KV bucket on central holding the key that
// signs org's console cookies, made by the first API server to start and
// shared by every node of central.
func SessionKeyBucket(org string) string { return "api-session-key-" + org }

// sessionKeyName is the key of the signing key in SessionKeyBucket.
const sessionKeyName = "cookie-hmac"

// sessionRecheck is how often a live event stream opened with a session
// or an API token checks that it was not ended (logout, revocation).
const sessionRecheck = 2 * time.Second

// errSessionEnded is why a session cookie that verifies is refused: the
// session was logged out, expired, or its API token was revoked.
var errSessionEnded = errors.New("the session has ended")

// sessionStore holds the console's sessions at central.
type sessionStore struct {
	kv jetstream.KeyValue
}

// sessionRecord is a session as SessionBucket holds it.
type sessionRecord struct {
	Subject string    `json:"sub"`
	Role    Role      `json:"role"`
	Token   string    `json:"token,omitempty"` // the API token it began from
	Started time.Time `json:"started"`
	Expires time.Time `json:"exp"`
}

// openSessionStore creates the session and key buckets when missing
// (sessions kept for ttl) and returns the store with the cookie key,
// made now when the bucket holds none.
func openSessionStore(ctx context.Context, js jetstream.JetStream, org string, replicas int, ttl time.Duration) (*sessionStore, []byte, error) {
	keys, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: SessionKeyBucket(org),
		Description: "Lintel console cookie signing key", Storage: jetstream.FileStorage, History: 1, Replicas: replicas})
	if err != nil {
		return nil, nil, fmt.Errorf("api: session key bucket: %w", err)
	}
	key, err := sessionKey(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("api: session key: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: SessionBucket(org),
		Description: "Lintel console sessions", Storage: jetstream.FileStorage, History: 1, TTL: ttl, Replicas: replicas})
	if err != nil {
		return nil, nil, fmt.Errorf("api: session bucket: %w", err)
	}
	return &sessionStore{kv: kv}, key, nil
}

// sessionKey returns the stored cookie key, storing a new one when there
// is none; of servers starting together, the first to store wins.
func sessionKey(ctx context.Context, kv jetstream.KeyValue) ([]byte, error) {
	for range 3 {
		e, err := kv.Get(ctx, sessionKeyName)
		if err == nil {
			if len(e.Value()) < 32 {
				return nil, fmt.Errorf("the stored key is %d bytes, want 32", len(e.Value()))
			}
			return e.Value(), nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, err
		}
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		if _, err := kv.Create(ctx, sessionKeyName, key); err == nil {
			return key, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, err
		}
	}
	return nil, errors.New("the key changed while it was being read")
}

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

// startSession records a new session of p at central and sets its
// cookie, and the CSRF cookie the console's script sends back in the
// X-CSRF-Token header. tokenID names the API token the session begins
// from, if any: the session ends when the token is revoked.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, p *Principal, tokenID string) error {
	ttl := s.sessionTTL()
	now := time.Now().UTC()
	sess := session{ID: randomString(), Subject: p.Subject, Name: p.Name, Role: p.Role, CSRF: randomString(),
		Token: tokenID, Expires: now.Add(ttl)}
	rec, err := json.Marshal(sessionRecord{Subject: p.Subject, Role: p.Role, Token: tokenID, Started: now, Expires: sess.Expires})
	if err != nil {
		return err
	}
	ctx, cancel := s.call(r.Context())
	defer cancel()
	if _, err := s.sess.kv.Create(ctx, sess.ID, rec); err != nil {
		return fmt.Errorf("api: record the session: %w", err)
	}
	v, err := s.seal(sessionCookie, sess)
	if err != nil {
		return err
	}
	s.setCookie(w, r, sessionCookie, v, ttl, true)
	s.setCookie(w, r, csrfCookie, sess.CSRF, ttl, false)
	s.log.Info("login", "subject", p.Subject, "role", p.Role, "via", p.Via, "client", s.clientAddr(r))
	return nil
}

// sessionOf returns the session of a session cookie's value: sealed by
// this central, not expired, recorded at central (not logged out) and,
// when it began from an API token, with the token not revoked. A cookie
// that fails any of these returns an error wrapping errSessionEnded or
// naming what is wrong; a failure to reach central returns that error.
func (s *Server) sessionOf(ctx context.Context, value string) (*session, error) {
	sess, err := s.readSession(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSessionEnded, err)
	}
	if err := s.sessionLive(ctx, sess.ID, sess.Token); err != nil {
		return nil, err
	}
	return sess, nil
}

// sessionLive checks that session id (when not empty) is still recorded
// at central and that API token tokenID (when not empty) is not revoked.
// A session whose token was revoked is deleted.
func (s *Server) sessionLive(ctx context.Context, id, tokenID string) error {
	if id != "" {
		if _, err := s.sess.kv.Get(ctx, id); errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: logged out or expired", errSessionEnded)
		} else if err != nil {
			return fmt.Errorf("api: read the session: %w", err)
		}
	}
	if tokenID != "" {
		t, _, err := s.tokens.get(ctx, tokenID)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || err == nil && !t.Revoked.IsZero():
			if id != "" {
				_ = s.sess.kv.Delete(ctx, id)
			}
			return fmt.Errorf("%w: its API token was revoked", errSessionEnded)
		case err != nil:
			return fmt.Errorf("api: read the session's token: %w", err)
		}
	}
	return nil
}

// stillValid checks, for a long request such as a live event stream,
// that p's session or API token has not ended since the request began.
func (s *Server) stillValid(ctx context.Context, p *Principal) error {
	if p == nil || (p.session == "" && p.token == "") {
		return nil
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	return s.sessionLive(ctx, p.session, p.token)
}

// clientAddr returns the address of the client that made r, by which
// failed logins are throttled: the connection's peer, or, when the peer
// is one of Config.TrustedProxies, the rightmost address of
// X-Forwarded-For that is not a trusted proxy (what the proxies
// themselves appended). A client that is not a trusted proxy cannot name
// another address in X-Forwarded-For: its header is ignored.
func (s *Server) clientAddr(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	client := ap.Addr().Unmap()
	if !s.trustedProxy(client) {
		return client.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(h)
		if err != nil {
			ap, perr := netip.ParseAddrPort(h)
			if perr != nil {
				break // not an address: the hops to its left cannot be told apart
			}
			a = ap.Addr()
		}
		client = a.Unmap()
		if !s.trustedProxy(client) {
			break
		}
	}
	return client.String()
}

// trustedProxy reports whether a is in Config.TrustedProxies.
func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// loginThrottled reports whether the client at addr (see
// [Server.clientAddr]) has failed to log in too often: 5 failures, then
// one more a minute. With failed it counts a failure first.
func (s *Server) loginThrottled(addr string, failed bool) bool {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	l := s.failures[addr]
	if l == nil {
		if !failed {
			return false
		}
		if len(s.failures) > 10000 {
			clear(s.failures)
		}
		l = rate.NewLimiter(rate.Every(time.Minute), 5)
		s.failures[addr] = l
	}
	if failed {
		return !l.Allow()
	}
	return l.Tokens() < 1
}

// handleLogout ends the console's session: its record at central is
// deleted, so the cookie is refused from then on wherever it is
// presented, and the cookies are cleared.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(sessionCookie); err == nil && s.sessions() {
		if sess, err := s.readSession(c.Value); err == nil {
			ctx, cancel := s.call(r.Context())
			err := s.sess.kv.Delete(ctx, sess.ID)
			cancel()
			if err != nil {
				return fmt.Errorf("api: end the session: %w", err)
			}
			s.log.Info("logout", "subject", sess.Subject)
		}
	}
	for _, c := range []string{sessionCookie, csrfCookie, loginCookie} {
		s.setCookie(w, r, c, "", -1, c != csrfCookie)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tokenLogin starts a console session from an API token, when
// Config.TokenLogin allows it: for a deployment without an OIDC provider,
// such as the demo. The session ends when the token is revoked. Failures
// are throttled as the OIDC login's are.
func (s *Server) tokenLogin(c *call) (any, error) {
	if !s.cfg.TokenLogin {
		return nil, problemf(http.StatusNotFound, slugNotFound, "", "login with an API token is not enabled")
	}
	client := s.clientAddr(c.r)
	if s.loginThrottled(client, false) {
		s.logLoginThrottled(c.r)
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
		s.loginThrottled(client, true)
		s.loginFailed(c.r, "the API token is not valid")
		return nil, problemf(http.StatusUnauthorized, slugLoginFailed, "token", "the API token is not valid (unknown, revoked or malformed)")
	}
	if err := s.startSession(c.w, c.r, p, p.token); err != nil {
		return nil, err
	}
	return p, nil
}
