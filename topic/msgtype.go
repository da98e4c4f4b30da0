package topic

import (
	"fmt"
	"slices"
)

// MessageType is the last token of a subject: what kind of message it carries.
type MessageType string

// The built-in message types.
const (
	// Event is a discrete occurrence reported by a thing, such as
	// access.granted or door.forced_open. Events are persisted and audited.
	Event MessageType = "evt"
	// Telemetry is a periodic measurement, such as a temperature reading.
	Telemetry MessageType = "tlm"
	// State is a thing's current state, such as a door's open/locked state, or
	// its liveness (birth, heartbeat, death).
	State MessageType = "state"
	// Command is an instruction to a thing, such as unlock. Only the edge
	// service publishes commands to devices.
	Command MessageType = "cmd"
	// Ack acknowledges a command: accepted, completed, failed, rejected or expired.
	Ack MessageType = "ack"
	// Config is configuration pushed to a thing.
	Config MessageType = "cfg"
	// Request is a request from a thing that expects a reply, such as a card
	// reader's access request.
	Request MessageType = "req"
)

// builtinTypes lists the built-in message types in documentation order.
var builtinTypes = [...]MessageType{Event, Telemetry, State, Command, Ack, Config, Request}

// builtin is the registry of the built-in message types. It is never modified.
var builtin = &Registry{types: builtinTypes[:]}

// MessageTypes returns the built-in message types.
func MessageTypes() []MessageType { return slices.Clone(builtinTypes[:]) }

// Registry is an immutable set of known message types: the built-in ones plus
// any an application adds with [NewRegistry]. Its methods are the
// registry-aware forms of the package functions, and are safe for concurrent use.
type Registry struct {
	types []MessageType // small: a linear scan beats a map
}

// NewRegistry returns a registry of the built-in message types plus extra.
// Each extra type must be a valid, non-reserved token not already known.
func NewRegistry(extra ...MessageType) (*Registry, error) {
	r := &Registry{types: slices.Clone(builtinTypes[:])}
	for _, mt := range extra {
		if err := ValidateToken(PartMessageType, string(mt)); err != nil {
			return nil, err
		}
		if IsReserved(string(mt)) {
			return nil, &Error{Part: PartMessageType, Value: string(mt), Reason: "names beginning with '_' are reserved", Err: ErrReserved}
		}
		if r.Known(mt) {
			return nil, &Error{Part: PartMessageType, Value: string(mt), Reason: "already registered", Err: ErrDuplicate}
		}
		r.types = append(r.types, mt)
	}
	return r, nil
}

// Known reports whether mt is in the registry. A nil or zero Registry knows
// the built-in message types.
func (r *Registry) Known(mt MessageType) bool {
	for _, t := range r.list() {
		if t == mt {
			return true
		}
	}
	return false
}

// Types returns the registry's message types, built-in ones first.
func (r *Registry) Types() []MessageType { return slices.Clone(r.list()) }

// list returns the registry's types; a nil or zero Registry has the built-in ones.
func (r *Registry) list() []MessageType {
	if r == nil || len(r.types) == 0 {
		return builtinTypes[:]
	}
	return r.types
}

func (r *Registry) validateType(mt MessageType) error {
	if err := ValidateToken(PartMessageType, string(mt)); err != nil {
		return err
	}
	if !r.Known(mt) {
		return &Error{Part: PartMessageType, Value: string(mt), Reason: fmt.Sprintf("unknown message type, want one of %v", r.list()), Err: ErrUnknownMessageType}
	}
	return nil
}

// Validate reports whether s is a valid subject whose message type is in r.
func (r *Registry) Validate(s Subject) error {
	if err := s.Thing.Validate(); err != nil {
		return err
	}
	return r.validateType(s.MessageType)
}

// Parse parses and validates a subject whose message type is in r. The
// returned parts share memory with str.
func (r *Registry) Parse(str string) (Subject, error) {
	toks, n := split(str)
	if n != NumTokens {
		return Subject{}, tokenCountError(PartSubject, str, n, "5: org.edge.thing_type.thing_code.message_type")
	}
	s := Subject{
		Thing:       Thing{Org: toks[0], Edge: toks[1], Type: toks[2], Code: toks[3]},
		MessageType: MessageType(toks[4]),
	}
	if err := r.Validate(s); err != nil {
		return Subject{}, err
	}
	return s, nil
}
