// Package rules is the edge's local rules engine for immediate actions:
// when a message of the edge matches a rule, the edge publishes an event
// or sends a command at once, without waiting for central, and goes on
// doing so while the link to central is down.
//
// A rule document is JSON ([Document]); a rule names a subject filter
// (match), a condition (when, an expression of github.com/expr-lang/expr
// over the message's subject, envelope and payload), optionally how long
// the condition must hold (for), its actions and a rate limit:
//
//	{"rules": [{"name": "too-hot", "match": "acme.hq.sensor.*.tlm",
//	  "when": "payload.metric == 'temperature' && payload.value > 28",
//	  "actions": [{"command": {"target": "hvac.h1", "action": "cool", "ttl": "1m"}}]}]}
//
// [Parse] reads a document strictly and compiles it once into a [RuleSet];
// errors are [*RuleError] values that name the rule and the field. An event
// action publishes an event of the edge itself with JetStream, so that it
// reaches central like any event; a command action sends a signed command
// to one of the edge's devices at once (not queued). Outputs carry
// [HeaderRule], [HeaderRuleChain] and [HeaderRuleDepth], so that rules
// never fire on their own chain's output, and each rule has a token bucket
// ([Rate]).
//
// [Start] runs an [Engine] on the edge service's connection: one
// subscription to "{org}.{edge}.>", evaluated in order by one goroutine.
// The context given to Start bounds the start only; the engine runs until
// [Engine.Stop]. [Engine.Load] and [Engine.Reload] swap the rule set whole
// (an invalid document leaves the old one in force), and [Watch]
// reloads it whenever central writes a new document to the edge's
// configuration bucket ([ConfigKey]). [RuleSet.Evaluate] is the pure
// evaluation the engine runs; its example shows which rules fire on a
// message, and the Parse example what an error names.
//
// The rule language (every variable of a condition, payload decoding),
// outputs, loops and storms, and the engine in detail: docs/rules.md.
package rules
