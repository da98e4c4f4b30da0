package config

import (
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
)

// Defaults of [Gateway].
const (
	DefaultGatewayListen = "127.0.0.1:8480"
	DefaultGatewayAdmin  = "127.0.0.1:9472"
)

// Gateway is the configuration of an edge's HTTP gateway (apps/gateway).
type Gateway struct {
	// Org and Edge name the site whose devices the gateway serves.
	// Required.
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
	if g.Edge == "" {
		p.add("edge", "required")
	}
	p.requireFile("inventory", g.Inventory)
	p.requireFile("state", g.State)
	if g.EdgeCAFile != "" {
		p.requireFile("edge_ca_file", g.EdgeCAFile)
	}
	if len(g.EdgeURLs) == 0 {
		p.add("edge_urls", "required: the edge's client URLs")
	}
	for i, u := range g.EdgeURLs {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || (pu.Scheme != "nats" && pu.Scheme != "tls") {
			p.add("edge_urls["+strconv.Itoa(i)+"]", "want nats://host:port or tls://host:port, not %q", u)
		}
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
