package config

import (
	"net/netip"
	"net/url"
	"os"
	"strconv"

	"github.com/lintel-io/lintel/authz"
)

// DefaultAPIListen is the default listener of central's HTTP API: local
// only, behind the reverse proxy that terminates TLS.
const DefaultAPIListen = "127.0.0.1:8080"

// API is the "api" section of central's configuration: central's HTTP
// API (package central/api), served when the section is present.
type API struct {
	// Listen is the API's listener. Default DefaultAPIListen.
	Listen string `json:"listen,omitempty"`
	// Org is the org the API serves; empty means the inventory's only org.
	Org string `json:"org,omitempty"`
	// TLS, when set, serves HTTPS; without it the API serves plain HTTP,
	// for a reverse proxy (Caddy) in front on the same host.
	TLS *TLS `json:"tls,omitempty"`
	// BootstrapTokenFile names a file for a first admin API token: written
	// at start (mode 0600) when it does not exist. Optional.
	BootstrapTokenFile string `json:"bootstrap_token_file,omitempty"`
	// TokenLogin lets the console log in with an API token, for a
	// deployment without an OIDC provider. Default false.
	TokenLogin bool `json:"token_login,omitempty"`
	// StaleAfter is how long an online thing may be silent before the API
	// reports it stale. Default 2m.
	StaleAfter Duration `json:"stale_after,omitempty"`
	// TrustedProxies are the CIDR prefixes of the reverse proxies whose
	// X-Forwarded-For names the client, by which failed logins are
	// throttled. Default loopback only (the Caddy in front).
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
	// OperatorAuditMaxAge is how long the operator audit log keeps an
	// entry. Default 400 days (9600h).
	OperatorAuditMaxAge Duration `json:"operator_audit_max_age,omitempty"`
	// OIDC, when set, accepts the JWTs of an OpenID Connect provider and
	// enables the console's login.
	OIDC *OIDC `json:"oidc,omitempty"`

	prefixes []netip.Prefix
}

// Proxies returns TrustedProxies, parsed.
func (a *API) Proxies() []netip.Prefix { return a.prefixes }

// OIDC is the OpenID Connect provider the API trusts.
type OIDC struct {
	// Issuer is the provider's issuer URL. Required.
	Issuer string `json:"issuer"`
	// ClientID is the client registered at the provider. Required.
	ClientID string `json:"client_id"`
	// ClientSecretFile holds the client's secret (mode 0600), or
	// $LINTEL_CENTRAL_OIDC_CLIENT_SECRET does; required with RedirectURL.
	ClientSecretFile string `json:"client_secret_file,omitempty"`
	// Audience, when set, is the audience bearer tokens must name instead
	// of ClientID.
	Audience string `json:"audience,omitempty"`
	// RedirectURL is the console's callback, ending in
	// /api/v1/auth/callback; without it there is no console login.
	RedirectURL string `json:"redirect_url,omitempty"`
	// RoleClaim names the claim holding the roles. Default "roles".
	RoleClaim string `json:"role_claim,omitempty"`
	// Roles maps claim values to viewer, operator or admin. Default: the
	// three names map to themselves.
	Roles map[string]string `json:"roles,omitempty"`

	secret authz.Secret
}

// ClientSecret returns the client secret read at load; zero for none.
func (o *OIDC) ClientSecret() authz.Secret { return o.secret }

// checkAPI checks and defaults c's api section.
func (c *Central) checkAPI(p *problems, a *API) {
	if a.Listen == "" {
		a.Listen = DefaultAPIListen
	}
	checkHostPort(p, "api.listen", a.Listen)
	if a.TLS != nil {
		a.TLS = checkTLS(p, c.dir, "api.tls", a.TLS, true)
	}
	a.BootstrapTokenFile = path(c.dir, a.BootstrapTokenFile)
	if a.StaleAfter < 0 {
		p.add("api.stale_after", "negative")
	}
	if a.OperatorAuditMaxAge < 0 {
		p.add("api.operator_audit_max_age", "negative")
	}
	if a.TrustedProxies == nil {
		a.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	}
	a.prefixes = nil
	for i, s := range a.TrustedProxies {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			p.add("api.trusted_proxies["+strconv.Itoa(i)+"]", "want a CIDR prefix such as 10.0.0.0/8, not %q", s)
			continue
		}
		a.prefixes = append(a.prefixes, pf)
	}
	o := a.OIDC
	if o == nil {
		return
	}
	if u, err := url.Parse(o.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		p.add("api.oidc.issuer", "want the provider's issuer URL, such as https://login.example.com/realms/acme")
	}
	if o.ClientID == "" {
		p.add("api.oidc.client_id", "required")
	}
	if o.RedirectURL != "" {
		if u, err := url.Parse(o.RedirectURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			p.add("api.oidc.redirect_url", "want an absolute URL ending in /api/v1/auth/callback")
		}
	}
	if v := os.Getenv("LINTEL_CENTRAL_OIDC_CLIENT_SECRET"); v != "" {
		o.secret = authz.NewSecret(v)
	} else if o.ClientSecretFile != "" {
		o.ClientSecretFile = path(c.dir, o.ClientSecretFile)
		s, err := ReadSecret(o.ClientSecretFile)
		if err != nil {
			p.add("api.oidc.client_secret_file", "%v", err)
		}
		o.secret = s
	} else if o.RedirectURL != "" {
		p.add("api.oidc.client_secret_file", "required with redirect_url (or LINTEL_CENTRAL_OIDC_CLIENT_SECRET)")
	}
	for k, v := range o.Roles {
		if v != "viewer" && v != "operator" && v != "admin" {
			p.add("api.oidc.roles."+k, "want viewer, operator or admin, not %q", v)
		}
	}
}
