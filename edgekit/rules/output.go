package rules

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// RequestedByPrefix begins the RequestedBy of every command the engine
// sends, followed by the rule's name: "rule:door-forced".
const RequestedByPrefix = "rule:"

// publish runs every action of o, in order. Failures are counted and
// logged; the remaining actions still run.
func (e *Engine) publish(o *output) {
	now := e.cfg.Now()
	for i, a := range o.r.actions {
		var err error
		switch {
		case a.event != nil:
			err = e.publishEvent(o, a.event, now)
		case a.command != nil:
			err = e.publishCommand(o, i, a.command, now)
		}
		if err != nil {
			e.mu.Lock()
			o.st.stats.PublishErrors++
			e.totals.publishErrors++
			e.logDrop(o.st, dropPublish, now, "rule action not published", message.LogKeySubject, o.trig.subject,
				message.LogKeyMsgID, o.trig.id.String(), message.LogKeyError, err)
			e.mu.Unlock()
		}
	}
}

// publishEvent stores an event of the edge itself in its event stream.
func (e *Engine) publishEvent(o *output, a *eventAction, now time.Time) error {
	env := &message.Envelope{
		ID:            e.cfg.IDs.NewAt(now),
		Time:          now.UTC(),
		Source:        e.self,
		Type:          topic.Event,
		Name:          a.name,
		CorrelationID: o.trig.id,
	}
	data := make(map[string]any, len(a.data)+4)
	for k, v := range a.data {
		data[k] = v
	}
	data[DataRule] = o.r.name
	data[DataTriggerSubject] = o.trig.subject
	data[DataTriggerID] = o.trig.id.String()
	if o.r.forDur > 0 {
		data[DataKey] = o.trig.key
	}
	if err := message.SetPayload(env, data); err != nil {
		return err
	}
	msg, err := env.ToMsg(nil)
	if err != nil {
		return err
	}
	setLoopHeaders(msg, o)
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("rules: publish event %s on %s: %w", a.name, msg.Subject, err)
	}
	return nil
}

// publishCommand sends a command to its device's cmd subject, as only the
// edge service may.
func (e *Engine) publishCommand(o *output, i int, a *commandAction, now time.Time) error {
	env := &message.Envelope{
		ID:            e.cfg.IDs.NewAt(now),
		Time:          now.UTC(),
		Source:        a.target,
		Type:          topic.Command,
		Name:          message.NameCommand,
		CorrelationID: o.trig.id,
	}
	cmd := message.Command{
		Action:         a.action,
		Params:         a.params,
		Deadline:       now.Add(a.ttl).UTC(),
		IdempotencyKey: IdempotencyKey(o.r.name, o.trig.id, i),
		RequestedBy:    RequestedByPrefix + o.r.name,
	}
	if err := message.SetPayload(env, cmd); err != nil {
		return err
	}
	msg, err := env.ToMsg(nil)
	if err != nil {
		return err
	}
	setLoopHeaders(msg, o)
	if e.cfg.SignCommand == nil {
		return fmt.Errorf("rules: command %s to %s not sent: %w", a.action, a.target, ErrNoSigner)
	}
	if err := e.cfg.SignCommand(msg, a.target); err != nil {
		return fmt.Errorf("rules: sign command %s to %s: %w", a.action, a.target, err)
	}
	if err := e.cfg.Conn.PublishMsg(msg); err != nil {
		return fmt.Errorf("rules: publish command %s on %s: %w", a.action, msg.Subject, err)
	}
	return nil
}

// IdempotencyKey returns the idempotency key of the command of action
// index i of rule, fired by the message with ID trigger:
// "rule:{rule}:{trigger}:{i}". A device that sees a command again (the
// same message delivered twice) carries it out once.
func IdempotencyKey(rule string, trigger message.ID, i int) string {
	return RequestedByPrefix + rule + ":" + trigger.String() + ":" + strconv.Itoa(i)
}

// setLoopHeaders marks msg as an output of o's rule.
func setLoopHeaders(msg *nats.Msg, o *output) {
	chain := make([]string, 0, len(o.trig.chain)+1)
	chain = append(append(chain, o.trig.chain...), o.r.name)
	msg.Header.Set(HeaderRule, o.r.name)
	msg.Header.Set(HeaderRuleChain, strings.Join(chain, ","))
	msg.Header.Set(HeaderRuleDepth, strconv.Itoa(o.trig.depth+1))
}
