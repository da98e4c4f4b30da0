package rules_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

const evalDoc = `{"rules": [
 {"name": "forced", "match": "acme.hq.door_sensor.*.evt", "when": "name == 'door.forced_open'", "actions": [{"event": {"name": "a"}}]},
 {"name": "hot", "match": "acme.hq.sensor.*.tlm", "when": "payload.metric == 'temperature' && payload.value > 28", "actions": [{"event": {"name": "a"}}]},
 {"name": "held", "match": "acme.hq.door_sensor.*.state", "when": "payload.open", "for": "1s", "actions": [{"event": {"name": "a"}}]},
 {"name": "held-door", "match": "acme.hq.door_sensor.*.state", "when": "payload.open", "for": "1s", "key": "payload.door", "actions": [{"event": {"name": "a"}}]},
 {"name": "vars", "match": "acme.hq.reader.r1.req", "when": "subject == 'acme.hq.reader.r1.req' && source == 'acme.hq.reader.r1' && len(id) == 36 && correlation_id == '' && message_type == 'req' && thing_type == 'reader' && thing_code == 'r1' && org == 'acme' && edge == 'hq' && name == 'access.requested' && time.Year() >= 2026", "actions": [{"event": {"name": "a"}}]},
 {"name": "off", "match": "acme.hq.>", "enabled": false, "actions": [{"event": {"name": "a"}}]},
 {"name": "count", "match": "acme.hq.lock.*.evt", "when": "payload.count > 3", "actions": [{"event": {"name": "a"}}]},
 {"name": "lock-x", "match": "acme.hq.lock.*.evt", "when": "name == 'x'", "actions": [{"event": {"name": "a"}}]},
 {"name": "any-reader", "match": "acme.hq.reader.>", "when": "name == 'x'", "actions": [{"event": {"name": "a"}}]}
]}`

func TestEvaluate(t *testing.T) {
	rs, err := rules.Parse([]byte(evalDoc), scope)
	if err != nil {
		t.Fatal(err)
	}
	jsonReading := envelope(t, sensorT1, topic.Telemetry, message.NameSensorReading, nil)
	if err := message.SetPayloadJSON(jsonReading, message.SensorReading{Metric: "temperature", Value: 29}); err != nil {
		t.Fatal(err)
	}
	badPayload := envelope(t, topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}, topic.Event, "x", nil)
	badPayload.ContentType, badPayload.Payload = "application/x-unknown", []byte{1}
	lock := topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	reader := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}

	tests := []struct {
		name     string
		env      *message.Envelope
		subject  bool // set Input.Subject
		chain    []string
		payload  map[string]any
		want     string // firings as "rule:outcome[:key]" joined by " "
		wantErrs string // substring of the first Failed error
	}{
		{name: "forced open", env: envelope(t, doorD1, topic.Event, message.NameDoorForcedOpen, nil), want: "forced:matched"},
		{name: "another event", env: envelope(t, doorD1, topic.Event, "door.opened", nil), want: ""},
		{name: "hot msgpack", env: envelope(t, sensorT1, topic.Telemetry, message.NameSensorReading, message.SensorReading{Metric: "temperature", Value: 30}), subject: true, want: "hot:matched"},
		{name: "hot JSON", env: jsonReading, want: "hot:matched"},
		{name: "mild", env: envelope(t, sensorT1, topic.Telemetry, message.NameSensorReading, message.SensorReading{Metric: "temperature", Value: 20}), want: ""},
		{name: "hot, payload given", env: envelope(t, sensorT1, topic.Telemetry, message.NameSensorReading, nil), payload: map[string]any{"metric": "temperature", "value": 31}, want: "hot:matched"},
		{name: "door open", env: envelope(t, doorD1, topic.State, message.NameDoorState, message.DoorState{Door: "front", Open: true}), want: "held:matched:acme.hq.door_sensor.d1 held-door:matched:front"},
		{name: "door closed", env: envelope(t, doorD1, topic.State, message.NameDoorState, message.DoorState{Door: "front"}), subject: true, want: "held:unmatched:acme.hq.door_sensor.d1 held-door:unmatched:front"},
		{name: "variables", env: envelope(t, reader, topic.Request, message.NameAccessRequested, nil), want: "vars:matched"},
		{name: "variables with subject", env: envelope(t, reader, topic.Request, message.NameAccessRequested, nil), subject: true, want: "vars:matched"},
		{name: "reader event", env: envelope(t, reader, topic.Event, "x", nil), want: "any-reader:matched"},
		{name: "missing payload field", env: envelope(t, lock, topic.Event, "x", map[string]any{"other": 1}), want: "count:failed lock-x:matched", wantErrs: "when:"},
		{name: "no payload", env: envelope(t, lock, topic.Event, "x", nil), want: "count:failed lock-x:matched", wantErrs: "when:"},
		{name: "payload of unknown type", env: badPayload, want: "count:failed lock-x:matched", wantErrs: "payload:"},
		{name: "enough", env: envelope(t, lock, topic.Event, "y", map[string]any{"count": 4}), want: "count:matched"},
		{name: "command", env: envelope(t, lock, topic.Command, message.NameCommand, nil), want: ""},
		{name: "own output", env: envelope(t, doorD1, topic.Event, message.NameDoorForcedOpen, nil), chain: []string{"x", "forced"}, want: "forced:looped"},
		{name: "own output, condition false", env: envelope(t, doorD1, topic.Event, "door.opened", nil), chain: []string{"forced"}, want: ""},
		{name: "another edge", env: envelope(t, topic.Thing{Org: "acme", Edge: "other", Type: "door_sensor", Code: "d1"}, topic.Event, message.NameDoorForcedOpen, nil), want: ""},
		{name: "cfg message type", env: envelope(t, doorD1, topic.Config, "x", nil), want: ""},
	}
	var in rules.Input // reused, as the engine does
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in.Envelope, in.Subject, in.Chain, in.Payload = tt.env, "", tt.chain, tt.payload
			if tt.subject {
				in.Subject = tt.env.Subject().String()
			}
			var got []string
			var firstErr error
			for _, f := range rs.Evaluate(&in) {
				s := f.Rule + ":" + f.Outcome.String()
				if f.Key != "" {
					s += ":" + f.Key
				}
				got = append(got, s)
				if f.Err != nil && firstErr == nil {
					firstErr = f.Err
				}
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("firings %q, want %q (err %v)", g, tt.want, firstErr)
			}
			if tt.wantErrs != "" && (firstErr == nil || !strings.Contains(firstErr.Error(), tt.wantErrs)) {
				t.Errorf("error %v, want one containing %q", firstErr, tt.wantErrs)
			}
		})
	}
}

// Evaluate allocates nothing of its own: expr's reflection copies each
// string variable it reads (16 bytes), which is the one allocation here.
func TestEvaluateAllocations(t *testing.T) {
	rs, err := rules.Parse([]byte(evalDoc), scope)
	if err != nil {
		t.Fatal(err)
	}
	env := envelope(t, doorD1, topic.Event, message.NameDoorForcedOpen, nil)
	in := rules.Input{Envelope: env, Subject: env.Subject().String()}
	allocs := testing.AllocsPerRun(100, func() {
		if fs := rs.Evaluate(&in); len(fs) != 1 {
			panic(fmt.Sprint(fs))
		}
	})
	if allocs > 1 {
		t.Errorf("%v allocations per Evaluate of a condition on the name, want at most 1", allocs)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[rules.Outcome]string{rules.Matched: "matched", rules.Unmatched: "unmatched", rules.Looped: "looped", rules.Failed: "failed", 0: "Outcome(0)"} {
		if o.String() != want {
			t.Errorf("%d: %q, want %q", o, o.String(), want)
		}
	}
}
