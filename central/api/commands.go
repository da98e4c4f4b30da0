package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"time"

	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// defaultCommandDeadline is how long a command stays valid when the
// request gives no deadline.
const defaultCommandDeadline = time.Minute

// CommandReport is a command and where it stands, as its acks at central
// tell.
type CommandReport struct {
	ID       string            `json:"id"`                // its id
	Thing    string            `json:"thing"`             // the thing, EDGE.TYPE.CODE
	Action   string            `json:"action,omitempty"`  // what the command asks, such as unlock
	Params   map[string]string `json:"params,omitempty"`  // the command's parameters
	Deadline time.Time         `json:"deadline,omitzero"` // when the command expires
	// Status is pending, accepted, completed, failed, rejected or expired.
	Status  string    `json:"status"`
	Final   bool      `json:"final"`             // whether the status is final
	Error   string    `json:"error,omitempty"`   // the deciding ack's error, if any
	AckedAt time.Time `json:"acked_at,omitzero"` // when the deciding ack was sent, by its sender's clock
	// AckCount is how many acks of the command central received. Acks
	// lists them on the status route (GET /commands/{id}), oldest first:
	// from PostgreSQL when central has a database (as far as its ingest
	// has stored them), otherwise from central's event stream.
	AckCount int        `json:"ack_count"`
	Acks     []AckItem  `json:"acks,omitempty"`    // see AckCount
	Waited   string     `json:"waited,omitempty"`  // how the wait ended: "final", or "timeout"
	Sent     *time.Time `json:"sent_at,omitempty"` // when central sent it
}

// AckItem is one ack of a command.
type AckItem struct {
	ID         string    `json:"id"`              // its id
	Time       time.Time `json:"time"`            // when the thing acked, by its clock
	Status     string    `json:"status"`          // accepted, completed, failed, rejected or expired
	Error      string    `json:"error,omitempty"` // the ack's error, if any
	ReceivedAt time.Time `json:"received_at"`     // when central received it
}

func (r *CommandReport) fill(o edgekit.CommandOutcome) {
	r.Status, r.Final, r.Error, r.AckedAt, r.AckCount = outcomeStatus(o), o.Final(), o.Error, o.AckedAt, o.Acks
}

// waitOf reads the wait query parameter: zero for none, at most MaxWait.
func (s *Server) waitOf(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > s.cfg.MaxWait {
		return 0, invalid("wait", "wait %q: want a duration from 0s to %s", v, s.cfg.MaxWait)
	}
	return d, nil
}

func (s *Server) sendCommand(c *call) (any, error) {
	wait, err := s.waitOf(c.r)
	if err != nil {
		return nil, err
	}
	var b struct {
		Thing          string            `json:"thing"`
		Action         string            `json:"action"`
		Params         map[string]string `json:"params"`
		Deadline       string            `json:"deadline"`
		IdempotencyKey string            `json:"idempotency_key"`
	}
	if err := c.decode(&b); err != nil {
		return nil, err
	}
	if b.Thing == "" {
		return nil, invalid("thing", "give the thing: EDGE.TYPE.CODE")
	}
	t, err := s.parseThingRef("thing", b.Thing)
	if err != nil {
		return nil, err
	}
	if err := topic.ValidateToken(topic.PartThingCode, b.Action); err != nil {
		return nil, invalid("action", "action %q: %v", b.Action, err)
	}
	dl := defaultCommandDeadline
	if b.Deadline != "" {
		if dl, err = time.ParseDuration(b.Deadline); err != nil || dl <= 0 || dl > 24*time.Hour {
			return nil, invalid("deadline", "deadline %q: want a duration from 1s to 24h", b.Deadline)
		}
	}
	if b.IdempotencyKey == "" {
		var k [16]byte
		_, _ = rand.Read(k[:])
		b.IdempotencyKey = "api-" + hex.EncodeToString(k[:])
	} else if len(b.IdempotencyKey) > 128 {
		return nil, invalid("idempotency_key", "at most 128 bytes")
	}
	hub, err := s.hub()
	if err != nil {
		return nil, err
	}
	sent := time.Now()
	cmd := message.Command{Action: b.Action, Params: b.Params, Deadline: sent.Add(dl), IdempotencyKey: b.IdempotencyKey}
	ctx, cancel := s.call(c.r.Context())
	res, err := hub.SendCommand(ctx, t, cmd, c.p.who())
	cancel()
	if err != nil {
		return nil, err
	}
	rep := &CommandReport{ID: res.ID().String(), Thing: thingRef(t), Action: b.Action, Params: b.Params,
		Deadline: cmd.Deadline.UTC(), Status: "pending", Sent: &sent}
	c.status = http.StatusAccepted
	c.change = &change{object: "thing " + thingRef(t) + " command " + rep.ID, after: rep}
	if wait > 0 {
		wctx, cancel := context.WithTimeout(c.r.Context(), wait)
		out, werr := res.Wait(wctx)
		cancel()
		rep.fill(out)
		rep.Waited = "final"
		if werr != nil {
			rep.Waited = "timeout"
		}
		if rep.Final {
			c.status = http.StatusOK
		}
	}
	return rep, nil
}

func (s *Server) getCommand(c *call) (any, error) {
	id, err := message.ParseID(c.r.PathValue("id"))
	if err != nil {
		return nil, invalid("id", "command id %q: %v", c.r.PathValue("id"), err)
	}
	ref := c.r.URL.Query().Get("thing")
	if ref == "" {
		return nil, invalid("thing", "give the thing the command was sent to: thing=EDGE.TYPE.CODE")
	}
	t, err := s.parseThingRef("thing", ref)
	if err != nil {
		return nil, err
	}
	wait, err := s.waitOf(c.r)
	if err != nil {
		return nil, err
	}
	hub, err := s.hub()
	if err != nil {
		return nil, err
	}
	rep := &CommandReport{ID: id.String(), Thing: thingRef(t)}
	ctx, cancel := s.call(c.r.Context())
	out, err := hub.CommandStatus(ctx, t, id)
	cancel()
	if err != nil {
		return nil, err
	}
	if wait > 0 && !out.Final() {
		// Poll the status: nothing is held between requests, so a caller
		// may give up and ask again, as Hub.CommandStatus allows.
		end := time.Now().Add(wait)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		rep.Waited = "timeout"
	loop:
		for time.Now().Before(end) {
			select {
			case <-c.r.Context().Done():
				break loop
			case <-tick.C:
			}
			pctx, pcancel := s.call(c.r.Context())
			o, err := hub.CommandStatus(pctx, t, id)
			pcancel()
			if err != nil {
				return nil, err
			}
			if out = o; out.Final() {
				rep.Waited = "final"
				break
			}
		}
	}
	rep.fill(out)
	if st := s.central.Store(); st != nil {
		actx, acancel := s.call(c.r.Context()) // the wait may have used up ctx
		defer acancel()
		acks, err := st.CommandAcks(actx, id)
		if err != nil {
			return nil, err
		}
		for _, a := range acks {
			rep.Acks = append(rep.Acks, AckItem{ID: a.ID.String(), Time: a.Time, Status: string(a.Status), Error: a.Error, ReceivedAt: a.ReceivedAt})
		}
	} else {
		// The acks CommandStatus read, in storage's order: by time, then id.
		for _, a := range out.AckList {
			rep.Acks = append(rep.Acks, AckItem{ID: a.ID.String(), Time: a.Time, Status: string(a.Status), Error: a.Error, ReceivedAt: a.ReceivedAt})
		}
		slices.SortStableFunc(rep.Acks, func(a, b AckItem) int {
			return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
		})
	}
	return rep, nil
}
