package rules_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Parse names the rule and the field of whatever it refuses.
func ExampleParse() {
	_, err := rules.Parse([]byte(`{"rules": [
	  {"name": "too-hot", "match": "acme.hq.sensor.*.tlm", "when": "paylod.value > 28",
	   "actions": [{"command": {"target": "hvac.h1", "action": "cool", "ttl": "1m"}}]}]}`),
		rules.Scope{Org: "acme", Edge: "hq"})
	fmt.Println(err)
	var re *rules.RuleError
	if errors.As(err, &re) {
		fmt.Println(re.Rule, re.Field, errors.Is(err, rules.ErrInvalid))
	}
	// Output:
	// rules: rule "too-hot": field "when": does not compile: unknown name paylod (1:1)
	// too-hot when true
}

// Evaluate tells which rules fire on a message, without sending anything.
func ExampleRuleSet_Evaluate() {
	rs, err := rules.Parse([]byte(`{"rules": [
	  {"name": "too-hot", "match": "acme.hq.sensor.*.tlm",
	   "when": "payload.metric == 'temperature' && payload.value > 28",
	   "actions": [{"command": {"target": "hvac.h1", "action": "cool", "ttl": "1m"}}]},
	  {"name": "door-held", "match": "acme.hq.door_sensor.*.state", "when": "payload.open", "for": "30s",
	   "actions": [{"event": {"name": "alarm.door_held_open"}}]}]}`),
		rules.Scope{Org: "acme", Edge: "hq"})
	if err != nil {
		fmt.Println(err)
		return
	}
	var ids message.IDGenerator
	reading := &message.Envelope{
		ID: ids.New(), Time: time.Now().UTC(), Type: topic.Telemetry, Name: message.NameSensorReading,
		Source: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "t1"},
	}
	var in rules.Input
	for _, v := range []float64{21.5, 29} {
		if err := message.SetPayload(reading, message.SensorReading{Metric: "temperature", Value: v}); err != nil {
			fmt.Println(err)
			return
		}
		in.Envelope = reading
		fmt.Println(v, rs.Evaluate(&in))
	}
	door := &message.Envelope{
		ID: ids.New(), Time: time.Now().UTC(), Type: topic.State, Name: message.NameDoorState,
		Source: topic.Thing{Org: "acme", Edge: "hq", Type: "door_sensor", Code: "d1"},
	}
	if err := message.SetPayload(door, message.DoorState{Door: "d1", Open: true}); err != nil {
		fmt.Println(err)
		return
	}
	in.Envelope = door
	fmt.Println(rs.Evaluate(&in))
	// Output:
	// 21.5 []
	// 29 [too-hot matched]
	// [door-held matched key=acme.hq.door_sensor.d1]
}
