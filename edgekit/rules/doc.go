// Package rules is the edge's local rules engine for immediate actions:
// when a message of the edge matches a rule, the edge publishes an event
// or sends a command at once, without waiting for central, and goes on
// doing so while the link to central is down.
//
// # Rules
//
// A rule document is JSON ([Document]):
//
//	{"rules": [
//	 {"name": "door-forced", "match": "acme.hq.door_sensor.*.evt",
//	  "when": "name == 'door.forced_open'",
//	  "actions": [
//	    {"event": {"name": "alarm.door_forced", "data": {"severity": "high"}}},
//	    {"command": {"target": "sounder.s1", "action": "sound", "params": {"pattern": "alarm"}, "ttl": "30s"}}],
//	  "rate": {"per_minute": 6, "burst": 3}},
//	 {"name": "door-held", "match": "acme.hq.door_sensor.*.state",
//	  "when": "name == 'door.state' && payload.open", "for": "30s",
//	  "actions": [{"event": {"name": "alarm.door_held_open"}}]},
//	 {"name": "too-hot", "match": "acme.hq.sensor.*.tlm",
//	  "when": "payload.metric == 'temperature' && payload.value > 28",
//	  "actions": [{"command": {"target": "hvac.h1", "action": "cool", "params": {"setpoint": "22"}, "ttl": "1m"}}]}
//	]}
//
// A rule looks at the messages on subjects its filter (match) matches, and
// fires when its condition (when) holds; with for, the condition must hold
// for that long, per key (the source thing unless key says otherwise),
// before the rule fires, once per episode: a message for the same key on
// which the condition does not hold ends the episode. Firing runs the
// rule's actions: events of the edge and commands to its devices.
//
// [Parse] reads a document strictly (unknown keys, duplicate keys, values of
// the wrong type and data after the document are errors) and compiles it
// once into a [RuleSet]: filters parsed (topic.ParseFilter) and confined to
// the edge, expressions compiled, targets, names and durations checked.
// Errors are [*RuleError] values that name the rule and the field:
//
//	rules: rule "too-hot": field "when": does not compile: unknown name paylod (1:1)
//
// # Conditions
//
// Conditions (and keys) are expressions of the expr language
// (github.com/expr-lang/expr) over these variables:
//
//	subject         string          the message's subject, "acme.hq.sensor.t1.tlm"
//	org, edge       string          its first two tokens
//	thing_type      string          "sensor"
//	thing_code      string          "t1"
//	source          string          the source thing, "acme.hq.sensor.t1"
//	message_type    string          "evt", "tlm", "state", "ack", "req", "cfg"
//	name            string          the envelope's name, "sensor.reading"
//	time            time.Time       the envelope's time
//	id              string          the envelope's ID, canonical form
//	correlation_id  string          its correlation ID, "" when none
//	payload         map[string]any  the payload decoded from msgpack or JSON
//
// The payload is decoded only when a matching rule uses it, and once per
// message however many rules do; msgpack integers arrive as Go integer
// types and JSON numbers as float64, and comparisons mix them freely. A
// missing payload field is nil: "payload.value > 28" fails on a message
// without value, while "payload.value ?? 0 > 28" is false. A condition that
// fails to evaluate counts as an error of the rule (RuleStats.Errors),
// which then does not fire.
//
// # Outputs
//
// An event action publishes an envelope of the edge itself (source
// "{org}.{edge}._edge.{edge}", on its evt subject) with JetStream, so that
// it is stored in the edge's event stream and reaches central like any
// event. Its CorrelationID is the ID of the message that triggered the
// firing, and its data holds [DataRule], [DataTriggerSubject],
// [DataTriggerID] (and [DataKey] for rules with for) besides the
// rule's own. The engine leaves the envelope's Seq and BootID empty: the
// edge node numbers its own messages, and a second sequence on the same
// source would look like gaps.
//
// A command action sends a message.Command envelope on the device's cmd
// subject with core NATS, as only the edge service may: deadline now+ttl,
// RequestedBy "rule:{name}", an [IdempotencyKey] unique per firing and
// action, CorrelationID the triggering message's ID. Devices run it with
// devicekit's HandleCommands and ack it as usual. A device that is not
// connected misses it: rule commands are immediate, not queued.
//
// # Loops and storms
//
// Every output carries the headers [HeaderRule], [HeaderRuleChain] and
// [HeaderRuleDepth]. When an output comes back as an input (the engine
// sees everything of its edge), a rule in its chain does not fire on it
// ([Looped]): a rule that matches its own output fires once per input,
// and rules that trigger each other stop as soon as the first repeats.
// Chains of distinct rules end at [Config.MaxDepth]: a message that deep
// triggers nothing. Only messages of the edge itself are trusted to carry
// these headers; on anything a device sends they are ignored, so that no
// device can silence a rule. Loops through devices (a command whose device
// then reports a state that triggers the rule again) cannot be seen in
// headers; rate limits bound them.
//
// Each rule has a token bucket ([Rate], by default [DefaultPerMinute] a
// minute with bursts of [DefaultBurst]); firings beyond it are dropped,
// counted (RuleStats.DroppedRate) and logged at most once per
// Config.LogInterval.
//
// # The engine
//
// [Start] runs an [Engine] on the edge service's connection
// (edgekit.Node.Conn): one subscription to "{org}.{edge}.>", whose
// messages are decoded and evaluated in order by one goroutine. As
// everywhere in Lintel, the context given to Start bounds the start only;
// the engine runs until [Engine.Stop] ([Engine.Done] is closed then). Commands
// and messages that are not envelopes are no inputs; an envelope ID seen
// recently (a device's retried publish) triggers nothing twice.
// [RuleSet.Evaluate] is the pure evaluation the engine runs; the engine
// adds rate limits, episodes and publishing.
//
// Rule sets are immutable and swapped whole: [Engine.Load] and
// [Engine.Reload] put new rules in force without a restart, and an invalid
// document leaves the old ones in force. [Watch] reloads from a key
// ([ConfigKey]) of the edge's configuration bucket whenever central writes
// a new document. Episodes of unchanged rules survive a reload; those of
// changed or removed rules end.
package rules
