package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/spf13/cobra"
)

// Defaults of the Nebula address plan.
const (
	nebulaDefaultListenPort = 4242
	nebulaDefaultPKIDir     = "/usr/local/etc/nebula"
	nebulaMQTTPort          = 8883
	nebulaHTTPSPort         = 443
	nebulaHostsFile         = "hosts"
	nebulaConfigFile        = "config.yml"
)

// Nebula groups a generated certificate carries.
const (
	nebulaGroupLighthouse = "lighthouse"
	nebulaGroupCentral    = "central"
	nebulaGroupEdge       = "edge"
	nebulaGroupMonitoring = "monitoring"
)

// nebulaOrgGroup is the group of every edge of org; nebulaSiteGroup the
// group of the devices (and operators' machines) allowed to reach the
// device listeners of one edge.
func nebulaOrgGroup(org string) string        { return "org-" + org }
func nebulaSiteGroup(org, edge string) string { return "site-" + site(org, edge) }

// nebulaEdgeName is the Nebula host name (certificate name) of an edge.
func nebulaEdgeName(org, edge string) string { return "edge-" + site(org, edge) }

// nebulaPlan is the address plan of the overlay: what the inventory does
// not say.
type nebulaPlan struct {
	// Network is the overlay, an IPv4 prefix ("10.42.0.0/16").
	Network string `json:"network"`
	// ListenPort is the UDP port of the lighthouses and central nodes;
	// edges use a random one (they dial out). Default 4242.
	ListenPort int `json:"listen_port,omitempty"`
	// Lighthouses are dedicated lighthouses; Central are central's nodes,
	// any of which may also be a lighthouse. At least one lighthouse.
	Lighthouses []nebulaPlanHost `json:"lighthouses,omitempty"`
	Central     []nebulaPlanHost `json:"central"`
	// Monitoring are the hosts that scrape the admin listeners (a Zabbix
	// server or proxy), in group "monitoring". Optional.
	Monitoring []nebulaPlanHost `json:"monitoring,omitempty"`
	// Edges maps "org.edge" to the edge's overlay address.
	Edges map[string]string `json:"edges"`
	// Ports are what the firewalls admit.
	Ports nebulaPorts `json:"ports"`
	// Blocklist are the fingerprints of revoked certificates (nebula-cert
	// print shows them): every host refuses them, and drops their tunnels
	// when it reloads.
	Blocklist []string `json:"blocklist,omitempty"`
}

// nebulaPlanHost is a host the plan names.
type nebulaPlanHost struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
	// Lighthouse makes a central node a lighthouse too.
	Lighthouse bool `json:"lighthouse,omitempty"`
	// Public is a lighthouse's underlay address, "host:port", that every
	// other host dials.
	Public string `json:"public,omitempty"`
}

// nebulaPorts are the TCP ports the generated firewalls admit.
type nebulaPorts struct {
	// Leaf is central's leaf-node port, open to group "edge". Default: the
	// port of central's default leaf_listen (7422).
	Leaf int `json:"leaf,omitempty"`
	// Route is central's cluster route port, open to group "central".
	// Default: the port of the default cluster listen (6222).
	Route int `json:"route,omitempty"`
	// Devices are an edge's device listeners (NATS client, MQTT, the
	// gateway behind Caddy), open to the site's group. Default: the port
	// of the edge's default listen (4222), 8883 and 443.
	Devices []int `json:"devices,omitempty"`
	// CentralAdmin is central's admin listener (/readyz, /metrics), open
	// to group "monitoring". Default: the port of central's default
	// admin_listen (9470).
	CentralAdmin int `json:"central_admin,omitempty"`
	// EdgeAdmin are the admin listeners of an edge's host, the edge's and
	// the gateway's, open to group "monitoring". Default: the ports of
	// their default admin_listen (9471, 9472).
	EdgeAdmin []int `json:"edge_admin,omitempty"`
}

// nebulaHost is one host of the overlay, as generated.
type nebulaHost struct {
	Name       string       `json:"name"`
	Role       string       `json:"role"` // lighthouse, central or edge
	IP         string       `json:"ip"`   // with the overlay's prefix length
	Groups     []string     `json:"groups"`
	Lighthouse bool         `json:"lighthouse"`
	Public     string       `json:"public,omitempty"`
	Inbound    []nebulaRule `json:"inbound"`
	Config     string       `json:"config"` // path of the written configuration
}

// nebulaRule is one inbound firewall rule.
type nebulaRule struct {
	Port  string `json:"port"`  // a port or "any"
	Proto string `json:"proto"` // tcp, udp, icmp or any
	Host  string `json:"host,omitempty"`
	Group string `json:"group,omitempty"`
}

// nebulaCommand returns "lintelctl nebula".
func (a *app) nebulaCommand() *cobra.Command {
	var inventory, planPath, out, pkiDir, output string
	cmd := &cobra.Command{
		Use:   "nebula --inventory FILE --plan FILE --out DIR",
		Short: "Generate the Nebula overlay's host configurations from the inventory",
		Long: `Nebula writes the configuration of every host of the deployment's Nebula
overlay: the lighthouses and central nodes named in the address plan, and
one host per edge of the inventory, named edge-<org>-<edge>, at the address
the plan gives it. Certificates are issued with nebula-cert by
apps/deploy/nebula/nebula-pki.sh from the hosts file written here.

The address plan is JSON (whole-line "//" comments allowed):

  {
    "network": "10.42.0.0/16",
    "listen_port": 4242,
    "lighthouses": [{"name": "lighthouse", "ip": "10.42.0.1", "public": "203.0.113.10:4242"}],
    "central": [{"name": "central-1", "ip": "10.42.0.2"}],
    "monitoring": [{"name": "zabbix", "ip": "10.42.0.10"}],
    "edges": {"acme.hq": "10.42.1.1"},
    "ports": {"leaf": 7422, "route": 6222, "devices": [4222, 8883, 443],
              "central_admin": 9470, "edge_admin": [9471, 9472]}
  }

A central node with "lighthouse": true and a "public" address is a
lighthouse too. Every edge of the inventory needs an address; an address
for an edge the inventory does not list is an error. "blocklist" lists the
fingerprints of revoked certificates (nebula-cert print -path host.crt):
every host refuses them, and drops their tunnels when it reloads.

Groups and firewalls: central nodes are in group central, edges in edge,
org-<org>, the monitoring hosts (a Zabbix server or proxy) in monitoring,
and the device listeners of an edge are open to group site-<org>-<edge>
(sign devices or an operator's laptop into it). Inbound, a central node
admits the leaf port from group edge, the route port from group central and
its admin port (/readyz, /metrics) from group monitoring; an edge admits
its device ports from its site group and the edge's and gateway's admin
ports from group monitoring; every host answers ICMP. Nothing else is
admitted: edges cannot reach each other, and a monitoring host admits
nothing but ICMP. Admin listeners bind 127.0.0.1 by default: set
admin_listen to the host's overlay address for monitoring to reach them.

Under --out it writes:

  DIR/hosts                    one line per host: name, address/prefix, groups
  DIR/<name>/config.yml        the host's configuration; copy DIR/<name>/ to
                               the host's --pki-dir once its certificate is issued

With --output json it prints the hosts, their groups and inbound rules.`,
		Example: `  lintelctl nebula --inventory deploy/inventory.json --plan deploy/nebula-plan.json --out deploy/nebula
  lintelctl nebula -i deploy/inventory.json --plan deploy/nebula-plan.json --out deploy/nebula --pki-dir /etc/nebula -o json`,
		Args: cobra.NoArgs,
		RunE: a.runE(func(_ *cobra.Command, _ []string) error {
			if output != outputTable && output != outputJSON {
				return usagef("--output %q: want table or json", output)
			}
			if pkiDir == "" {
				return usagef("--pki-dir: want a directory")
			}
			inv, err := config.LoadInventory(inventory)
			if err != nil {
				return err
			}
			if err := checkSites(inv); err != nil {
				return fmt.Errorf("inventory: %w", err)
			}
			plan, err := loadNebulaPlan(planPath)
			if err != nil {
				return err
			}
			hosts, err := nebulaHosts(inv, plan)
			if err != nil {
				return fmt.Errorf("%s: %w", planPath, err)
			}
			if err := writeNebula(out, pkiDir, plan, hosts); err != nil {
				return err
			}
			if output == outputJSON {
				return a.writeJSON(hosts)
			}
			tw := a.table()
			fmt.Fprintln(tw, "HOST\tROLE\tADDRESS\tGROUPS\tCONFIG")
			for _, h := range hosts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Name, h.Role, h.IP, strings.Join(h.Groups, ","), h.Config)
			}
			return tw.Flush()
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&inventory, "inventory", "i", "", "the inventory file (required)")
	f.StringVar(&planPath, "plan", "", "the address plan (required)")
	f.StringVar(&out, "out", "", "the directory to write the configurations into (required)")
	f.StringVar(&pkiDir, "pki-dir", nebulaDefaultPKIDir, "where each host keeps ca.crt, host.crt and host.key (/etc/nebula on Debian; a relative path is taken from nebula's working directory)")
	f.StringVarP(&output, "output", "o", outputTable, "output format: table or json")
	_ = cmd.MarkFlagRequired("inventory") // the flags exist
	_ = cmd.MarkFlagRequired("plan")
	_ = cmd.MarkFlagRequired("out")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// loadNebulaPlan reads an address plan, refusing unknown keys.
func loadNebulaPlan(path string) (*nebulaPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(config.StripComments(data)))
	dec.DisallowUnknownFields()
	var p nebulaPlan
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// nebulaHosts checks plan against inv and returns every host of the
// overlay, lighthouses first, then central nodes, monitoring hosts, then
// edges in inventory order. All problems are returned at once.
func nebulaHosts(inv *authz.Inventory, plan *nebulaPlan) ([]nebulaHost, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	network, err := netip.ParsePrefix(plan.Network)
	switch {
	case plan.Network == "":
		bad("network: required (an IPv4 prefix such as 10.42.0.0/16)")
	case err != nil:
		bad("network %q: %w", plan.Network, err)
	case !network.Addr().Is4():
		bad("network %q: want an IPv4 prefix (Nebula certificates carry IPv4 addresses)", plan.Network)
	case network.Bits() > 30:
		bad("network %q: too small", plan.Network)
	case network.Masked() != network:
		bad("network %q: host bits set; did you mean %s?", plan.Network, network.Masked())
	}
	if plan.ListenPort == 0 {
		plan.ListenPort = nebulaDefaultListenPort
	}
	if _, leaf := config.SplitHostPort(config.DefaultCentralLeafListen); plan.Ports.Leaf == 0 {
		plan.Ports.Leaf = leaf
	}
	if _, route := config.SplitHostPort(config.DefaultClusterListen); plan.Ports.Route == 0 {
		plan.Ports.Route = route
	}
	if _, dev := config.SplitHostPort(config.DefaultEdgeListen); plan.Ports.Devices == nil {
		plan.Ports.Devices = []int{dev, nebulaMQTTPort, nebulaHTTPSPort}
	}
	if _, admin := config.SplitHostPort(config.DefaultCentralAdmin); plan.Ports.CentralAdmin == 0 {
		plan.Ports.CentralAdmin = admin
	}
	if plan.Ports.EdgeAdmin == nil {
		_, edge := config.SplitHostPort(config.DefaultEdgeAdmin)
		_, gateway := config.SplitHostPort(config.DefaultGatewayAdmin)
		plan.Ports.EdgeAdmin = []int{edge, gateway}
	}
	for _, p := range []struct {
		name string
		port int
	}{{"listen_port", plan.ListenPort}, {"ports.leaf", plan.Ports.Leaf}, {"ports.route", plan.Ports.Route}, {"ports.central_admin", plan.Ports.CentralAdmin}} {
		if p.port < 1 || p.port > 65535 {
			bad("%s %d: want 1 to 65535", p.name, p.port)
		}
	}
	for _, l := range []struct {
		name  string
		ports []int
	}{{"ports.devices", plan.Ports.Devices}, {"ports.edge_admin", plan.Ports.EdgeAdmin}} {
		for i, p := range l.ports {
			if p < 1 || p > 65535 {
				bad("%s[%d] %d: want 1 to 65535", l.name, i, p)
			}
		}
	}

	for i, fp := range plan.Blocklist {
		if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
			bad("blocklist[%d] %q: want a certificate fingerprint, 64 lowercase hex digits (nebula-cert print -path host.crt)", i, fp)
		}
	}

	names := map[string]string{} // name -> what
	ips := map[netip.Addr]string{}
	addr := func(what, name, ip string) string {
		if name == "" || strings.ContainsAny(name, " \t\n,#/") {
			bad("%s: name %q: want a non-empty name without blanks, ',', '#' or '/'", what, name)
		} else if other, dup := names[name]; dup {
			bad("%s: name %q is also %s", what, name, other)
		} else {
			names[name] = what
		}
		a, err := netip.ParseAddr(ip)
		switch {
		case ip == "":
			bad("%s: ip: required", what)
			return ""
		case err != nil:
			bad("%s: ip %q: %w", what, ip, err)
			return ""
		case !network.IsValid():
			return "" // reported above
		case !network.Contains(a):
			bad("%s: ip %s is outside the network %s", what, a, network)
			return ""
		case a == network.Addr() || a == lastAddr(network):
			bad("%s: ip %s is the network's network or broadcast address", what, a)
			return ""
		}
		if other, dup := ips[a]; dup {
			bad("%s: ip %s is also %s's", what, a, other)
			return ""
		}
		ips[a] = what
		return netip.PrefixFrom(a, network.Bits()).String()
	}
	public := func(what string, h nebulaPlanHost) {
		host, port, err := net.SplitHostPort(h.Public)
		if h.Public == "" {
			bad("%s: public: required for a lighthouse (its underlay address, host:port)", what)
		} else if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			bad("%s: public %q: want host:port", what, h.Public)
		}
	}

	var hosts []nebulaHost
	for i, h := range plan.Lighthouses {
		what := fmt.Sprintf("lighthouses[%d] (%s)", i, h.Name)
		public(what, h)
		hosts = append(hosts, nebulaHost{Name: h.Name, Role: "lighthouse", IP: addr(what, h.Name, h.IP),
			Groups: []string{nebulaGroupLighthouse}, Lighthouse: true, Public: h.Public})
	}
	if len(plan.Central) == 0 {
		bad("central: at least one central node")
	}
	for i, h := range plan.Central {
		what := fmt.Sprintf("central[%d] (%s)", i, h.Name)
		groups := []string{nebulaGroupCentral}
		if h.Lighthouse {
			public(what, h)
			groups = append(groups, nebulaGroupLighthouse)
		} else if h.Public != "" {
			bad("%s: public is for a lighthouse; set \"lighthouse\": true or remove it", what)
		}
		hosts = append(hosts, nebulaHost{Name: h.Name, Role: "central", IP: addr(what, h.Name, h.IP),
			Groups: groups, Lighthouse: h.Lighthouse, Public: h.Public})
	}
	for i, h := range plan.Monitoring {
		what := fmt.Sprintf("monitoring[%d] (%s)", i, h.Name)
		if h.Lighthouse || h.Public != "" {
			bad("%s: a monitoring host is not a lighthouse; remove lighthouse and public", what)
		}
		hosts = append(hosts, nebulaHost{Name: h.Name, Role: "monitoring", IP: addr(what, h.Name, h.IP),
			Groups: []string{nebulaGroupMonitoring}})
	}
	listed := map[string]bool{}
	for i, e := range inv.Edges {
		key := e.Org + "." + e.Code
		listed[key] = true
		what := fmt.Sprintf("edges[%q]", key)
		ip, ok := plan.Edges[key]
		if !ok {
			bad("%s: edge %s of the inventory (edges[%d]) has no address in the plan", what, key, i)
			continue
		}
		hosts = append(hosts, nebulaHost{Name: nebulaEdgeName(e.Org, e.Code), Role: "edge", IP: addr(what, nebulaEdgeName(e.Org, e.Code), ip),
			Groups: []string{nebulaGroupEdge, nebulaOrgGroup(e.Org)}})
	}
	var stale []string
	for key := range plan.Edges {
		if !listed[key] {
			stale = append(stale, key)
		}
	}
	slices.Sort(stale)
	for _, key := range stale {
		bad("edges[%q]: no such edge in the inventory (keys are \"org.edge\"); remove it", key)
	}
	lighthouses := 0
	for _, h := range hosts {
		if h.Lighthouse {
			lighthouses++
		}
	}
	if lighthouses == 0 && len(plan.Central) > 0 {
		bad("lighthouses: none; list one, or set \"lighthouse\": true on a central node")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i := range hosts {
		hosts[i].Inbound = nebulaInbound(hosts[i], inv, plan)
	}
	return hosts, nil
}

// nebulaInbound returns h's inbound firewall rules.
func nebulaInbound(h nebulaHost, inv *authz.Inventory, plan *nebulaPlan) []nebulaRule {
	rules := []nebulaRule{{Port: "any", Proto: "icmp", Host: "any"}}
	switch h.Role {
	case "central":
		rules = append(rules,
			nebulaRule{Port: strconv.Itoa(plan.Ports.Leaf), Proto: "tcp", Group: nebulaGroupEdge},
			nebulaRule{Port: strconv.Itoa(plan.Ports.Route), Proto: "tcp", Group: nebulaGroupCentral},
			nebulaRule{Port: strconv.Itoa(plan.Ports.CentralAdmin), Proto: "tcp", Group: nebulaGroupMonitoring})
	case "edge":
		for _, e := range inv.Edges {
			if nebulaEdgeName(e.Org, e.Code) != h.Name {
				continue
			}
			for _, p := range plan.Ports.Devices {
				rules = append(rules, nebulaRule{Port: strconv.Itoa(p), Proto: "tcp", Group: nebulaSiteGroup(e.Org, e.Code)})
			}
			for _, p := range plan.Ports.EdgeAdmin {
				rules = append(rules, nebulaRule{Port: strconv.Itoa(p), Proto: "tcp", Group: nebulaGroupMonitoring})
			}
		}
	}
	return rules
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << host) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// writeNebula writes the hosts file and every host's configuration under
// out, setting each host's Config.
func writeNebula(out, pkiDir string, plan *nebulaPlan, hosts []nebulaHost) error {
	if err := os.MkdirAll(out, modePublicDir); err != nil {
		return fmt.Errorf("out: %w", err)
	}
	var list bytes.Buffer
	list.WriteString("# Nebula hosts of the deployment, written by lintelctl nebula: name, address, groups.\n")
	list.WriteString("# apps/deploy/nebula/nebula-pki.sh signs a certificate for each line.\n")
	for _, h := range hosts {
		fmt.Fprintf(&list, "%s %s %s\n", h.Name, h.IP, strings.Join(h.Groups, ","))
	}
	if err := writeFileAtomic(filepath.Join(out, nebulaHostsFile), list.Bytes(), modePublic); err != nil {
		return fmt.Errorf("hosts: %w", err)
	}
	for i := range hosts {
		dir := filepath.Join(out, hosts[i].Name)
		if err := os.MkdirAll(dir, modePublicDir); err != nil {
			return err
		}
		path := filepath.Join(dir, nebulaConfigFile)
		if err := writeFileAtomic(path, nebulaConfig(hosts[i], hosts, pkiDir, plan), modePublic); err != nil {
			return fmt.Errorf("%s: %w", hosts[i].Name, err)
		}
		hosts[i].Config = path
	}
	return nil
}

// nebulaConfig returns h's Nebula configuration (YAML).
func nebulaConfig(h nebulaHost, all []nebulaHost, pkiDir string, plan *nebulaPlan) []byte {
	var b bytes.Buffer
	q := strconv.Quote
	addr := func(h nebulaHost) string { return strings.SplitN(h.IP, "/", 2)[0] }
	fmt.Fprintf(&b, "# Nebula configuration of %s (%s, %s, groups %s), written by\n", h.Name, h.Role, h.IP, strings.Join(h.Groups, ","))
	b.WriteString("# lintelctl nebula from the inventory and the address plan: change those and\n# run it again rather than edit this file.\n")
	fmt.Fprintf(&b, "pki:\n  ca: %s\n  cert: %s\n  key: %s\n", q(filepath.Join(pkiDir, "ca.crt")), q(filepath.Join(pkiDir, "host.crt")), q(filepath.Join(pkiDir, "host.key")))
	b.WriteString("  # Revoked certificates; their tunnels are dropped when nebula reloads (SIGHUP).\n  disconnect_invalid: true\n")
	if len(plan.Blocklist) == 0 {
		b.WriteString("  blocklist: []\n")
	} else {
		b.WriteString("  blocklist:\n")
		for _, fp := range plan.Blocklist {
			fmt.Fprintf(&b, "    - %s\n", q(fp))
		}
	}

	b.WriteString("\n# The lighthouses' underlay addresses: every other host dials them.\nstatic_host_map:\n")
	var lights []string
	for _, o := range all {
		if o.Lighthouse && o.Name != h.Name {
			fmt.Fprintf(&b, "  %s: [%s]\n", q(addr(o)), q(o.Public))
			lights = append(lights, addr(o))
		}
	}
	if len(lights) == 0 {
		b.WriteString("  {}\n")
	}
	fmt.Fprintf(&b, "\nlighthouse:\n  am_lighthouse: %t\n  interval: 60\n", h.Lighthouse)
	if h.Lighthouse {
		b.WriteString("  hosts: []\n")
	} else {
		b.WriteString("  hosts:\n")
		for _, l := range lights {
			fmt.Fprintf(&b, "    - %s\n", q(l))
		}
	}
	port := plan.ListenPort
	if h.Role == "edge" {
		port = 0 // edges dial out, often from behind NAT
	}
	fmt.Fprintf(&b, "\nlisten:\n  host: \"0.0.0.0\"\n  port: %d\n", port)
	b.WriteString("\n# Edges are usually behind NAT: keep the mappings open, and relay through the\n# lighthouses when hole punching fails.\npunchy:\n  punch: true\n  respond: true\n")
	if h.Lighthouse {
		b.WriteString("relay:\n  am_relay: true\n  use_relays: true\n")
	} else {
		b.WriteString("relay:\n  am_relay: false\n  use_relays: true\n  relays:\n")
		for _, l := range lights {
			fmt.Fprintf(&b, "    - %s\n", q(l))
		}
	}
	b.WriteString("\ntun:\n  disabled: false\n  dev: nebula1\n  drop_local_broadcast: true\n  drop_multicast: true\n  mtu: 1300\n")
	b.WriteString("\nlogging:\n  level: info\n  format: json\n")

	b.WriteString("\n# Outbound is open; inbound admits only what this host serves to whom.\nfirewall:\n")
	b.WriteString("  conntrack:\n    tcp_timeout: 12m\n    udp_timeout: 3m\n    default_timeout: 10m\n")
	b.WriteString("  outbound:\n    - port: any\n      proto: any\n      host: any\n")
	b.WriteString("  inbound:\n")
	for _, r := range h.Inbound {
		fmt.Fprintf(&b, "    - port: %s\n      proto: %s\n", r.Port, r.Proto)
		if r.Host != "" {
			fmt.Fprintf(&b, "      host: %s\n", r.Host)
		}
		if r.Group != "" {
			fmt.Fprintf(&b, "      group: %s\n", q(r.Group))
		}
	}
	return b.Bytes()
}
