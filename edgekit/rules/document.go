package rules

import (
	"encoding/json"
	"fmt"
	"time"
)

// Document is a rule document, the JSON form that [Parse] reads:
//
//	{"rules": [{"name": "door-forced", "match": "acme.hq.door_sensor.*.evt", ...}]}
//
// json.Marshal of a Document writes a document that Parse reads back to
// the same rules; [RuleSet.Document] returns the one a rule set was parsed
// from. Parse reads strictly, which json.Unmarshal would not: build a
// RuleSet with Parse, not by unmarshalling into a Document.
type Document struct {
	// Rules are the rules, evaluated in this order.
	Rules []Rule `json:"rules"`
}

// Rule is one rule of a [Document]: when a message on a subject that
// Match matches satisfies When (for For, continuously, per Key), the rule
// fires and runs its Actions, within its Rate.
type Rule struct {
	// Name identifies the rule: required, unique within the document, 1 to
	// 64 ASCII letters, digits, '_' and '-'. It appears in the outputs'
	// headers, their data and the engine's statistics.
	Name string `json:"name"`
	// Match is the subject filter of the messages the rule looks at, such
	// as "acme.hq.door_sensor.*.evt" (see topic.ParseFilter). Required; it
	// must lie within the edge ("{org}.{edge}.>") and must not name the cmd
	// message type, since commands are never inputs.
	Match string `json:"match"`
	// When is the condition, an expression of the expr language over the
	// variables listed in the package documentation, such as
	// "name == 'door.forced_open'". It must be boolean. Empty means true.
	When string `json:"when,omitempty"`
	// For, when set, is how long When must hold, continuously and per Key,
	// before the rule fires: a later message for the same key on which When
	// is false ends the episode. The rule fires once per episode. Zero
	// means at once.
	For Duration `json:"for,omitempty"`
	// Key says what "per key" means for For: an expression whose value
	// (converted to a string) names the episode, such as "payload.door".
	// Empty means the message's source thing ("source"). Only with For.
	Key string `json:"key,omitempty"`
	// Actions are what the rule does when it fires, in order: at least
	// one.
	Actions []Action `json:"actions"`
	// Rate limits how often the rule may fire; nil means the defaults
	// ([DefaultPerMinute], [DefaultBurst]).
	Rate *Rate `json:"rate,omitempty"`
	// Enabled, when false, keeps the rule in the document without
	// evaluating it. Nil means true.
	Enabled *bool `json:"enabled,omitempty"`
}

// Action is one action of a [Rule]: exactly one of Event and Command.
type Action struct {
	// Event publishes an event of the edge.
	Event *EventAction `json:"event,omitempty"`
	// Command sends a command to a device of the edge.
	Command *CommandAction `json:"command,omitempty"`
}

// EventAction publishes an event from the edge itself, on
// "{org}.{edge}._edge.{edge}.evt", stored in the edge's event stream.
type EventAction struct {
	// Name is the event's name, such as "alarm.door_forced": required, 1 to
	// 128 ASCII letters, digits, '.', '_' and '-'.
	Name string `json:"name"`
	// Data is the event's payload; the engine adds the keys [DataRule],
	// [DataTriggerSubject], [DataTriggerID] and, for rules with For,
	// [DataKey], which Data must therefore not use. JSON numbers become
	// int64 when they are integers and float64 otherwise.
	Data map[string]any `json:"data,omitempty"`
}

// CommandAction sends a command to a device of the edge.
type CommandAction struct {
	// Target is the device: "{type}.{code}" of a thing at the edge, or its
	// full "{org}.{edge}.{type}.{code}". Required; thing types beginning
	// with '_' are not devices and are refused.
	Target string `json:"target"`
	// Action is the command's action, such as "sound": required, 1 to 128
	// ASCII letters, digits, '.', '_' and '-'.
	Action string `json:"action"`
	// Params are the command's parameters.
	Params map[string]string `json:"params,omitempty"`
	// TTL is how long the command stays valid: its deadline is the firing
	// time plus TTL. Required, greater than zero.
	TTL Duration `json:"ttl"`
}

// Rate is a rule's token bucket: it may fire Burst times at once, and
// PerMinute times a minute on average. A zero field means its default.
type Rate struct {
	// PerMinute is the refill rate, in firings per minute; fractions are
	// allowed. Zero means [DefaultPerMinute].
	PerMinute float64 `json:"per_minute,omitempty"`
	// Burst is the bucket's size. Zero means [DefaultBurst].
	Burst int `json:"burst,omitempty"`
}

// Defaults of a rule's [Rate].
const (
	// DefaultPerMinute is a rule's refill rate when its document does not
	// say: one firing a second on average.
	DefaultPerMinute = 60
	// DefaultBurst is a rule's bucket size when its document does not say.
	DefaultBurst = 10
)

// Keys the engine adds to the data of every event it publishes.
const (
	// DataRule is the name of the rule that fired.
	DataRule = "rule"
	// DataTriggerSubject is the subject of the message that triggered the
	// firing (for a rule with For, the message that began the episode).
	DataTriggerSubject = "trigger_subject"
	// DataTriggerID is the envelope ID of that message, in canonical form;
	// it is also the event's CorrelationID.
	DataTriggerID = "trigger_id"
	// DataKey is the episode's key, for rules with For.
	DataKey = "key"
)

// Duration is a time.Duration written in JSON as a string that
// time.ParseDuration reads, such as "30s" or "1m30s".
type Duration time.Duration

// MarshalJSON writes d as a string, such as "30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a string that time.ParseDuration accepts. Parse
// reads durations itself, with errors that name the rule and field.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: duration must be a string such as \"30s\"", ErrMalformed)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	*d = Duration(v)
	return nil
}
