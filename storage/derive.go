package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Derived rows: an event may add one row to a derived table, written in
// the transaction that stores the event. See docs/storage-model.md,
// "Derived tables".

// derivedRow is what the event at index adds to the derived tables: one of
// a command, an ack, a liveness event or an access decision.
type derivedRow struct {
	index    int
	command  *Command
	ack      *CommandAck
	liveness *LivenessEvent
	access   *AccessDecision
}

// Skipped is an event of a batch that was stored without the derived row
// it would have made, such as an ack whose payload does not decode.
type Skipped struct {
	Index int   // its index in the batch
	Err   error // why the derived row was left out
}

// errDerived is wrapped by the reasons of [Skipped] derived rows.
var errDerived = errors.New("storage: derived row skipped")

// derive returns the derived rows of events, in index order, and the
// events that should have made one but cannot. Events of other kinds cost
// one comparison of their message type.
func (s *Store) derive(events []Event) (rows []derivedRow, skipped []Skipped) {
	for i := range events {
		e := &events[i]
		var r derivedRow
		var err error
		switch {
		case e.MessageType == topic.Ack:
			r.ack, err = s.deriveAck(e)
		case e.MessageType == topic.Command:
			r.command, err = s.deriveCommand(e)
		case e.MessageType == topic.Event && e.Name == message.NameCommandSent && e.Thing.Type == topic.ThingTypeSystem:
			r.command, err = s.deriveCommandSent(e)
		case e.MessageType == topic.State && livenessKinds[e.Name] != "":
			r.liveness = s.deriveLiveness(e)
		case e.MessageType == topic.Event && e.Thing.Type == topic.ThingTypeAccess &&
			(e.Name == message.NameAccessGranted || e.Name == message.NameAccessDenied):
			// Only the edge's access service records decisions, on the
			// reserved "_access" thing of the reader; a device that names
			// its own event so is not one.
			r.access, err = s.deriveAccess(e)
		default:
			continue
		}
		if err != nil {
			skipped = append(skipped, Skipped{Index: i, Err: fmt.Errorf("%w: %s %q: %w", errDerived, e.MessageType, e.Name, err)})
			continue
		}
		r.index = i
		rows = append(rows, r)
	}
	return rows, skipped
}

// derivedIn returns the rows of rows whose index lies in [lo, hi).
func derivedIn(rows []derivedRow, lo, hi int) []derivedRow {
	i := sort.Search(len(rows), func(k int) bool { return rows[k].index >= lo })
	j := sort.Search(len(rows), func(k int) bool { return rows[k].index >= hi })
	return rows[i:j]
}

var livenessKinds = map[string]LivenessKind{
	message.NameThingBirth:     LivenessBirth,
	message.NameThingHeartbeat: LivenessHeartbeat,
	message.NameThingDeath:     LivenessDeath,
}

// payloadOf decodes the JSON payload of e into a T, as message.DecodePayload does.
func payloadOf[T any](e *Event) (T, error) {
	env := message.Envelope{ContentType: message.ContentTypeJSON, Payload: e.Payload}
	return message.DecodePayload[T](&env)
}

func (s *Store) deriveAck(e *Event) (*CommandAck, error) {
	a, err := payloadOf[message.Ack](e)
	if err != nil {
		return nil, err
	}
	cmd := e.CorrelationID
	switch pid := a.CommandID; {
	case cmd.IsZero():
		cmd = pid
	case !pid.IsZero() && pid != cmd:
		return nil, fmt.Errorf("correlation id %s but payload command_id %s", cmd, pid)
	}
	if cmd.IsZero() {
		return nil, errors.New("no command id")
	}
	st := CommandStatus(a.Status)
	switch st {
	case CommandAccepted, CommandCompleted, CommandFailed, CommandRejected, CommandExpired:
	default:
		return nil, fmt.Errorf("unknown status %q", clean(string(a.Status)))
	}
	return &CommandAck{ID: e.ID, CommandID: cmd, Time: s.storedTime(e), Status: st,
		Error: clean(a.Error), ReceivedAt: e.ReceivedAt}, nil
}

func (s *Store) deriveCommand(e *Event) (*Command, error) {
	c, err := payloadOf[message.Command](e)
	if err != nil {
		return nil, err
	}
	if c.Action == "" {
		return nil, errors.New("no action")
	}
	cmd := &Command{ID: e.ID, Thing: e.Thing, Action: clean(c.Action), RequestedBy: clean(c.RequestedBy),
		RequestedAt: s.storedTime(e), Deadline: c.Deadline}
	if !e.CorrelationID.IsZero() {
		cmd.CorrelationID = e.CorrelationID.String()
	}
	if len(c.Params) > 0 {
		params := make(map[string]string, len(c.Params))
		for k, v := range c.Params {
			params[clean(k)] = clean(v)
		}
		if cmd.Params, err = json.Marshal(params); err != nil {
			return nil, err
		}
	}
	return cmd, nil
}

// deriveCommandSent makes the command that central's record e (a
// message.CommandSent on a system thing of the command's edge, a subject
// only central writes) says it sent: keyed by the command's own ID, so the
// record and the command envelope itself, if both reach the stream, make
// one row.
func (s *Store) deriveCommandSent(e *Event) (*Command, error) {
	rec, err := payloadOf[message.CommandSent](e)
	if err != nil {
		return nil, err
	}
	if rec.CommandID.IsZero() {
		return nil, errors.New("no command id")
	}
	subj, err := topic.Parse(rec.Subject)
	if err != nil {
		return nil, fmt.Errorf("command subject: %w", err)
	}
	if subj.MessageType != topic.Command || subj.Thing.Org != e.Thing.Org || subj.Thing.Edge != e.Thing.Edge {
		return nil, fmt.Errorf("record on %s.%s names command subject %s", e.Thing.Org, e.Thing.Edge, clean(rec.Subject))
	}
	c := &Event{ID: rec.CommandID, Thing: subj.Thing, MessageType: topic.Command,
		DeviceTime: rec.Time, ReceivedAt: e.ReceivedAt}
	if c.DeviceTime.IsZero() {
		c.DeviceTime = e.DeviceTime
	}
	if c.Payload, err = json.Marshal(rec.Command); err != nil {
		return nil, err
	}
	return s.deriveCommand(c)
}

// deriveLiveness never fails: the kind is the event's name, and the boot
// is the payload's, or else the envelope's.
func (s *Store) deriveLiveness(e *Event) *LivenessEvent {
	boot := e.BootID
	var pb message.ID
	switch kind := livenessKinds[e.Name]; kind {
	case LivenessBirth:
		p, _ := payloadOf[message.Birth](e)
		pb = p.BootID
	case LivenessHeartbeat:
		p, _ := payloadOf[message.Heartbeat](e)
		pb = p.BootID
	case LivenessDeath:
		p, _ := payloadOf[message.Death](e)
		pb = p.BootID
	}
	if !pb.IsZero() {
		boot = pb
	}
	l := &LivenessEvent{ID: e.ID, Thing: e.Thing, Kind: livenessKinds[e.Name], Time: s.storedTime(e), ReceivedAt: e.ReceivedAt}
	if !boot.IsZero() {
		l.BootID = boot.String()
	}
	return l
}

func (s *Store) deriveAccess(e *Event) (*AccessDecision, error) {
	d, err := payloadOf[message.AccessDecision](e)
	if err != nil {
		return nil, err
	}
	if d.Granted != (e.Name == message.NameAccessGranted) {
		return nil, fmt.Errorf("payload says granted=%t", d.Granted)
	}
	if d.Door == "" {
		return nil, errors.New("no door")
	}
	if d.CredentialSetVersion > math.MaxInt64 {
		return nil, fmt.Errorf("credential set version %d out of range", d.CredentialSetVersion)
	}
	if d.AuditSeq > math.MaxInt64 {
		return nil, fmt.Errorf("audit seq %d out of range", d.AuditSeq)
	}
	// Older edges put their only reference, in place of the credential, in
	// Holder and had no Credential field: it is the credential's reference
	// then, not a holder.
	cred, holder := d.Credential, d.Holder
	if cred == "" {
		cred, holder = d.Holder, ""
	}
	return &AccessDecision{ID: e.ID, Time: s.storedTime(e), Org: e.Thing.Org, Edge: e.Thing.Edge,
		Door: clean(d.Door), Reader: e.Thing.Code, CredentialHash: clean(cred), Holder: clean(holder),
		Granted: d.Granted, Reason: clean(string(d.Reason)), CredentialSetVersion: int64(d.CredentialSetVersion),
		Offline: d.Offline, Fallback: d.Fallback, AuditSeq: int64(d.AuditSeq), ReceivedAt: e.ReceivedAt}, nil
}

// clean makes s acceptable to a text column: valid UTF-8 without NUL.
func clean(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// lockCommands takes transaction-scoped advisory locks on command ids
// (class 7813, then a hash of the id), in a fixed order, so that a command
// and its acks recorded concurrently never both miss each other when the
// command's status is derived, and concurrent batches cannot deadlock on
// them.
const lockCommands = `
SELECT pg_advisory_xact_lock(7813, k)
FROM (SELECT DISTINCT hashtext(id::text) AS k FROM unnest($1::uuid[]) AS id ORDER BY 1) s`

const insertCommands = `
INSERT INTO lintel.commands (id, org, edge, thing_type, thing_code, action, params,
    requested_by, requested_at, deadline, correlation_id)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
    $8::text[], $9::timestamptz[], $10::timestamptz[], $11::text[])
ON CONFLICT (id) DO NOTHING`

const insertAcks = `
INSERT INTO lintel.command_acks (id, command_id, time, status, error, received_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::timestamptz[])
ON CONFLICT (id) DO NOTHING`

// refreshCommands derives commands' status from their acks: the latest
// final ack if any, else the latest ack. Acks may arrive in any order, and
// before the command itself is recorded.
const refreshCommands = `
UPDATE lintel.commands c SET status = a.status, acked_at = a.time, error = a.error, updated_at = now()
FROM (SELECT DISTINCT ON (command_id) command_id, status, time, error FROM lintel.command_acks
      WHERE command_id = ANY($1::uuid[])
      ORDER BY command_id, (status <> 'accepted') DESC, time DESC, id DESC) a
WHERE c.id = a.command_id AND (c.status, c.acked_at, c.error) IS DISTINCT FROM (a.status, a.time, a.error)`

// upsertLiveness records liveness events and folds the new ones into each
// thing's current liveness, in key order so that concurrent batches lock
// rows in the same order. A thing's boot becomes that of its latest
// message naming one.
const upsertLiveness = `
WITH ins AS (
    INSERT INTO lintel.liveness_events (id, time, org, edge, thing_type, thing_code, kind, boot_id, received_at)
    SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::timestamptz[])
    ON CONFLICT (id) DO NOTHING
    RETURNING time, org, edge, thing_type, thing_code, kind, boot_id),
agg AS (
    SELECT org, edge, thing_type, thing_code,
        COALESCE((array_agg(boot_id ORDER BY time DESC) FILTER (WHERE boot_id <> ''))[1], '') AS boot_id,
        max(time) FILTER (WHERE kind = 'birth') AS born_at,
        max(time) AS last_seen_at,
        max(time) FILTER (WHERE kind = 'death') AS died_at
    FROM ins GROUP BY org, edge, thing_type, thing_code),
up AS (
    INSERT INTO lintel.liveness AS l (org, edge, thing_type, thing_code, boot_id, born_at, last_seen_at, died_at)
    SELECT org, edge, thing_type, thing_code, boot_id, born_at, last_seen_at, died_at FROM agg
    ORDER BY org, edge, thing_type, thing_code
    ON CONFLICT (org, edge, thing_type, thing_code) DO UPDATE SET
        boot_id = CASE WHEN excluded.boot_id <> '' AND excluded.last_seen_at >= l.last_seen_at
            THEN excluded.boot_id ELSE l.boot_id END,
        born_at = GREATEST(l.born_at, excluded.born_at),
        last_seen_at = GREATEST(l.last_seen_at, excluded.last_seen_at),
        died_at = GREATEST(l.died_at, excluded.died_at),
        updated_at = now())
SELECT count(*) FROM ins`

const insertAccess = `
INSERT INTO lintel.access_decisions (id, time, org, edge, door, reader, credential_hash, holder, granted, reason,
    credential_set_version, offline, fallback, audit_seq, received_at)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::boolean[], $10::text[], $11::bigint[], $12::boolean[], $13::boolean[], $14::bigint[],
    $15::timestamptz[])
ON CONFLICT (id) DO NOTHING`

// writeDerived writes rows in tx, one multi-row statement per kind, all
// sent in one round trip, and returns how many command, ack, liveness
// event and access decision rows were new. Every statement is idempotent:
// rows are keyed on their envelope id (or command id) and a row already
// stored is left alone.
func writeDerived(ctx context.Context, tx pgx.Tx, rows []derivedRow) (int, error) {
	b := &pgx.Batch{}
	var written int
	queueDerived(b, rows, &written)
	if b.Len() == 0 {
		return 0, nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	return written, nil
}

// queueDerived queues on b the statements that write rows (see
// writeDerived); once b's results are read, *written holds how many rows
// were new.
func queueDerived(b *pgx.Batch, rows []derivedRow, written *int) {
	if len(rows) == 0 {
		return
	}
	var (
		cmds    []*Command
		acks    []*CommandAck
		lives   []*LivenessEvent
		access  []*AccessDecision
		touched [][16]byte // command ids whose status may change
	)
	for i := range rows {
		r := &rows[i]
		switch {
		case r.command != nil:
			cmds = append(cmds, r.command)
			touched = append(touched, r.command.ID)
		case r.ack != nil:
			acks = append(acks, r.ack)
			touched = append(touched, r.ack.CommandID)
		case r.liveness != nil:
			lives = append(lives, r.liveness)
		case r.access != nil:
			access = append(access, r.access)
		}
	}
	queue := func(what, sql string, args ...any) {
		b.Queue(sql, args...).Fn = execFn("storage: write derived rows", func(tag pgconn.CommandTag) {
			if what != "" {
				*written += int(tag.RowsAffected())
			}
		})
	}
	if len(touched) > 0 {
		queue("", lockCommands, touched)
	}
	if n := len(cmds); n > 0 {
		ids, orgs, edges, types, codes := make([][16]byte, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		actions, params, by, at := make([]string, n), make([][]byte, n), make([]string, n), make([]time.Time, n)
		deadlines, corr := make([]*time.Time, n), make([]string, n)
		for i, c := range cmds {
			ids[i], orgs[i], edges[i], types[i], codes[i] = c.ID, c.Thing.Org, c.Thing.Edge, c.Thing.Type, c.Thing.Code
			actions[i], by[i], at[i], corr[i] = c.Action, c.RequestedBy, c.RequestedAt, c.CorrelationID
			if c.Params != nil {
				params[i] = c.Params
			}
			if !c.Deadline.IsZero() {
				deadlines[i] = &c.Deadline
			}
		}
		queue("commands", insertCommands, ids, orgs, edges, types, codes, actions, params, by, at, deadlines, corr)
	}
	if n := len(acks); n > 0 {
		ids, cmdIDs, times, sts, errs, recv := make([][16]byte, n), make([][16]byte, n), make([]time.Time, n), make([]string, n), make([]string, n), make([]time.Time, n)
		for i, a := range acks {
			ids[i], cmdIDs[i], times[i], sts[i], errs[i], recv[i] = a.ID, a.CommandID, a.Time, string(a.Status), a.Error, a.ReceivedAt
		}
		queue("acks", insertAcks, ids, cmdIDs, times, sts, errs, recv)
	}
	if len(touched) > 0 {
		queue("", refreshCommands, touched)
	}
	if n := len(lives); n > 0 {
		ids, times, orgs, edges, types, codes := make([][16]byte, n), make([]time.Time, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		kinds, boots, recv := make([]string, n), make([]string, n), make([]time.Time, n)
		for i, l := range lives {
			ids[i], times[i], orgs[i], edges[i], types[i], codes[i] = l.ID, l.Time, l.Thing.Org, l.Thing.Edge, l.Thing.Type, l.Thing.Code
			kinds[i], boots[i], recv[i] = string(l.Kind), l.BootID, l.ReceivedAt
		}
		b.Queue(upsertLiveness, ids, times, orgs, edges, types, codes, kinds, boots, recv).QueryRow(func(row pgx.Row) error {
			var n int
			if err := row.Scan(&n); err != nil {
				return fmt.Errorf("storage: write derived rows: %w", err)
			}
			*written += n
			return nil
		})
	}
	if n := len(access); n > 0 {
		ids, times, orgs, edges, doors, readers := make([][16]byte, n), make([]time.Time, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		creds, holders, granted, reasons, versions := make([]string, n), make([]string, n), make([]bool, n), make([]string, n), make([]int64, n)
		offline, fallback, seqs, recv := make([]bool, n), make([]bool, n), make([]int64, n), make([]time.Time, n)
		for i, d := range access {
			ids[i], times[i], orgs[i], edges[i], doors[i], readers[i] = d.ID, d.Time, d.Org, d.Edge, d.Door, d.Reader
			creds[i], holders[i], granted[i], reasons[i], versions[i] = d.CredentialHash, d.Holder, d.Granted, d.Reason, d.CredentialSetVersion
			offline[i], fallback[i], seqs[i], recv[i] = d.Offline, d.Fallback, d.AuditSeq, d.ReceivedAt
		}
		queue("access decisions", insertAccess, ids, times, orgs, edges, doors, readers, creds, holders, granted, reasons,
			versions, offline, fallback, seqs, recv)
	}
}

// recordDerived writes one derived row in a transaction of its own.
func (s *Store) recordDerived(ctx context.Context, r derivedRow) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := writeDerived(ctx, tx, []derivedRow{r})
		return err
	})
	if undefinedObject(err) {
		return queryErr("record", err)
	}
	return err
}
