package config

import (
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/lintel-io/lintel/authz"
)

// Defaults of [Gateway].
const (
	DefaultGatewayListen = "127.0.0.1:8480"
	DefaultGatewayAdmin  = "127.0.0.1:9472"
)

// Gateway modes ([Gateway].Mode).
const (
	GatewayModeEdge    = "edge"
	GatewayModeCentral = "central"
)

// Gateway is the configuration of an HTTP gateway (apps/gateway): an
// edge's, or in central mode the central gateway of an org.
type Gateway struct {
	// Mode is "edge" (the default), the gateway of the edge Edge, or
	// "central", the central gateway of Org for the devices the inventory
	// marks "central_gateway" (docs/gateway.md), which needs CentralURLs,
	// Service and PasswordFile instead of Edge and EdgeURLs.
	Mode string `json:"mode,omitempty"`
	// Org and Edge name the site whose devices the gateway serves.
	// Required (Edge only in edge mode).
	Org  string `json:"org"`
	Edge string `json:"edge"`
	// Inventory and State as for [Edge]: the device passwords are checked
	// against State's bcrypt hashes. Required.
	Inventory string `json:"inventory"`
	State     string `json:"state"`
	// EdgeURLs are the edge's client URLs ("nats://127.0.0.1:4222", or
	// "tls://..." with EdgeCAFile). Required.
	EdgeURLs []string `json:"edge_urls"`
	// EdgeCAFile pins the CA of the edge's client listener, when it has TLS.
	EdgeCAFile string `json:"edge_ca_file,omitempty"`
	// CentralURLs are central's client URLs (central mode; required
	// there), and CentralCAFile pins the CA of its client listener.
	CentralURLs   []string `json:"central_urls,omitempty"`
	CentralCAFile string   `json:"central_ca_file,omitempty"`
	// Service names the gateway's service in the inventory (central mode:
	// kind "gateway", scoped to Org without an edge), and PasswordFile the
	// file holding its password (mode 0600, as lintelctl render writes
	// it); LINTEL_GATEWAY_PASSWORD overrides the file.
	Service      string `json:"service,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
	// Listen is the HTTP listener, plain HTTP behind a TLS-terminating
	// proxy such as Caddy. Default "127.0.0.1:8480".
	Listen string `json:"listen,omitempty" env:"LISTEN"`
	// TrustedProxies are the CIDR prefixes of the proxies whose
	// X-Forwarded-For names the client. Default loopback only.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
	// ClientCertHeader names the header in which the trusted proxy passes
	// a verified client certificate (Caddyfile: "X-Lintel-Client-Cert");
	// ClientCAFile verifies it again and is required with it;
	// RequireClientCert refuses devices without one. See gateway.Config.
	ClientCertHeader  string `json:"client_cert_header,omitempty"`
	ClientCAFile      string `json:"client_ca_file,omitempty"`
	RequireClientCert bool   `json:"require_client_cert,omitempty"`
	// MaxBodyBytes, Rate and Burst as in gateway.Config; zero means the
	// gateway's defaults.
	MaxBodyBytes int64   `json:"max_body_bytes,omitempty"`
	Rate         float64 `json:"rate,omitempty"`
	Burst        int     `json:"burst,omitempty"`
	// Admin as for [Edge]; default "127.0.0.1:9472".
	Admin string `json:"admin_listen,omitempty" env:"ADMIN_LISTEN"`
	Log   Log    `json:"log"`

	dir      string
	prefixes []netip.Prefix
	password authz.Secret
}

// Central reports whether the gateway runs in central mode.
func (g *Gateway) Central() bool { return g.Mode == GatewayModeCentral }

// Password returns the central gateway's service password, from
// PasswordFile or the environment.
func (g *Gateway) Password() authz.Secret { return g.password }

// URLs returns the client URLs the gateway connects to: CentralURLs in
// central mode, else EdgeURLs.
func (g *Gateway) URLs() []string {
	if g.Central() {
		return g.CentralURLs
	}
	return g.EdgeURLs
}

// Proxies returns TrustedProxies, parsed.
func (g *Gateway) Proxies() []netip.Prefix { return g.prefixes }

// LoadGateway reads, overrides from the environment (LINTEL_GATEWAY_*),
// defaults and checks a gateway's configuration file.
func LoadGateway(path string) (*Gateway, error) {
	g := new(Gateway)
	if err := load(path, "LINTEL_GATEWAY_", g); err != nil {
		return nil, err
	}
	g.dir = filepath.Dir(path)
	if err := g.check(path); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gateway) check(file string) error {
	p := &problems{file: file}
	g.Inventory, g.State, g.EdgeCAFile = path(g.dir, g.Inventory), path(g.dir, g.State), path(g.dir, g.EdgeCAFile)
	g.ClientCAFile = path(g.dir, g.ClientCAFile)
	switch {
	case g.ClientCertHeader != "":
		p.requireFile("client_ca_file", g.ClientCAFile)
	case g.ClientCAFile != "":
		p.add("client_ca_file", "set client_cert_header too")
	}
	if g.RequireClientCert && g.ClientCertHeader == "" {
		p.add("require_client_cert", "set client_cert_header too")
	}
	if g.Org == "" {
		p.add("org", "required")
	}
	p.requireFile("inventory", g.Inventory)
	p.requireFile("state", g.State)
	switch g.Mode {
	case "", GatewayModeEdge:
		g.Mode = GatewayModeEdge
		if g.Edge == "" {
			p.add("edge", "required")
		}
		if g.EdgeCAFile != "" {
			p.requireFile("edge_ca_file", g.EdgeCAFile)
		}
		if len(g.EdgeURLs) == 0 {
			p.add("edge_urls", "required: the edge's client URLs")
		}
		checkURLs(p, "edge_urls", g.EdgeURLs)
	case GatewayModeCentral:
		g.checkCentral(p)
	default:
		p.add("mode", "want %q or %q, not %q", GatewayModeEdge, GatewayModeCentral, g.Mode)
	}
	if g.Listen == "" {
		g.Listen = DefaultGatewayListen
	}
	if g.Admin == "" {
		g.Admin = DefaultGatewayAdmin
	}
	checkHostPort(p, "listen", g.Listen)
	if g.Admin != "off" {
		checkHostPort(p, "admin_listen", g.Admin)
	}
	if g.TrustedProxies == nil {
		g.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	}
	for i, s := range g.TrustedProxies {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			p.add("trusted_proxies["+strconv.Itoa(i)+"]", "want a CIDR prefix such as 10.0.0.0/8, not %q", s)
			continue
		}
		g.prefixes = append(g.prefixes, pf)
	}
	if g.MaxBodyBytes < 0 {
		p.add("max_body_bytes", "must not be negative")
	}
	if g.Burst < 0 {
		p.add("burst", "must not be negative")
	}
	g.Log.check(p)
	return p.err()
}

// checkCentral checks the fields of central mode and reads the password.
func (g *Gateway) checkCentral(p *problems) {
	g.CentralCAFile, g.PasswordFile = path(g.dir, g.CentralCAFile), path(g.dir, g.PasswordFile)
	if g.Edge != "" || len(g.EdgeURLs) > 0 || g.EdgeCAFile != "" {
		p.add("edge", "a central gateway serves every edge of its org: leave edge, edge_urls and edge_ca_file out")
	}
	if len(g.CentralURLs) == 0 {
		p.add("central_urls", "required in central mode: central's client URLs")
	}
	checkURLs(p, "central_urls", g.CentralURLs)
	if g.CentralCAFile != "" {
		p.requireFile("central_ca_file", g.CentralCAFile)
	}
	if g.Service == "" {
		p.add("service", "required in central mode: the gateway's service in the inventory")
	}
	if v := os.Getenv("LINTEL_GATEWAY_PASSWORD"); v != "" {
		g.password = authz.NewSecret(v)
		return
	}
	if g.PasswordFile == "" {
		p.add("password_file", "required in central mode (or LINTEL_GATEWAY_PASSWORD)")
		return
	}
	sec, err := ReadSecret(g.PasswordFile)
	if err != nil {
		p.add("password_file", "%v", err)
		return
	}
	g.password = sec
}

// checkURLs checks NATS client URLs.
func checkURLs(p *problems, field string, urls []string) {
	for i, u := range urls {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || (pu.Scheme != "nats" && pu.Scheme != "tls") {
			p.add(field+"["+strconv.Itoa(i)+"]", "want nats://host:port or tls://host:port, not %q", u)
		}
	}
}
