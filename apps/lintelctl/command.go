package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// defaultCommandDeadline is how long a command sent by lintelctl stays
// valid when --deadline is not given.
const defaultCommandDeadline = time.Minute

// commandReport is what "command send" prints.
type commandReport struct {
	ID       string            `json:"id"`
	Thing    string            `json:"thing"`
	Action   string            `json:"action"`
	Params   map[string]string `json:"params,omitempty"`
	Deadline time.Time         `json:"deadline"`
	SentAt   time.Time         `json:"sent_at"`
	// Status is pending (not waited for, or no ack before the wait
	// ended), accepted, completed, failed, rejected or expired.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// AcceptedAfter and DoneAfter are how long after sending the first
	// ack and the final one arrived, as lintelctl saw them.
	AcceptedAfter string `json:"accepted_after,omitempty"`
	DoneAfter     string `json:"done_after,omitempty"`
}

// errCommandNotCompleted is returned, after the report, for a command whose
// final outcome is not completed, so that scripts see exit status 1.
type errCommandNotCompleted struct{ status, text string }

func (e *errCommandNotCompleted) Error() string {
	if e.text != "" {
		return fmt.Sprintf("the command ended %s: %s", e.status, e.text)
	}
	return "the command ended " + e.status
}

type commandOptions struct {
	liveFlags
	params   []string
	deadline time.Duration
	wait     bool
	key      string
}

func (a *app) commandCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "command",
		Short:   "Send commands to things, through central and their edge",
		Example: "  lintelctl command send hq.lock.l1 unlock --wait",
	}
	var o commandOptions
	send := &cobra.Command{
		Use:   "send THING ACTION",
		Short: "Send a signed command to a thing, and optionally wait for its outcome",
		Long: `send signs a command with the org's command key and stores it in central's
command stream, from which the thing's edge delivers it (at once, or once
its link is back). THING is {edge}.{thing_type}.{thing_code}, or with the
org in front.

With --wait it prints each step as the thing's acks reach central:
accepted, then completed, failed, rejected or expired, with the time since
sending. Exit status: 0 when the command completed (or was sent, without
--wait), 1 when it ended otherwise or the wait timed out (--timeout).

Through central's API (a context with api_url), central signs and sends
the command (an operator token is needed), and --wait follows the thing's
acks in the API's live event stream.`,
		Example: `  lintelctl command send hq.lock.l1 unlock --param duration=5s --wait
  lintelctl command send acme.hq.sounder.s1 sound --deadline 30s -o json`,
		Args: cobra.ExactArgs(2),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.sendCommand(cmd.Context(), &o, args[0], args[1])
		}),
	}
	addLiveFlags(send, &o.liveFlags)
	send.Flags().StringArrayVarP(&o.params, "param", "p", nil, "a parameter NAME=VALUE (repeatable)")
	send.Flags().DurationVar(&o.deadline, "deadline", defaultCommandDeadline, "how long the command stays valid; the thing refuses it after")
	send.Flags().BoolVarP(&o.wait, "wait", "w", false, "wait for the outcome, up to --timeout")
	send.Flags().StringVar(&o.key, "idempotency-key", "", "a key that makes the thing carry out the same effect once, however often it is sent (default: a new key)")
	cmd.AddCommand(send)
	return cmd
}

// parseThing reads THING, {edge}.{type}.{code} or {org}.{edge}.{type}.{code}.
func parseThing(org, s string) (topic.Thing, error) {
	parts := strings.Split(s, ".")
	switch len(parts) {
	case 3:
		parts = append([]string{org}, parts...)
	case 4:
		if parts[0] != org {
			return topic.Thing{}, usagef("thing %q: of org %s, but the context is for org %s", s, parts[0], org)
		}
	default:
		return topic.Thing{}, usagef("thing %q: want EDGE.TYPE.CODE, such as hq.lock.l1", s)
	}
	t := topic.Thing{Org: parts[0], Edge: parts[1], Type: parts[2], Code: parts[3]}
	if err := t.Validate(); err != nil {
		return topic.Thing{}, usagef("thing %q: %v", s, err)
	}
	return t, nil
}

func (a *app) sendCommand(ctx context.Context, o *commandOptions, thing, action string) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.deadline <= 0 {
		return usagef("--deadline %v: want a positive duration such as 1m", o.deadline)
	}
	params := map[string]string{}
	for _, p := range o.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return usagef("--param %q: want NAME=VALUE", p)
		}
		params[k] = v
	}
	if len(params) == 0 {
		params = nil
	}
	if c, err := o.viaAPI(); err != nil || c != nil {
		if err != nil {
			return err
		}
		defer c.close()
		return a.sendCommandAPI(ctx, o, c, thing, action, params)
	}
	d, err := o.dial(ctx, "command")
	if err != nil {
		return err
	}
	defer d.close()
	t, err := parseThing(d.cx.Org, thing)
	if err != nil {
		return err
	}
	hub, err := d.hub(true)
	if err != nil {
		return err
	}
	if o.key == "" {
		o.key = newIdempotencyKey()
	}
	sent := time.Now()
	cmd := message.Command{Action: action, Params: params, Deadline: sent.Add(o.deadline), IdempotencyKey: o.key}
	call, cancel := o.call(ctx)
	defer cancel()
	res, err := hub.SendCommand(call, t, cmd, d.cx.User)
	if err != nil {
		return fmt.Errorf("send %s to %s: %w", action, t, err)
	}
	rep := commandReport{ID: res.ID().String(), Thing: t.String(), Action: action, Params: params,
		Deadline: cmd.Deadline.UTC(), SentAt: sent.UTC(), Status: "pending"}
	if !o.json() {
		fmt.Fprintf(a.stdout, "sent      %s %s to %s (deadline %s)\n", rep.ID, action, t, rep.Deadline.Format(time.RFC3339))
	}
	if !o.wait {
		if o.json() {
			return a.writeJSON(rep)
		}
		return nil
	}
	out, err := res.WaitAccepted(call)
	if err == nil && !out.Final() {
		rep.Status, rep.AcceptedAfter = string(out.Status), since(sent)
		if !o.json() {
			fmt.Fprintf(a.stdout, "accepted  after %s\n", rep.AcceptedAfter)
		}
		out, err = res.Wait(call)
	}
	if err != nil {
		if o.json() {
			_ = a.writeJSON(rep)
		}
		return fmt.Errorf("waiting for the outcome of %s: %w", rep.ID, err)
	}
	rep.Status, rep.Error, rep.DoneAfter = string(out.Status), out.Error, since(sent)
	if o.json() {
		if err := a.writeJSON(rep); err != nil {
			return err
		}
	} else {
		line := fmt.Sprintf("%-9s after %s", rep.Status, rep.DoneAfter)
		if rep.Error != "" {
			line += ": " + rep.Error
		}
		fmt.Fprintln(a.stdout, line)
	}
	if out.Status != message.AckCompleted {
		return &errCommandNotCompleted{status: string(out.Status), text: out.Error}
	}
	return nil
}

// newIdempotencyKey returns a new key for a command sent without
// --idempotency-key.
func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "lintelctl-" + hex.EncodeToString(b[:])
}

// since renders the time since t, to the millisecond.
func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }
