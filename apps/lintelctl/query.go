package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
)

// queryOptions are the filters and paging of "query".
type queryOptions struct {
	liveFlags
	since      time.Duration
	from, to   string
	thing      string
	edge       string
	msgType    string
	name       string
	door       string
	limit      int
	cursor     string
	descending bool
	org        string // the context's
	kind       string // events, decisions or commands: the route over the API
}

// queryPage is what "query --output json" prints: the page's items and the
// cursor of the next page ("" after the last).
type queryPage[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// eventRow is an event as "query events" prints it.
type eventRow struct {
	Time       time.Time       `json:"time"`
	ID         string          `json:"id"`
	Subject    string          `json:"subject"`
	Name       string          `json:"name,omitempty"`
	DeviceTime time.Time       `json:"device_time"`
	ReceivedAt time.Time       `json:"received_at"`
	Replayed   bool            `json:"replayed,omitempty"`
	Value      *float64        `json:"value,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// decisionRow is an access decision as "query decisions" prints it.
type decisionRow struct {
	Time       time.Time `json:"time"`
	ID         string    `json:"id"`
	Edge       string    `json:"edge"`
	Door       string    `json:"door"`
	Reader     string    `json:"reader"`
	Holder     string    `json:"holder,omitempty"`
	Credential string    `json:"credential_hash,omitempty"`
	Granted    bool      `json:"granted"`
	Reason     string    `json:"reason,omitempty"`
	Offline    bool      `json:"offline,omitempty"`
	Fallback   bool      `json:"fallback,omitempty"`
	SetVersion int64     `json:"credential_set_version,omitempty"`
}

// commandRow is a command as "query commands" prints it.
type commandRow struct {
	RequestedAt time.Time       `json:"requested_at"`
	ID          string          `json:"id"`
	Thing       string          `json:"thing"`
	Action      string          `json:"action"`
	Params      json.RawMessage `json:"params,omitempty"`
	RequestedBy string          `json:"requested_by,omitempty"`
	Status      string          `json:"status"`
	AckedAt     time.Time       `json:"acked_at,omitzero"`
	Error       string          `json:"error,omitempty"`
}

func (a *app) queryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Query central's history: events, access decisions, commands",
		Long: `query reads central's history in PostgreSQL (the context's database_url).
Results come a page at a time, oldest first (--desc for newest first);
when there are more, the cursor of the next page is printed (on stderr, or
as "next" with --output json): pass it as --cursor with the same filters.

Time range: --since (such as 1h) or --from and --to (RFC 3339); the
default is the last 24 hours.`,
		Example: `  lintelctl query events --thing hq.reader.r1 --since 1h
  lintelctl query decisions --edge hq --desc
  lintelctl query commands --thing hq.lock.l1 -o json`,
	}
	kinds := []struct {
		use, short, example string
		run                 func(context.Context, *queryOptions, *storage.Store) error
	}{
		{"events", "Events, telemetry, state and acks, by thing, type and name",
			"  lintelctl query events --thing hq.reader.r1 --type evt --since 1h\n  lintelctl query events --name temperature -o json | jq '.items[].value'",
			a.queryEvents},
		{"decisions", "Access decisions, by edge and door",
			"  lintelctl query decisions --edge hq --door front --desc --limit 20", a.queryDecisions},
		{"commands", "Commands and their outcome, by thing",
			"  lintelctl query commands --thing hq.lock.l1 --since 7d", a.queryCommands},
	}
	for _, k := range kinds {
		o := queryOptions{kind: k.use}
		c := &cobra.Command{
			Use:     k.use,
			Short:   k.short,
			Example: k.example,
			Args:    cobra.NoArgs,
			RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
				return a.query(cmd.Context(), &o, k.run)
			}),
		}
		addLiveFlags(c, &o.liveFlags)
		f := c.Flags()
		f.DurationVar(&o.since, "since", 0, "from this long ago until now (default 24h unless --from)")
		f.StringVar(&o.from, "from", "", "from this time on (RFC 3339)")
		f.StringVar(&o.to, "to", "", "until this time, exclusive (RFC 3339)")
		f.StringVar(&o.edge, "edge", "", "this edge only")
		f.IntVar(&o.limit, "limit", 50, fmt.Sprintf("page size, at most %d", storage.MaxLimit))
		f.StringVar(&o.cursor, "cursor", "", "the page after this cursor, from a previous page")
		f.BoolVar(&o.descending, "desc", false, "newest first")
		if k.use != "decisions" {
			f.StringVar(&o.thing, "thing", "", "this thing only: EDGE.TYPE.CODE")
		}
		if k.use == "events" {
			f.StringVar(&o.msgType, "type", "", "this message type only: evt, tlm, state, ack, …")
			f.StringVar(&o.name, "name", "", "this event name only, such as access.granted or temperature")
		}
		if k.use == "decisions" {
			f.StringVar(&o.door, "door", "", "this door only")
		}
		c.MarkFlagsMutuallyExclusive("since", "from")
		cmd.AddCommand(c)
	}
	return cmd
}

// window returns the query's time range.
func (o *queryOptions) window(now time.Time) (from, to time.Time, err error) {
	if o.since < 0 {
		return from, to, usagef("--since %v: want a positive duration", o.since)
	}
	if o.from != "" {
		if from, err = time.Parse(time.RFC3339, o.from); err != nil {
			return from, to, usagef("--from %q: want an RFC 3339 time such as 2026-12-01T08:00:00Z", o.from)
		}
	} else {
		since := o.since
		if since == 0 {
			since = 24 * time.Hour
		}
		from = now.Add(-since)
	}
	if o.to != "" {
		if to, err = time.Parse(time.RFC3339, o.to); err != nil {
			return from, to, usagef("--to %q: want an RFC 3339 time", o.to)
		}
		if !to.After(from) {
			return from, to, usagef("--to %s is not after the start %s", o.to, from.Format(time.RFC3339))
		}
	}
	return from, to, nil
}

// thingOf reads --thing (and --edge) into a thing whose empty fields match
// anything.
func (o *queryOptions) thingOf(org string) (topic.Thing, error) {
	t := topic.Thing{Org: org, Edge: o.edge}
	if o.thing == "" {
		return t, nil
	}
	full, err := parseThing(org, o.thing)
	if err != nil {
		return t, err
	}
	if o.edge != "" && o.edge != full.Edge {
		return t, usagef("--thing %s is not at --edge %s", o.thing, o.edge)
	}
	return full, nil
}

// scope returns the query's time range and thing.
func (o *queryOptions) scope() (from, to time.Time, t topic.Thing, err error) {
	if from, to, err = o.window(time.Now()); err != nil {
		return from, to, t, err
	}
	t, err = o.thingOf(o.org)
	return from, to, t, err
}

// query connects to central's database and runs one query.
func (a *app) query(ctx context.Context, o *queryOptions, run func(context.Context, *queryOptions, *storage.Store) error) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.limit <= 0 || o.limit > storage.MaxLimit {
		return usagef("--limit %d: want 1 to %d", o.limit, storage.MaxLimit)
	}
	if c, err := o.viaAPI(); err != nil || c != nil {
		if err != nil {
			return err
		}
		defer c.close()
		return a.queryAPI(ctx, o, c)
	}
	cx, err := o.loadContext()
	if err != nil {
		return err
	}
	if cx.DatabaseURL == "" {
		return errors.New("context: database_url is not set: central keeps no history in PostgreSQL here")
	}
	call, cancel := o.call(ctx)
	defer cancel()
	pool, err := pgxpool.New(call, cx.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	o.edge = strings.TrimSpace(o.edge)
	o.org = cx.Org
	return run(call, o, storage.New(pool, storage.Config{}))
}

func (a *app) queryEvents(ctx context.Context, o *queryOptions, st *storage.Store) error {
	from, to, t, err := o.scope()
	if err != nil {
		return err
	}
	page, err := st.Events(ctx, storage.EventQuery{Org: t.Org, Edge: t.Edge, ThingType: t.Type, ThingCode: t.Code,
		MessageType: topic.MessageType(o.msgType), Name: o.name, From: from, To: to,
		Descending: o.descending, Limit: o.limit, Cursor: o.cursor})
	if err != nil {
		return queryError(err)
	}
	rows := make([]eventRow, len(page.Events))
	for i, e := range page.Events {
		rows[i] = eventRow{Time: e.Time, ID: e.ID.String(), Subject: e.Thing.Subject(e.MessageType).String(), Name: e.Name,
			DeviceTime: e.DeviceTime, ReceivedAt: e.ReceivedAt, Replayed: e.Replayed, Value: e.Value, Payload: e.Payload}
	}
	return printPage(a, o, rows, page.Next, eventsHeader, eventRowLine)
}

// Headers of the query tables; eventRowLine, decisionRowLine and commandLine
// print their rows.
const (
	eventsHeader    = "TIME\tSUBJECT\tNAME\tPAYLOAD"
	decisionsHeader = "TIME\tEDGE\tDOOR\tREADER\tHOLDER\tDECISION\tOFFLINE"
	commandsHeader  = "REQUESTED\tTHING\tACTION\tBY\tSTATUS\tERROR"
)

func eventRowLine(r eventRow) string {
	return fmt.Sprintf("%s\t%s\t%s\t%s", r.Time.UTC().Format(time.RFC3339Nano), r.Subject, dash(r.Name), dash(string(r.Payload)))
}

func (a *app) queryDecisions(ctx context.Context, o *queryOptions, st *storage.Store) error {
	from, to, err := o.window(time.Now())
	if err != nil {
		return err
	}
	page, err := st.AccessDecisions(ctx, storage.AccessQuery{Org: o.org, Edge: o.edge, Door: o.door, From: from, To: to,
		Descending: o.descending, Limit: o.limit, Cursor: o.cursor})
	if err != nil {
		return queryError(err)
	}
	rows := make([]decisionRow, len(page.Decisions))
	for i, d := range page.Decisions {
		rows[i] = decisionRow{Time: d.Time, ID: d.ID.String(), Edge: d.Edge, Door: d.Door, Reader: d.Reader, Holder: d.Holder,
			Credential: d.CredentialHash, Granted: d.Granted, Reason: d.Reason, Offline: d.Offline, Fallback: d.Fallback,
			SetVersion: d.CredentialSetVersion}
	}
	return printPage(a, o, rows, page.Next, decisionsHeader, decisionRowLine)
}

func decisionRowLine(r decisionRow) string {
	dec := "granted"
	if !r.Granted {
		dec = "denied: " + r.Reason
	}
	if r.Fallback {
		dec += " (fallback)"
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%v", r.Time.UTC().Format(time.RFC3339), r.Edge, r.Door, r.Reader, dash(r.Holder), dec, r.Offline)
}

func (a *app) queryCommands(ctx context.Context, o *queryOptions, st *storage.Store) error {
	from, to, t, err := o.scope()
	if err != nil {
		return err
	}
	page, err := st.Commands(ctx, storage.CommandQuery{Org: t.Org, Edge: t.Edge, ThingType: t.Type, ThingCode: t.Code,
		From: from, To: to, Descending: o.descending, Limit: o.limit, Cursor: o.cursor})
	if err != nil {
		return queryError(err)
	}
	rows := make([]commandRow, len(page.Commands))
	for i, c := range page.Commands {
		rows[i] = commandRow{RequestedAt: c.RequestedAt, ID: c.ID.String(), Thing: c.Thing.String(), Action: c.Action,
			Params: c.Params, RequestedBy: c.RequestedBy, Status: string(c.Status), AckedAt: c.AckedAt, Error: c.Error}
	}
	return printPage(a, o, rows, page.Next, commandsHeader, commandRowLine)
}

func commandRowLine(r commandRow) string {
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", r.RequestedAt.UTC().Format(time.RFC3339), r.Thing, r.Action, dash(r.RequestedBy), r.Status, dash(r.Error))
}

// queryError marks the store's refusals of the query (a bad cursor) as
// usage errors.
func queryError(err error) error {
	if errors.Is(err, storage.ErrInvalidCursor) || errors.Is(err, storage.ErrInvalidQuery) {
		return &usageError{err: err}
	}
	return err
}

// printPage prints a page as JSON, or as a table with header and a line
// per row, and the next cursor on stderr.
func printPage[T any](a *app, o *queryOptions, rows []T, next, header string, line func(T) string) error {
	if o.json() {
		return a.writeJSON(queryPage[T]{Items: rows, Next: next})
	}
	tw := a.table()
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, line(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(a.stderr, "more: --cursor %s\n", next)
	}
	return nil
}
