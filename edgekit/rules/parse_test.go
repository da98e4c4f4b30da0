package rules_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/edgekit/rules"
)

var scope = rules.Scope{Org: "acme", Edge: "hq"}

// exampleDoc is the rule document of the issue, with the sensor payload's
// real field name (message.SensorReading's "metric").
const exampleDoc = `{"rules": [
 {"name": "door-forced", "match": "acme.hq.door_sensor.*.evt", "when": "name == 'door.forced_open'",
  "actions": [
    {"event": {"name": "alarm.door_forced", "data": {"severity": "high"}}},
    {"command": {"target": "sounder.s1", "action": "sound", "params": {"pattern": "alarm"}, "ttl": "30s"}}],
  "rate": {"per_minute": 6, "burst": 3}},
 {"name": "door-held", "match": "acme.hq.door_sensor.*.state", "when": "name == 'door.state' && payload.open", "for": "30s", "key": "source", "actions": [{"event": {"name": "alarm.door_held_open"}}]},
 {"name": "too-hot", "match": "acme.hq.sensor.*.tlm", "when": "payload.metric == 'temperature' && payload.value > 28", "actions": [{"command": {"target": "hvac.h1", "action": "cool", "params": {"setpoint": "22"}, "ttl": "1m"}}]}
]}`

func TestParseExample(t *testing.T) {
	rs, err := rules.Parse([]byte(exampleDoc), scope)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(rs.Names(), ","), "door-forced,door-held,too-hot"; got != want {
		t.Errorf("names = %s, want %s", got, want)
	}
	if rs.Scope() != scope {
		t.Errorf("scope = %v", rs.Scope())
	}
}

// rule wraps one rule object in a document.
func rule(body string) string { return `{"rules": [` + body + `]}` }

func TestParseRejects(t *testing.T) {
	const ok = `"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x"}}]`
	tests := []struct {
		name      string
		doc       string
		sentinel  error
		rule      string // want RuleError.Rule
		field     string // want RuleError.Field
		inMessage string // want in Error()
	}{
		{"bad JSON", `{"rules": [`, rules.ErrMalformed, "", "", "not JSON"},
		{"empty", ``, rules.ErrMalformed, "", "", "empty document"},
		{"trailing data", `{"rules": []} {}`, rules.ErrMalformed, "", "", "data after the document"},
		{"not an object", `[]`, rules.ErrMalformed, "", "", "must be an object"},
		{"no rules key", `{}`, rules.ErrMissing, "", "rules", "required"},
		{"unknown top-level key", `{"rules": [], "version": 2}`, rules.ErrUnknownField, "", "version", "unknown key"},
		{"duplicate top-level key", `{"rules": [], "rules": []}`, rules.ErrDuplicate, "", "rules", "duplicate key"},
		{"rules not an array", `{"rules": {}}`, rules.ErrMalformed, "", "rules", "must be an array"},
		{"unknown key", rule(`{` + ok + `, "priority": 1}`), rules.ErrUnknownField, "r", "priority", "unknown key"},
		{"unknown key in action", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x", "severity": 1}}]}`), rules.ErrUnknownField, "r", "actions[0].event.severity", "unknown key"},
		{"duplicate key", rule(`{` + ok + `, "when": "true", "when": "false"}`), rules.ErrDuplicate, "r", "when", "duplicate key"},
		{"duplicate key in data", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x", "data": {"a": 1, "a": 2}}}]}`), rules.ErrDuplicate, "r", "actions[0].event.data.a", "duplicate key"},
		{"duplicate name", rule(`{` + ok + `}, {` + ok + `}`), rules.ErrDuplicate, "r", "name", "rules #0 and #1"},
		{"missing name", rule(`{"match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x"}}]}`), rules.ErrMissing, "#0", "name", "required"},
		{"bad name", rule(`{"name": "door forced", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x"}}]}`), rules.ErrInvalid, "#0", "name", "ASCII letters"},
		{"name not a string", rule(`{"name": 7, "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x"}}]}`), rules.ErrMalformed, "#0", "name", "must be a string"},
		{"missing match", rule(`{"name": "r", "actions": [{"event": {"name": "x"}}]}`), rules.ErrMissing, "r", "match", "required"},
		{"bad filter", rule(`{"name": "r", "match": "acme.hq.>.evt", "actions": [{"event": {"name": "x"}}]}`), rules.ErrInvalid, "r", "match", "topic:"},
		{"filter outside the edge", rule(`{"name": "r", "match": "acme.other.*.*.evt", "actions": [{"event": {"name": "x"}}]}`), rules.ErrInvalid, "r", "match", "beyond the edge"},
		{"filter of the whole org", rule(`{"name": "r", "match": "acme.*.*.*.evt", "actions": [{"event": {"name": "x"}}]}`), rules.ErrInvalid, "r", "match", "beyond the edge"},
		{"filter on commands", rule(`{"name": "r", "match": "acme.hq.*.*.cmd", "actions": [{"event": {"name": "x"}}]}`), rules.ErrInvalid, "r", "match", "never inputs"},
		{"expr syntax error", rule(`{` + ok + `, "when": "name == "}`), rules.ErrInvalid, "r", "when", "does not compile: unexpected token EOF"},
		{"expr not boolean", rule(`{` + ok + `, "when": "len(name) + 1"}`), rules.ErrInvalid, "r", "when", "expected bool"},
		{"expr unknown variable", rule(`{` + ok + `, "when": "paylod.value > 28"}`), rules.ErrInvalid, "r", "when", "unknown name paylod"},
		{"expr type error", rule(`{` + ok + `, "when": "name > 3"}`), rules.ErrInvalid, "r", "when", "invalid operation"},
		{"key expr unknown variable", rule(`{` + ok + `, "for": "1s", "key": "door"}`), rules.ErrInvalid, "r", "key", "unknown name door"},
		{"key without for", rule(`{` + ok + `, "key": "source"}`), rules.ErrInvalid, "r", "key", "only rules with \"for\""},
		{"bad for", rule(`{` + ok + `, "for": "30"}`), rules.ErrInvalid, "r", "for", "not a duration"},
		{"negative for", rule(`{` + ok + `, "for": "-1s"}`), rules.ErrInvalid, "r", "for", "negative"},
		{"for not a string", rule(`{` + ok + `, "for": 30}`), rules.ErrMalformed, "r", "for", "must be a duration"},
		{"missing actions", rule(`{"name": "r", "match": "acme.hq.*.*.evt"}`), rules.ErrMissing, "r", "actions", "at least one"},
		{"empty actions", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": []}`), rules.ErrMissing, "r", "actions", "at least one"},
		{"empty action", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{}]}`), rules.ErrMissing, "r", "actions[0]", "needs an \"event\" or a \"command\""},
		{"both event and command", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x"}, "command": {"target": "lock.l1", "action": "unlock", "ttl": "5s"}}]}`), rules.ErrInvalid, "r", "actions[0]", "both"},
		{"event without name", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {}}]}`), rules.ErrMissing, "r", "actions[0].event.name", "required"},
		{"event data not an object", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x", "data": [1]}}]}`), rules.ErrMalformed, "r", "actions[0].event.data", "must be an object"},
		{"event data reserved key", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x", "data": {"rule": "y"}}}]}`), rules.ErrInvalid, "r", "actions[0].event.data.rule", "reserved"},
		{"bad ttl", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x"}}, {"command": {"target": "lock.l1", "action": "unlock", "ttl": "soon"}}]}`), rules.ErrInvalid, "r", "actions[1].command.ttl", "not a duration"},
		{"missing ttl", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"target": "lock.l1", "action": "unlock"}}]}`), rules.ErrMissing, "r", "actions[0].command.ttl", "required"},
		{"zero ttl", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"target": "lock.l1", "action": "unlock", "ttl": "0s"}}]}`), rules.ErrMissing, "r", "actions[0].command.ttl", "required"},
		{"negative ttl", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"target": "lock.l1", "action": "unlock", "ttl": "-5s"}}]}`), rules.ErrInvalid, "r", "actions[0].command.ttl", "greater than zero"},
		{"bad target", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"target": "lock", "action": "unlock", "ttl": "5s"}}]}`), rules.ErrInvalid, "r", "actions[0].command.target", "is not"},
		{"target with wildcard", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"target": "lock.*", "action": "unlock", "ttl": "5s"}}]}`), rules.ErrInvalid, "r", "actions[0].command.target", "topic:"},
		{"target at another edge", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"target": "acme.other.lock.l1", "action": "unlock", "ttl": "5s"}}]}`), rules.ErrInvalid, "r", "actions[0].command.target", "not at the edge"},
		{"target reserved", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"target": "_edge.hq", "action": "unlock", "ttl": "5s"}}]}`), rules.ErrInvalid, "r", "actions[0].command.target", "reserved"},
		{"missing target", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"action": "unlock", "ttl": "5s"}}]}`), rules.ErrMissing, "r", "actions[0].command.target", "required"},
		{"missing command action", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"target": "lock.l1", "ttl": "5s"}}]}`), rules.ErrMissing, "r", "actions[0].command.action", "required"},
		{"param not a string", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"command": {"target": "lock.l1", "action": "unlock", "params": {"duration": 5}, "ttl": "5s"}}]}`), rules.ErrMalformed, "r", "actions[0].command.params.duration", "must be a string"},
		{"negative rate", rule(`{` + ok + `, "rate": {"per_minute": -1}}`), rules.ErrInvalid, "r", "rate.per_minute", "negative"},
		{"fractional burst", rule(`{` + ok + `, "rate": {"burst": 1.5}}`), rules.ErrInvalid, "r", "rate.burst", "whole number"},
		{"unknown rate key", rule(`{` + ok + `, "rate": {"per_second": 1}}`), rules.ErrUnknownField, "r", "rate.per_second", "unknown key"},
		{"enabled not a boolean", rule(`{` + ok + `, "enabled": "yes"}`), rules.ErrMalformed, "r", "enabled", "true or false"},
		{"null value", rule(`{` + ok + `, "when": null}`), rules.ErrMalformed, "r", "when", "not null"},
		{"unnamed rule in error", rule(`{` + ok + `}, {"match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x"}}], "bogus": 1}`), rules.ErrUnknownField, "#1", "bogus", "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := rules.Parse([]byte(tt.doc), scope)
			if err == nil {
				t.Fatalf("Parse accepted %s (%d rules)", tt.doc, rs.Len())
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v does not wrap %v", err, tt.sentinel)
			}
			var re *rules.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v is not a *RuleError", err, err)
			}
			if re.Rule != tt.rule || re.Field != tt.field {
				t.Errorf("rule, field = %q, %q; want %q, %q (%v)", re.Rule, re.Field, tt.rule, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.inMessage) {
				t.Errorf("error %q does not contain %q", err, tt.inMessage)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestParseScope(t *testing.T) {
	for _, s := range []rules.Scope{{}, {Org: "acme"}, {Org: "acme", Edge: "h q"}, {Org: "_sys", Edge: "hq"}} {
		if _, err := rules.Parse([]byte(`{"rules": []}`), s); !errors.Is(err, rules.ErrInvalidConfig) {
			t.Errorf("scope %+v: error %v, want ErrInvalidConfig", s, err)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"no rules", `{"rules": []}`},
		{"white space around", " \n{\"rules\": []}\n\t"},
		{"full target", rule(`{"name": "r", "match": "acme.hq.>", "actions": [{"command": {"target": "acme.hq.lock.l1", "action": "unlock", "ttl": "5s"}}]}`)},
		{"disabled", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "enabled": false, "actions": [{"event": {"name": "x"}}]}`)},
		{"for without key", rule(`{"name": "r", "match": "acme.hq.*.*.state", "for": "300ms", "actions": [{"event": {"name": "x"}}]}`)},
		{"key expression", rule(`{"name": "r", "match": "acme.hq.*.*.state", "for": "1m", "key": "source + '/' + string(payload.door)", "actions": [{"event": {"name": "x"}}]}`)},
		{"nested data", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "x", "data": {"a": [1, 2.5, "s", true, null, {"b": {}}]}}}]}`)},
		{"all variables", rule(`{"name": "r", "match": "acme.hq.*.*.evt", "when": "subject != '' && org == 'acme' && edge == 'hq' && thing_type != '' && thing_code != '' && source != '' && message_type == 'evt' && name != '' && time.Year() > 2000 && id != correlation_id && payload != nil", "actions": [{"event": {"name": "x"}}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := rules.Parse([]byte(tt.doc), scope); err != nil {
				t.Fatal(err)
			}
		})
	}
}
