package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
)

// credFlags name a credential: by id, or by its card number or PIN, which
// lintelctl hashes with the org's hash key before anything leaves the
// machine.
type credFlags struct {
	card, pin string
}

func (f *credFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.card, "card", "", `the card number ("-" reads it from stdin); hashed here with the context's hash_key_file`)
	cmd.Flags().StringVar(&f.pin, "pin", "", `the PIN ("-" reads it from stdin); hashed here with the context's hash_key_file`)
	cmd.MarkFlagsMutuallyExclusive("card", "pin")
}

// secret returns the card number or PIN given, reading "-" from stdin, and
// its kind; ok is false when neither was given.
func (f *credFlags) secret(stdin io.Reader) (cred message.Credential, kind message.CredentialKind, ok bool, err error) {
	v, kind := f.card, message.CredentialCard
	if f.pin != "" {
		v, kind = f.pin, message.CredentialPIN
	}
	if v == "" {
		return "", "", false, nil
	}
	if v == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", "", false, fmt.Errorf("read the %s from stdin: %w", kind, err)
		}
		if v = strings.TrimSpace(line); v == "" {
			return "", "", false, usagef("stdin holds no %s", kind)
		}
	}
	return message.Credential(v), kind, true, nil
}

// id returns the credential's id: args[0], or the hash of --card or --pin.
func (f *credFlags) id(d *ctlConn, args []string, stdin io.Reader) (string, *access.Manager, error) {
	cred, _, ok, err := f.secret(stdin)
	if err != nil {
		return "", nil, err
	}
	if ok == (len(args) == 1) {
		return "", nil, usagef("name the credential by its ID or by --card or --pin, one of them")
	}
	m, err := d.manager(ok)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		if err := access.ValidCredentialID(args[0]); err != nil {
			return "", nil, usagef("credential ID %q: %v", args[0], err)
		}
		return args[0], m, nil
	}
	id, err := m.Hash(cred)
	return id, m, err
}

type credAddOptions struct {
	liveFlags
	credFlags
	holder                  string
	doors, groups, schedule []string
	validFrom, validUntil   string
}

type credStateOptions struct {
	liveFlags
	credFlags
	reason string
}

// credRow is a credential as "cred list" and "cred add" print it.
type credRow struct {
	ID         string    `json:"id"`
	Holder     string    `json:"holder"`
	Kind       string    `json:"kind,omitempty"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	Doors      []string  `json:"doors,omitempty"`
	Groups     []string  `json:"groups,omitempty"`
	Schedules  []string  `json:"schedules,omitempty"`
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	Changed    time.Time `json:"changed,omitzero"`
	Revision   uint64    `json:"revision"`
}

func rowOf(c *access.Credential) credRow {
	return credRow{ID: c.ID, Holder: c.Holder, Kind: string(c.Kind), State: string(c.State), Reason: c.Reason,
		Doors: c.Doors, Groups: c.Groups, Schedules: c.Schedules, ValidFrom: c.ValidFrom, ValidUntil: c.ValidUntil,
		Changed: c.Changed, Revision: c.Revision}
}

// stateReport is what suspend, reinstate and revoke print: the new
// revision (the edge's new credential set version) by edge.
type stateReport struct {
	ID        string            `json:"id"`
	State     string            `json:"state"`
	Revisions map[string]uint64 `json:"revisions"`
}

func (a *app) credCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cred",
		Short: "Manage door credentials: add, suspend, reinstate, revoke, list",
		Long: `cred manages the credentials (cards, PINs) the doors of each edge accept.
Central keeps them in each edge's credential bucket, which the edge mirrors
and decides from, online or not.

A card number or PIN never leaves this machine: lintelctl hashes it with
the org's hash key (the context's hash_key_file) and central and the
edges only ever see the hash, the credential's ID. This holds over NATS
and through central's API (a context with api_url) alike: there "cred
add" sends the ID and the kind, and a credential the edge already holds
is updated in place, keeping its state.`,
		Example: `  lintelctl cred add hq --holder alice --card 0012345678 --door front
  lintelctl cred suspend --card 0012345678 --reason 'reported lost'
  lintelctl cred list hq`,
	}
	var add credAddOptions
	addCmd := &cobra.Command{
		Use:   "add EDGE --holder NAME (--card NUMBER | --pin PIN)",
		Short: "Add or replace a credential at an edge",
		Example: `  lintelctl cred add hq --holder alice --card 0012345678 --door front
  echo 4711 | lintelctl cred add hq --holder bob --pin - --group staff --schedule office`,
		Args: cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.credAdd(cmd.Context(), &add, args[0], cmd.InOrStdin())
		}),
	}
	addLiveFlags(addCmd, &add.liveFlags)
	add.credFlags.add(addCmd)
	addCmd.Flags().StringVar(&add.holder, "holder", "", "who holds it, as decisions record it (required)")
	addCmd.Flags().StringSliceVar(&add.doors, "door", nil, "a door it opens (repeatable, or comma-separated)")
	addCmd.Flags().StringSliceVar(&add.groups, "group", nil, "a door group whose doors it opens")
	addCmd.Flags().StringSliceVar(&add.schedule, "schedule", nil, "a schedule that says when it may be used (none: any time)")
	addCmd.Flags().StringVar(&add.validFrom, "valid-from", "", "when it becomes valid (RFC 3339)")
	addCmd.Flags().StringVar(&add.validUntil, "valid-until", "", "when it stops being valid (RFC 3339)")

	stateCmd := func(use, short, example string, state access.CredentialState, reason bool) *cobra.Command {
		var o credStateOptions
		c := &cobra.Command{
			Use:     use + " [ID] [--card NUMBER | --pin PIN]",
			Short:   short,
			Example: example,
			Args:    cobra.MaximumNArgs(1),
			RunE: a.runE(func(cmd *cobra.Command, args []string) error {
				return a.credState(cmd.Context(), &o, state, args, cmd.InOrStdin())
			}),
		}
		addLiveFlags(c, &o.liveFlags)
		o.credFlags.add(c)
		if reason {
			c.Flags().StringVar(&o.reason, "reason", "", "why, as the edge's decisions and the audit record it (required)")
			_ = c.MarkFlagRequired("reason")
		}
		return c
	}
	var list liveFlags
	listCmd := &cobra.Command{
		Use:     "list EDGE",
		Short:   "List the credentials an edge holds, by holder",
		Example: "  lintelctl cred list hq\n  lintelctl cred list hq -o json | jq '.[] | select(.state != \"active\")'",
		Args:    cobra.ExactArgs(1),
		RunE:    a.runE(func(cmd *cobra.Command, args []string) error { return a.credList(cmd.Context(), &list, args[0]) }),
	}
	addLiveFlags(listCmd, &list)
	cmd.AddCommand(addCmd,
		stateCmd("suspend", "Bar a credential for now, at every edge that holds it",
			"  lintelctl cred suspend --card 0012345678 --reason 'reported lost'", access.StateSuspended, true),
		stateCmd("reinstate", "Make a suspended credential active again",
			"  lintelctl cred reinstate --card 0012345678", access.StateActive, false),
		stateCmd("revoke", "Revoke a credential for good, at every edge that holds it",
			"  lintelctl cred revoke 3f9a…e1 --reason 'left the company'", access.StateRevoked, true),
		listCmd, a.groupCommand(), a.scheduleCommand())
	return cmd
}

func (a *app) credAdd(ctx context.Context, o *credAddOptions, edge string, stdin io.Reader) error {
	if o.holder == "" {
		return usagef("--holder is required")
	}
	cred, kind, ok, err := o.secret(stdin)
	if err != nil {
		return err
	}
	if !ok {
		return usagef("give the credential: --card NUMBER or --pin PIN")
	}
	c := &access.Credential{Holder: o.holder, Kind: kind, State: access.StateActive,
		Doors: o.doors, Groups: o.groups, Schedules: o.schedule}
	for flag, p := range map[string]*time.Time{"--valid-from": &c.ValidFrom, "--valid-until": &c.ValidUntil} {
		v := o.validFrom
		if flag == "--valid-until" {
			v = o.validUntil
		}
		if v == "" {
			continue
		}
		if *p, err = time.Parse(time.RFC3339, v); err != nil {
			return usagef("%s %q: want an RFC 3339 time such as 2027-01-31T18:00:00Z", flag, v)
		}
	}
	if api, err := o.viaAPI(); err != nil || api != nil {
		if err != nil {
			return err
		}
		defer api.close()
		return a.credAddAPI(ctx, o, api, edge, cred, kind, c)
	}
	return o.withManager(ctx, "cred", true, func(ctx context.Context, _ *ctlConn, m *access.Manager) error {
		var err error
		if c.ID, err = m.Hash(cred); err != nil {
			return err
		}
		if _, err := m.Put(ctx, edge, c); err != nil {
			return fmt.Errorf("add the credential of %s at %s: %w", o.holder, edge, err)
		}
		if o.json() {
			return a.writeJSON(rowOf(c))
		}
		fmt.Fprintf(a.stdout, "added %s (%s) for %s at %s: credential set version %d\n", c.ID, kind, c.Holder, edge, c.Revision)
		return nil
	})
}

func (a *app) credState(ctx context.Context, o *credStateOptions, state access.CredentialState, args []string, stdin io.Reader) error {
	if api, err := o.viaAPI(); err != nil || api != nil {
		if err != nil {
			return err
		}
		defer api.close()
		return a.credStateAPI(ctx, o, api, state, args, stdin)
	}
	d, err := o.dial(ctx, "cred")
	if err != nil {
		return err
	}
	defer d.close()
	id, m, err := o.id(d, args, stdin)
	if err != nil {
		return err
	}
	call, cancel := o.call(ctx)
	defer cancel()
	revs, err := m.SetState(call, id, state, o.reason)
	rep := stateReport{ID: id, State: string(state), Revisions: revs}
	if rep.Revisions == nil {
		rep.Revisions = map[string]uint64{}
	}
	if o.json() {
		if werr := a.writeJSON(rep); werr != nil {
			return werr
		}
	} else {
		for _, e := range slices.Sorted(maps.Keys(revs)) {
			fmt.Fprintf(a.stdout, "%s %s at %s: credential set version %d\n", id, state, e, revs[e])
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", state, id, err)
	}
	return nil
}

func (a *app) credList(ctx context.Context, o *liveFlags, edge string) error {
	if api, err := o.viaAPI(); err != nil || api != nil {
		if err != nil {
			return err
		}
		defer api.close()
		call, cancel := o.call(ctx)
		defer cancel()
		rows, err := api.credentials(call, edge)
		if err != nil {
			return fmt.Errorf("list the credentials at %s: %w", edge, err)
		}
		return a.printCreds(o, edge, rows)
	}
	var list []*access.Credential
	err := o.withManager(ctx, "cred", false, func(ctx context.Context, _ *ctlConn, m *access.Manager) (err error) {
		list, err = m.List(ctx, edge)
		return err
	})
	if err != nil {
		return fmt.Errorf("list the credentials at %s: %w", edge, err)
	}
	rows := make([]credRow, len(list))
	for i, c := range list {
		rows[i] = rowOf(c)
	}
	return a.printCreds(o, edge, rows)
}

// printCreds prints the credentials at edge, as a table or JSON.
func (a *app) printCreds(o *liveFlags, edge string, rows []credRow) error {
	if o.json() {
		return a.writeJSON(rows)
	}
	now := time.Now()
	tw := a.table()
	fmt.Fprintln(tw, "ID\tHOLDER\tKIND\tSTATE\tDOORS\tVALID UNTIL\tCHANGED")
	for _, r := range rows {
		state := r.State
		if r.Reason != "" {
			state += " (" + r.Reason + ")"
		}
		doors := strings.Join(append(slices.Clone(r.Doors), prefixed("group:", r.Groups)...), ",")
		until := "-"
		if !r.ValidUntil.IsZero() {
			until = r.ValidUntil.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s…\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID[:12], r.Holder, dash(r.Kind), state, dash(doors), until, ago(now, r.Changed))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "%d credentials at %s\n", len(rows), edge)
	return nil
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
