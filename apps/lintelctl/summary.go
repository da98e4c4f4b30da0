package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// renderReport is what a render changed, printed as its summary.
type renderReport struct {
	Inventory string `json:"inventory"`
	State     string `json:"state"`
	Out       string `json:"out"`
	// Created, Rotated and Removed are the identities (user names and edge
	// key IDs) whose credential was created, rotated or removed.
	Created []string `json:"created"`
	Rotated []string `json:"rotated"`
	Removed []string `json:"removed"`
	// Secrets are the secret files written, relative to Out.
	Secrets []string `json:"secrets_written"`
	// Files are the other files written: the state, the copies of the
	// inventory and state, new configuration files (relative to Out).
	Files []string `json:"files_written"`
	// Warnings are secrets central or an edge needs that are missing.
	Warnings []string `json:"warnings"`
}

// print writes r as a table or as JSON.
func (r *renderReport) print(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tKIND\tNAME")
	for _, c := range []struct {
		action string
		names  []string
	}{{"created", r.Created}, {"rotated", r.Rotated}, {"removed", r.Removed}} {
		for _, n := range c.names {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.action, identityKind(n), n)
		}
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
	for _, m := range r.Warnings {
		fmt.Fprintln(w, "warning:", m)
	}
	_, err := fmt.Fprintf(w, "%d created, %d rotated, %d removed; %d secret files and %d other files written; state saved to %s\n",
		len(r.Created), len(r.Rotated), len(r.Removed), len(r.Secrets), len(r.Files), r.State)
	return err
}

// identityKind says what an identity of authz.Result is, by the form of
// its name (see authz.DeviceUser, ServiceUser, EdgeServiceUser, EdgeKeyID).
func identityKind(name string) string {
	switch {
	case strings.HasPrefix(name, "_svc."):
		return "service"
	case strings.HasPrefix(name, "_edge."):
		return "edge-service"
	case strings.Count(name, ".") == 1:
		return "edge-key"
	}
	return "device"
}
