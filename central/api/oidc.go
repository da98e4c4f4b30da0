package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// DefaultRoleClaim is the claim roles are read from when
// [OIDCConfig].RoleClaim is empty.
const DefaultRoleClaim = "roles"

// Cookies and header of the console's session.
const (
	sessionCookie = "lintel_session"
	loginCookie   = "lintel_login"
	csrfCookie    = "lintel_csrf"
	csrfHeader    = "X-CSRF-Token"
)

// OIDCConfig configures authentication against an OpenID Connect
// provider: bearer JWTs for the API and the authorization-code login of
// the console.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL, whose discovery document is
	// read at start. Required.
	Issuer string
	// ClientID is the client registered at the provider; bearer tokens
	// must name it (or Audience) as their audience. Required.
	ClientID string
	// ClientSecret is the client's secret, for the login's code exchange.
	ClientSecret string
	// Audience, when set, is the audience bearer tokens must name instead
	// of ClientID (an API registered apart from the console).
	Audience string
	// RedirectURL is the console's callback as the provider knows it,
	// ending in /api/v1/auth/callback. Without it there is no login.
	RedirectURL string
	// RoleClaim names the claim holding the caller's roles, a string or an
	// array of strings; DefaultRoleClaim when empty ("groups" is common).
	RoleClaim string
	// Roles maps claim values to roles; the highest wins. Nil maps
	// "viewer", "operator" and "admin" to themselves.
	Roles map[string]Role
	// Scopes are requested at login besides "openid"; nil means "email"
	// and "profile".
	Scopes []string
	// SessionTTL is how long a console session lasts; DefaultSessionTTL
	// when zero.
	SessionTTL time.Duration
	// HTTPClient, when set, is used to reach the provider.
	HTTPClient *http.Client
}

type oidcAuth struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier // of bearer tokens
	login    *oidc.IDTokenVerifier // of the login's ID tokens
	oauth    oauth2.Config
	client   *http.Client
}

func newOIDCAuth(ctx context.Context, cfg OIDCConfig) (*oidcAuth, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, fmt.Errorf("%w: OIDC needs an issuer and a client id", ErrInvalidConfig)
	}
	if cfg.RedirectURL != "" {
		u, err := url.Parse(cfg.RedirectURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("%w: OIDC redirect URL %q: want an absolute URL", ErrInvalidConfig, cfg.RedirectURL)
		}
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	if cfg.Roles == nil {
		cfg.Roles = map[string]Role{"viewer": RoleViewer, "operator": RoleOperator, "admin": RoleAdmin}
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"email", "profile"}
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("api: OIDC provider %s: %w", cfg.Issuer, err)
	}
	aud := cfg.Audience
	if aud == "" {
		aud = cfg.ClientID
	}
	a := &oidcAuth{cfg: cfg, client: cfg.HTTPClient,
		verifier: p.Verifier(&oidc.Config{ClientID: aud}),
		login:    p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.RedirectURL, Scopes: append([]string{oidc.ScopeOpenID}, cfg.Scopes...)}}
	return a, nil
}

// ctx returns ctx carrying the configured HTTP client for go-oidc and
// oauth2.
func (a *oidcAuth) ctx(ctx context.Context) context.Context {
	if a.client != nil {
		return oidc.ClientContext(ctx, a.client)
	}
	return ctx
}

// principal reads the subject, a name and the role of verified claims.
func (a *oidcAuth) principal(tok *oidc.IDToken, via string) (*Principal, error) {
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return nil, err
	}
	p := &Principal{Subject: tok.Subject, Via: via, Role: rolesFromClaims(claims[a.cfg.RoleClaim], a.cfg.Roles)}
	for _, k := range []string{"email", "preferred_username", "name"} {
		var v string
		if json.Unmarshal(claims[k], &v) == nil && v != "" {
			p.Name = v
			break
		}
	}
	return p, nil
}

// verifyBearer verifies a bearer JWT: signature against the provider's
// keys, issuer, audience and expiry.
func (a *oidcAuth) verifyBearer(ctx context.Context, raw string) (*Principal, error) {
	tok, err := a.verifier.Verify(a.ctx(ctx), raw)
	if err != nil {
		return nil, problemf(http.StatusUnauthorized, slugUnauthorized, "Authorization", "the bearer token does not verify: %v", err)
	}
	return a.principal(tok, "oidc")
}

// session is the console's session, in a cookie signed with the org's
// cookie key (SessionKeyBucket); ID is its key in SessionBucket.
type session struct {
	ID      string    `json:"id"`
	Subject string    `json:"sub"`
	Name    string    `json:"name,omitempty"`
	Role    Role      `json:"role"`
	CSRF    string    `json:"csrf"`
	Token   string    `json:"token,omitempty"` // the API token it began from
	Expires time.Time `json:"exp"`
}

// loginState is what the login cookie carries between the redirect to
// the provider and the callback.
type loginState struct {
	State   string    `json:"state"`
	Nonce   string    `json:"nonce"`
	Expires time.Time `json:"exp"`
}

// seal returns v as base64(JSON) "." base64(HMAC-SHA256).
func (s *Server) seal(purpose string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + s.mac(purpose, p), nil
}

func (s *Server) mac(purpose, payload string) string {
	m := hmac.New(sha256.New, s.sessionKey)
	m.Write([]byte(purpose + "\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// open verifies a sealed value and decodes it into v.
func (s *Server) open(purpose, sealed string, v any) error {
	p, sig, ok := strings.Cut(sealed, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.mac(purpose, p))) {
		return errors.New("bad signature")
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (s *Server) readSession(v string) (*session, error) {
	var sess session
	if err := s.open(sessionCookie, v, &sess); err != nil {
		return nil, err
	}
	if time.Now().After(sess.Expires) {
		return nil, errors.New("expired")
	}
	if sess.ID == "" {
		return nil, errors.New("no session id")
	}
	return &sess, nil
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// loginAvailable returns a 404 problem when the console's login is not
// configured.
func (s *Server) loginAvailable() error {
	if s.oidc == nil || s.cfg.OIDC.RedirectURL == "" {
		return problemf(http.StatusNotFound, slugNotFound, "", "login is not configured: no OIDC provider with a redirect URL")
	}
	return nil
}

// handleLogin redirects to the provider's authorization endpoint, with a
// state and a nonce kept in a signed cookie.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	if err := s.loginAvailable(); err != nil {
		return err
	}
	ls := loginState{State: randomString(), Nonce: randomString(), Expires: time.Now().Add(10 * time.Minute)}
	v, err := s.seal(loginCookie, ls)
	if err != nil {
		return err
	}
	s.setCookie(w, r, loginCookie, v, 10*time.Minute, true)
	http.Redirect(w, r, s.oidc.oauth.AuthCodeURL(ls.State, oidc.Nonce(ls.Nonce)), http.StatusFound)
	return nil
}

// handleCallback completes the login: it checks the state, exchanges the
// code, verifies the ID token and its nonce, and sets the session and
// CSRF cookies.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) error {
	if err := s.loginAvailable(); err != nil {
		return err
	}
	client := s.clientAddr(r)
	if s.loginThrottled(client, false) {
		s.logLoginThrottled(r)
		return problemf(http.StatusTooManyRequests, slugLoginThrottle, "", "too many failed logins from this address; try again in a minute")
	}
	p, err := s.callback(r)
	if err != nil {
		s.loginThrottled(client, true)
		s.loginFailed(r, err.Error())
		return problemf(http.StatusUnauthorized, slugLoginFailed, "", "%v", err)
	}
	if p.Role == RolePublic {
		return problemf(http.StatusForbidden, slugForbidden, "", "%s has no Lintel role in claim %q", p.Subject, s.oidc.cfg.RoleClaim)
	}
	s.setCookie(w, r, loginCookie, "", -1, true)
	if err := s.startSession(w, r, p, ""); err != nil {
		return err
	}
	http.Redirect(w, r, "/", http.StatusFound)
	return nil
}

func (s *Server) callback(r *http.Request) (*Principal, error) {
	c, err := r.Cookie(loginCookie)
	if err != nil {
		return nil, errors.New("no login in progress (cookie missing)")
	}
	var ls loginState
	if err := s.open(loginCookie, c.Value, &ls); err != nil || time.Now().After(ls.Expires) {
		return nil, errors.New("the login cookie is not valid or expired")
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("the provider refused: %s", e)
	}
	if !hmac.Equal([]byte(q.Get("state")), []byte(ls.State)) {
		return nil, errors.New("state mismatch")
	}
	ctx := s.oidc.ctx(r.Context())
	tok, err := s.oidc.oauth.Exchange(ctx, q.Get("code"))
	if err != nil {
		return nil, fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("the provider returned no ID token")
	}
	id, err := s.oidc.login.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("ID token: %w", err)
	}
	if !hmac.Equal([]byte(id.Nonce), []byte(ls.Nonce)) {
		return nil, errors.New("nonce mismatch")
	}
	return s.oidc.principal(id, "session")
}
