package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lintel-io/lintel/authz"
)

// Defaults of the apps' listeners and history.
const (
	DefaultCentralListen     = "127.0.0.1:4222"
	DefaultCentralLeafListen = "0.0.0.0:7422"
	DefaultEdgeListen        = "0.0.0.0:4222"
	DefaultCentralAdmin      = "127.0.0.1:9470"
	DefaultEdgeAdmin         = "127.0.0.1:9471"
	DefaultHistoryMaxAge     = 30 * 24 * time.Hour
	DefaultHistoryMaxBytes   = 10 << 30
)

// Names of the secret files lintelctl render writes.
const (
	EdgeLeafSeed    = "leaf.seed"
	EdgeAuditSeed   = "audit.seed"
	EdgeCommandSeed = "command.seed"
	EdgeHashKey     = "hash.key"
)

// CentralClusterPassword names the file of the route password of a
// clustered central, in central's secrets directory.
const CentralClusterPassword = "cluster.password"

// CentralPasswordFile, CentralCommandSeed and CentralHashKey name central's
// secret files for an org (and its central service user).
func CentralPasswordFile(user string) string { return user + ".password" }

// CentralCommandSeed names the file of org's command key seed.
func CentralCommandSeed(org string) string { return "command-" + org + ".seed" }

// CentralHashKey names the file of org's credential hash key.
func CentralHashKey(org string) string { return "hash-" + org + ".key" }

func (c *Central) check(file string) error {
	p := &problems{file: file}
	c.Inventory, c.State, c.Secrets = path(c.dir, c.Inventory), path(c.dir, c.State), path(c.dir, c.Secrets)
	c.StoreDir = path(c.dir, c.StoreDir)
	p.requireFile("inventory", c.Inventory)
	p.requireFile("state", c.State)
	p.requireFile("secrets_dir", c.Secrets)
	if c.StoreDir == "" {
		p.add("store_dir", "required")
	}
	if c.Name == "" {
		c.Name = "lintel-central"
	}
	if c.Listen == "" {
		c.Listen = DefaultCentralListen
	}
	if c.LeafListen == "" {
		c.LeafListen = DefaultCentralLeafListen
	}
	if c.Admin == "" {
		c.Admin = DefaultCentralAdmin
	}
	checkHostPort(p, "listen", c.Listen)
	checkHostPort(p, "leaf_listen", c.LeafListen)
	if c.Admin != "off" {
		checkHostPort(p, "admin_listen", c.Admin)
	}
	c.TLS = checkTLS(p, c.dir, "tls", c.TLS, !c.Plaintext)
	c.LeafTLS = checkTLS(p, c.dir, "leaf_tls", c.LeafTLS, !c.Plaintext)
	if cl := c.Cluster; cl != nil {
		c.checkCluster(p, cl)
	}
	if c.Database != nil {
		d := c.Database
		if u := os.Getenv("LINTEL_CENTRAL_DATABASE_URL"); u != "" {
			d.url = u
		} else if d.URLFile == "" {
			p.add("database.url_file", "required (or LINTEL_CENTRAL_DATABASE_URL)")
		} else {
			d.URLFile = path(c.dir, d.URLFile)
			b, err := os.ReadFile(d.URLFile)
			if err != nil {
				p.add("database.url_file", "%v", err)
			}
			d.url = strings.TrimSpace(string(b))
		}
		if d.url != "" {
			if u, err := url.Parse(d.url); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				p.add("database.url_file", "want a postgres:// URL")
			}
		}
		if d.Retention < 0 {
			p.add("database.retention", "negative")
		}
		m := d.Maintenance
		if m.Every < 0 || m.CompressAfter < 0 || m.RefreshWindow < 0 {
			p.add("database.maintenance", "negative duration")
		}
		if m.RefreshWindow > 0 && m.RefreshWindow < Duration(2*time.Hour) {
			p.add("database.maintenance.refresh_window", "%v is shorter than 2h", time.Duration(m.RefreshWindow))
		}
		if m.Scheduler && (m.Every != 0 || m.CompressAfter != 0 || m.RefreshWindow != 0) {
			p.add("database.maintenance", "scheduler leaves maintenance to TimescaleDB: every, compress_after and refresh_window do not apply")
		}
		if m.Scheduler && d.Retention != 0 {
			p.add("database.retention", "central's maintenance enforces it, and maintenance.scheduler turns that off")
		}
	}
	if c.History.MaxAge == 0 {
		c.History.MaxAge = Duration(DefaultHistoryMaxAge)
	}
	if c.History.MaxBytes == 0 {
		c.History.MaxBytes = DefaultHistoryMaxBytes
	}
	if c.History.MaxAge < 0 || c.History.MaxBytes < 0 {
		p.add("history", "negative limit")
	}
	if c.API != nil {
		c.checkAPI(p, c.API)
	}
	c.Log.check(p)
	return p.err()
}

// DefaultClusterListen is the default route listener of a clustered
// central.
const DefaultClusterListen = "0.0.0.0:6222"

// checkCluster checks and defaults c's cluster section.
func (c *Central) checkCluster(p *problems, cl *Cluster) {
	if cl.Listen == "" {
		cl.Listen = DefaultClusterListen
	}
	checkHostPort(p, "cluster.listen", cl.Listen)
	if len(cl.Routes) == 0 {
		p.add("cluster.routes", "required: every node's route URL, such as nats-route://10.42.0.1:6222")
	}
	for i, r := range cl.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || u.Scheme != "nats-route" {
			p.add(fmt.Sprintf("cluster.routes[%d]", i), "want a URL such as nats-route://10.42.0.1:6222, not %q", r)
		} else if u.User != nil {
			p.add(fmt.Sprintf("cluster.routes[%d]", i), "carries credentials: the route password belongs in password_file")
		}
	}
	if v := os.Getenv("LINTEL_CENTRAL_CLUSTER_PASSWORD"); v != "" {
		cl.password = authz.NewSecret(v)
	} else if cl.PasswordFile == "" {
		p.add("cluster.password_file", "required (or LINTEL_CENTRAL_CLUSTER_PASSWORD)")
	} else {
		cl.PasswordFile = path(c.dir, cl.PasswordFile)
		sec, err := ReadSecret(cl.PasswordFile)
		if err != nil {
			p.add("cluster.password_file", "%v", err)
		}
		cl.password = sec
	}
	cl.TLS = checkTLS(p, c.dir, "cluster.tls", cl.TLS, !c.Plaintext)
	if cl.TLS != nil && cl.TLS.ClientCAFile == "" {
		p.add("cluster.tls.client_ca_file", "required: the CA the nodes verify each other against")
	}
	if cl.Replicas == 0 {
		cl.Replicas = min(3, max(len(cl.Routes), 1))
	}
	if cl.Replicas < 1 || cl.Replicas > 5 {
		p.add("cluster.replicas", "want 1 to 5, not %d", cl.Replicas)
	}
}

// URL returns the database URL, from the file or the environment.
func (d *Database) URL() string { return d.url }

func (e *Edge) check(file string) error {
	p := &problems{file: file}
	e.Inventory, e.State, e.Secrets = path(e.dir, e.Inventory), path(e.dir, e.State), path(e.dir, e.Secrets)
	e.StoreDir = path(e.dir, e.StoreDir)
	if e.Org == "" {
		p.add("org", "required")
	}
	if e.Edge == "" {
		p.add("edge", "required")
	}
	p.requireFile("inventory", e.Inventory)
	p.requireFile("state", e.State)
	p.requireFile("secrets_dir", e.Secrets)
	if e.Secrets != "" {
		for _, f := range []string{EdgeLeafSeed, EdgeAuditSeed, EdgeCommandSeed, EdgeHashKey} {
			p.requireFile("secrets_dir", e.Secrets+string(os.PathSeparator)+f)
		}
	}
	if e.StoreDir == "" {
		p.add("store_dir", "required")
	}
	if e.Listen == "" {
		e.Listen = DefaultEdgeListen
	}
	if e.Admin == "" {
		e.Admin = DefaultEdgeAdmin
	}
	checkHostPort(p, "listen", e.Listen)
	if e.MQTTListen != "" {
		checkHostPort(p, "mqtt_listen", e.MQTTListen)
	}
	if e.Admin != "off" {
		checkHostPort(p, "admin_listen", e.Admin)
	}
	if len(e.HubURLs) == 0 {
		p.add("hub_urls", "required: central's leaf URLs")
	}
	for i, h := range e.HubURLs {
		u, err := url.Parse(h)
		if err != nil || u.Host == "" || (u.Scheme != "nats-leaf" && u.Scheme != "tls" && u.Scheme != "nats") {
			p.add("hub_urls["+strconv.Itoa(i)+"]", "want nats-leaf://host:port, not %q", h)
		}
	}
	e.TLS = checkTLS(p, e.dir, "tls", e.TLS, !e.Plaintext)
	switch {
	case e.HubTLS == nil && !e.Plaintext:
		p.add("hub_tls", "required unless plaintext is true: ca_file pins central's CA")
	case e.HubTLS != nil:
		h := e.HubTLS
		h.CAFile, h.CertFile, h.KeyFile = path(e.dir, h.CAFile), path(e.dir, h.CertFile), path(e.dir, h.KeyFile)
		p.requireFile("hub_tls.ca_file", h.CAFile)
		if (h.CertFile == "") != (h.KeyFile == "") {
			p.add("hub_tls", "cert_file and key_file go together")
		}
	}
	if e.Access == nil {
		t := true
		e.Access = &t
	}
	if e.Rules == nil {
		t := true
		e.Rules = &t
	}
	e.Log.check(p)
	return p.err()
}

// checkTLS resolves and checks a listener's TLS files; required means
// TLS must be configured.
func checkTLS(p *problems, dir, field string, t *TLS, required bool) *TLS {
	if t == nil {
		if required {
			p.add(field, "required unless plaintext is true (cert_file, key_file)")
		}
		return nil
	}
	t.CertFile, t.KeyFile, t.ClientCAFile = path(dir, t.CertFile), path(dir, t.KeyFile), path(dir, t.ClientCAFile)
	p.requireFile(field+".cert_file", t.CertFile)
	p.requireFile(field+".key_file", t.KeyFile)
	if t.ClientCAFile != "" {
		p.requireFile(field+".client_ca_file", t.ClientCAFile)
	}
	return t
}

// checkHostPort checks a listen address "host:port".
func checkHostPort(p *problems, field, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(field, "want host:port, not %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(field, "bad port %q", port)
	}
	_ = host
}

// SplitHostPort splits a checked listen address.
func SplitHostPort(addr string) (string, int) {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return host, n
}
