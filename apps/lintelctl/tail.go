package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// tailBuffer is how many messages tail holds while it prints; a slower
// terminal than the deployment drops the excess, and tail says so.
const tailBuffer = 4096

type tailOptions struct {
	liveFlags
	count int
}

func (a *app) tailCommand() *cobra.Command {
	var o tailOptions
	cmd := &cobra.Command{
		Use:   "tail [FILTER]",
		Short: "Print the org's messages, decoded, as they arrive at central",
		Long: `tail subscribes at central to the org's subjects and prints each message
as it arrives, decoded: its time, subject, name and payload. FILTER is a
NATS subject filter, {org}.{edge}.{thing_type}.{thing_code}.{message_type};
one that does not start with the org is taken relative to it, so
"hq.reader.*.evt" means "acme.hq.reader.*.evt". Without one, tail prints
everything of the org.

With --output json it prints one CloudEvents 1.0 JSON object per line.
A message that does not decode is printed with its error, never dropped
silently. tail runs until interrupted, or until --count messages.

Through central's API (a context with api_url), tail reads the API's live
event stream instead: what central stores from the edges' event streams
(events, telemetry, state, acks), not other NATS traffic. The API filters
by edge or thing (the FILTER's literal edge, type and code), and tail
applies the whole FILTER to each event's subject; the CloudEvents JSON
then has no sequence or boot id.`,
		Example: `  lintelctl tail
  lintelctl tail 'hq.reader.*.evt'
  lintelctl tail 'acme.*.*.*.tlm' --output json | jq .data
  lintelctl tail --count 10`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			filter := ""
			if len(args) == 1 {
				filter = args[0]
			}
			return a.tail(cmd.Context(), &o, filter)
		}),
	}
	addLiveFlags(cmd, &o.liveFlags)
	cmd.Flags().IntVar(&o.count, "count", 0, "stop after this many messages (0: run until interrupted)")
	return cmd
}

// tailFilter returns the subject filter tail subscribes to.
func tailFilter(org, filter string) (string, error) {
	if filter == "" {
		return org + ".>", nil
	}
	if first, _, _ := strings.Cut(filter, "."); first != org {
		filter = org + "." + filter
	}
	if _, err := topic.ParseFilter(filter); err != nil {
		return "", usagef("filter %q: %v", filter, err)
	}
	return filter, nil
}

func (a *app) tail(ctx context.Context, o *tailOptions, filter string) error {
	if o.count < 0 {
		return usagef("--count %d: want 0 or more", o.count)
	}
	if c, err := o.viaAPI(); err != nil || c != nil {
		if err != nil {
			return err
		}
		defer c.close()
		return a.tailAPI(ctx, o, c, filter)
	}
	d, err := o.dial(ctx, "tail")
	if err != nil {
		return err
	}
	defer d.close()
	subject, err := tailFilter(d.cx.Org, filter)
	if err != nil {
		return err
	}
	sub, err := d.nc.SubscribeSync(subject)
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(tailBuffer, -1); err != nil {
		return err
	}
	// The subscription is in place once central has it: a permission
	// refusal shows here, not as silence.
	if err := d.nc.FlushTimeout(o.timeout); err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	if err := d.nc.LastError(); err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	if !o.json() {
		fmt.Fprintf(a.stderr, "tailing %s at %s (Ctrl-C to stop)\n", subject, d.nc.ConnectedUrlRedacted())
	}
	var line []byte
	reported := 0
	for n := 0; o.count == 0 || n < o.count; n++ {
		m, err := sub.NextMsgWithContext(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tail %s: %w", subject, err)
		}
		if dropped, _ := sub.Dropped(); dropped > reported {
			fmt.Fprintf(a.stderr, "tail: %d messages dropped: the terminal is slower than the deployment\n", dropped-reported)
			reported = dropped
		}
		line = appendTailLine(line[:0], m, o.json())
		if _, err := a.stdout.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// appendTailLine appends m's line: CloudEvents JSON, or a human line of
// time, subject, name and payload.
func appendTailLine(b []byte, m *nats.Msg, asJSON bool) []byte {
	e, err := message.FromMsg(m)
	if err != nil {
		if asJSON {
			v, _ := json.Marshal(map[string]string{"subject": m.Subject, "error": err.Error()})
			return append(append(b, v...), '\n')
		}
		return fmt.Appendf(b, "%-24s %s  (does not decode: %v)\n", "-", m.Subject, err)
	}
	if asJSON {
		n := len(b)
		if b, err = e.AppendCloudEvent(b); err != nil {
			v, _ := json.Marshal(map[string]string{"subject": m.Subject, "id": e.ID.String(), "error": err.Error()})
			b = append(b[:n], v...)
		}
		return append(b, '\n')
	}
	b = fmt.Appendf(b, "%-24s %s  %s", e.Time.UTC().Format(time.RFC3339Nano), m.Subject, e.Name)
	if len(e.Payload) > 0 {
		b = append(b, "  "...)
		b = appendPayload(b, e)
	}
	return append(b, '\n')
}

// appendPayload appends e's payload as compact JSON.
func appendPayload(b []byte, e *message.Envelope) []byte {
	v, err := message.DecodePayload[any](e)
	if err != nil {
		return fmt.Appendf(b, "(payload does not decode: %v)", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Appendf(b, "(payload: %v)", err)
	}
	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...)
}
