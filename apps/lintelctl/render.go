package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
)

// renderOptions are the flags of lintelctl render.
type renderOptions struct {
	inventory string
	state     string // default: state.json beside the inventory
	out       string
	cost      int
	output    string // table or json
	force     bool
	// nebulaPlan is the Nebula address plan the configurations are linked
	// to; default: nebula-plan.json beside the inventory, when it exists.
	nebulaPlan string
}

// nebulaPlanFile is the address plan render looks for beside the inventory.
const nebulaPlanFile = "nebula-plan.json"

// renderCommand returns "lintelctl render".
func (a *app) renderCommand() *cobra.Command {
	var o renderOptions
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Generate credentials and write the files central and the edges read",
		Long: `Render runs the credential generator over the inventory, starting from the
state file, and writes the layout central and every edge read under --out:

  DIR/central/central.json            central's configuration (written once; edit it)
  DIR/central/inventory.json          copy of the inventory, refreshed every render
  DIR/central/state.json              copy of the state, refreshed every render
  DIR/central/secrets/                per org: the first central service's password,
                                      command-<org>.seed, hash-<org>.key
  DIR/edges/<org>-<edge>/edge.json    the edge's configuration (written once; edit it)
  DIR/edges/<org>-<edge>/inventory.json, state.json
  DIR/edges/<org>-<edge>/secrets/     leaf.seed, audit.seed, command.seed, hash.key
  DIR/devices/<org>-<edge>/<user>.password   device passwords, for provisioning
  DIR/services/<user>.password        other service passwords (gateways, operators)

Identities already in the state keep their credentials: only new ones cost a
bcrypt hash and only their secrets are written; identities no longer in the
inventory are removed from the state, which revokes them. Secret files are
mode 0600 in directories of mode 0700, and every file is written atomically.
A summary of what changed is printed, as a table or as JSON.

THE STATE FILE IS THE DEPLOYMENT'S CROWN JEWELS, with the secret directories:
losing it means re-keying every device and edge. Render writes it atomically
(mode 0600); back it up, with the secrets, after every render
("lintelctl backup").

The first render of a large inventory takes a while: bcrypt at the default
cost takes about 0.1 s of CPU per password (10,000 devices: 10 to 20
minutes on 2 cores). A progress bar is drawn on stderr when it is a terminal.
An interrupted render writes nothing.

With a Nebula address plan (--nebula-plan, or nebula-plan.json beside the
inventory; see "lintelctl nebula"), the configurations written are linked
to the overlay: central's leaf_listen is the first central node's overlay
address and the plan's leaf port, and each edge's hub_urls name every
central node's leaf listener on the overlay. Without one, leaf_listen is
0.0.0.0:7422 and hub_urls a placeholder to replace. Configurations already
written are left as they are.`,
		Example: `  lintelctl render --inventory deploy/inventory.json --out deploy/out
  lintelctl render --inventory deploy/inventory.json --state /secure/state.json --out deploy/out
  lintelctl render --inventory deploy/inventory.json --out deploy/out --output json`,
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			if o.cost < bcrypt.MinCost || o.cost > bcrypt.MaxCost {
				return usagef("--cost %d: want %d to %d", o.cost, bcrypt.MinCost, bcrypt.MaxCost)
			}
			if o.output != "table" && o.output != "json" {
				return usagef("--output %q: want table or json", o.output)
			}
			if o.state == "" {
				o.state = filepath.Join(filepath.Dir(o.inventory), "state.json")
			}
			if o.nebulaPlan == "" {
				p := filepath.Join(filepath.Dir(o.inventory), nebulaPlanFile)
				ok, err := exists(p)
				if err != nil {
					return err
				}
				if ok {
					o.nebulaPlan = p
				}
			}
			rep, err := a.render(cmd.Context(), o)
			if err != nil {
				return err
			}
			return rep.print(a.stdout, o.output)
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&o.inventory, "inventory", "i", "", "the inventory file (required)")
	f.StringVar(&o.state, "state", "", "the state file, created if missing (default: state.json beside the inventory)")
	f.StringVarP(&o.out, "out", "o", "", "the directory to write the layout into (required)")
	f.IntVar(&o.cost, "cost", authz.DefaultCost, "bcrypt cost of new password hashes (4 is for tests only)")
	f.StringVar(&o.output, "output", "table", "summary format: table or json")
	f.BoolVar(&o.force, "force", false, "render even though the state file is missing while --out holds an earlier render (re-keys everything)")
	f.StringVar(&o.nebulaPlan, "nebula-plan", "", "the Nebula address plan new configurations are linked to (default: nebula-plan.json beside the inventory, when it exists)")
	_ = cmd.MarkFlagRequired("inventory") // the flags exist
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// layout names the files of a render under its directory.
type layout struct{ dir string }

func (l layout) central() string        { return filepath.Join(l.dir, "central") }
func (l layout) centralSecrets() string { return filepath.Join(l.dir, "central", cfgSecrets) }
func (l layout) services() string       { return filepath.Join(l.dir, "services") }

// site is the directory name of an edge: "{org}-{edge}".
func site(org, edge string) string { return org + "-" + edge }

func (l layout) edge(org, edge string) string { return filepath.Join(l.dir, "edges", site(org, edge)) }
func (l layout) edgeSecrets(org, edge string) string {
	return filepath.Join(l.edge(org, edge), cfgSecrets)
}
func (l layout) devices(org, edge string) string {
	return filepath.Join(l.dir, "devices", site(org, edge))
}

// rel returns path relative to the render directory, for the summary.
func (l layout) rel(path string) string {
	if r, err := filepath.Rel(l.dir, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// secretFile is a secret render is to write.
type secretFile struct {
	path  string
	write func(path string) error
}

// render runs the generator and writes the layout; see renderCommand.
func (a *app) render(ctx context.Context, o renderOptions) (*renderReport, error) {
	data, err := os.ReadFile(o.inventory)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	// As config.LoadInventory reads it, which is what the apps do.
	inv, err := authz.ParseInventory(config.StripComments(data))
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", o.inventory, err)
	}
	centralUser, err := centralUsers(inv)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", o.inventory, err)
	}
	if err := checkSites(inv); err != nil {
		return nil, fmt.Errorf("inventory %s: %w", o.inventory, err)
	}
	lk, err := overlayLinks(inv, o.nebulaPlan)
	if err != nil {
		return nil, err
	}
	l := layout{dir: o.out}
	st, err := loadState(o, l)
	if err != nil {
		return nil, err
	}
	keys, err := hashKeys(inv, l)
	if err != nil {
		return nil, err
	}

	g := &authz.Generator{Cost: o.cost}
	var bar *progressbar.ProgressBar
	if a.terminal {
		g.Progress = func(done, total int) {
			if bar == nil {
				bar = progressbar.NewOptions(total,
					progressbar.OptionSetWriter(a.stderr),
					progressbar.OptionSetDescription("hashing passwords"),
					progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionShowElapsedTimeOnFinish(),
					progressbar.OptionThrottle(100*time.Millisecond))
			}
			_ = bar.Set(done) // drawing errors do not matter
		}
	}
	res, err := g.Generate(ctx, inv, st.Prune(time.Now()))
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(a.stderr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("render interrupted, nothing written: %w", err)
		}
		return nil, err
	}

	rep := &renderReport{
		Inventory: o.inventory, State: o.state, Out: o.out,
		Created: nonNil(res.Created), Rotated: nonNil(res.Rotated), Removed: nonNil(res.Removed),
		Secrets: []string{}, Files: []string{}, Warnings: []string{},
	}
	// Secrets first, then the state (see writeSecretsThenState).
	written, err := writeSecretsThenState(inv, res.Secrets, res.State, centralUser, keys, l, o.state)
	rep.Secrets = append(rep.Secrets, written...)
	if err != nil {
		return nil, err
	}
	rep.Files = append(rep.Files, o.state)
	if err := a.writeLinkedCopies(inv, data, res.State, l, lk, rep); err != nil {
		return nil, err
	}
	rep.Warnings = missingSecrets(inv, centralUser, l)
	return rep, nil
}

// centralUsers returns, by org, the user of the org's first central
// service, as which central logs in; an org without one is an error.
func centralUsers(inv *authz.Inventory) (map[string]string, error) {
	users := make(map[string]string, len(inv.Orgs))
	for _, s := range inv.Services {
		if s.Kind == authz.ServiceCentral && users[s.Org] == "" {
			users[s.Org] = authz.ServiceUser(s.Org, s.Name)
		}
	}
	var errs []error
	for _, o := range inv.Orgs {
		if users[o.Code] == "" {
			errs = append(errs, fmt.Errorf("org %q has no central service: central logs in as the org's first service of kind %q; add one to services, e.g. {\"name\": \"central\", \"kind\": \"central\", \"org\": %q}",
				o.Code, authz.ServiceCentral, o.Code))
		}
	}
	return users, errors.Join(errs...)
}

// checkSites refuses two edges whose directories would be the same: codes
// may contain '-', so org "a-b" with edge "c" and org "a" with edge "b-c"
// are both "a-b-c".
func checkSites(inv *authz.Inventory) error {
	seen := make(map[string]authz.Edge, len(inv.Edges))
	for _, e := range inv.Edges {
		s := site(e.Org, e.Code)
		if p, ok := seen[s]; ok {
			return fmt.Errorf("edge %q of org %q and edge %q of org %q would share the directory edges/%s; rename one",
				p.Code, p.Org, e.Code, e.Org, s)
		}
		seen[s] = e
	}
	return nil
}

// loadState loads the state file, refusing to start from nothing while
// the render directory shows an earlier render: that is a state file lost
// or a wrong --state, and rendering would re-key every identity.
func loadState(o renderOptions, l layout) (*authz.State, error) {
	ok, err := exists(o.state)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if !ok && !o.force {
		prev := filepath.Join(l.central(), cfgState)
		if had, _ := exists(prev); had {
			return nil, fmt.Errorf("state file %s does not exist, but %s holds an earlier render (%s): "+
				"pass the deployment's state with --state or restore it from a backup; "+
				"--force renders from nothing and re-keys every device and edge", o.state, o.out, prev)
		}
	}
	st, err := authz.LoadState(o.state)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", o.state, err)
	}
	return st, nil
}

// orgKey is an org's credential hash key and whether central's copy must
// be written.
type orgKey struct {
	key   []byte
	write bool
}

// hashKeys returns each org's hash key: central's file if it exists, else
// an edge's copy, else a new one. An edge holding a different key is an
// error: credential ids would differ between central and that edge.
func hashKeys(inv *authz.Inventory, l layout) (map[string]*orgKey, error) {
	keys := make(map[string]*orgKey, len(inv.Orgs))
	for _, o := range inv.Orgs {
		path := filepath.Join(l.centralSecrets(), config.CentralHashKey(o.Code))
		k, err := access.ReadHashKey(path)
		switch {
		case err == nil:
			keys[o.Code] = &orgKey{key: k}
			continue
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("hash key of org %q: %w", o.Code, err)
		}
		for _, e := range inv.Edges {
			if e.Org != o.Code {
				continue
			}
			k, err := access.ReadHashKey(filepath.Join(l.edgeSecrets(e.Org, e.Code), config.EdgeHashKey))
			if err == nil {
				keys[o.Code] = &orgKey{key: k, write: true}
				break
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("hash key of org %q: %w", o.Code, err)
			}
		}
		if keys[o.Code] == nil {
			k, err := access.GenerateHashKey()
			if err != nil {
				return nil, err
			}
			keys[o.Code] = &orgKey{key: k, write: true}
		}
	}
	for _, e := range inv.Edges {
		path := filepath.Join(l.edgeSecrets(e.Org, e.Code), config.EdgeHashKey)
		k, err := access.ReadHashKey(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("hash key of edge %q: %w", e.Code, err)
		}
		if !bytes.Equal(k, keys[e.Org].key) {
			return nil, fmt.Errorf("%s differs from org %q's hash key (%s): credential ids would differ between central and the edge; restore the org's key from a backup",
				path, e.Org, filepath.Join(l.centralSecrets(), config.CentralHashKey(e.Org)))
		}
	}
	return keys, nil
}

// writeSecretsThenState writes the secret files of sec, then the state st
// to statePath, and returns the secret files written, relative to l.
// Secrets come first: a crash in between leaves the previous state, under
// which the new secrets are unused and the next run issues them again; the
// other way round it would leave identities whose secrets are lost.
func writeSecretsThenState(inv *authz.Inventory, sec *authz.Secrets, st *authz.State, centralUser map[string]string, keys map[string]*orgKey, l layout, statePath string) ([]string, error) {
	secrets, err := planSecrets(inv, sec, centralUser, keys, l)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, s := range secrets {
		if err := mkdirSecret(filepath.Dir(s.path)); err != nil {
			return written, err
		}
		if err := s.write(s.path); err != nil {
			return written, err
		}
		written = append(written, l.rel(s.path))
	}
	if err := authz.SaveState(statePath, st); err != nil {
		return written, fmt.Errorf("state: %w", err)
	}
	return written, nil
}

// planSecrets lists the secret files to write: every secret the generator
// returned, and the hash keys central or an edge lacks.
func planSecrets(inv *authz.Inventory, sec *authz.Secrets, centralUser map[string]string, keys map[string]*orgKey, l layout) ([]secretFile, error) {
	var out []secretFile
	password := func(path string, pw authz.Secret) {
		out = append(out, secretFile{path: path, write: func(p string) error {
			return writeFileAtomic(p, []byte(pw.Reveal()+"\n"), modeSecret)
		}})
	}
	seed := func(path string, s authz.Secret) {
		out = append(out, secretFile{path: path, write: func(p string) error { return authz.WriteSeedFile(p, s) }})
	}
	hashKey := func(path string, k []byte) {
		out = append(out, secretFile{path: path, write: func(p string) error { return access.WriteHashKey(p, k) }})
	}
	used := make(map[string]bool, len(sec.Passwords))
	pw := func(user string) (authz.Secret, bool) {
		s, ok := sec.Passwords[user]
		used[user] = ok
		return s, ok
	}

	for _, o := range inv.Orgs {
		dir := l.centralSecrets()
		user := centralUser[o.Code]
		if s, ok := pw(user); ok {
			password(filepath.Join(dir, config.CentralPasswordFile(user)), s)
		} else if b, err := servicePasswordCopy(l, user); err != nil {
			return nil, err
		} else if b != nil {
			out = append(out, secretFile{path: filepath.Join(dir, config.CentralPasswordFile(user)), write: func(p string) error {
				return writeFileAtomic(p, b, modeSecret)
			}})
		}
		if s, ok := sec.CommandSeeds[o.Code]; ok {
			seed(filepath.Join(dir, config.CentralCommandSeed(o.Code)), s)
		}
		if keys[o.Code].write {
			hashKey(filepath.Join(dir, config.CentralHashKey(o.Code)), keys[o.Code].key)
		}
	}
	// The route password of a clustered central, once: every node gets a
	// copy of central's directory.
	clusterPW := filepath.Join(l.centralSecrets(), config.CentralClusterPassword)
	if ok, err := exists(clusterPW); err != nil {
		return nil, err
	} else if !ok {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		password(clusterPW, authz.NewSecret(base64.RawURLEncoding.EncodeToString(b)))
	}
	for _, e := range inv.Edges {
		dir := l.edgeSecrets(e.Org, e.Code)
		id := authz.EdgeKeyID(e.Org, e.Code)
		for _, f := range []struct {
			name string
			m    map[string]authz.Secret
		}{
			{config.EdgeLeafSeed, sec.EdgeSeeds},
			{config.EdgeAuditSeed, sec.AuditSeeds},
			{config.EdgeCommandSeed, sec.CommandSeeds},
		} {
			if s, ok := f.m[id]; ok {
				seed(filepath.Join(dir, f.name), s)
			}
		}
		path := filepath.Join(dir, config.EdgeHashKey)
		if ok, err := exists(path); err != nil {
			return nil, err
		} else if !ok {
			hashKey(path, keys[e.Org].key)
		}
		user := authz.EdgeServiceUser(e.Org, e.Code)
		if s, ok := pw(user); ok {
			password(filepath.Join(l.services(), user+".password"), s)
		}
	}
	for _, t := range inv.Things {
		user := authz.DeviceUser(t.Thing)
		if s, ok := pw(user); ok {
			password(filepath.Join(l.devices(t.Org, t.Edge), user+".password"), s)
		}
	}
	for _, s := range inv.Services {
		user := authz.ServiceUser(s.Org, s.Name)
		if user == centralUser[s.Org] {
			continue
		}
		if p, ok := pw(user); ok {
			password(filepath.Join(l.services(), user+".password"), p)
		}
	}
	for _, user := range sec.Users() {
		if !used[user] {
			// Every identity of the inventory is placed above; a password
			// without a place would be lost.
			return nil, fmt.Errorf("internal error: no file for the new password of %s", user)
		}
	}
	return out, nil
}

// servicePasswordCopy returns the password file of central's service user
// when central's copy is missing but an earlier render wrote it under
// services/ (the org's first central service changed), nil otherwise.
func servicePasswordCopy(l layout, user string) ([]byte, error) {
	if ok, err := exists(filepath.Join(l.centralSecrets(), config.CentralPasswordFile(user))); err != nil || ok {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(l.services(), user+".password"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // reported by missingSecrets
	}
	return b, err
}

// links are what the configurations say of how edges reach central.
type links struct {
	leafListen string   // central's leaf_listen
	hubURLs    []string // each edge's hub_urls; nil for the placeholder
}

// overlayLinks returns the links of the Nebula plan at path, checked
// against inv as lintelctl nebula checks it, or the defaults when path is
// empty.
func overlayLinks(inv *authz.Inventory, path string) (links, error) {
	if path == "" {
		return links{leafListen: config.DefaultCentralLeafListen}, nil
	}
	plan, err := loadNebulaPlan(path)
	if err != nil {
		return links{}, fmt.Errorf("nebula %w", err)
	}
	hosts, err := nebulaHosts(inv, plan)
	if err != nil {
		return links{}, fmt.Errorf("nebula plan %s: %w", path, err)
	}
	var l links
	port := strconv.Itoa(plan.Ports.Leaf)
	for _, h := range hosts {
		if h.Role != "central" {
			continue
		}
		ip := strings.SplitN(h.IP, "/", 2)[0]
		if l.leafListen == "" {
			l.leafListen = net.JoinHostPort(ip, port)
		}
		l.hubURLs = append(l.hubURLs, "nats-leaf://"+net.JoinHostPort(ip, port))
	}
	return l, nil
}

// writeCopies writes the inventory and state copies of central and every
// edge, and their configuration files where missing, unlinked to an
// overlay.
func (a *app) writeCopies(inv *authz.Inventory, invData []byte, st *authz.State, l layout, rep *renderReport) error {
	return a.writeLinkedCopies(inv, invData, st, l, links{leafListen: config.DefaultCentralLeafListen}, rep)
}

// writeLinkedCopies is writeCopies with the configurations linked as lk
// says.
func (a *app) writeLinkedCopies(inv *authz.Inventory, invData []byte, st *authz.State, l layout, lk links, rep *renderReport) error {
	dirs := []string{l.central()}
	for _, e := range inv.Edges {
		dirs = append(dirs, l.edge(e.Org, e.Code))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, modePublicDir); err != nil {
			return err
		}
		p := filepath.Join(dir, cfgInventory)
		if err := writeFileAtomic(p, invData, modePublic); err != nil {
			return err
		}
		rep.Files = append(rep.Files, l.rel(p))
		p = filepath.Join(dir, cfgState)
		if err := authz.SaveState(p, st); err != nil {
			return err
		}
		rep.Files = append(rep.Files, l.rel(p))
	}
	configs := []struct {
		path string
		data []byte
	}{{filepath.Join(l.central(), "central.json"), centralConfig(lk.leafListen)}}
	for _, e := range inv.Edges {
		configs = append(configs, struct {
			path string
			data []byte
		}{filepath.Join(l.edge(e.Org, e.Code), "edge.json"), edgeConfig(e.Org, e.Code, lk.hubURLs)})
	}
	for _, c := range configs {
		ok, err := exists(c.path)
		if err != nil {
			return err
		}
		if ok {
			continue // the operator's to edit
		}
		if err := writeFileAtomic(c.path, c.data, modePublic); err != nil {
			return err
		}
		rep.Files = append(rep.Files, l.rel(c.path))
	}
	return nil
}

// missingSecrets returns a warning for each secret central or an edge
// needs that is missing: the state holds its public half, so render will
// not issue it again; it must be restored from a backup or rotated.
func missingSecrets(inv *authz.Inventory, centralUser map[string]string, l layout) []string {
	var files []string
	for _, o := range inv.Orgs {
		files = append(files,
			filepath.Join(l.centralSecrets(), config.CentralPasswordFile(centralUser[o.Code])),
			filepath.Join(l.centralSecrets(), config.CentralCommandSeed(o.Code)))
	}
	for _, e := range inv.Edges {
		for _, f := range []string{config.EdgeLeafSeed, config.EdgeAuditSeed, config.EdgeCommandSeed} {
			files = append(files, filepath.Join(l.edgeSecrets(e.Org, e.Code), f))
		}
	}
	warnings := []string{}
	for _, f := range files {
		if ok, err := exists(f); err != nil || !ok {
			warnings = append(warnings, fmt.Sprintf("%s is missing, and the state already holds its credential: restore it from a backup or rotate the credential", l.rel(f)))
		}
	}
	return warnings
}

// nonNil returns s, or an empty slice for nil, so that JSON shows [].
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
