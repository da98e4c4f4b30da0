package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/central"
)

func (a *app) statusCommand() *cobra.Command {
	var o liveFlags
	cmd := &cobra.Command{
		Use:   "status [EDGE...]",
		Short: "Show each edge's link, backlog, credential sync and devices",
		Long: `status reads, at central, the state of each edge of the org (or of the
edges named):

  LINK      up when central heard from the edge's event flow in the last
            10 s (its messages, or the heartbeat sent every second)
  BACKLOG   messages the edge holds that central has not stored yet, as of
            the edge's last status report (STATUS, how long ago)
  CREDS     the edge's credential set version at central, and the version
            the edge confirmed receiving; SYNCED, how long ago it confirmed
  DEVICES   the edge's devices online / stale / offline

An edge central has never heard from shows "-". status exits with 1 when
an edge named is not in the inventory.`,
		Example: `  lintelctl status
  lintelctl status hq --output json`,
		RunE: a.runE(func(cmd *cobra.Command, args []string) error { return a.status(cmd.Context(), &o, args) }),
	}
	addLiveFlags(cmd, &o)
	return cmd
}

func (a *app) status(ctx context.Context, o *liveFlags, names []string) error {
	if c, err := o.viaAPI(); err != nil || c != nil {
		if err != nil {
			return err
		}
		defer c.close()
		return a.statusAPI(ctx, o, c, names)
	}
	d, err := o.dial(ctx, "status")
	if err != nil {
		return err
	}
	defer d.close()
	edges, err := d.edges()
	if err != nil {
		return err
	}
	if len(names) > 0 {
		known := map[string]bool{}
		for _, e := range edges {
			known[e] = true
		}
		for _, n := range names {
			if !known[n] {
				return fmt.Errorf("edge %q: not an edge of org %s in the inventory", n, d.cx.Org)
			}
		}
		edges = names
	}
	hub, err := d.hub(false)
	if err != nil {
		return err
	}
	mgr, err := d.manager(false)
	if err != nil {
		return err
	}
	call, cancel := o.call(ctx)
	defer cancel()
	return a.printStatus(o, central.ReadEdgeStatus(call, d.js, hub, mgr, edges))
}

// printStatus prints the edges' status, as a table or JSON.
func (a *app) printStatus(o *liveFlags, out []central.EdgeStatus) error {
	now := time.Now()
	if o.json() {
		return a.writeJSON(out)
	}
	tw := a.table()
	fmt.Fprintln(tw, "EDGE\tLINK\tBACKLOG\tSTATUS\tCREDS\tSYNCED\tDEVICES")
	for _, s := range out {
		backlog, devices := "-", "-"
		if s.Status != nil {
			backlog = fmt.Sprint(s.Status.Backlog)
			devices = fmt.Sprintf("%d/%d/%d", s.Status.DevicesOnline, s.Status.DevicesStale, s.Status.DevicesOffline)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", s.Edge, s.Link, backlog, ago(now, s.StatusAt),
			s.CredentialVersion, s.CredentialsReceived, ago(now, s.CredentialsSyncedAt), devices)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range out {
		for _, e := range s.Errors {
			fmt.Fprintf(a.stderr, "lintelctl: edge %s: %s\n", s.Edge, e)
		}
	}
	return nil
}
