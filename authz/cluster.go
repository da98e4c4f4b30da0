package authz

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// routeUser is the user central's nodes authenticate their cluster routes
// as; its password is [ClusterOptions].Password.
const routeUser = "lintel-route"

// DefaultClusterName names central's cluster when [ClusterOptions].Name is
// empty, and DefaultRoutePort is the route port when Port is zero.
const (
	DefaultClusterName = "lintel-central"
	DefaultRoutePort   = 6222
	// DefaultRoutesFile is the default [ClusterOptions].RoutesFile.
	DefaultRoutesFile = "cluster.conf"
)

// ClusterOptions make a central node one of a NATS cluster of central
// nodes: routes to the other nodes, authenticated by a password all nodes
// share and, with TLS, by certificates both ends verify. JetStream then
// runs clustered, so central's streams can be replicated (see
// docs/cluster.md).
type ClusterOptions struct {
	// Name names the cluster; every node uses the same. Default
	// [DefaultClusterName].
	Name string
	// Host and Port are the route listener; Port 0 means
	// [DefaultRoutePort], -1 a random port.
	Host string
	Port int // see Host
	// Routes are the other nodes' route URLs ("nats-route://10.42.0.2:6222"),
	// without credentials; a node may list itself too, as nats-server
	// ignores a route to itself. At least one.
	Routes []string
	// Password is the route password every node shares; [CentralOptions]
	// adds it to the route URLs and checks peers against it, in memory
	// only. [RenderCentral] leaves it out of the text, which includes
	// RoutesFile instead ([WriteClusterConf] writes it).
	Password Secret
	// RoutesFile is the file the text of [RenderCentral] includes for the
	// route credentials, relative to RenderOptions.ConfigDir or absolute.
	// Default "cluster.conf".
	RoutesFile string
	// TLS, when set, turns TLS on for routes: each node presents CertFile
	// and verifies its peer's certificate against ClientCAFile, which is
	// required, whether it dialled or accepted the route.
	TLS *TLSFiles
}

// check reports the first unusable field of c.
func (c *ClusterOptions) check() error {
	if len(c.Routes) == 0 {
		return fmt.Errorf("%w: Cluster needs Routes, the other nodes' route URLs", ErrRenderOption)
	}
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || (u.Scheme != "nats-route" && u.Scheme != "nats" && u.Scheme != "tls") {
			return fmt.Errorf("%w: Cluster.Routes: %q is not a route URL such as nats-route://10.42.0.2:6222", ErrRenderOption, r)
		}
		if u.User != nil {
			return fmt.Errorf("%w: Cluster.Routes: %q carries credentials; the route password is Cluster.Password", ErrRenderOption, r)
		}
	}
	if t := c.TLS; t != nil {
		if t.CertFile == "" || t.KeyFile == "" || t.ClientCAFile == "" {
			return fmt.Errorf("%w: Cluster.TLS needs CertFile, KeyFile and ClientCAFile (routes verify their peers)", ErrRenderOption)
		}
		for field, p := range map[string]string{"CertFile": t.CertFile, "KeyFile": t.KeyFile, "ClientCAFile": t.ClientCAFile} {
			if !filepath.IsAbs(p) {
				return fmt.Errorf("%w: Cluster.TLS.%s %q must be an absolute path", ErrRenderOption, field, p)
			}
		}
	}
	return nil
}

func (c ClusterOptions) withDefaults() ClusterOptions {
	if c.Name == "" {
		c.Name = DefaultClusterName
	}
	if c.Host == "" {
		c.Host = DefaultListenHost
	}
	if c.Port == 0 {
		c.Port = DefaultRoutePort
	}
	if c.RoutesFile == "" {
		c.RoutesFile = DefaultRoutesFile
	}
	return c
}

// clusterBlock writes central's cluster block; the credentials are in the
// included file.
func (w *confWriter) clusterBlock(c ClusterOptions) {
	w.line("# Routes to central's other nodes; JetStream runs clustered.")
	w.line("cluster {")
	w.kv("name", quote(c.Name))
	w.kv("host", quote(c.Host))
	w.kv("port", strconv.Itoa(c.Port))
	if c.TLS != nil {
		w.line("# Both ends of a route present a certificate and verify the other's.")
		w.line("tls {")
		w.kv("cert_file", quote(c.TLS.CertFile))
		w.kv("key_file", quote(c.TLS.KeyFile))
		w.kv("ca_file", quote(c.TLS.ClientCAFile))
		w.kv("verify", "true")
		w.kv("timeout", tlsTimeout())
		w.line("}")
	}
	w.line("# The route user and password, and the routes with them (mode 0600).")
	w.line("include " + quote(filepath.ToSlash(c.RoutesFile)))
	w.line("}")
	w.blank()
}

// routeURLs returns c's routes with the route user and password.
func (c ClusterOptions) routeURLs() ([]*url.URL, error) {
	out := make([]*url.URL, 0, len(c.Routes))
	seen := make(map[string]bool, len(c.Routes))
	for _, r := range c.Routes {
		// A route listed twice (this node's own, say) keeps nats-server's
		// JetStream cluster from electing a leader.
		if seen[r] {
			continue
		}
		seen[r] = true
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("%w: Cluster.Routes: %w", ErrRenderOption, err)
		}
		u.User = url.UserPassword(routeUser, c.Password.Reveal())
		out = append(out, u)
	}
	return out, nil
}

// applyCluster sets opts' route credentials from c, in memory. The
// password stays in clear: nats-server dials the routes it learns from its
// peers with its own configured password, so a hash there would lock them
// out.
func applyCluster(opts *server.Options, c ClusterOptions) error {
	if c.Password.IsZero() {
		return fmt.Errorf("%w: Cluster needs Password, the route password the nodes share", ErrRenderOption)
	}
	routes, err := c.routeURLs()
	if err != nil {
		return err
	}
	opts.Cluster.Username, opts.Cluster.Password = routeUser, c.Password.Reveal()
	opts.Routes = routes
	return nil
}

// WriteClusterConf writes the file central's rendered configuration
// includes in its cluster block (o.Cluster.RoutesFile, relative to
// o.ConfigDir): the route user and o.Cluster.Password, and the routes
// carrying them, mode 0600. (nats-server dials the routes it learns from
// its peers with its own configured password, so it must be in clear.) A
// stock nats-server needs the file; an embedded central
// ([CentralOptions]) does not.
func WriteClusterConf(o RenderOptions) error {
	if o.Cluster == nil {
		return fmt.Errorf("%w: no Cluster to write", ErrRenderOption)
	}
	c := o.Cluster.withDefaults()
	if err := c.check(); err != nil {
		return err
	}
	if c.Password.IsZero() {
		return fmt.Errorf("%w: Cluster needs Password, the route password the nodes share", ErrRenderOption)
	}
	routes, err := c.routeURLs()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# Route credentials of central's cluster, written by authz.WriteClusterConf.\n")
	fmt.Fprintf(&b, "authorization {\n  user: %s\n  password: %s\n  timeout: 2\n}\n", quote(routeUser), quote(c.Password.Reveal()))
	b.WriteString("routes: [\n")
	for _, u := range routes {
		fmt.Fprintf(&b, "  %s\n", quote(u.String()))
	}
	b.WriteString("]\n")
	path := c.RoutesFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(o.ConfigDir, path)
	}
	return writeFileAtomic(path, []byte(b.String()), 0o600)
}

// clusterInclude returns the include line of o's cluster block, or "".
func clusterInclude(o RenderOptions) string {
	if o.Cluster == nil {
		return ""
	}
	return "include " + quote(filepath.ToSlash(o.Cluster.withDefaults().RoutesFile))
}

// dropInclude returns text with line turned into a comment (nothing for
// "").
func dropInclude(text []byte, line string) []byte {
	if line == "" {
		return text
	}
	return []byte(strings.Replace(string(text), line, "# "+line, 1))
}
