package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/edgekit/access"
)

// errChainBroken is returned, after the report, by "audit verify" for an
// edge whose chain central found broken, so that scripts see exit 1.
type errChainBroken struct {
	edge   string
	breaks int
}

func (e *errChainBroken) Error() string {
	return fmt.Sprintf("the audit chain of %s is broken: %d breaks", e.edge, e.breaks)
}

func (a *app) auditCommand() *cobra.Command {
	var o liveFlags
	verify := &cobra.Command{
		Use:   "verify EDGE",
		Short: "Report an edge's audit chain: its verified head, breaks and revoked grants",
		Long: `verify reports what central's auditor found in the edge's audit chain of
access decisions: the head it verified (the last decision's sequence and
hash), each break it raised (a gap, a modified, late, forged or unsigned
record), and each grant of a credential central had revoked before the
decision.

Exit status: 0 when the chain is whole (revoked grants are reported, not
failures: they are what an offline edge may do), 1 when it is broken.`,
		Example: "  lintelctl audit verify hq\n  lintelctl audit verify hq -o json | jq '.revoked_grants[].alarm.holder'",
		Args:    cobra.ExactArgs(1),
		RunE:    a.runE(func(cmd *cobra.Command, args []string) error { return a.auditVerify(cmd.Context(), &o, args[0]) }),
	}
	addLiveFlags(verify, &o)
	cmd := &cobra.Command{Use: "audit", Short: "The edges' audit chains, as central verified them",
		Example: "  lintelctl audit verify hq"}
	cmd.AddCommand(verify)
	return cmd
}

func (a *app) auditVerify(ctx context.Context, o *liveFlags, edge string) error {
	if c, err := o.viaAPI(); err != nil || c != nil {
		if err != nil {
			return err
		}
		defer c.close()
		call, cancel := o.call(ctx)
		defer cancel()
		r, err := c.audit(call, edge)
		if err != nil {
			return err
		}
		return a.printAudit(o, edge, r)
	}
	d, err := o.dial(ctx, "audit")
	if err != nil {
		return err
	}
	defer d.close()
	if err := d.hasEdge(edge); err != nil {
		return err
	}
	hub, err := d.hub(false)
	if err != nil {
		return err
	}
	call, cancel := o.call(ctx)
	defer cancel()
	r, err := access.ReadAuditReport(call, d.js, hub.EventStream(), "", d.cx.Org, edge)
	if err != nil {
		return err
	}
	return a.printAudit(o, edge, r)
}

// printAudit prints the audit report r of edge, and returns
// [*errChainBroken] when the chain is broken.
func (a *app) printAudit(o *liveFlags, edge string, r *access.AuditReport) error {
	if o.json() {
		if err := a.writeJSON(r); err != nil {
			return err
		}
	} else {
		state := "intact"
		if !r.Intact() {
			state = "BROKEN"
		}
		fmt.Fprintf(a.stdout, "edge %s: chain %s; verified through decision %d (central's event stream at %d)\n", edge, state, r.Head.Seq, r.Through)
		if r.Head.Hash != "" {
			fmt.Fprintf(a.stdout, "head hash %s\n", r.Head.Hash)
		}
		if len(r.Breaks) > 0 {
			tw := a.table()
			fmt.Fprintln(tw, "\nBREAK AT\tKIND\tEXPECTED\tGOT\tEVENT\tDETAIL")
			for _, b := range r.Breaks {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", b.Time.UTC().Format(time.RFC3339), b.Alarm.Kind, b.Alarm.ExpectedSeq,
					b.Alarm.GotSeq, b.Alarm.Event, dash(b.Alarm.Detail+b.Alarm.Subject))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(r.RevokedGrants) > 0 {
			tw := a.table()
			fmt.Fprintln(tw, "\nREVOKED GRANT AT\tDOOR\tREADER\tHOLDER\tOFFLINE\tREVOKED AT\tREASON")
			for _, g := range r.RevokedGrants {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\n", g.Alarm.DecisionTime.UTC().Format(time.RFC3339), g.Alarm.Door, g.Alarm.Reader,
					dash(g.Alarm.Holder), g.Alarm.Offline, g.Alarm.RevokedAt.UTC().Format(time.RFC3339), dash(g.Alarm.Reason))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	if !r.Intact() {
		return &errChainBroken{edge: edge, breaks: len(r.Breaks)}
	}
	return nil
}

// mustJSON marshals v, which cannot fail for the plain values it is used on.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
