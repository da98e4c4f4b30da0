package rules

import (
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// exprEnv is the environment of every expression: the variables listed in
// the package documentation. Its fields are filled per message; those that
// cost an allocation (see needs) only when a rule uses them. It has no
// methods, which expr would offer as functions.
type exprEnv struct {
	Subject       string         `expr:"subject"`
	Org           string         `expr:"org"`
	Edge          string         `expr:"edge"`
	ThingType     string         `expr:"thing_type"`
	ThingCode     string         `expr:"thing_code"`
	Source        string         `expr:"source"`
	MessageType   string         `expr:"message_type"`
	Name          string         `expr:"name"`
	Time          time.Time      `expr:"time"`
	ID            string         `expr:"id"`
	CorrelationID string         `expr:"correlation_id"`
	Payload       map[string]any `expr:"payload"`
}

// needs says which of the costly variables an expression uses.
type needs uint8

const (
	needSubject needs = 1 << iota
	needSource
	needID
	needCorrelationID
	needPayload

	needAll = needSubject | needSource | needID | needCorrelationID | needPayload
)

// needsOf returns the costly variables that the compiled program p uses.
func needsOf(p *vm.Program) needs {
	if p == nil {
		return 0
	}
	var v needsVisitor
	n := p.Node()
	ast.Walk(&n, &v)
	return v.n
}

type needsVisitor struct{ n needs }

func (v *needsVisitor) Visit(node *ast.Node) {
	id, ok := (*node).(*ast.IdentifierNode)
	if !ok {
		return
	}
	switch id.Value {
	case "subject":
		v.n |= needSubject
	case "source":
		v.n |= needSource
	case "id":
		v.n |= needID
	case "correlation_id":
		v.n |= needCorrelationID
	case "payload":
		v.n |= needPayload
	case "$env":
		v.n |= needAll
	}
}

// Input is one message as the rules see it, with the scratch space that
// [RuleSet.Evaluate] reuses from one message to the next: reuse one Input
// for many messages to evaluate without allocating. An Input is not safe
// for concurrent use.
type Input struct {
	// Envelope is the message. Required.
	Envelope *message.Envelope
	// Subject is the subject the message arrived on, when known; it must be
	// the envelope's subject (message.DecodeMsg checks that). Empty means
	// the envelope's subject, built when a rule needs it.
	Subject string
	// Chain lists the rules whose firings produced the message, oldest
	// first (the engine reads it from the HeaderRuleChain header of
	// messages from the edge itself); empty for any other message. A rule
	// in Chain does not fire on the message.
	Chain []string
	// Payload, when not nil, is the message's payload already decoded; nil
	// means that Evaluate decodes Envelope.Payload (msgpack or JSON, as its
	// content type says) when a matching rule uses the payload.
	Payload map[string]any

	env        exprEnv
	have       needs
	payloadErr error
	vm         vm.VM
	out        []Firing
}

// reset prepares the environment for in.Envelope: the variables that cost
// nothing are set now, the others when a rule needs them.
func (in *Input) reset() {
	e := in.Envelope
	in.env = exprEnv{
		Org:         e.Source.Org,
		Edge:        e.Source.Edge,
		ThingType:   e.Source.Type,
		ThingCode:   e.Source.Code,
		MessageType: string(e.Type),
		Name:        e.Name,
		Time:        e.Time,
	}
	in.have = 0
	in.payloadErr = nil
	if in.Subject != "" {
		in.env.Subject = in.Subject
		in.env.Source = sourceOf(in.Subject)
		in.have |= needSubject | needSource
	}
	if e.CorrelationID.IsZero() {
		in.have |= needCorrelationID
	}
	if in.Payload != nil {
		in.env.Payload = in.Payload
		in.have |= needPayload
	}
}

// ensure fills the variables of n not yet filled. It reports the error of
// decoding the payload, when n needs it and it cannot be decoded.
func (in *Input) ensure(n needs) error {
	missing := n &^ in.have
	if missing == 0 {
		if n&needPayload != 0 {
			return in.payloadErr
		}
		return nil
	}
	e := in.Envelope
	if missing&needSubject != 0 {
		in.env.Subject = topic.Subject{Thing: e.Source, MessageType: e.Type}.String()
	}
	if missing&needSource != 0 {
		in.env.Source = e.Source.String()
	}
	if missing&needID != 0 {
		in.env.ID = e.ID.String()
	}
	if missing&needCorrelationID != 0 {
		in.env.CorrelationID = e.CorrelationID.String()
	}
	if missing&needPayload != 0 {
		in.env.Payload, in.payloadErr = decodePayload(e)
	}
	in.have |= missing
	if n&needPayload != 0 {
		return in.payloadErr
	}
	return nil
}

// sourceKey returns the message's source thing, "org.edge.type.code": the
// default key of a rule with For.
func (in *Input) sourceKey() string {
	_ = in.ensure(needSource)
	return in.env.Source
}

// decodePayload decodes e's payload into a map; an empty payload is a nil
// map.
func decodePayload(e *message.Envelope) (map[string]any, error) {
	if len(e.Payload) == 0 {
		return nil, nil
	}
	return message.DecodePayload[map[string]any](e)
}

// sourceOf returns the thing part of a subject: all but its last token.
func sourceOf(subject string) string {
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		return subject[:i]
	}
	return subject
}
