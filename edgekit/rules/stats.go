package rules

// Stats is a snapshot of an engine's counters; see [Engine.Stats]. The
// totals count since Start, rules removed since included.
type Stats struct {
	// Received counts the messages the subscription delivered.
	Received uint64
	// Ignored counts those that were no inputs: commands, and messages
	// that are not valid envelopes.
	Ignored uint64
	// Duplicates counts envelopes seen again (by ID), which trigger nothing
	// the second time: a device's publish retried after a lost
	// acknowledgement reaches the engine twice.
	Duplicates uint64
	// DroppedDepth counts messages of the edge at Config.MaxDepth or
	// deeper, on which no rule was evaluated.
	DroppedDepth uint64
	// SlowConsumer counts the messages the NATS client dropped because the
	// engine did not keep up.
	SlowConsumer uint64
	// Inputs counts the messages evaluated.
	Inputs uint64

	// Fired, DroppedRate, DroppedLoop, Errors and PublishErrors are the
	// sums of the rules' RuleStats.
	Fired, DroppedRate, DroppedLoop, Errors, PublishErrors uint64

	// Loads counts the rule sets put in force (Start's included); and
	// ReloadErrors the documents Reload refused.
	Loads, ReloadErrors uint64

	// Rules are the counters of each rule in force, by name. A rule's
	// counters survive reloads for as long as a rule of its name exists.
	Rules map[string]RuleStats
}

// RuleStats are one rule's counters.
type RuleStats struct {
	// Fired counts the firings: the condition held (for a rule with For,
	// long enough) within the rate limit, and the actions were published.
	Fired uint64
	// DroppedRate counts the firings dropped by the rate limit.
	DroppedRate uint64
	// DroppedLoop counts the messages the rule would have fired on but did
	// not, because they stem from its own firings (Looped).
	DroppedLoop uint64
	// Errors counts the messages the rule could not evaluate (Failed),
	// and the episodes refused beyond Config.MaxKeys.
	Errors uint64
	// PublishErrors counts the actions that could not be published.
	PublishErrors uint64
	// Pending is the number of episodes of a rule with For that wait for
	// their duration to pass.
	Pending int
	// Held is the number of episodes of a rule with For that have fired
	// and wait for the condition to stop holding.
	Held int
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.totals
	s := Stats{
		Received: t.received, Ignored: t.ignored, Duplicates: t.duplicates, DroppedDepth: t.droppedDepth, Inputs: t.inputs,
		Fired: t.fired, DroppedRate: t.droppedRate, DroppedLoop: t.droppedLoop, Errors: t.errors, PublishErrors: t.publishErrors,
		Loads: t.loads, ReloadErrors: t.reloadErrors,
		Rules: make(map[string]RuleStats, len(e.state)),
	}
	if e.sub != nil {
		if n, err := e.sub.Dropped(); err == nil && n > 0 {
			s.SlowConsumer = uint64(n)
		}
	}
	for name, st := range e.state {
		rs := st.stats
		for _, ep := range st.held {
			if ep.fired {
				rs.Held++
			} else {
				rs.Pending++
			}
		}
		s.Rules[name] = rs
	}
	return s
}
