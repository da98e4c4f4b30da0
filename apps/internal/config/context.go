package config

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/nats-io/nats.go"
)

// Context is how lintelctl's live commands (tail, status, command, cred,
// query) reach a deployment: central's client URLs, the org, an operator
// identity (a service of kind authz.ServiceOperator, or a central service)
// and the org's secrets the commands need; or, when APIURL is set,
// central's HTTP API and an API token, through which the commands go
// instead. lintelctl reads it from the
// file --context or LINTEL_CONTEXT names; the demo writes one. Paths are
// relative to the file's directory.
type Context struct {
	// Servers lists central's client URLs ("nats://host:4222"); required.
	Servers []string `json:"servers"`
	// Org is the org code; required.
	Org string `json:"org"`
	// User is the operator's user name, authz.ServiceUser(org, name);
	// required.
	User string `json:"user"`
	// PasswordFile holds the user's password (mode 0600); required.
	PasswordFile string `json:"password_file"`
	// CAFile is the CA that signed central's client certificate, when its
	// client listener has TLS.
	CAFile string `json:"ca_file,omitempty"`
	// CommandSeedFile holds the org's command key, which signs commands
	// (central/secrets/command-<org>.seed); needed by "command send".
	CommandSeedFile string `json:"command_seed_file,omitempty"`
	// HashKeyFile holds the org's credential hash key
	// (central/secrets/hash-<org>.key); needed by "cred add".
	HashKeyFile string `json:"hash_key_file,omitempty"`
	// InventoryFile is the deployment's inventory: which edges and things
	// there are; needed by "status", "command send" and "cred".
	InventoryFile string `json:"inventory_file,omitempty"`
	// DatabaseURL is central's PostgreSQL, for "query"; empty when
	// central keeps no history.
	DatabaseURL string `json:"database_url,omitempty"`
	// APIURL is central's HTTP API ("https://lintel.example.com", the
	// address that serves /api/v1); when set, the live commands go through
	// the API rather than NATS, and Servers, User and PasswordFile become
	// optional. Plain http is accepted for a loopback host only.
	APIURL string `json:"api_url,omitempty"`
	// APITokenFile holds an API token ("lintel_..."; mode 0600) the
	// commands send as a bearer token; required with APIURL.
	APITokenFile string `json:"api_token_file,omitempty"`
	// APICAFile holds the CA certificates (PEM) that signed the API's
	// https certificate, when the system's roots do not: a private CA,
	// or a self-signed certificate. Optional, with APIURL only.
	APICAFile string `json:"api_ca_file,omitempty"`

	dir string
}

// LoadContext reads and checks a context file.
func LoadContext(path string) (*Context, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: context: %w", ErrInvalid, err)
	}
	c := new(Context)
	if err := Decode(data, c); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
	}
	c.dir = filepath.Dir(path)
	p := &problems{file: path}
	c.checkAPI(p)
	viaAPI := c.APIURL != ""
	if len(c.Servers) == 0 && !viaAPI {
		p.add("servers", "required: central's client URLs")
	}
	for i, s := range c.Servers {
		if !strings.Contains(s, "://") {
			p.add(fmt.Sprintf("servers[%d]", i), "%q is not a URL (want nats://host:port)", s)
		}
	}
	if c.Org == "" {
		p.add("org", "required")
	}
	if c.User == "" && !viaAPI {
		p.add("user", "required")
	}
	if c.PasswordFile != "" || !viaAPI {
		p.requireFile("password_file", c.path(c.PasswordFile))
	}
	for field, f := range map[string]string{"ca_file": c.CAFile, "command_seed_file": c.CommandSeedFile, "hash_key_file": c.HashKeyFile, "inventory_file": c.InventoryFile} {
		if f != "" {
			p.requireFile(field, c.path(f))
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkAPI checks api_url and api_token_file.
func (c *Context) checkAPI(p *problems) {
	if c.APIURL == "" {
		if c.APITokenFile != "" {
			p.add("api_token_file", "set without api_url")
		}
		if c.APICAFile != "" {
			p.add("api_ca_file", "set without api_url")
		}
		return
	}
	if c.APICAFile != "" {
		p.requireFile("api_ca_file", c.path(c.APICAFile))
	}
	u, err := url.Parse(c.APIURL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		p.add("api_url", "%q is not a URL (want https://host[:port])", c.APIURL)
	case u.User != nil:
		p.add("api_url", "carries credentials: the token belongs in api_token_file")
	case u.Scheme == "http" && !loopback(u.Hostname()):
		p.add("api_url", "%q: plain http carries the token and card numbers in clear; use https (http is for a loopback host only)", c.APIURL)
	}
	p.requireFile("api_token_file", c.path(c.APITokenFile))
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// APIToken reads the API token; the file must be mode 0600, as the
// password file. It returns an error wrapping [ErrInvalid] when the
// context names no API.
func (c *Context) APIToken() (authz.Secret, error) {
	if c.APITokenFile == "" {
		return authz.Secret{}, fmt.Errorf("%w: context: api_token_file is not set", ErrInvalid)
	}
	return ReadSecret(c.path(c.APITokenFile))
}

// APIRootCAs returns the certificate pool api_ca_file holds, nil when the
// context names none (the system's roots then apply). It returns an error
// wrapping [ErrInvalid] when the file holds no PEM certificate.
func (c *Context) APIRootCAs() (*x509.CertPool, error) {
	if c.APICAFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(c.path(c.APICAFile))
	if err != nil {
		return nil, fmt.Errorf("%w: context: api_ca_file: %w", ErrInvalid, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%w: context: api_ca_file %s: no PEM certificate in it", ErrInvalid, c.path(c.APICAFile))
	}
	return pool, nil
}

// WriteContext writes c to path (mode 0600), creating its directory.
func WriteContext(path string, c *Context) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

func (c *Context) path(p string) string { return path(c.dir, p) }

// Password reads the user's password.
func (c *Context) Password() (authz.Secret, error) { return ReadSecret(c.path(c.PasswordFile)) }

// CA returns the CA file's path, "" for none.
func (c *Context) CA() string { return c.path(c.CAFile) }

// CommandKey reads the org's command key; an error names the missing field
// when the context has none.
func (c *Context) CommandKey() (authz.Secret, error) {
	if c.CommandSeedFile == "" {
		return authz.Secret{}, fmt.Errorf("%w: context: command_seed_file is not set: signing a command needs the org's command key", ErrInvalid)
	}
	return ReadSecret(c.path(c.CommandSeedFile))
}

// HashKey reads the org's credential hash key; an error names the missing
// field when the context has none.
func (c *Context) HashKey() ([]byte, error) {
	if c.HashKeyFile == "" {
		return nil, fmt.Errorf("%w: context: hash_key_file is not set: hashing a credential needs the org's hash key", ErrInvalid)
	}
	k, err := access.ReadHashKey(c.path(c.HashKeyFile))
	if err != nil {
		return nil, fmt.Errorf("%w: context: %w", ErrInvalid, err)
	}
	return k, nil
}

// Inventory reads the inventory; an error names the missing field when the
// context has none.
func (c *Context) Inventory() (*authz.Inventory, error) {
	if c.InventoryFile == "" {
		return nil, fmt.Errorf("%w: context: inventory_file is not set: this command needs the deployment's inventory", ErrInvalid)
	}
	return LoadInventory(c.path(c.InventoryFile))
}

// Connect connects to central as the context's user, with its own inbox
// prefix (the only one its permissions let it receive replies on) and the
// context's CA when set. name names the connection in central's monitoring.
func (c *Context) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	pw, err := c.Password()
	if err != nil {
		return nil, err
	}
	all := []nats.Option{
		nats.Name(name),
		nats.UserInfo(c.User, pw.Reveal()),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(c.User)),
	}
	if c.CAFile != "" {
		all = append(all, nats.RootCAs(c.CA()))
	}
	nc, err := nats.Connect(strings.Join(c.Servers, ","), append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", strings.Join(c.Servers, ","), c.User, err)
	}
	return nc, nil
}
