package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/lintel-io/lintel/topic"
	"golang.org/x/time/rate"
)

// Scope is the edge whose messages a rule set looks at and whose devices
// it commands: every filter lies within "{Org}.{Edge}.>".
type Scope struct {
	Org  string // organisation
	Edge string // edge (site) code
}

// filter returns "{org}.{edge}.>" after validating s.
func (s Scope) filter() (topic.Filter, error) {
	f, err := topic.EdgeFilter(s.Org, s.Edge)
	if err != nil {
		return f, fmt.Errorf("%w: scope: %w", ErrInvalidConfig, err)
	}
	if topic.IsReserved(s.Org) || topic.IsReserved(s.Edge) {
		return f, fmt.Errorf("%w: scope %s.%s: reserved name", ErrInvalidConfig, s.Org, s.Edge)
	}
	return f, nil
}

// RuleSet is a compiled rule document for one edge: filters parsed,
// expressions compiled, actions checked. It is immutable and safe for
// concurrent use; an [Engine] swaps whole rule sets on reload. Make one
// with [Parse].
type RuleSet struct {
	scope  Scope
	doc    Document
	rules  []*rule // every rule, in document order
	active []*rule // the enabled ones
	// byType lists, per built-in message type, the enabled rules whose
	// filter can match it, in document order.
	byType map[topic.MessageType][]*rule
}

// rule is a compiled [Rule].
type rule struct {
	name    string
	def     Rule
	fp      string // fingerprint: the rule's canonical JSON, to tell a changed rule on reload
	filter  topic.Filter
	match   matcher
	when    *vm.Program // nil means true
	key     *vm.Program // nil means the source thing
	needs   needs       // costly variables that when and key use
	forDur  time.Duration
	actions []action
	limit   rate.Limit
	burst   int
	enabled bool
}

// action is a compiled [Action]: exactly one of event and command is set.
type action struct {
	event   *eventAction
	command *commandAction
}

type eventAction struct {
	name string
	data map[string]any
}

type commandAction struct {
	target topic.Thing
	action string
	params map[string]string
	ttl    time.Duration
}

// Parse reads and compiles a rule document for the edge of scope. It reads
// strictly: unknown keys, duplicate keys, values of the wrong type and data
// after the document are errors; filters must parse and lie within the
// edge, expressions must compile against the variables of the package
// documentation (when must be boolean), durations must parse, names must be
// unique, command targets must be devices of the edge.
//
// Errors are *RuleError values naming the rule and the field, wrapping
// ErrMalformed, ErrUnknownField, ErrDuplicate, ErrMissing or ErrInvalid;
// an invalid scope yields an error wrapping ErrInvalidConfig.
func Parse(data []byte, scope Scope) (*RuleSet, error) {
	edge, err := scope.filter()
	if err != nil {
		return nil, err
	}
	doc, err := decodeDocument(data)
	if err != nil {
		return nil, err
	}
	return compile(doc, scope, edge)
}

// empty returns the rule set without rules for scope.
func empty(scope Scope) *RuleSet {
	rs := &RuleSet{scope: scope, doc: Document{Rules: []Rule{}}}
	rs.index()
	return rs
}

func compile(doc Document, scope Scope, edge topic.Filter) (*RuleSet, error) {
	rs := &RuleSet{scope: scope, doc: doc}
	names := make(map[string]int, len(doc.Rules))
	for i, def := range doc.Rules {
		r, err := compileRule(def, i, scope, edge)
		if err != nil {
			return nil, err
		}
		if j, dup := names[r.name]; dup {
			return nil, &RuleError{Rule: r.name, Field: "name", Err: ErrDuplicate,
				Reason: "duplicate name: rules #" + strconv.Itoa(j) + " and #" + strconv.Itoa(i)}
		}
		names[r.name] = i
		rs.rules = append(rs.rules, r)
		if r.enabled {
			rs.active = append(rs.active, r)
		}
	}
	if rs.doc.Rules == nil {
		rs.doc.Rules = []Rule{}
	}
	rs.index()
	return rs, nil
}

// index fills rs.byType.
func (rs *RuleSet) index() {
	rs.byType = make(map[topic.MessageType][]*rule)
	for _, mt := range topic.MessageTypes() {
		var list []*rule
		for _, r := range rs.active {
			if r.match.mt == "" || r.match.mt == string(mt) {
				list = append(list, r)
			}
		}
		rs.byType[mt] = list
	}
}

// matcher is a filter within the edge, reduced to its last three tokens:
// a subject of the edge matches when each non-empty token equals the
// subject's.
type matcher struct {
	typ, code, mt string
}

func newMatcher(f topic.Filter) matcher {
	toks := f.Tokens()
	var parts [3]string
	for i := 2; i < len(toks); i++ {
		if toks[i] == topic.Rest {
			break
		}
		if toks[i] != topic.Any {
			parts[i-2] = toks[i]
		}
	}
	return matcher{typ: parts[0], code: parts[1], mt: parts[2]}
}

// matches reports whether s, a subject of the rule set's edge, matches.
func (m *matcher) matches(s *topic.Subject) bool {
	return (m.typ == "" || m.typ == s.Type) && (m.code == "" || m.code == s.Code) &&
		(m.mt == "" || m.mt == string(s.MessageType))
}

func compileRule(def Rule, i int, scope Scope, edge topic.Filter) (*rule, *RuleError) {
	label := def.Name
	if !validName(label) {
		label = "#" + strconv.Itoa(i)
	}
	fail := func(field string, sentinel error, reason string, cause error) *RuleError {
		return &RuleError{Rule: label, Field: field, Reason: reason, Err: sentinel, Cause: cause}
	}
	r := &rule{name: def.Name, def: def, enabled: def.Enabled == nil || *def.Enabled}

	switch {
	case def.Name == "":
		return nil, fail("name", ErrMissing, "required", nil)
	case !validName(def.Name):
		return nil, fail("name", ErrInvalid, "must be 1 to 64 ASCII letters, digits, '_' and '-'", nil)
	}

	if def.Match == "" {
		return nil, fail("match", ErrMissing, "required", nil)
	}
	f, err := topic.ParseFilter(def.Match)
	if err != nil {
		return nil, fail("match", ErrInvalid, err.Error(), err)
	}
	if !edge.Covers(f) {
		return nil, fail("match", ErrInvalid, fmt.Sprintf("%q reaches beyond the edge %q", def.Match, edge.String()), nil)
	}
	if toks := f.Tokens(); len(toks) == topic.NumTokens && toks[topic.NumTokens-1] == string(topic.Command) {
		return nil, fail("match", ErrInvalid, "commands are never inputs: the filter can match nothing", nil)
	}
	r.filter, r.match = f, newMatcher(f)

	if strings.TrimSpace(def.When) != "" {
		p, err := expr.Compile(def.When, expr.Env(exprEnv{}), expr.AsBool())
		if err != nil {
			return nil, fail("when", ErrInvalid, "does not compile: "+exprMessage(err), err)
		}
		r.when = p
	}

	switch {
	case def.For < 0:
		return nil, fail("for", ErrInvalid, "must not be negative", nil)
	case def.Key != "" && def.For == 0:
		return nil, fail("key", ErrInvalid, "only rules with \"for\" have keys", nil)
	}
	r.forDur = time.Duration(def.For)
	if strings.TrimSpace(def.Key) != "" {
		p, err := expr.Compile(def.Key, expr.Env(exprEnv{}))
		if err != nil {
			return nil, fail("key", ErrInvalid, "does not compile: "+exprMessage(err), err)
		}
		r.key = p
	}
	r.needs = needsOf(r.when) | needsOf(r.key)

	if len(def.Actions) == 0 {
		return nil, fail("actions", ErrMissing, "at least one action is required", nil)
	}
	for j, a := range def.Actions {
		p := "actions[" + strconv.Itoa(j) + "]"
		switch {
		case a.Event == nil && a.Command == nil:
			return nil, fail(p, ErrMissing, "needs an \"event\" or a \"command\"", nil)
		case a.Event != nil && a.Command != nil:
			return nil, fail(p, ErrInvalid, "has both an \"event\" and a \"command\"; use two actions", nil)
		case a.Event != nil:
			ev, rerr := compileEvent(a.Event, p+".event", fail)
			if rerr != nil {
				return nil, rerr
			}
			r.actions = append(r.actions, action{event: ev})
		default:
			c, rerr := compileCommand(a.Command, p+".command", scope, fail)
			if rerr != nil {
				return nil, rerr
			}
			r.actions = append(r.actions, action{command: c})
		}
	}

	perMinute, burst := float64(DefaultPerMinute), DefaultBurst
	if def.Rate != nil {
		switch {
		case def.Rate.PerMinute < 0:
			return nil, fail("rate.per_minute", ErrInvalid, "must not be negative", nil)
		case def.Rate.PerMinute > 0:
			perMinute = def.Rate.PerMinute
		}
		switch {
		case def.Rate.Burst < 0:
			return nil, fail("rate.burst", ErrInvalid, "must not be negative", nil)
		case def.Rate.Burst > 0:
			burst = def.Rate.Burst
		}
	}
	r.limit, r.burst = rate.Limit(perMinute/60), burst

	b, jerr := json.Marshal(def)
	if jerr != nil {
		return nil, fail("", ErrInvalid, "cannot be encoded: "+jerr.Error(), jerr)
	}
	r.fp = string(b)
	return r, nil
}

func compileEvent(a *EventAction, path string, fail func(string, error, string, error) *RuleError) (*eventAction, *RuleError) {
	switch {
	case a.Name == "":
		return nil, fail(path+".name", ErrMissing, "required", nil)
	case !validLabel(a.Name):
		return nil, fail(path+".name", ErrInvalid, "must be 1 to 128 ASCII letters, digits, '.', '_' and '-'", nil)
	}
	for _, k := range []string{DataRule, DataTriggerSubject, DataTriggerID, DataKey} {
		if _, ok := a.Data[k]; ok {
			return nil, fail(path+".data."+k, ErrInvalid, "reserved: the engine sets it", nil)
		}
	}
	return &eventAction{name: a.Name, data: a.Data}, nil
}

func compileCommand(a *CommandAction, path string, scope Scope, fail func(string, error, string, error) *RuleError) (*commandAction, *RuleError) {
	if a.Target == "" {
		return nil, fail(path+".target", ErrMissing, "required", nil)
	}
	var t topic.Thing
	switch parts := strings.Split(a.Target, "."); len(parts) {
	case 2:
		t = topic.Thing{Org: scope.Org, Edge: scope.Edge, Type: parts[0], Code: parts[1]}
	case 4:
		t = topic.Thing{Org: parts[0], Edge: parts[1], Type: parts[2], Code: parts[3]}
		if t.Org != scope.Org || t.Edge != scope.Edge {
			return nil, fail(path+".target", ErrInvalid, fmt.Sprintf("%q is not at the edge %s.%s", a.Target, scope.Org, scope.Edge), nil)
		}
	default:
		return nil, fail(path+".target", ErrInvalid, fmt.Sprintf("%q is not \"{type}.{code}\" or \"{org}.{edge}.{type}.{code}\"", a.Target), nil)
	}
	if err := topic.ValidateThing(t); err != nil {
		return nil, fail(path+".target", ErrInvalid, err.Error(), err)
	}
	switch {
	case a.Action == "":
		return nil, fail(path+".action", ErrMissing, "required", nil)
	case !validLabel(a.Action):
		return nil, fail(path+".action", ErrInvalid, "must be 1 to 128 ASCII letters, digits, '.', '_' and '-'", nil)
	}
	switch {
	case a.TTL == 0:
		return nil, fail(path+".ttl", ErrMissing, "required: how long the command stays valid, such as \"30s\"", nil)
	case a.TTL < 0:
		return nil, fail(path+".ttl", ErrInvalid, "must be greater than zero", nil)
	}
	return &commandAction{target: t, action: a.Action, params: a.Params, ttl: time.Duration(a.TTL)}, nil
}

// exprMessage returns the expression compiler's message on one line, with
// its position, without the snippet it adds on further lines.
func exprMessage(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fmt.Sprintf("%s (%d:%d)", fe.Message, fe.Line, fe.Column+1)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

// validName reports whether s is a valid rule name: 1 to 64 ASCII letters,
// digits, '_' and '-', so that it can travel in the comma-separated
// HeaderRuleChain.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isTokenByte(c) {
			return false
		}
	}
	return true
}

// validLabel reports whether s is a valid event name or command action:
// 1 to 128 ASCII letters, digits, '.', '_' and '-'.
func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isTokenByte(c) && c != '.' {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// Scope returns the edge the rule set was parsed for.
func (rs *RuleSet) Scope() Scope { return rs.scope }

// Len returns the number of rules, enabled or not.
func (rs *RuleSet) Len() int { return len(rs.rules) }

// Names returns the names of the rules, in document order.
func (rs *RuleSet) Names() []string {
	out := make([]string, len(rs.rules))
	for i, r := range rs.rules {
		out[i] = r.name
	}
	return out
}

// Document returns the document the rule set was parsed from, as values:
// json.Marshal of it is a document that Parse reads back to the same rules.
// It shares its maps with the rule set; do not modify them.
func (rs *RuleSet) Document() Document {
	return Document{Rules: append([]Rule{}, rs.doc.Rules...)}
}
