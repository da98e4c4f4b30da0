package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/edgekit/rules"
)

// ruleReport is what "rules put" and "rules validate" print.
type ruleReport struct {
	Edge     string `json:"edge"`
	Rules    int    `json:"rules"`
	Revision uint64 `json:"revision,omitempty"`
}

func (a *app) rulesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "The rules each edge runs locally: put, validate, get",
		Long: `rules manages each edge's rules document (see package edgekit/rules for its
form): central stores it in the edge's credential bucket, and the edge's
rules engine loads it from its mirror, online or not. validate checks a
document for an edge without storing it; put checks it, then stores it. A
document that does not validate is never stored: the error names the rule
and field at fault.`,
		Example: `  lintelctl rules validate hq rules/hq.json
  lintelctl rules put hq rules/hq.json
  lintelctl rules get hq`,
	}
	var put, validate, get liveFlags
	putCmd := &cobra.Command{
		Use:     "put EDGE FILE",
		Short:   "Check a rules document and store it for the edge (FILE - reads stdin)",
		Example: "  lintelctl rules put hq rules/hq.json",
		Args:    cobra.ExactArgs(2),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.rulesPut(cmd.Context(), &put, args[0], args[1], cmd.InOrStdin(), true)
		}),
	}
	validateCmd := &cobra.Command{
		Use:     "validate EDGE FILE",
		Short:   "Check a rules document for the edge, without storing it",
		Example: "  lintelctl rules validate hq rules/hq.json",
		Args:    cobra.ExactArgs(2),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.rulesPut(cmd.Context(), &validate, args[0], args[1], cmd.InOrStdin(), false)
		}),
	}
	getCmd := &cobra.Command{
		Use:     "get EDGE",
		Short:   "Print the edge's rules document as stored",
		Example: "  lintelctl rules get hq > hq.json",
		Args:    cobra.ExactArgs(1),
		RunE:    a.runE(func(cmd *cobra.Command, args []string) error { return a.rulesGet(cmd.Context(), &get, args[0]) }),
	}
	for c, f := range map[*cobra.Command]*liveFlags{putCmd: &put, validateCmd: &validate, getCmd: &get} {
		addLiveFlags(c, f)
	}
	cmd.AddCommand(putCmd, validateCmd, getCmd)
	return cmd
}

// readInput reads FILE, or stdin for "-".
func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

func (a *app) rulesPut(ctx context.Context, o *liveFlags, edge, file string, stdin io.Reader, store bool) error {
	if err := o.check(); err != nil {
		return err
	}
	doc, err := readInput(file, stdin)
	if err != nil {
		return fmt.Errorf("rules document: %w", err)
	}
	if c, err := o.viaAPI(); err != nil || c != nil {
		if err != nil {
			return err
		}
		defer c.close()
		return a.rulesPutAPI(ctx, o, c, edge, file, doc, store)
	}
	d, err := o.dial(ctx, "rules")
	if err != nil {
		return err
	}
	defer d.close()
	if err := d.hasEdge(edge); err != nil {
		return err
	}
	rs, err := rules.Parse(doc, rules.Scope{Org: d.cx.Org, Edge: edge})
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	rep := ruleReport{Edge: edge, Rules: rs.Len()}
	if store {
		m, err := d.manager(false)
		if err != nil {
			return err
		}
		call, cancel := o.call(ctx)
		defer cancel()
		if rep.Revision, err = m.PutRules(call, edge, doc); err != nil {
			return fmt.Errorf("store the rules of %s: %w", edge, err)
		}
	}
	if o.json() {
		return a.writeJSON(rep)
	}
	if store {
		fmt.Fprintf(a.stdout, "stored %d rules for %s: credential set version %d\n", rep.Rules, edge, rep.Revision)
	} else {
		fmt.Fprintf(a.stdout, "%s: %d rules, valid for %s\n", file, rep.Rules, edge)
	}
	return nil
}

func (a *app) rulesGet(ctx context.Context, o *liveFlags, edge string) error {
	if c, err := o.viaAPI(); err != nil || c != nil {
		if err != nil {
			return err
		}
		defer c.close()
		return a.rulesGetAPI(ctx, o, c, edge)
	}
	return o.withManager(ctx, "rules", false, func(ctx context.Context, _ *ctlConn, m *access.Manager) error {
		doc, _, err := m.Rules(ctx, edge)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(doc)
		return err
	})
}

// hasEdge refuses an edge the inventory does not list for the org.
func (d *ctlConn) hasEdge(edge string) error {
	edges, err := d.edges()
	if err != nil {
		return err
	}
	for _, e := range edges {
		if e == edge {
			return nil
		}
	}
	return fmt.Errorf("edge %q: not an edge of org %s in the inventory", edge, d.cx.Org)
}

// groupCommand and scheduleCommand are "cred group put|get|list|remove"
// and "cred schedule put|get|list|remove".
func (a *app) groupCommand() *cobra.Command {
	var o liveFlags
	var doors []string
	put := &cobra.Command{
		Use:     "put EDGE NAME --door DOOR...",
		Short:   "Define a door group at an edge: credentials naming the group open its doors",
		Example: "  lintelctl cred group put hq staff --door front,back",
		Args:    cobra.ExactArgs(2),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			data := fmt.Appendf(nil, `{"doors":%s}`, mustJSON(doors))
			g, err := access.ParseDoorGroup(args[1], data)
			if err != nil {
				return &usageError{err: err}
			}
			return a.putNamed(cmd.Context(), &o, args[0], "group", g.Name, data, func(m *access.Manager, ctx context.Context) (uint64, error) {
				return m.PutGroup(ctx, args[0], g)
			})
		}),
	}
	addLiveFlags(put, &o)
	put.Flags().StringSliceVar(&doors, "door", nil, "a door of the group (repeatable, or comma-separated)")
	_ = put.MarkFlagRequired("door")
	cmd := &cobra.Command{Use: "group", Short: "Door groups: named sets of doors credentials can refer to",
		Example: "  lintelctl cred group put hq staff --door front,back\n  lintelctl cred group list hq\n  lintelctl cred group remove hq staff"}
	cmd.AddCommand(put)
	cmd.AddCommand(namedCommands(a, groupSpec)...)
	return cmd
}

func (a *app) scheduleCommand() *cobra.Command {
	var o liveFlags
	put := &cobra.Command{
		Use:   "put EDGE NAME FILE",
		Short: "Define a weekly schedule at an edge (FILE - reads stdin)",
		Long: `put stores a weekly schedule credentials can refer to. FILE holds its
intervals as JSON, in the edge's local time:

  {"intervals": [{"days": ["mon","tue","wed","thu","fri"], "from": "07:00", "until": "19:00"}]}`,
		Example: "  lintelctl cred schedule put hq office office.json",
		Args:    cobra.ExactArgs(3),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			data, err := readInput(args[2], cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("schedule: %w", err)
			}
			s, err := access.ParseSchedule(args[1], data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[2], err)
			}
			return a.putNamed(cmd.Context(), &o, args[0], "schedule", s.Name, data, func(m *access.Manager, ctx context.Context) (uint64, error) {
				return m.PutSchedule(ctx, args[0], s)
			})
		}),
	}
	addLiveFlags(put, &o)
	cmd := &cobra.Command{Use: "schedule", Short: "Weekly schedules that say when credentials may be used",
		Example: "  lintelctl cred schedule put hq office office.json\n  lintelctl cred schedule get hq office -o json\n  lintelctl cred schedule remove hq office"}
	cmd.AddCommand(put)
	cmd.AddCommand(namedCommands(a, scheduleSpec)...)
	return cmd
}

// putNamed stores a group or schedule with put (or, through the API, as
// body) and prints the revision.
func (a *app) putNamed(ctx context.Context, o *liveFlags, edge, kind, name string, body []byte, put func(*access.Manager, context.Context) (uint64, error)) error {
	if c, err := o.viaAPI(); err != nil || c != nil {
		if err != nil {
			return err
		}
		defer c.close()
		return a.putNamedAPI(ctx, o, c, edge, kind, name, body)
	}
	return o.withManager(ctx, "cred", false, func(ctx context.Context, _ *ctlConn, m *access.Manager) error {
		rev, err := put(m, ctx)
		if err != nil {
			return fmt.Errorf("store %s %s at %s: %w", kind, name, edge, err)
		}
		if o.json() {
			return a.writeJSON(map[string]any{"edge": edge, kind: name, "revision": rev})
		}
		fmt.Fprintf(a.stdout, "stored %s %s at %s: credential set version %d\n", kind, name, edge, rev)
		return nil
	})
}
