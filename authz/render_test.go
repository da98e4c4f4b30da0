package authz_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenHash is a fixed bcrypt hash, so that golden files do not change
// from run to run.
const goldenHash = "$2a$04$nVWzZnbA/2odCdoKoA2cK.rmJkKgOvEadONvbpNj7RX9Sdby3U8Nm"

// goldenState returns a fixed state for inv: goldenHash for every user, and
// NKeys from fixed seeds; hq has a previous key in its overlap window.
func goldenState(t testing.TB, inv *authz.Inventory) *authz.State {
	t.Helper()
	st := &authz.State{Version: 1, Passwords: map[string]authz.PasswordCredential{}, EdgeKeys: map[string]authz.EdgeKey{}}
	users, edges := identitiesOf(inv)
	for _, u := range users {
		st.Passwords[u] = authz.PasswordCredential{Hash: goldenHash}
	}
	for i, id := range edges {
		st.EdgeKeys[id] = authz.EdgeKey{PublicKey: fixedKey(t, byte(i+1))}
	}
	hq := st.EdgeKeys["acme.hq"]
	hq.PreviousPublicKey = fixedKey(t, 99)
	hq.PreviousUntil = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	st.EdgeKeys["acme.hq"] = hq
	return st
}

func fixedKey(t testing.TB, b byte) string {
	t.Helper()
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	return pub
}

func TestRenderGolden(t *testing.T) {
	inv := natsInv()
	st := goldenState(t, inv)
	ro := authz.RenderOptions{HubURLs: []string{"nats-leaf://10.42.0.1:7422", "nats-leaf://10.42.0.2:7422"}}
	central, err := authz.RenderCentral(inv, st, ro)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "central.conf", central)
	for _, e := range []string{"hq", "wh"} {
		text, err := authz.RenderEdge(inv, st, "acme", e, ro)
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "edge-acme-"+e+".conf", text)
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRenderGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run go test -run TestRenderGolden -update and review the diff", name)
	}
}

func TestRenderDeterministic(t *testing.T) {
	inv := natsInv()
	st := goldenState(t, inv)
	ro := authz.RenderOptions{HubURLs: []string{"nats-leaf://central:7422"}}
	a, err := authz.RenderCentral(inv, st, ro)
	if err != nil {
		t.Fatal(err)
	}
	ea, err := authz.RenderEdge(inv, st, "acme", "hq", ro)
	if err != nil {
		t.Fatal(err)
	}
	rev := natsInv()
	slices.Reverse(rev.Things)
	slices.Reverse(rev.Edges)
	slices.Reverse(rev.Services)
	b, _ := authz.RenderCentral(rev, st, ro)
	eb, _ := authz.RenderEdge(rev, st, "acme", "hq", ro)
	if !bytes.Equal(a, b) || !bytes.Equal(ea, eb) {
		t.Fatal("rendering depends on inventory order")
	}
}

// renderedDeployment is a test deployment's configuration files, with the
// credentials and render options behind them.
type renderedDeployment struct {
	creds   *natsCreds
	dir     string
	central string // path of central's file
	co      authz.RenderOptions
	edges   map[string]string              // path of each edge's file
	eo      map[string]authz.RenderOptions // and its options
	texts   [][]byte
}

// renderDeployment renders central's file for a deployment of inv with new
// credentials; add edges with addEdge.
func renderDeployment(t *testing.T, inv *authz.Inventory) *renderedDeployment {
	t.Helper()
	d := &renderedDeployment{creds: newNatsCreds(t, inv, bcrypt.MinCost), dir: t.TempDir(),
		co: testRender(t), edges: map[string]string{}, eo: map[string]authz.RenderOptions{}}
	text, err := authz.RenderCentral(inv, d.creds.st, d.co)
	if err != nil {
		t.Fatal(err)
	}
	d.central = writeTestFile(t, d.dir, "central.conf", text)
	d.texts = append(d.texts, text)
	return d
}

// addEdge renders edge's file, in a directory of its own beside its seed
// include, for central's leaf port at hubLeaf.
func (d *renderedDeployment) addEdge(t *testing.T, inv *authz.Inventory, edge, hubLeaf string) {
	t.Helper()
	eo := testRender(t)
	eo.HubURLs = []string{"nats-leaf://" + hubLeaf}
	eo.ConfigDir = filepath.Join(d.dir, edge)
	if err := os.Mkdir(eo.ConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := authz.WriteLeafSeedConf(filepath.Join(eo.ConfigDir, authz.DefaultSeedFile),
		authz.NewSecret(d.creds.seeds[authz.EdgeKeyID("acme", edge)])); err != nil {
		t.Fatal(err)
	}
	text, err := authz.RenderEdge(inv, d.creds.st, "acme", edge, eo)
	if err != nil {
		t.Fatal(err)
	}
	d.edges[edge] = writeTestFile(t, eo.ConfigDir, "nats.conf", text)
	d.eo[edge] = eo
	d.texts = append(d.texts, text)
}

// TestRenderedFilesRun loads the rendered files as nats-server does, starts
// central and an edge from them, and logs a device in over the leaf-linked
// deployment; a wrong password is refused.
func TestRenderedFilesRun(t *testing.T) {
	inv := natsInv()
	d := renderDeployment(t, inv)
	copts, err := server.ProcessConfigFile(d.central)
	if err != nil {
		t.Fatal(err)
	}
	copts.NoLog, copts.NoSigs = true, true
	central := natstest.Run(t, copts)
	d.addEdge(t, inv, "hq", central.LeafNodeAddr())
	eopts, err := server.ProcessConfigFile(d.edges["hq"])
	if err != nil {
		t.Fatal(err)
	}
	eopts.NoLog, eopts.NoSigs = true, true
	hq := natstest.Run(t, eopts)
	waitFor(t, "leaf from the rendered edge file", func() bool { return hq.Server().NumLeafNodes() == 1 })

	r1 := mkThing("acme", "hq", "reader", "r1")
	dev := connectAs(t, hq, d.creds, authz.DeviceUser(r1))
	svc := connectAs(t, central, d.creds, authz.ServiceUser("acme", "ingest"))
	sub, err := svc.SubscribeSync("acme.hq.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Interest crosses the leaf link asynchronously: publish until central sees it.
	waitFor(t, "a device event at central", func() bool {
		if err := dev.Publish(r1.Subject("evt").String(), []byte("hi")); err != nil {
			t.Fatal(err)
		}
		_, err := sub.NextMsg(20 * time.Millisecond)
		return err == nil
	})

	if _, err := nats.Connect(hq.ClientURL(), nats.UserInfo(authz.DeviceUser(r1), "wrong password")); err == nil ||
		!strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestRenderedFilesPassConfigTest runs the rendered files through the
// nats-server binary's configuration test mode (-t), when the binary is
// installed.
func TestRenderedFilesPassConfigTest(t *testing.T) {
	inv := natsInv()
	d := renderDeployment(t, inv)
	d.addEdge(t, inv, "hq", "127.0.0.1:7422")
	d.addEdge(t, inv, "wh", "127.0.0.1:7422")
	natsServerConfigTest(t, d.central, d.edges["hq"], d.edges["wh"])
}

// natsServerConfigTest runs files through the nats-server binary's
// configuration test mode (-t); it skips the test when the binary is not
// installed, unless LINTEL_REQUIRE_TOOLS is set.
func natsServerConfigTest(t *testing.T, files ...string) {
	t.Helper()
	const bin = "/usr/sbin/nats-server"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("LINTEL_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s not installed (apt-get install -y nats-server)", bin)
		}
		t.Skipf("%s not installed", bin)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v: %s", bin, err, out)
	}
	version := strings.TrimSpace(string(out))
	for _, f := range files {
		out, err := exec.Command(bin, "-t", "-c", f).CombinedOutput()
		if err == nil {
			continue
		}
		if atLeast(version, 2, 14) {
			t.Errorf("%s -t -c %s: %v\n%s", version, f, err, out)
			continue
		}
		// An older binary knows neither the feature flag nor a remote's
		// NKey seed (both newer than it; the topology needs nats-server
		// 2.14 or later anyway): everything else it must accept.
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !newerField.MatchString(line) {
				t.Errorf("%s rejects %s: %s", version, filepath.Base(f), line)
			}
		}
		t.Logf("%s -t: only fields newer than it reported for %s:\n%s", version, filepath.Base(f), out)
	}
}

// newerField matches the errors an old nats-server reports for the
// configuration fields newer than it.
var newerField = regexp.MustCompile(`unknown field "(feature_flags|seed)"$`)

// atLeast reports whether a "nats-server: vX.Y.Z" version is at least
// major.minor.
func atLeast(version string, major, minor int) bool {
	m := regexp.MustCompile(`v(\d+)\.(\d+)`).FindStringSubmatch(version)
	if m == nil {
		return false
	}
	ma, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	return ma > major || (ma == major && mi >= minor)
}

func TestRenderedFilesHoldNoSecrets(t *testing.T) {
	inv := natsInv()
	d := renderDeployment(t, inv)
	d.addEdge(t, inv, "hq", "127.0.0.1:7422")
	d.addEdge(t, inv, "wh", "127.0.0.1:7422")
	for _, text := range d.texts {
		for user, pw := range d.creds.passwords {
			if bytes.Contains(text, []byte(pw)) {
				t.Errorf("password of %s in a rendered file", user)
			}
			if !bytes.Contains(text, []byte(`user: "`+user+`"`)) {
				continue
			}
			if h := d.creds.st.Passwords[user].Hash; !bytes.Contains(text, []byte(h)) {
				t.Errorf("hash of %s missing", user)
			}
		}
		for id, seed := range d.creds.seeds {
			if bytes.Contains(text, []byte(seed)) {
				t.Errorf("seed of %s in a rendered file", id)
			}
		}
		if regexp.MustCompile(`\bS[UAO][A-Z2-7]{50,}`).Match(text) {
			t.Error("something like an NKey seed in a rendered file")
		}
	}
}

// TestOptionsMatchFiles checks that CentralOptions and EdgeOptions are the
// configuration the files give nats-server, and that the permissions in
// them are exactly Permissions.Server of the policy.
func TestOptionsMatchFiles(t *testing.T) {
	inv := natsInv()
	d := renderDeployment(t, inv)
	d.addEdge(t, inv, "hq", "127.0.0.1:7422")
	d.addEdge(t, inv, "wh", "127.0.0.1:7422")
	pol, err := authz.NewPolicy(inv)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, fromFile, fromOptions *server.Options) {
		t.Helper()
		fv, ov := optionsView(fromFile), optionsView(fromOptions)
		if !reflect.DeepEqual(fv, ov) {
			t.Errorf("%s: options differ from file:\nfile    %+v\noptions %+v", name, fv, ov)
		}
		if len(fv.Users) == 0 {
			t.Errorf("%s: no users", name)
		}
		if fv.NoAuthUser != "" {
			t.Errorf("%s: no_auth_user %q on a server with leaf nodes", name, fv.NoAuthUser)
		}
		for user, u := range fv.Users {
			want, ok := pol.Permissions(user)
			if !ok {
				t.Errorf("%s: unknown user %s", name, user)
				continue
			}
			if !reflect.DeepEqual(u.Perms, want.Server()) {
				t.Errorf("%s: %s: permissions %+v, want %+v", name, user, u.Perms, want.Server())
			}
		}
	}
	cfile, err := server.ProcessConfigFile(d.central)
	if err != nil {
		t.Fatal(err)
	}
	copts, err := authz.CentralOptions(inv, d.creds.st, d.co)
	if err != nil {
		t.Fatal(err)
	}
	check("central", cfile, copts)
	for e, path := range d.edges {
		efile, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatal(err)
		}
		eopts, err := authz.EdgeOptions(inv, d.creds.st, "acme", e, d.eo[e])
		if err != nil {
			t.Fatal(err)
		}
		check("edge "+e, efile, eopts)
		leaf, err := authz.LeafPermissions("acme", e)
		if err != nil {
			t.Fatal(err)
		}
		nk := cfile.Nkeys[slices.IndexFunc(cfile.Nkeys, func(n *server.NkeyUser) bool {
			return n.Nkey == d.creds.st.EdgeKeys["acme."+e].PublicKey
		})]
		if !reflect.DeepEqual(nk.Permissions, leaf.Server()) {
			t.Errorf("leaf %s: permissions %+v, want %+v", e, nk.Permissions, leaf.Server())
		}
		if _, ok := nk.AllowedConnectionTypes["LEAFNODE"]; !ok || len(nk.AllowedConnectionTypes) != 1 {
			t.Errorf("leaf %s: connection types %v", e, nk.AllowedConnectionTypes)
		}
	}
}

type userView struct {
	Password string
	Account  string
	Perms    *server.Permissions
	Types    []string
}

type remoteView struct {
	URLs                     []string
	Account, Nkey            string
	DenyImports, DenyExports []string
}

type optsView struct {
	ServerName, Host, Domain, StoreDir, SystemAccount string
	Port, LeafPort                                    int
	Ping                                              time.Duration
	Accounts                                          []string
	Users                                             map[string]userView
	Nkeys                                             map[string]userView
	Remotes                                           []remoteView
	Flags                                             map[string]bool
	NoAuthUser                                        string
}

func optionsView(o *server.Options) optsView {
	v := optsView{
		ServerName: o.ServerName, Host: o.Host, Port: o.Port, Domain: o.JetStreamDomain, StoreDir: o.StoreDir,
		SystemAccount: o.SystemAccount, LeafPort: o.LeafNode.Port, Ping: o.PingInterval, Flags: o.FeatureFlags,
		Users: map[string]userView{}, Nkeys: map[string]userView{}, NoAuthUser: o.NoAuthUser,
	}
	for _, a := range o.Accounts {
		v.Accounts = append(v.Accounts, a.Name)
	}
	slices.Sort(v.Accounts)
	types := func(m map[string]struct{}) []string {
		var s []string
		for k := range m {
			s = append(s, k)
		}
		slices.Sort(s)
		return s
	}
	for _, u := range o.Users {
		v.Users[u.Username] = userView{u.Password, u.Account.Name, u.Permissions, types(u.AllowedConnectionTypes)}
	}
	for _, n := range o.Nkeys {
		v.Nkeys[n.Nkey] = userView{"", n.Account.Name, n.Permissions, types(n.AllowedConnectionTypes)}
	}
	for _, r := range o.LeafNode.Remotes {
		rv := remoteView{Account: r.LocalAccount, Nkey: r.Nkey, DenyImports: r.DenyImports, DenyExports: r.DenyExports}
		for _, u := range r.URLs {
			rv.URLs = append(rv.URLs, u.String())
		}
		v.Remotes = append(v.Remotes, rv)
	}
	return v
}

func TestRenderErrors(t *testing.T) {
	inv := natsInv()
	st := goldenState(t, inv)
	ro := authz.RenderOptions{HubURLs: []string{"nats-leaf://central:7422"}}
	noHash := goldenState(t, inv)
	delete(noHash.Passwords, authz.DeviceUser(mkThing("acme", "hq", "reader", "r1")))
	noKey := goldenState(t, inv)
	delete(noKey.EdgeKeys, "acme.wh")
	hubEdge := natsInv()
	hubEdge.Edges = append(hubEdge.Edges, authz.Edge{Org: "acme", Code: authz.HubDomain})
	sysOrg := natsInv()
	sysOrg.Orgs = append(sysOrg.Orgs, authz.Org{Code: authz.SystemAccount})
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"edge not listed", renderEdgeErr(inv, st, "nowhere", ro), authz.ErrEdgeNotFound},
		{"no hub URLs", renderEdgeErr(inv, st, "hq", authz.RenderOptions{}), authz.ErrRenderOption},
		{"absolute seed, relative config dir", renderEdgeErr(inv, st, "hq",
			authz.RenderOptions{HubURLs: ro.HubURLs, SeedFile: "/etc/lintel/leaf-seed.conf"}), authz.ErrRenderOption},
		{"device without hash", renderEdgeErr(inv, noHash, "hq", ro), authz.ErrCredentialMissing},
		{"edge without key", renderCentralErr(inv, noKey, ro), authz.ErrCredentialMissing},
		{"edge named hub", renderCentralErr(hubEdge, st, ro), authz.ErrReservedName},
		{"org named SYS", renderCentralErr(sysOrg, st, ro), authz.ErrReservedName},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// An absolute seed path with an absolute ConfigDir is included relative to it.
	text, err := authz.RenderEdge(inv, st, "acme", "hq", authz.RenderOptions{HubURLs: ro.HubURLs,
		ConfigDir: "/etc/nats", SeedFile: "/etc/lintel/leaf-seed.conf"})
	if err != nil || !bytes.Contains(text, []byte(`include "../lintel/leaf-seed.conf"`)) {
		t.Errorf("absolute seed path: %v\n%s", err, text)
	}
}

func renderEdgeErr(inv *authz.Inventory, st *authz.State, edge string, ro authz.RenderOptions) error {
	_, err := authz.RenderEdge(inv, st, "acme", edge, ro)
	return err
}

func renderCentralErr(inv *authz.Inventory, st *authz.State, ro authz.RenderOptions) error {
	_, err := authz.RenderCentral(inv, st, ro)
	return err
}

func TestEdgeOptionsSeedFiles(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	seed := c.seeds["acme.hq"]
	dir := t.TempDir()
	if err := authz.WriteSeedFile(filepath.Join(dir, "bare.seed"), authz.NewSecret(seed)); err != nil {
		t.Fatal(err)
	}
	if err := authz.WriteLeafSeedConf(filepath.Join(dir, "seed.conf"), authz.NewSecret(seed)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"bare.seed", "seed.conf", filepath.Join(dir, "seed.conf")} {
		o, err := authz.EdgeOptions(inv, c.st, "acme", "hq", authz.RenderOptions{
			HubURLs: []string{"nats-leaf://h:7422"}, ConfigDir: dir, SeedFile: f})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if o.LeafNode.Remotes[0].Nkey != seed || !o.NoSigs {
			t.Errorf("%s: seed not read", f)
		}
	}
	writeTestFile(t, dir, "junk", []byte("not a seed"))
	if _, err := authz.EdgeOptions(inv, c.st, "acme", "hq", authz.RenderOptions{
		HubURLs: []string{"nats-leaf://h:7422"}, ConfigDir: dir, SeedFile: "junk"}); !errors.Is(err, authz.ErrInvalidSeed) {
		t.Errorf("junk seed: %v", err)
	}
	if err := authz.WriteLeafSeedConf(filepath.Join(dir, "x"), authz.NewSecret("nope")); !errors.Is(err, authz.ErrInvalidSeed) {
		t.Errorf("WriteLeafSeedConf of a non-seed: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "seed.conf")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("seed.conf mode: %v %v", fi.Mode(), err)
	}
}
