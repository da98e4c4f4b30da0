package rules_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// The end-to-end tests run the engine on a real edge node, as the edge
// service will, with devicekit devices publishing and receiving commands.

func TestEdgeDoorForcedOpen(t *testing.T) {
	e := startEdge(t)
	eng := e.engine(t, exampleDoc)
	cmds := handleCommands(t, e.device(t, sounder))
	door := e.device(t, doorD1)
	ctx := testCtx(t)
	js, names := e.node.JetStream(), e.node.Names()

	before := time.Now()
	if _, err := door.PublishEvent(ctx, message.NameDoorForcedOpen, message.DoorState{Door: "d1", Open: true, Locked: true, Forced: true}); err != nil {
		t.Fatal(err)
	}
	triggers := named(streamMessages(t, js, names.EventStream, doorD1.Subject(topic.Event).String()), message.NameDoorForcedOpen)
	if len(triggers) != 1 {
		t.Fatalf("%d forced-open events stored, want 1", len(triggers))
	}
	trig := triggers[0].env

	// The alarm: an event of the edge itself, stored in its event stream.
	var alarm stored
	waitFor(t, "the alarm in the edge's event stream", func() bool {
		ms := named(streamMessages(t, js, names.EventStream, edgeEvt), "alarm.door_forced")
		if len(ms) > 0 {
			alarm = ms[0]
		}
		return len(ms) > 0
	})
	if alarm.env.Source != edgeSelf || alarm.env.Type != topic.Event {
		t.Errorf("alarm from %s %s, want %s evt", alarm.env.Source, alarm.env.Type, edgeSelf)
	}
	if alarm.env.CorrelationID != trig.ID {
		t.Errorf("alarm correlation %s, want the trigger's ID %s", alarm.env.CorrelationID, trig.ID)
	}
	data, err := message.DecodePayload[map[string]any](alarm.env)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"severity":               "high",
		rules.DataRule:           "door-forced",
		rules.DataTriggerSubject: "acme.hq.door_sensor.d1.evt",
		rules.DataTriggerID:      trig.ID.String(),
	} {
		if data[k] != want {
			t.Errorf("alarm data %s = %v, want %v", k, data[k], want)
		}
	}
	for h, want := range map[string]string{rules.HeaderRule: "door-forced", rules.HeaderRuleChain: "door-forced", rules.HeaderRuleDepth: "1"} {
		if got := alarm.header.Get(h); got != want {
			t.Errorf("alarm header %s = %q, want %q", h, got, want)
		}
	}

	// The sounder's command, received by the device itself.
	waitFor(t, "the sound command at the sounder", func() bool { return len(cmds.all()) > 0 })
	cmd := cmds.all()[0]
	if cmd.Action != "sound" || cmd.Params["pattern"] != "alarm" || len(cmd.Params) != 1 {
		t.Errorf("command %s %v, want sound {pattern: alarm}", cmd.Action, cmd.Params)
	}
	if cmd.RequestedBy != "rule:door-forced" {
		t.Errorf("requested by %q", cmd.RequestedBy)
	}
	if want := rules.IdempotencyKey("door-forced", trig.ID, 1); cmd.IdempotencyKey != want {
		t.Errorf("idempotency key %q, want %q", cmd.IdempotencyKey, want)
	}
	if cmd.Deadline.Before(before.Add(30*time.Second)) || cmd.Deadline.After(time.Now().Add(30*time.Second)) {
		t.Errorf("deadline %v, want about 30s from the firing", cmd.Deadline)
	}
	if cmd.Envelope.Source != sounder || cmd.Envelope.Name != message.NameCommand || cmd.Envelope.CorrelationID != trig.ID {
		t.Errorf("command envelope %+v", cmd.Envelope)
	}

	// The device acks the command into the event stream, like any command.
	waitFor(t, "the sounder's completed ack", func() bool {
		for _, m := range streamMessages(t, js, names.EventStream, sounder.Subject(topic.Ack).String()) {
			if a, _ := message.DecodePayload[message.Ack](m.env); a.CommandID == cmd.ID && a.Status == message.AckCompleted {
				return true
			}
		}
		return false
	})
	st := eng.Stats().Rules["door-forced"]
	if st.Fired != 1 || st.Errors != 0 || st.PublishErrors != 0 {
		t.Errorf("door-forced stats %+v", st)
	}
}

func TestEdgeDoorHeldOpen(t *testing.T) {
	e := startEdge(t)
	eng := e.engine(t, `{"rules": [{"name": "door-held", "match": "acme.hq.door_sensor.*.state",
	  "when": "name == 'door.state' && payload.open", "for": "300ms", "key": "payload.door",
	  "actions": [{"event": {"name": "alarm.door_held_open", "data": {"severity": "medium"}}}]}]}`)
	d1, d2, d3 := e.device(t, doorD1), e.device(t, doorD2), e.device(t, doorD3)
	ctx := testCtx(t)
	js, names := e.node.JetStream(), e.node.Names()
	state := func(d interface {
		PublishState(ctx context.Context, name string, payload any) (message.ID, error)
	}, door string, open bool) {
		t.Helper()
		if _, err := d.PublishState(ctx, message.NameDoorState, message.DoorState{Door: door, Open: open}); err != nil {
			t.Fatal(err)
		}
	}
	alerts := func() map[string]int {
		out := make(map[string]int)
		for _, m := range named(streamMessages(t, js, names.EventStream, edgeEvt), "alarm.door_held_open") {
			data, err := message.DecodePayload[map[string]any](m.env)
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprint(data[rules.DataKey])]++
		}
		return out
	}

	// Door d1 stays open: an alert after 300 ms, once, however often the
	// door reports that it is open.
	state(d1, "d1", true)
	waitFor(t, "the held-open alert of d1", func() bool { return alerts()["d1"] == 1 })
	state(d1, "d1", true)

	// Door d2 closes before 300 ms: no alert. Each attempt uses a new key;
	// one whose open and close took the devices more than 200 ms proves
	// nothing and is repeated.
	var fast []string
	for i := 0; len(fast) == 0 && i < 5; i++ {
		key := fmt.Sprintf("d2-%d", i)
		start := time.Now()
		state(d2, key, true)
		state(d2, key, false)
		if took := time.Since(start); took < 200*time.Millisecond {
			fast = append(fast, key)
		} else {
			t.Logf("open and close of %s took %v: too slow to count", key, took)
		}
	}
	if len(fast) == 0 {
		t.Fatal("no attempt opened and closed a door within 200 ms")
	}

	// The marker: door d3, opened after d2 closed, so its alert comes after
	// any alert d2 could have caused.
	state(d3, "d3", true)
	waitFor(t, "the held-open alert of d3", func() bool { return alerts()["d3"] == 1 })

	got := alerts()
	for _, k := range fast {
		if got[k] != 0 {
			t.Errorf("door %s closed within 300 ms but raised %d alerts", k, got[k])
		}
	}
	if got["d1"] != 1 {
		t.Errorf("door d1 raised %d alerts, want 1", got["d1"])
	}
	st := eng.Stats().Rules["door-held"]
	if st.Pending != 0 || st.Held < 2 {
		t.Errorf("door-held stats %+v: want no episode pending, d1 and d3 held", st)
	}
	// Closing d1 ends its episode; opening it again starts a new one.
	state(d1, "d1", false)
	state(d1, "d1", true)
	waitFor(t, "the second held-open alert of d1", func() bool { return alerts()["d1"] == 2 })
}

func TestEdgeTemperature(t *testing.T) {
	e := startEdge(t)
	eng := e.engine(t, `{"rules": [
	 {"name": "too-hot", "match": "acme.hq.sensor.*.tlm", "when": "payload.metric == 'temperature' && payload.value > 28",
	  "actions": [{"command": {"target": "hvac.h1", "action": "cool", "params": {"setpoint": "22"}, "ttl": "1m"}}]},
	 {"name": "marker", "match": "acme.hq.sensor.*.evt", "when": "name == 'test.marker'",
	  "actions": [{"command": {"target": "acme.hq.hvac.h1", "action": "marker", "ttl": "1m"}}]}]}`)
	cmds := handleCommands(t, e.device(t, hvacH1))
	sensor := e.device(t, sensorT1)
	ctx := testCtx(t)
	reading := func(metric string, v float64) {
		t.Helper()
		if _, err := sensor.PublishTelemetry(ctx, message.NameSensorReading, message.SensorReading{Metric: metric, Value: v, Unit: "Cel"}); err != nil {
			t.Fatal(err)
		}
	}

	// Below the threshold, and another metric above it: nothing. The marker
	// command, sent after them, proves they were evaluated.
	reading("temperature", 20)
	reading("temperature", 28)
	reading("humidity", 65)
	if _, err := sensor.PublishEvent(ctx, "test.marker", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the marker command", func() bool { return len(cmds.all()) > 0 })
	if got := cmds.actions(); !slices.Equal(got, []string{"marker"}) {
		t.Fatalf("commands %v before any reading over 28, want only the marker", got)
	}

	// Over the threshold: the HVAC cools.
	reading("temperature", 30.5)
	waitFor(t, "the cool command", func() bool { return len(cmds.all()) == 2 })
	if got := cmds.actions(); !slices.Equal(got, []string{"marker", "cool"}) {
		t.Fatalf("commands %v, want marker, cool", got)
	}
	cmd := cmds.all()[1]
	if cmd.Params["setpoint"] != "22" || cmd.RequestedBy != "rule:too-hot" || !strings.HasPrefix(cmd.IdempotencyKey, "rule:too-hot:") {
		t.Errorf("cool command %+v", cmd.Command)
	}
	if st := eng.Stats(); st.Rules["too-hot"].Fired != 1 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
}
