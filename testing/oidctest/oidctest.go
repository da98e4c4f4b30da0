// Package oidctest runs a real OpenID Connect provider in-process for tests,
// the way net/http/httptest runs HTTP servers: an issuer on a random
// loopback port with a discovery document, a JWKS holding a fresh RSA key,
// an authorization endpoint that approves a configured user at once and
// redirects with a code, and a token endpoint that exchanges the code for
// an ID token signed with that key. Relying parties verify its tokens with
// github.com/coreos/go-oidc/v3 exactly as they verify a production
// provider's; nothing is mocked.
//
//	p := oidctest.New(t, oidctest.Config{ClientID: "lintel"})
//	token := p.Token(t, "alice", "operator") // a signed ID token
//
// [Provider.Sign] mints tokens with any claims (expired, another audience),
// and [Provider.Forge] signs with a key the JWKS does not hold, for tests
// that attack a verifier.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Defaults of [Config].
const (
	DefaultClientID  = "lintel"
	DefaultRoleClaim = "roles"
	DefaultTokenTTL  = 10 * time.Minute
)

// Config configures a [Provider]. The zero value is usable.
type Config struct {
	// ClientID and ClientSecret are the one client the provider knows;
	// DefaultClientID and a random secret when empty.
	ClientID, ClientSecret string
	// RoleClaim names the claim [Provider.Token] puts the roles in;
	// DefaultRoleClaim when empty.
	RoleClaim string
	// TokenTTL is the lifetime of the tokens it issues; DefaultTokenTTL
	// when zero.
	TokenTTL time.Duration
}

// User is who the authorization endpoint approves.
type User struct {
	Subject string // the NATS subject
	Email   string // the email claim, if any
	// Roles go into the role claim of the ID token.
	Roles []string
}

// Provider is a running OpenID Connect provider. Its methods are safe for
// concurrent use.
type Provider struct {
	cfg    Config
	srv    *httptest.Server
	key    *rsa.PrivateKey
	forged *rsa.PrivateKey
	kid    string

	mu    sync.Mutex
	user  User
	codes map[string]grant
}

// grant is an authorization code's pending exchange.
type grant struct {
	user        User
	nonce       string
	redirectURI string
	expires     time.Time
}

// New starts a provider, closed when the test ends.
func New(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = randomHex(16)
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{cfg: cfg, key: key, forged: forged, kid: randomHex(8), codes: map[string]grant{},
		user: User{Subject: "user", Roles: []string{"viewer"}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// Issuer returns the provider's issuer URL, which is also the base of its
// discovery document.
func (p *Provider) Issuer() string { return p.srv.URL }

// ClientID returns the client the provider knows, and ClientSecret its
// secret.
func (p *Provider) ClientID() string { return p.cfg.ClientID }

// ClientSecret returns the client's secret.
func (p *Provider) ClientSecret() string { return p.cfg.ClientSecret }

// SetUser sets who the authorization endpoint approves from now on.
func (p *Provider) SetUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = u
}

// Token returns an ID token for subject with roles in the role claim,
// issued now for the client, signed with the provider's key.
func (p *Provider) Token(t testing.TB, subject string, roles ...string) string {
	t.Helper()
	s, err := p.Sign(p.Claims(subject, roles...))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Claims returns the claims [Provider.Token] signs, for a test to alter
// before [Provider.Sign] or [Provider.Forge].
func (p *Provider) Claims(subject string, roles ...string) map[string]any {
	now := time.Now()
	if roles == nil {
		roles = []string{}
	}
	return map[string]any{
		"iss": p.Issuer(), "sub": subject, "aud": p.cfg.ClientID,
		"iat": now.Unix(), "exp": now.Add(p.cfg.TokenTTL).Unix(),
		p.cfg.RoleClaim: roles,
	}
}

// Sign signs claims as a JWT with the provider's key (RS256, with the key
// id its JWKS lists).
func (p *Provider) Sign(claims map[string]any) (string, error) { return sign(p.key, p.kid, claims) }

// Forge signs claims with a key the provider does not publish, under the
// key id of the one it does: a token a verifier must refuse.
func (p *Provider) Forge(claims map[string]any) (string, error) { return sign(p.forged, p.kid, claims) }

func sign(key *rsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", fmt.Errorf("oidctest: signer: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oidctest: claims: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oidctest: sign: %w", err)
	}
	return jws.CompactSerialize()
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	iss := p.Issuer()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"jwks_uri":                              iss + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "email", "nonce", p.cfg.RoleClaim},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &p.key.PublicKey, KeyID: p.kid, Algorithm: string(jose.RS256), Use: "sig",
	}}})
}

// authorize approves the configured user at once and redirects to the
// client's redirect URI with a code and the state.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.cfg.ClientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	if q.Get("response_type") != "code" {
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	code := randomHex(16)
	p.mu.Lock()
	p.codes[code] = grant{user: p.user, nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri"), expires: time.Now().Add(time.Minute)}
	p.mu.Unlock()
	v := redirect.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	redirect.RawQuery = v.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// token exchanges a code, once, for an ID token.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	} else {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if id != p.cfg.ClientID || secret != p.cfg.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	code := r.PostForm.Get("code")
	p.mu.Lock()
	g, ok := p.codes[code]
	delete(p.codes, code)
	p.mu.Unlock()
	if !ok || time.Now().After(g.expires) || g.redirectURI != r.PostForm.Get("redirect_uri") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	claims := p.Claims(g.user.Subject, g.user.Roles...)
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	if g.user.Email != "" {
		claims["email"] = g.user.Email
	}
	idToken, err := p.Sign(claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	sum := sha256.Sum256([]byte(idToken))
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": base64.RawURLEncoding.EncodeToString(sum[:]), "token_type": "Bearer",
		"expires_in": int(p.cfg.TokenTTL / time.Second), "id_token": idToken,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
