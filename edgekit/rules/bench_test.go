package rules_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// benchDoc returns a document of n rules for the benchmark: most look at
// other things or message types than the input (filter mismatch), one in
// ten looks at the input's subject with a condition that does not hold,
// and the last one matches.
func benchDoc(n int) string {
	types := []string{"reader", "lock", "door_sensor", "hvac", "sounder", "camera"}
	mts := []string{"evt", "state", "tlm", "ack", "req"}
	var b strings.Builder
	b.WriteString(`{"rules": [`)
	for i := range n - 1 {
		var match, when string
		switch {
		case i%10 == 9: // the input's subject, condition false
			match = "acme.hq.sensor.*.tlm"
			when = fmt.Sprintf("payload.metric == 'humidity' && payload.value > %d", i)
		case i%3 == 0:
			match = fmt.Sprintf("acme.hq.%s.*.%s", types[i%len(types)], mts[i%len(mts)])
			when = fmt.Sprintf("name == 'door.forced_open' && thing_code == 'd%d'", i)
		case i%3 == 1:
			match = fmt.Sprintf("acme.hq.%s.x%d.>", types[i%len(types)], i)
			when = "payload.open"
		default:
			match = fmt.Sprintf("acme.hq.*.*.%s", mts[i%2])
			when = fmt.Sprintf("name == 'access.denied' && payload.reason == 'r%d'", i)
		}
		fmt.Fprintf(&b, `{"name": "r%d", "match": %q, "when": %q, "actions": [{"event": {"name": "e%d"}}]},`, i, match, when, i)
	}
	b.WriteString(`{"name": "too-hot", "match": "acme.hq.sensor.*.tlm", "when": "payload.metric == 'temperature' && payload.value > 28",
	  "actions": [{"command": {"target": "hvac.h1", "action": "cool", "ttl": "1m"}}]}]}`)
	return b.String()
}

// benchInput returns a temperature reading of 30 from sensor t1, as a NATS
// message.
func benchInput(b *testing.B) *nats.Msg {
	b.Helper()
	var ids message.IDGenerator
	e := &message.Envelope{
		ID: ids.New(), Time: time.Now().UTC(), Seq: 7,
		Source: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "t1"},
		Type:   topic.Telemetry, Name: message.NameSensorReading,
	}
	if err := message.SetPayload(e, message.SensorReading{Metric: "temperature", Value: 30, Unit: "Cel"}); err != nil {
		b.Fatal(err)
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// BenchmarkEvaluate measures RuleSet.Evaluate with 100 rules loaded on one
// telemetry message: "decode" includes decoding the NATS message into an
// envelope and its payload; "envelope" starts from the decoded envelope
// (payload decoding included); "rules" from a decoded payload too, which
// leaves rule evaluation alone. The "expr" cases are the baseline: the one
// matching condition evaluated directly, with expr.Run (a new VM each time)
// and with a reused VM.
func BenchmarkEvaluate(b *testing.B) {
	rs, err := rules.Parse([]byte(benchDoc(100)), scope)
	if err != nil {
		b.Fatal(err)
	}
	msg := benchInput(b)
	var env message.Envelope
	if err := message.DecodeMsg(msg, &env, nil); err != nil {
		b.Fatal(err)
	}
	payload, err := message.DecodePayload[map[string]any](&env)
	if err != nil {
		b.Fatal(err)
	}
	check := func(b *testing.B, fs []rules.Firing) {
		if len(fs) != 1 || fs[0].Rule != "too-hot" || fs[0].Outcome != rules.Matched {
			b.Fatalf("firings = %+v", fs)
		}
	}

	b.Run("100rules/decode", func(b *testing.B) {
		b.ReportAllocs()
		var in rules.Input
		var e message.Envelope
		for b.Loop() {
			if err := message.DecodeMsg(msg, &e, nil); err != nil {
				b.Fatal(err)
			}
			in.Envelope, in.Subject = &e, msg.Subject
			check(b, rs.Evaluate(&in))
		}
	})
	b.Run("100rules/envelope", func(b *testing.B) {
		b.ReportAllocs()
		in := rules.Input{Envelope: &env, Subject: msg.Subject}
		for b.Loop() {
			check(b, rs.Evaluate(&in))
		}
	})
	b.Run("100rules/rules", func(b *testing.B) {
		b.ReportAllocs()
		in := rules.Input{Envelope: &env, Subject: msg.Subject, Payload: payload}
		for b.Loop() {
			check(b, rs.Evaluate(&in))
		}
	})

	// The baseline: the matching condition alone, over a map environment.
	program, err := expr.Compile("payload.metric == 'temperature' && payload.value > 28",
		expr.Env(map[string]any{"payload": map[string]any{}}), expr.AsBool())
	if err != nil {
		b.Fatal(err)
	}
	exprEnv := map[string]any{"payload": payload}
	b.Run("expr/Run", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, err := expr.Run(program, exprEnv)
			if err != nil || v != true {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("expr/VM", func(b *testing.B) {
		b.ReportAllocs()
		var m vm.VM
		for b.Loop() {
			v, err := m.Run(program, exprEnv)
			if err != nil || v != true {
				b.Fatal(v, err)
			}
		}
	})
}
