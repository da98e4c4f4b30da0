package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/edgekit/access"
)

// groupRow is a door group as "cred group get|list" print it (and the
// API shows it).
type groupRow struct {
	Name  string   `json:"name"`
	Doors []string `json:"doors"`
}

// scheduleRow is a schedule as "cred schedule get|list" print it (and the
// API shows it).
type scheduleRow struct {
	Name      string            `json:"name"`
	Intervals []access.Interval `json:"intervals"`
}

// namedSpec is what "cred group" and "cred schedule" need to get, list and
// remove one kind of named object: over NATS with the credential manager,
// or through the API at /edges/{edge}/{kind}s.
type namedSpec[R any] struct {
	kind    string // "group" or "schedule"
	noun    string // "door group" or "schedule"
	header  string // the table's header
	line    func(R) string
	get     func(m *access.Manager, ctx context.Context, edge, name string) (R, error)
	list    func(m *access.Manager, ctx context.Context, edge string) ([]R, error)
	remove  func(m *access.Manager, ctx context.Context, edge, name string) (uint64, error)
	example string // the example's arguments: EDGE NAME
}

var (
	groupSpec = namedSpec[groupRow]{
		kind: "group", noun: "door group", header: "NAME\tDOORS", example: "hq staff",
		line: func(g groupRow) string { return g.Name + "\t" + dash(strings.Join(g.Doors, ",")) },
		get: func(m *access.Manager, ctx context.Context, edge, name string) (groupRow, error) {
			g, _, err := m.Group(ctx, edge, name)
			if err != nil {
				return groupRow{}, err
			}
			return groupRow{Name: g.Name, Doors: g.Doors}, nil
		},
		list: func(m *access.Manager, ctx context.Context, edge string) ([]groupRow, error) {
			gs, err := m.Groups(ctx, edge)
			out := make([]groupRow, len(gs))
			for i, g := range gs {
				out[i] = groupRow{Name: g.Name, Doors: g.Doors}
			}
			return out, err
		},
		remove: (*access.Manager).RemoveGroup,
	}
	scheduleSpec = namedSpec[scheduleRow]{
		kind: "schedule", noun: "schedule", header: "NAME\tINTERVALS", example: "hq office",
		line: func(s scheduleRow) string {
			ivs := make([]string, len(s.Intervals))
			for i, iv := range s.Intervals {
				ivs[i] = strings.Join(iv.Days, ",") + " " + iv.From + "-" + iv.Until
			}
			return s.Name + "\t" + dash(strings.Join(ivs, "; "))
		},
		get: func(m *access.Manager, ctx context.Context, edge, name string) (scheduleRow, error) {
			s, _, err := m.Schedule(ctx, edge, name)
			if err != nil {
				return scheduleRow{}, err
			}
			return scheduleRow{Name: s.Name, Intervals: s.Intervals}, nil
		},
		list: func(m *access.Manager, ctx context.Context, edge string) ([]scheduleRow, error) {
			ss, err := m.Schedules(ctx, edge)
			out := make([]scheduleRow, len(ss))
			for i, s := range ss {
				out[i] = scheduleRow{Name: s.Name, Intervals: s.Intervals}
			}
			return out, err
		},
		remove: (*access.Manager).RemoveSchedule,
	}
)

// namedCommands returns the get, list and remove commands of spec's kind.
func namedCommands[R any](a *app, spec namedSpec[R]) []*cobra.Command {
	var getO, listO, removeO liveFlags
	get := &cobra.Command{
		Use:     "get EDGE NAME",
		Short:   fmt.Sprintf("Show one %s at an edge", spec.noun),
		Example: fmt.Sprintf("  lintelctl cred %s get %s -o json", spec.kind, spec.example),
		Args:    cobra.ExactArgs(2),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return runNamed(cmd.Context(), a, &getO, spec, "get", args)
		}),
	}
	list := &cobra.Command{
		Use:     "list EDGE",
		Short:   fmt.Sprintf("List the %ss at an edge, by name", spec.noun),
		Example: fmt.Sprintf("  lintelctl cred %s list hq", spec.kind),
		Args:    cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return runNamed(cmd.Context(), a, &listO, spec, "list", args)
		}),
	}
	remove := &cobra.Command{
		Use:     "remove EDGE NAME",
		Short:   fmt.Sprintf("Remove a %s from an edge (refused while credentials name it)", spec.noun),
		Example: fmt.Sprintf("  lintelctl cred %s remove %s", spec.kind, spec.example),
		Args:    cobra.ExactArgs(2),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return runNamed(cmd.Context(), a, &removeO, spec, "remove", args)
		}),
	}
	for c, o := range map[*cobra.Command]*liveFlags{get: &getO, list: &listO, remove: &removeO} {
		addLiveFlags(c, o)
	}
	return []*cobra.Command{get, list, remove}
}

// runNamed runs "cred group|schedule get|list|remove" (op) with args EDGE
// [NAME], over NATS or through the API.
func runNamed[R any](ctx context.Context, a *app, o *liveFlags, spec namedSpec[R], op string, args []string) error {
	edge, name := args[0], ""
	if len(args) > 1 {
		name = args[1]
	}
	api, err := o.viaAPI()
	if err != nil {
		return err
	}
	var rows []R
	var rev uint64
	what := fmt.Sprintf("%s %s %s at %s", op, spec.kind, name, edge)
	if op == "list" {
		what = fmt.Sprintf("list the %ss at %s", spec.kind, edge)
	}
	if api != nil {
		defer api.close()
		call, cancel := o.call(ctx)
		defer cancel()
		path := "/edges/" + url.PathEscape(edge) + "/" + spec.kind + "s"
		switch op {
		case "list":
			err = api.do(call, "GET", path, nil, nil, &rows)
		case "get":
			var r R
			err = api.do(call, "GET", path+"/"+url.PathEscape(name), nil, nil, &r)
			rows = []R{r}
		default:
			var ch struct {
				Revision uint64 `json:"revision"`
			}
			err = api.do(call, "DELETE", path+"/"+url.PathEscape(name), nil, nil, &ch)
			rev = ch.Revision
		}
	} else {
		err = o.withManager(ctx, "cred", false, func(ctx context.Context, _ *ctlConn, m *access.Manager) (err error) {
			switch op {
			case "list":
				rows, err = spec.list(m, ctx, edge)
			case "get":
				var r R
				r, err = spec.get(m, ctx, edge, name)
				rows = []R{r}
			default:
				rev, err = spec.remove(m, ctx, edge, name)
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case op == "remove" && o.json():
		return a.writeJSON(map[string]any{"edge": edge, spec.kind: name, "revision": rev})
	case op == "remove":
		fmt.Fprintf(a.stdout, "removed %s %s at %s: credential set version %d\n", spec.kind, name, edge, rev)
		return nil
	case op == "get" && o.json():
		return a.writeJSON(rows[0])
	case o.json():
		if rows == nil {
			rows = []R{}
		}
		return a.writeJSON(rows)
	}
	tw := a.table()
	fmt.Fprintln(tw, spec.header)
	for _, r := range rows {
		fmt.Fprintln(tw, spec.line(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if op == "list" {
		fmt.Fprintf(a.stderr, "%d %ss at %s\n", len(rows), spec.kind, edge)
	}
	return nil
}
