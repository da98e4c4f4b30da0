package authz

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Defaults of [RenderOptions].
const (
	// DefaultListenHost is the listen address of the client and leaf-node ports.
	DefaultListenHost = "0.0.0.0"
	// DefaultClientPort is nats-server's usual client port.
	DefaultClientPort = 4222
	// DefaultLeafPort is nats-server's usual leaf-node port.
	DefaultLeafPort = 7422
	// DefaultStoreDir is the JetStream store directory.
	DefaultStoreDir = "/var/lib/lintel/nats"
	// DefaultSeedFile is the edge's seed include, beside its configuration file.
	DefaultSeedFile = "leaf-seed.conf"
	// DefaultPingInterval is the ping interval of every connection, the leaf
	// link's included.
	DefaultPingInterval = 5 * time.Second
)

// RenderOptions are the deployment details of a rendered server
// configuration that the inventory does not say. The zero value renders a
// production configuration with the defaults listed per field; fields that
// apply to central only or to an edge only are ignored for the other.
type RenderOptions struct {
	// ServerName names the server; it must be unique among the servers of a
	// deployment, as leaf nodes use it to tell each other apart. Default:
	// "lintel-central", or "lintel-edge-{org}-{edge}".
	ServerName string
	// Host is the client listen address. Default [DefaultListenHost].
	Host string
	// Port is the client port: 0 means [DefaultClientPort], -1 a random port.
	Port int
	// LeafHost is central's leaf-node listen address. Default
	// [DefaultListenHost].
	LeafHost string
	// LeafPort is central's leaf-node port: 0 means [DefaultLeafPort], -1 a
	// random port.
	LeafPort int
	// HTTPPort is the monitoring port; 0 disables monitoring, -1 picks a
	// random port.
	HTTPPort int
	// StoreDir is the JetStream store directory. Default [DefaultStoreDir].
	StoreDir string
	// MaxMemoryStore and MaxFileStore cap JetStream's memory and file
	// storage in bytes; zero lets nats-server size them from the host.
	MaxMemoryStore int64
	MaxFileStore   int64 // see MaxMemoryStore
	// PingInterval is how often the server pings its connections, the leaf
	// link included; two missed pings close a connection. Default
	// [DefaultPingInterval], much shorter than nats-server's two minutes, so
	// that an edge notices a dead link to central within seconds.
	PingInterval time.Duration

	// HubURLs are central's leaf-node URLs an edge connects to, such as
	// "nats-leaf://10.42.0.1:7422". An edge needs at least one.
	HubURLs []string
	// ConfigDir is the directory the rendered edge configuration file is
	// written to, and SeedFile a path to the edge's NKey seed, relative to
	// ConfigDir or absolute (an absolute SeedFile needs an absolute
	// ConfigDir, since nats-server resolves includes relative to the
	// configuration file). Default SeedFile: [DefaultSeedFile].
	//
	// The configuration file includes SeedFile, so for a stock nats-server
	// it must hold the seed as configuration, as [WriteLeafSeedConf] writes
	// it; [EdgeOptions] also reads a bare seed, as [WriteSeedFile] writes it.
	ConfigDir string
	SeedFile  string // see ConfigDir

	// TLS, when set, turns on TLS on the client listener, central's and an
	// edge's (an embedded edge's MQTT listener presents the same
	// certificate): clients must use TLS and verify the listener's
	// certificate, and a plaintext client is refused. LeafTLS, for central
	// only, does the same for the leaf-node listener, and HubTLS, for an
	// edge only, makes the leaf link use TLS and pins central's certificate
	// to a CA; set HubTLS on the edges exactly when central has LeafTLS. See
	// [TLSFiles] and [HubTLS]; the paths must be absolute.
	//
	// nil means plaintext, for tests and for a deployment whose links run
	// over an encrypted overlay network such as Nebula. The Lintel apps
	// require the TLS files unless their configuration turns TLS off
	// explicitly; a library caller that renders a production configuration
	// should do the same. [RenderCentral] and [RenderEdge] do not read the
	// files; [CentralOptions], [EdgeOptions] and checkTLSFiles do.
	TLS     *TLSFiles
	LeafTLS *TLSFiles // central only; see TLS
	HubTLS  *HubTLS   // an edge only; see TLS

	// Cluster, for central only, makes the node one of a cluster of
	// central nodes; nil runs a single node. See [ClusterOptions].
	Cluster *ClusterOptions
}

func (o RenderOptions) withDefaults(name string) RenderOptions {
	if o.ServerName == "" {
		o.ServerName = name
	}
	if o.Host == "" {
		o.Host = DefaultListenHost
	}
	if o.Port == 0 {
		o.Port = DefaultClientPort
	}
	if o.LeafHost == "" {
		o.LeafHost = DefaultListenHost
	}
	if o.LeafPort == 0 {
		o.LeafPort = DefaultLeafPort
	}
	if o.StoreDir == "" {
		o.StoreDir = DefaultStoreDir
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.SeedFile == "" {
		o.SeedFile = DefaultSeedFile
	}
	return o
}

// seedInclude returns the include path of the seed file, relative to
// ConfigDir as nats-server requires.
func (o RenderOptions) seedInclude() (string, error) {
	if !filepath.IsAbs(o.SeedFile) {
		return filepath.ToSlash(o.SeedFile), nil
	}
	if !filepath.IsAbs(o.ConfigDir) {
		return "", fmt.Errorf("%w: absolute SeedFile %q needs an absolute ConfigDir, as nats-server includes files relative to the configuration", ErrRenderOption, o.SeedFile)
	}
	rel, err := filepath.Rel(o.ConfigDir, o.SeedFile)
	if err != nil {
		return "", fmt.Errorf("%w: SeedFile: %v", ErrRenderOption, err)
	}
	return filepath.ToSlash(rel), nil
}

// seedPath returns the path of the seed file as EdgeOptions reads it.
func (o RenderOptions) seedPath() string {
	if filepath.IsAbs(o.SeedFile) {
		return o.SeedFile
	}
	return filepath.Join(o.ConfigDir, o.SeedFile)
}

// featureFlagComment explains the one feature flag the configurations set.
const featureFlagComment = `# js_api_reply_v2 scopes the replies to the JetStream API requests of stream
# sourcing and mirroring to their domain, stream and consumer, so that the
# leaf-node permissions can allow each edge its own replies only.`

// RenderCentral returns the nats-server configuration file of central for
// inv and st: JetStream in domain [HubDomain], a leaf-node listener, the
// system account, and per org an account with JetStream, each edge's
// leaf-node NKey (allowed only as a leaf node, with [LeafPermissions]; after
// a key rotation also the previous key, until [State.Prune] drops it) and the org's central services,
// operators and org-wide gateways (bcrypt hashes, with their permissions).
// With o.TLS and o.LeafTLS, the client and leaf-node listeners require TLS.
// The leaf-node listener does not advertise its address: edges dial only the
// hub URLs rendered for them. The text is deterministic and holds no
// password or seed.
//
// It returns an error wrapping [ErrCredentialMissing] when st lacks an
// identity's credential, [ErrReservedName] for a name the topology keeps,
// [ErrInvalid] for a service of unknown kind, and [ErrRenderOption] for an
// incomplete TLS setting or a relative TLS path.
func RenderCentral(inv *Inventory, st *State, o RenderOptions) ([]byte, error) {
	o = o.withDefaults("lintel-central")
	if err := o.checkTLSFields(true, false); err != nil {
		return nil, err
	}
	ids, err := renderIdentities(inv)
	if err != nil {
		return nil, err
	}
	w := &confWriter{}
	w.header("central")
	w.serverBlock(o)
	w.line("jetstream {")
	w.jetstream(HubDomain, o)
	w.line("}")
	w.blank()
	if o.Cluster != nil {
		c := o.Cluster.withDefaults()
		if err := c.check(); err != nil {
			return nil, err
		}
		w.clusterBlock(c)
	}
	w.line("leafnodes {")
	w.kv("host", quote(o.LeafHost))
	w.kv("port", strconv.Itoa(o.LeafPort))
	w.line("# Edges dial only the hub URLs rendered for them: an advertised")
	w.line("# address (every interface's, for a wildcard host) would let them")
	w.line("# reconnect around the overlay or a proxy.")
	w.kv("no_advertise", "true")
	if o.LeafTLS != nil {
		w.tlsBlock(o.LeafTLS)
	}
	w.line("}")
	w.blank()
	w.footer()
	w.line("accounts {")
	w.line(quote(SystemAccount) + ": {}")
	for _, org := range sortedOrgs(inv) {
		w.line(quote(org) + ": {")
		w.kv("jetstream", "enabled")
		w.line("users: [")
		for _, e := range sortedEdges(inv, org) {
			key, ok := st.EdgeKeys[EdgeKeyID(org, e)]
			if !ok || key.PublicKey == "" {
				return nil, fmt.Errorf("%w: edge %s", ErrCredentialMissing, EdgeKeyID(org, e))
			}
			perms, err := LeafPermissions(org, e)
			if err != nil {
				return nil, err
			}
			keys := []string{key.PublicKey}
			if key.PreviousPublicKey != "" {
				keys = append(keys, key.PreviousPublicKey)
			}
			for i, k := range keys {
				what := "leaf node"
				if i > 0 {
					what = "previous leaf-node key, until " + key.PreviousUntil.UTC().Format(time.RFC3339)
				}
				w.line(fmt.Sprintf("# edge %s: %s", e, what))
				w.line("{")
				w.kv("nkey", quote(k))
				w.kv("allowed_connection_types", quoteList([]string{"LEAFNODE"}))
				w.permissions(perms)
				w.line("}")
			}
		}
		for _, id := range ids {
			if id.org != org || id.edge != "" {
				continue
			}
			if err := w.user(id, st); err != nil {
				return nil, err
			}
		}
		w.line("]")
		w.line("}")
	}
	w.line("}")
	return w.bytes(), nil
}

// RenderEdge returns the nats-server configuration file of edge at org:
// JetStream in the edge's domain, a leaf-node remote to central (bound to
// the org's account, with the seed included from o.SeedFile, refusing as
// defence in depth device commands from central and inbox replies and
// system subjects either way), the system account exporting the org's
// client connect and disconnect events to the org's account, and the
// org's account with JetStream and the edge's users: its devices, its
// edge service and gateways scoped to it. With o.HubTLS the leaf link
// uses TLS, verifying central against the pinned CA, and with o.TLS the
// client listener requires TLS. The text is deterministic and holds no
// password or seed.
//
// Passwords are bcrypt hashes checked by nats-server itself: each
// connection, and each connected client again at every configuration
// reload, costs a bcrypt comparison, and a rotated password has no overlap
// window (nats-server knows one password per user). An embedded edge uses
// [EdgeAuthenticator] instead.
//
// It returns an error wrapping [ErrEdgeNotFound] for an edge inv does not
// list, [ErrRenderOption] for missing HubURLs or an unusable SeedFile, and
// the errors of [RenderCentral].
func RenderEdge(inv *Inventory, st *State, org, edge string, o RenderOptions) ([]byte, error) {
	return renderEdge(inv, st, org, edge, o, true)
}

func renderEdge(inv *Inventory, st *State, org, edge string, o RenderOptions, includeSeed bool) ([]byte, error) {
	o = o.withDefaults("lintel-edge-" + org + "-" + edge)
	if err := findEdge(inv, org, edge); err != nil {
		return nil, err
	}
	n, err := NamesFor(org, edge)
	if err != nil {
		return nil, err
	}
	if len(o.HubURLs) == 0 {
		return nil, fmt.Errorf("%w: edge %s needs HubURLs", ErrRenderOption, EdgeKeyID(org, edge))
	}
	if err := o.checkTLSFields(false, true); err != nil {
		return nil, err
	}
	var seed string
	if includeSeed {
		if seed, err = o.seedInclude(); err != nil {
			return nil, err
		}
	}
	ids, err := renderIdentities(inv)
	if err != nil {
		return nil, err
	}
	w := &confWriter{}
	w.header("edge " + EdgeKeyID(org, edge))
	w.serverBlock(o)
	w.line("jetstream {")
	w.jetstream(n.Domain, o)
	w.line("}")
	w.blank()
	w.line("leafnodes {")
	w.line("remotes: [")
	w.line("{")
	w.kv("urls", quoteList(o.HubURLs))
	w.kv("account", quote(org))
	if includeSeed {
		w.line("# The edge's NKey seed, kept out of this file (mode 0600).")
		w.line("include " + quote(seed))
	}
	if o.HubTLS != nil {
		w.hubTLSBlock(o.HubTLS)
	}
	w.kv("deny_imports", quoteList(leafDenyImports(org, edge)))
	w.kv("deny_exports", quoteList(leafDenyExports(org, edge)))
	w.line("}")
	w.line("]")
	w.line("}")
	w.blank()
	w.footer()
	events := []string{connectEvent(org), disconnectEvent(org)}
	w.line("accounts {")
	w.line(quote(SystemAccount) + ": {")
	w.line("# Client connect and disconnect events of the org, for its edge service.")
	w.line("exports: [")
	for _, s := range events {
		w.line("{ stream: " + quote(s) + ", accounts: " + quoteList([]string{org}) + " }")
	}
	w.line("]")
	w.line("}")
	w.line(quote(org) + ": {")
	w.kv("jetstream", "enabled")
	w.line("imports: [")
	for _, s := range events {
		w.line("{ stream: { account: " + quote(SystemAccount) + ", subject: " + quote(s) + " } }")
	}
	w.line("]")
	w.line("users: [")
	for _, id := range ids {
		if id.org != org || id.edge != edge {
			continue
		}
		if err := w.user(id, st); err != nil {
			return nil, err
		}
	}
	w.line("]")
	w.line("}")
	w.line("}")
	return w.bytes(), nil
}

// CentralOptions returns central's configuration as [server.Options] for an
// embedded server: the parsed text of [RenderCentral], with NoSigs set. It
// returns the errors of RenderCentral, and an error wrapping [ErrTLSFile]
// when a TLS file of o cannot be used (checkTLSFiles).
func CentralOptions(inv *Inventory, st *State, o RenderOptions) (*server.Options, error) {
	text, err := RenderCentral(inv, st, o)
	if err != nil {
		return nil, err
	}
	if err := checkTLSFiles(RenderOptions{TLS: o.TLS, LeafTLS: o.LeafTLS}); err != nil {
		return nil, err
	}
	if o.Cluster != nil && o.Cluster.TLS != nil {
		if err := checkTLSFiles(RenderOptions{TLS: o.Cluster.TLS}); err != nil {
			return nil, fmt.Errorf("cluster routes: %w", err)
		}
	}
	// The text includes the route credentials' file, which an embedded
	// central does not need: they are set in memory instead.
	opts, err := parseConfig(dropInclude(text, clusterInclude(o)))
	if err != nil {
		return nil, err
	}
	if o.Cluster != nil {
		if err := applyCluster(opts, o.Cluster.withDefaults()); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// EdgeOptions returns the edge's configuration as [server.Options] for an
// embedded server: the parsed text of [RenderEdge], with NoSigs set and the
// leaf remote's seed read from o.SeedFile (relative to o.ConfigDir, or
// absolute), which may hold the bare seed ([WriteSeedFile]) or the seed as
// configuration ([WriteLeafSeedConf]). The seed then lives in the returned
// options, in memory only.
//
// For the embedded edge, set the options' CustomClientAuthentication to an
// [EdgeAuthenticator] (see [EdgeAuthenticator.Configure]); the users of the
// text are then ignored. It returns the errors of RenderEdge, an error
// wrapping [ErrTLSFile] when a TLS file of o cannot be used
// (checkTLSFiles), and one wrapping [ErrInvalidSeed] when the seed file
// cannot be read or holds no user seed.
func EdgeOptions(inv *Inventory, st *State, org, edge string, o RenderOptions) (*server.Options, error) {
	text, err := renderEdge(inv, st, org, edge, o, false)
	if err != nil {
		return nil, err
	}
	if err := checkTLSFiles(RenderOptions{TLS: o.TLS, HubTLS: o.HubTLS}); err != nil {
		return nil, err
	}
	opts, err := parseConfig(text)
	if err != nil {
		return nil, err
	}
	seed, err := readLeafSeed(o.withDefaults("").seedPath())
	if err != nil {
		return nil, err
	}
	for _, r := range opts.LeafNode.Remotes {
		r.Nkey = seed
	}
	return opts, nil
}

// parseConfig parses rendered configuration text as nats-server does.
func parseConfig(text []byte) (*server.Options, error) {
	opts := &server.Options{}
	if err := opts.ProcessConfigString(string(text)); err != nil {
		var pe interface{ Errors() []error }
		if !errors.As(err, &pe) || len(pe.Errors()) > 0 {
			return nil, fmt.Errorf("authz: rendered configuration rejected by nats-server: %w", err)
		}
	}
	opts.NoSigs = true
	return opts, nil
}

// readLeafSeed reads an NKey user seed from path, bare or as configuration
// ("seed: ..." or "nkey: ...").
func readLeafSeed(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidSeed, err)
	}
	seed := strings.TrimSpace(string(data))
	if !strings.HasPrefix(seed, "SU") {
		m, err := conf.Parse(string(data))
		if err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrInvalidSeed, path, err)
		}
		v, ok := m["seed"]
		if !ok {
			v = m["nkey"]
		}
		seed, _ = v.(string)
	}
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalidSeed, path, err)
	}
	defer kp.Wipe()
	if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("%w: %s: not a user seed", ErrInvalidSeed, path)
	}
	return seed, nil
}

// WriteLeafSeedConf writes an edge's NKey user seed to path as the
// configuration fragment `seed: "SU..."` that the rendered edge
// configuration includes, with mode 0600 and atomically, like
// [WriteSeedFile]. It returns [ErrInvalidSeed] for anything but a user seed,
// without writing.
func WriteLeafSeedConf(path string, seed Secret) error {
	raw := seed.Reveal()
	kp, err := nkeys.FromSeed([]byte(raw))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSeed, err)
	}
	defer kp.Wipe()
	if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return fmt.Errorf("%w: not a user seed", ErrInvalidSeed)
	}
	return writeFileAtomic(path, []byte("seed: "+quote(raw)+"\n"), 0o600)
}

// renderIdentities returns the users of inv after checking the names the
// topology reserves.
func renderIdentities(inv *Inventory) ([]identity, error) {
	if err := validateTopology(inv); err != nil {
		return nil, err
	}
	return identitiesOf(inv)
}

// findEdge reports whether inv lists edge at org.
func findEdge(inv *Inventory, org, edge string) error {
	for _, e := range inv.Edges {
		if e.Org == org && e.Code == edge {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrEdgeNotFound, EdgeKeyID(org, edge))
}

func sortedOrgs(inv *Inventory) []string {
	orgs := make([]string, 0, len(inv.Orgs))
	for _, o := range inv.Orgs {
		orgs = append(orgs, o.Code)
	}
	return sortedUnique(orgs)
}

func sortedEdges(inv *Inventory, org string) []string {
	var edges []string
	for _, e := range inv.Edges {
		if e.Org == org {
			edges = append(edges, e.Code)
		}
	}
	return sortedUnique(edges)
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// confWriter writes nats-server configuration text, indenting by the
// nesting of the braces and brackets it writes.
type confWriter struct {
	buf   bytes.Buffer
	depth int
}

func (w *confWriter) bytes() []byte { return w.buf.Bytes() }

func (w *confWriter) blank() { w.buf.WriteByte('\n') }

// line writes one line, indenting it; a line ending in '{' or '[' opens a
// level, one starting with '}' or ']' closes one.
func (w *confWriter) line(s string) {
	if strings.HasPrefix(s, "}") || strings.HasPrefix(s, "]") {
		w.depth--
	}
	w.buf.WriteString(strings.Repeat("  ", max(w.depth, 0)))
	w.buf.WriteString(s)
	w.buf.WriteByte('\n')
	if strings.HasSuffix(s, "{") || strings.HasSuffix(s, "[") {
		w.depth++
	}
}

func (w *confWriter) kv(k, v string) { w.line(k + ": " + v) }

func (w *confWriter) header(what string) {
	w.line("# nats-server configuration of Lintel " + what + ", rendered by package authz")
	w.line("# from the inventory and the credential state: do not edit, render again.")
	w.line("# It holds bcrypt hashes and public keys only, never a password or a seed.")
	w.blank()
}

func (w *confWriter) serverBlock(o RenderOptions) {
	w.kv("server_name", quote(o.ServerName))
	w.kv("host", quote(o.Host))
	w.kv("port", strconv.Itoa(o.Port))
	if o.HTTPPort != 0 {
		w.kv("http_port", strconv.Itoa(o.HTTPPort))
	}
	w.kv("ping_interval", quote(o.PingInterval.String()))
	w.kv("ping_max", "2")
	if o.TLS != nil {
		w.line("# TLS of the client listener: plaintext clients are refused.")
		w.tlsBlock(o.TLS)
	}
	w.blank()
}

func (w *confWriter) jetstream(domain string, o RenderOptions) {
	w.kv("domain", quote(domain))
	w.kv("store_dir", quote(o.StoreDir))
	if o.MaxMemoryStore > 0 {
		w.kv("max_memory_store", strconv.FormatInt(o.MaxMemoryStore, 10))
	}
	if o.MaxFileStore > 0 {
		w.kv("max_file_store", strconv.FormatInt(o.MaxFileStore, 10))
	}
}

// footer writes the settings that follow the listeners: system account and
// feature flags.
func (w *confWriter) footer() {
	w.kv("system_account", quote(SystemAccount))
	w.blank()
	w.line(featureFlagComment)
	w.line("feature_flags {")
	w.kv(server.FeatureFlagJsAPIReplyFormatV2, "true")
	w.line("}")
	w.blank()
}

// user writes a password user with its bcrypt hash from st.
func (w *confWriter) user(id identity, st *State) error {
	cred, ok := st.Passwords[id.user]
	if !ok || cred.Hash == "" {
		return fmt.Errorf("%w: user %s", ErrCredentialMissing, id.user)
	}
	w.line("{")
	w.kv("user", quote(id.user))
	w.kv("password", quote(cred.Hash))
	w.kv("allowed_connection_types", quoteList(id.connectionTypes()))
	w.permissions(id.perms)
	w.line("}")
	return nil
}

func (w *confWriter) permissions(p Permissions) {
	w.line("permissions: {")
	w.rules("publish", p.Publish)
	w.rules("subscribe", p.Subscribe)
	w.line("}")
}

func (w *confWriter) rules(dir string, r SubjectRules) {
	w.line(dir + ": {")
	if r.Allow != nil {
		w.list("allow", r.Allow)
	}
	if len(r.Deny) > 0 {
		w.list("deny", r.Deny)
	}
	w.line("}")
}

func (w *confWriter) list(k string, items []string) {
	w.line(k + ": [")
	for _, s := range items {
		w.line(quote(s))
	}
	w.line("]")
}

// quote returns s as a double-quoted configuration string. Values rendered
// here are tokens, subjects, hashes, keys and paths; the characters that
// would need escaping are escaped.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
