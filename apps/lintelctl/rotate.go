package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
)

// rotateOptions are the flags of lintelctl rotate.
type rotateOptions struct {
	inventory string
	state     string // default: state.json beside the inventory
	out       string
	overlap   time.Duration
	cost      int
	output    string // table or json
}

// rotateReport is what a rotation did, printed as its summary.
type rotateReport struct {
	Inventory string            `json:"inventory"`
	State     string            `json:"state"`
	Out       string            `json:"out"`
	Rotated   []rotatedIdentity `json:"rotated"`
	// Secrets are the secret files written, relative to Out.
	Secrets []string `json:"secrets_written"`
	// Files are the other files written: the state and the copies of the
	// inventory and state (relative to Out).
	Files []string `json:"files_written"`
}

// rotatedIdentity is one identity rotate gave a new credential.
type rotatedIdentity struct {
	Identity string `json:"identity"` // user name or edge key ID
	Kind     string `json:"kind"`     // device, service, edge-service or edge-key
	// PreviousUntil is when the old credential stops working; absent when
	// it stopped at once (--overlap 0).
	PreviousUntil time.Time `json:"previous_until,omitzero"`
}

// rotateCommand returns "lintelctl rotate".
func (a *app) rotateCommand() *cobra.Command {
	var o rotateOptions
	cmd := &cobra.Command{
		Use:   "rotate --inventory FILE --out DIR ID...",
		Short: "Give identities new passwords or edge keys",
		Long: `Rotate gives each identity named a new credential: a device or service a
new password, an edge a new leaf-node NKey. It writes the new secrets where
render writes them (DIR/devices/<org>-<edge>/<user>.password,
DIR/services/<user>.password, DIR/central/secrets/ for the org's central
service, DIR/edges/<org>-<edge>/secrets/leaf.seed), then the state, then the
copies of the state central and every edge read, and prints which
identities rotated, until when their old credential keeps working, and the
files written (--output json for JSON).

An identity is named as the state names it, or in a friendlier form:

  acme.hq.reader.front-in   a device user           thing:acme.hq.reader.front-in, thing:hq.reader.front-in
  _svc.acme.central         a service user          service:acme/central, service:central
  _edge.acme.hq             an edge's service user
  acme.hq                   an edge's leaf-node key edge:acme/hq, edge:hq

An identity that is not in the inventory, or not yet rendered, is refused
by name and nothing is written. The inventory must be the one last rendered
(run "lintelctl render" first after changing it), and --out the directory
render wrote.

The old credential keeps working for --overlap (24h by default; 0 stops it
at once) where it is checked against the state: device and gateway logins
at an edge, an edge's leaf-node key at central. Passwords central checks
(central services, operators, org-wide gateways) have no overlap there:
once central reloads, it accepts the new password only. Nothing changes in the running deployment until central and the edges pick
up the new state: send them SIGHUP (reload) or restart them, after copying
DIR/central and DIR/edges/<org>-<edge> where they run. Devices and services
need their new password before the overlap ends; an edge whose key rotated
needs its new leaf.seed and a restart.

The state and the secret directories are the deployment's crown jewels:
back them up after a rotation ("lintelctl backup").`,
		Example: `  lintelctl rotate --inventory deploy/inventory.json --out deploy/out acme.hq.reader.front-in
  lintelctl rotate -i deploy/inventory.json -o deploy/out --overlap 1h edge:acme/hq thing:hq.lock.front-lock
  lintelctl rotate -i deploy/inventory.json -o deploy/out --overlap 0 service:ops-alice --output json`,
		Args: cobra.MinimumNArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, ids []string) error {
			if o.cost < bcrypt.MinCost || o.cost > bcrypt.MaxCost {
				return usagef("--cost %d: want %d to %d", o.cost, bcrypt.MinCost, bcrypt.MaxCost)
			}
			if o.output != outputTable && o.output != outputJSON {
				return usagef("--output %q: want table or json", o.output)
			}
			if o.overlap < 0 {
				return usagef("--overlap %v: want a duration of 0 or more, such as 24h", o.overlap)
			}
			if o.state == "" {
				o.state = filepath.Join(filepath.Dir(o.inventory), "state.json")
			}
			rep, err := a.rotate(cmd.Context(), o, ids)
			if err != nil {
				return err
			}
			return rep.print(a, o.output)
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&o.inventory, "inventory", "i", "", "the inventory file, as last rendered (required)")
	f.StringVar(&o.state, "state", "", "the state file (default: state.json beside the inventory)")
	f.StringVarP(&o.out, "out", "o", "", "the directory render writes into (required)")
	f.DurationVar(&o.overlap, "overlap", authz.DefaultOverlap, "how long the old credentials keep working; 0 stops them at once")
	f.IntVar(&o.cost, "cost", authz.DefaultCost, "bcrypt cost of the new password hashes (4 is for tests only)")
	f.StringVar(&o.output, "output", outputTable, "summary format: table or json")
	_ = cmd.MarkFlagRequired("inventory") // the flags exist
	_ = cmd.MarkFlagRequired("out")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// rotate rotates the credentials of the identities args name and writes
// the result; see rotateCommand. On error nothing is written, unless
// writing itself fails part way, in the order render writes.
func (a *app) rotate(ctx context.Context, o rotateOptions, args []string) (*rotateReport, error) {
	data, err := os.ReadFile(o.inventory)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
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
	ids, err := resolveIdentities(inv, args)
	if err != nil {
		return nil, err
	}

	l := layout{dir: o.out}
	if ok, err := exists(filepath.Join(l.central(), cfgState)); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%s holds no render (no %s): pass the directory \"lintelctl render\" wrote with --out",
			o.out, filepath.Join("central", cfgState))
	}
	if ok, err := exists(o.state); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	} else if !ok {
		return nil, fmt.Errorf("state file %s does not exist: pass the deployment's state with --state, or run \"lintelctl render\" first", o.state)
	}
	st, err := authz.LoadState(o.state)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", o.state, err)
	}
	if err := checkRendered(inv, st); err != nil {
		return nil, fmt.Errorf("inventory %s and state %s: %w", o.inventory, o.state, err)
	}
	keys, err := hashKeys(inv, l)
	if err != nil {
		return nil, err
	}

	g := &authz.Generator{Cost: o.cost, Overlap: o.overlap}
	if o.overlap == 0 {
		g.Overlap = -1 // authz: none; zero would be its default
	}
	res, err := g.Rotate(ctx, st.Prune(time.Now()), ids...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("rotate interrupted, nothing written: %w", err)
		}
		return nil, fmt.Errorf("rotate: %w", err)
	}

	rep := &rotateReport{Inventory: o.inventory, State: o.state, Out: o.out,
		Rotated: []rotatedIdentity{}, Secrets: []string{}, Files: []string{}}
	for _, id := range res.Rotated {
		r := rotatedIdentity{Identity: id, Kind: identityKind(id)}
		if c, ok := res.State.Passwords[id]; ok {
			r.PreviousUntil = c.PreviousUntil
		} else {
			r.PreviousUntil = res.State.EdgeKeys[id].PreviousUntil
		}
		rep.Rotated = append(rep.Rotated, r)
	}
	// As render: secrets first, then the state, then the copies. A crash
	// after the secrets leaves the old state, under which the old
	// credentials keep working; rotating again issues new ones.
	written, err := writeSecretsThenState(inv, res.Secrets, res.State, centralUser, keys, l, o.state)
	rep.Secrets = append(rep.Secrets, written...)
	if err != nil {
		return nil, err
	}
	rep.Files = append(rep.Files, o.state)
	copies := &renderReport{}
	if err := a.writeCopies(inv, data, res.State, l, copies); err != nil {
		return nil, err
	}
	rep.Files = append(rep.Files, copies.Files...)
	return rep, nil
}

// resolveIdentities returns the identities args name (see rotateCommand),
// refusing every one that is not an identity of inv at once, by name.
func resolveIdentities(inv *authz.Inventory, args []string) ([]string, error) {
	users, edgeKeys := inv.Identities()
	var ids []string
	var unknown []string
	for _, arg := range args {
		id, err := resolveIdentity(inv, arg)
		if err != nil {
			return nil, err
		}
		_, isUser := slices.BinarySearch(users, id)
		_, isEdge := slices.BinarySearch(edgeKeys, id)
		if !isUser && !isEdge {
			if id != arg {
				arg += " (" + id + ")"
			}
			unknown = append(unknown, arg)
			continue
		}
		ids = append(ids, id)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: not in the inventory: %s; nothing rotated", authz.ErrUnknownIdentity, strings.Join(unknown, ", "))
	}
	return ids, nil
}

// resolveIdentity returns the user name or edge key ID arg names, in one
// of the forms rotateCommand lists. A malformed argument is a usage error;
// whether the identity exists is the caller's to check.
func resolveIdentity(inv *authz.Inventory, arg string) (string, error) {
	form, rest, ok := strings.Cut(arg, ":")
	if !ok {
		return arg, nil // as the state names it; tokens hold no ':'
	}
	if rest == "" {
		return "", usagef("%q: name the %s after the colon", arg, form)
	}
	switch form {
	case "edge":
		if org, code, ok := strings.Cut(rest, "/"); ok {
			return authz.EdgeKeyID(org, code), nil
		}
		for _, e := range inv.Edges {
			if e.Code == rest {
				return authz.EdgeKeyID(e.Org, e.Code), nil
			}
		}
		return "", fmt.Errorf("%w: %s: no edge %q in the inventory; nothing rotated", authz.ErrUnknownIdentity, arg, rest)
	case "thing":
		parts := strings.Split(rest, ".")
		switch len(parts) {
		case 4:
			return rest, nil
		case 3:
			org, err := edgeOrg(inv, "", parts[0])
			if err != nil {
				return "", fmt.Errorf("%w: %s: %w; nothing rotated", authz.ErrUnknownIdentity, arg, err)
			}
			return org + "." + rest, nil
		}
		return "", usagef("%q: want thing:ORG.EDGE.TYPE.CODE or thing:EDGE.TYPE.CODE", arg)
	case "service":
		if org, name, ok := strings.Cut(rest, "/"); ok {
			return authz.ServiceUser(org, name), nil
		}
		org, err := serviceOrg(inv, "", "", rest, true)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w; nothing rotated", authz.ErrUnknownIdentity, arg, err)
		}
		return authz.ServiceUser(org, rest), nil
	}
	return "", usagef("%q: unknown form %q, want edge:, thing: or service:, or the identity as the state names it", arg, form+":")
}

// checkRendered refuses a state that does not hold exactly the identities
// of inv: the inventory changed since the last render, and rotating would
// deploy copies of an inventory whose credentials were never issued.
func checkRendered(inv *authz.Inventory, st *authz.State) error {
	users, edgeKeys := inv.Identities()
	var pending, removed []string
	for _, u := range users {
		if _, ok := st.Passwords[u]; !ok {
			pending = append(pending, u)
		}
	}
	for _, k := range edgeKeys {
		if _, ok := st.EdgeKeys[k]; !ok {
			pending = append(pending, k)
		}
	}
	for u := range st.Passwords {
		if _, ok := slices.BinarySearch(users, u); !ok {
			removed = append(removed, u)
		}
	}
	for k := range st.EdgeKeys {
		if _, ok := slices.BinarySearch(edgeKeys, k); !ok {
			removed = append(removed, k)
		}
	}
	if len(pending) == 0 && len(removed) == 0 {
		return nil
	}
	slices.Sort(removed)
	var what []string
	if len(pending) > 0 {
		what = append(what, "not rendered yet: "+dependents(pending, 5))
	}
	if len(removed) > 0 {
		what = append(what, "removed but still in the state: "+dependents(removed, 5))
	}
	return fmt.Errorf("the inventory changed since the last render (%s); run \"lintelctl render\" first, then rotate", strings.Join(what, "; "))
}

// print writes r as a table or as JSON.
func (r *rotateReport) print(a *app, format string) error {
	if format == outputJSON {
		return a.writeJSON(r)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ROTATED\tKIND\tOLD CREDENTIAL")
	for _, id := range r.Rotated {
		old := "stopped at once"
		if !id.PreviousUntil.IsZero() {
			old = "valid until " + id.PreviousUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", id.Identity, id.Kind, old)
	}
	for _, f := range r.Secrets {
		fmt.Fprintf(tw, "wrote\tsecret\t%s\n", f)
	}
	for _, f := range r.Files {
		fmt.Fprintf(tw, "wrote\tfile\t%s\n", f)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(a.stdout, "%d rotated; %d secret files and %d other files written; state saved to %s\n"+
		"next: hand out the new secrets, then reload (SIGHUP) or restart central and the edges with the new state; back up the state and secrets\n",
		len(r.Rotated), len(r.Secrets), len(r.Files), r.State)
	return err
}
