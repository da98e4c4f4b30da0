package rules

import (
	"fmt"
	"slices"

	"github.com/lintel-io/lintel/topic"
)

// Outcome is what a rule made of one message; see [Firing].
type Outcome uint8

// Outcomes of a rule on a message.
const (
	// Matched: the filter matches and the condition holds. A rule without
	// For fires at once; a rule with For starts (or continues) the episode
	// of Firing.Key and fires once the condition has held for its duration.
	Matched Outcome = iota + 1
	// Unmatched is reported only for rules with For: the filter matches but
	// the condition does not hold, which ends the episode of Firing.Key.
	Unmatched
	// Looped: the condition holds, but the rule is in the message's chain
	// (Input.Chain), that is, the message stems from one of its own
	// firings: the rule does not fire, and its episodes are left as they
	// were. (A rule in the chain whose condition does not hold is not
	// reported.)
	Looped
	// Failed: the condition or the key could not be evaluated, or the
	// payload could not be decoded; Firing.Err says why. The rule does not
	// fire, and the episode of a rule with For is left as it was.
	Failed
)

// String returns the outcome's name, such as "matched".
func (o Outcome) String() string {
	switch o {
	case Matched:
		return "matched"
	case Unmatched:
		return "unmatched"
	case Looped:
		return "looped"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Firing is the verdict of one rule on one message: the rules whose filter
// matches the message appear in [RuleSet.Evaluate]'s result, except rules
// without For whose condition does not hold.
type Firing struct {
	// Rule is the rule's name.
	Rule string
	// Outcome says what the rule made of the message.
	Outcome Outcome
	// Key is the episode's key, for rules with For (Matched and Unmatched).
	Key string
	// Err says why the rule Failed.
	Err error

	rule *rule
}

// Evaluate runs the enabled rules whose filter matches in's message, in
// document order, and returns their verdicts; see [Firing]. Messages of
// another edge and commands match no rule. It is pure:
// it sends nothing and keeps no state, so rate limits and the episodes of
// rules with For are the [Engine]'s business.
//
// The payload is decoded once, and only when a matching rule uses it.
// The result is kept in in's scratch space: it is valid until the next
// Evaluate with in. Evaluate is safe for concurrent use with distinct
// Inputs.
func (rs *RuleSet) Evaluate(in *Input) []Firing {
	in.out = in.out[:0]
	if rs == nil || in.Envelope == nil {
		return in.out
	}
	e := in.Envelope
	if e.Source.Org != rs.scope.Org || e.Source.Edge != rs.scope.Edge || e.Type == topic.Command {
		return in.out // not of the edge, or a command, which is never an input
	}
	subj := e.Subject()
	cands, ok := rs.byType[e.Type]
	if !ok {
		cands = rs.active // a message type of an extension
	}
	reset := false
	for _, r := range cands {
		if !r.match.matches(&subj) {
			continue
		}
		looped := len(in.Chain) > 0 && slices.Contains(in.Chain, r.name)
		if !reset {
			in.reset()
			reset = true
		}
		if err := in.ensure(r.needs); err != nil {
			in.out = append(in.out, Firing{Rule: r.name, Outcome: Failed, Err: fmt.Errorf("payload: %w", err), rule: r})
			continue
		}
		held := true
		if r.when != nil {
			v, err := in.vm.Run(r.when, &in.env)
			if err != nil {
				in.out = append(in.out, Firing{Rule: r.name, Outcome: Failed, Err: fmt.Errorf("when: %w", err), rule: r})
				continue
			}
			held, _ = v.(bool)
		}
		if looped {
			if held {
				in.out = append(in.out, Firing{Rule: r.name, Outcome: Looped, rule: r})
			}
			continue
		}
		if r.forDur == 0 {
			if held {
				in.out = append(in.out, Firing{Rule: r.name, Outcome: Matched, rule: r})
			}
			continue
		}
		var key string
		if r.key == nil {
			key = in.sourceKey()
		} else {
			v, err := in.vm.Run(r.key, &in.env)
			if err != nil {
				in.out = append(in.out, Firing{Rule: r.name, Outcome: Failed, Err: fmt.Errorf("key: %w", err), rule: r})
				continue
			}
			if s, ok := v.(string); ok {
				key = s
			} else {
				key = fmt.Sprint(v)
			}
		}
		o := Unmatched
		if held {
			o = Matched
		}
		in.out = append(in.out, Firing{Rule: r.name, Outcome: o, Key: key, rule: r})
	}
	return in.out
}

// String returns the firing as "{rule} {outcome}", followed by the key of
// a rule with For and the error of a rule that Failed.
func (f Firing) String() string {
	s := f.Rule + " " + f.Outcome.String()
	if f.Key != "" {
		s += " key=" + f.Key
	}
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}
