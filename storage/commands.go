package storage

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// CommandStatus is where a command stands.
type CommandStatus string

// Command statuses. Pending is the status of a command no ack has reached
// yet; the others are the statuses an ack reports. Completed, Failed,
// Rejected and Expired are final.
const (
	CommandPending   CommandStatus = "pending"
	CommandAccepted  CommandStatus = "accepted"
	CommandCompleted CommandStatus = "completed"
	CommandFailed    CommandStatus = "failed"
	CommandRejected  CommandStatus = "rejected"
	CommandExpired   CommandStatus = "expired"
)

// Final reports whether no later ack can change the status.
func (s CommandStatus) Final() bool { return s != CommandPending && s != CommandAccepted }

// Command is one command and how it ended: who asked what of which thing,
// when, by when, and the outcome reported by its acks.
type Command struct {
	ID            message.ID      // the command's envelope id
	Thing         topic.Thing     // the thing it was sent to
	Action        string          // e.g. "unlock"
	Params        json.RawMessage // the command's parameters as JSON; nil for none
	RequestedBy   string          // the user or service that asked
	RequestedAt   time.Time       // when it was sent; the ingest uses its event's stored time ([Event].Time)
	Deadline      time.Time       // zero for none
	CorrelationID string          // the command envelope's correlation id; "" for none

	// Set from the acks; ignored by RecordCommand.
	Status  CommandStatus
	AckedAt time.Time // time of the ack that decided Status; zero while pending
	Error   string    // the deciding ack's error, if any
}

// CommandAck is one acknowledgement of a command.
type CommandAck struct {
	ID         message.ID    // the ack's envelope id
	CommandID  message.ID    // the id of the command acknowledged
	Time       time.Time     // when the thing acknowledged
	Status     CommandStatus // the status the ack reports, such as [CommandCompleted]
	Error      string        // the ack's error, if any
	ReceivedAt time.Time     // when central received the ack; zero means now for [Store.RecordAck]
}

// RecordCommand records a command, as central does when it sends one;
// the ingest records the command envelopes (message type cmd) that reach
// its stream the same way. Recording it again is a no-op: the first
// record of a command id wins. Acks already recorded for it decide its
// status at once.
func (s *Store) RecordCommand(ctx context.Context, c Command) error {
	return s.recordDerived(ctx, derivedRow{command: &c})
}

// RecordAck records an acknowledgement and updates its command's status,
// as the ingest does for ack envelopes. Recording it again is a no-op.
func (s *Store) RecordAck(ctx context.Context, a CommandAck) error {
	if a.ReceivedAt.IsZero() {
		a.ReceivedAt = s.now()
	}
	return s.recordDerived(ctx, derivedRow{ack: &a})
}

// CommandQuery selects commands for the audit trail. Empty fields match anything.
type CommandQuery struct {
	// Org, Edge, ThingType and ThingCode select the thing the commands
	// were sent to.
	Org, Edge, ThingType, ThingCode string
	RequestedBy                     string // the user or service that asked
	Action                          string // e.g. "unlock"
	// From and To bound RequestedAt to [From, To).
	From, To time.Time
	// Descending returns the newest commands first.
	Descending bool
	// Limit and Cursor page as in [EventQuery].
	Limit  int
	Cursor string // see Limit
}

// CommandPage is one page of commands.
type CommandPage struct {
	Commands []Command // the page's commands, in the query's order
	Next     string    // cursor of the next page, or "" after the last one
}

// Commands returns the command audit trail: the commands matching q with
// their outcome, ordered by (RequestedAt, ID) and paginated by keyset. A
// command still pending or accepted after its deadline is reported as
// CommandExpired.
func (s *Store) Commands(ctx context.Context, q CommandQuery) (CommandPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return CommandPage{}, err
	}
	w := where{}
	w.eq("org", q.Org)
	w.eq("edge", q.Edge)
	w.eq("thing_type", q.ThingType)
	w.eq("thing_code", q.ThingCode)
	w.eq("requested_by", q.RequestedBy)
	w.eq("action", q.Action)
	w.timeRange("requested_at", q.From, q.To)
	if err := w.after(q.Cursor, "requested_at", "id", q.Descending); err != nil {
		return CommandPage{}, err
	}
	dir := "ASC"
	if q.Descending {
		dir = "DESC"
	}
	nowArg := w.arg(s.now())
	sql := `SELECT id, org, edge, thing_type, thing_code, action, params, requested_by, requested_at,
		deadline, correlation_id,
		CASE WHEN status IN ('pending', 'accepted') AND deadline < ` + nowArg + ` THEN 'expired' ELSE status END,
		acked_at, error
		FROM lintel.commands` + w.String() +
		" ORDER BY requested_at " + dir + ", id " + dir + " LIMIT " + strconv.Itoa(limit+1)
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return CommandPage{}, queryErr("query commands", err)
	}
	cmds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Command, error) {
		var c Command
		var params []byte
		var deadline, acked *time.Time
		var status string
		err := row.Scan(&c.ID, &c.Thing.Org, &c.Thing.Edge, &c.Thing.Type, &c.Thing.Code, &c.Action, &params,
			&c.RequestedBy, &c.RequestedAt, &deadline, &c.CorrelationID, &status, &acked, &c.Error)
		if params != nil {
			c.Params = params
		}
		if deadline != nil {
			c.Deadline = *deadline
		}
		if acked != nil {
			c.AckedAt = *acked
		}
		c.Status = CommandStatus(status)
		return c, err
	})
	if err != nil {
		return CommandPage{}, queryErr("query commands", err)
	}
	page := CommandPage{Commands: cmds}
	if len(cmds) > limit {
		page.Commands = cmds[:limit]
		last := page.Commands[limit-1]
		page.Next = encodeCursor(last.RequestedAt, last.ID)
	}
	return page, nil
}

// CommandAcks returns every ack recorded for a command, oldest first.
func (s *Store) CommandAcks(ctx context.Context, commandID message.ID) ([]CommandAck, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, command_id, time, status, error, received_at FROM lintel.command_acks
		WHERE command_id = $1 ORDER BY time, id`, commandID)
	if err != nil {
		return nil, queryErr("query acks", err)
	}
	acks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CommandAck, error) {
		var a CommandAck
		var status string
		err := row.Scan(&a.ID, &a.CommandID, &a.Time, &status, &a.Error, &a.ReceivedAt)
		a.Status = CommandStatus(status)
		return a, err
	})
	if err != nil {
		return nil, queryErr("query acks", err)
	}
	return acks, nil
}
