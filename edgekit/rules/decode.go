package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxDocumentSize is the largest rule document Parse reads, in bytes.
const MaxDocumentSize = 1 << 20

// maxDataDepth bounds the nesting of an event's data.
const maxDataDepth = 32

// The keys of each object of the document format.
var (
	docKeys     = []string{"rules"}
	ruleKeys    = []string{"name", "match", "when", "for", "key", "actions", "rate", "enabled"}
	actionKeys  = []string{"event", "command"}
	eventKeys   = []string{"name", "data"}
	commandKeys = []string{"target", "action", "params", "ttl"}
	rateKeys    = []string{"per_minute", "burst"}
)

// decoder reads a rule document strictly: no unknown keys, no duplicate
// keys, no value of the wrong JSON type, nothing after the document. Its
// errors name the rule being read.
type decoder struct {
	rule string // label of the rule being read: its name or "#i"
}

func (d *decoder) fail(field string, sentinel error, reason string, cause error) *RuleError {
	return &RuleError{Rule: d.rule, Field: field, Reason: reason, Err: sentinel, Cause: cause}
}

// decodeDocument reads data into a Document, checking the JSON structure
// and the types of the values; the meaning of the values is checked when
// the rules are compiled.
func decodeDocument(data []byte) (Document, error) {
	d := &decoder{}
	var doc Document
	if len(data) > MaxDocumentSize {
		return doc, d.fail("", ErrMalformed, "larger than "+strconv.Itoa(MaxDocumentSize)+" bytes", nil)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return doc, d.fail("", ErrMalformed, "empty document", nil)
		}
		return doc, d.fail("", ErrMalformed, "not JSON: "+err.Error(), err)
	}
	if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return doc, d.fail("", ErrMalformed, "data after the document at offset "+strconv.Itoa(len(data)-len(rest)), nil)
	}
	fields, rerr := d.object(raw, "", docKeys)
	if rerr != nil {
		return doc, rerr
	}
	rulesRaw, ok := fields["rules"]
	if !ok {
		return doc, d.fail("rules", ErrMissing, "required", nil)
	}
	elems, rerr := d.array(rulesRaw, "rules")
	if rerr != nil {
		return doc, rerr
	}
	doc.Rules = make([]Rule, 0, len(elems))
	for i, el := range elems {
		r, rerr := decodeRule(el, i)
		if rerr != nil {
			return doc, rerr
		}
		doc.Rules = append(doc.Rules, r)
	}
	return doc, nil
}

// ruleLabel returns the label errors use for rule i: its name when it has
// a usable one, "#i" otherwise.
func ruleLabel(raw json.RawMessage, i int) string {
	ms, err := members(raw)
	if err == nil {
		for _, m := range ms {
			if m.key != "name" {
				continue
			}
			var s string
			if json.Unmarshal(m.val, &s) == nil && validName(s) {
				return s
			}
			break
		}
	}
	return "#" + strconv.Itoa(i)
}

func decodeRule(raw json.RawMessage, i int) (Rule, *RuleError) {
	d := &decoder{rule: ruleLabel(raw, i)}
	var r Rule
	f, err := d.object(raw, "", ruleKeys)
	if err != nil {
		return r, err
	}
	if r.Name, err = d.optString(f, "name", ""); err != nil {
		return r, err
	}
	if r.Match, err = d.optString(f, "match", ""); err != nil {
		return r, err
	}
	if r.When, err = d.optString(f, "when", ""); err != nil {
		return r, err
	}
	if r.For, err = d.optDuration(f, "for", ""); err != nil {
		return r, err
	}
	if r.Key, err = d.optString(f, "key", ""); err != nil {
		return r, err
	}
	if raw, ok := f["actions"]; ok {
		elems, err := d.array(raw, "actions")
		if err != nil {
			return r, err
		}
		r.Actions = make([]Action, 0, len(elems))
		for j, el := range elems {
			a, err := d.action(el, "actions["+strconv.Itoa(j)+"]")
			if err != nil {
				return r, err
			}
			r.Actions = append(r.Actions, a)
		}
	}
	if raw, ok := f["rate"]; ok {
		rf, err := d.object(raw, "rate", rateKeys)
		if err != nil {
			return r, err
		}
		rt := new(Rate)
		if raw, ok := rf["per_minute"]; ok {
			n, err := d.number(raw, "rate.per_minute")
			if err != nil {
				return r, err
			}
			v, ok := n.(float64)
			if !ok {
				v = float64(n.(int64))
			}
			rt.PerMinute = v
		}
		if raw, ok := rf["burst"]; ok {
			n, err := d.number(raw, "rate.burst")
			if err != nil {
				return r, err
			}
			v, ok := n.(int64)
			if !ok || v > math.MaxInt32 || v < math.MinInt32 {
				return r, d.fail("rate.burst", ErrInvalid, "must be a whole number of firings", nil)
			}
			rt.Burst = int(v)
		}
		r.Rate = rt
	}
	if raw, ok := f["enabled"]; ok {
		var b bool
		if kind(raw) != 't' && kind(raw) != 'f' {
			return r, d.fail("enabled", ErrMalformed, "must be true or false", nil)
		}
		_ = json.Unmarshal(raw, &b)
		r.Enabled = &b
	}
	return r, nil
}

func (d *decoder) action(raw json.RawMessage, path string) (Action, *RuleError) {
	var a Action
	f, err := d.object(raw, path, actionKeys)
	if err != nil {
		return a, err
	}
	if raw, ok := f["event"]; ok {
		p := path + ".event"
		ef, err := d.object(raw, p, eventKeys)
		if err != nil {
			return a, err
		}
		ev := new(EventAction)
		if ev.Name, err = d.optString(ef, "name", p); err != nil {
			return a, err
		}
		if raw, ok := ef["data"]; ok {
			v, err := d.free(raw, p+".data", 0)
			if err != nil {
				return a, err
			}
			m, ok := v.(map[string]any)
			if !ok {
				return a, d.fail(p+".data", ErrMalformed, "must be an object", nil)
			}
			ev.Data = m
		}
		a.Event = ev
	}
	if raw, ok := f["command"]; ok {
		p := path + ".command"
		cf, err := d.object(raw, p, commandKeys)
		if err != nil {
			return a, err
		}
		c := new(CommandAction)
		if c.Target, err = d.optString(cf, "target", p); err != nil {
			return a, err
		}
		if c.Action, err = d.optString(cf, "action", p); err != nil {
			return a, err
		}
		if raw, ok := cf["params"]; ok {
			pp := p + ".params"
			ms, err := d.objectAny(raw, pp)
			if err != nil {
				return a, err
			}
			c.Params = make(map[string]string, len(ms))
			for _, m := range ms {
				s, err := d.str(m.val, pp+"."+m.key)
				if err != nil {
					return a, err
				}
				c.Params[m.key] = s
			}
		}
		if c.TTL, err = d.optDuration(cf, "ttl", p); err != nil {
			return a, err
		}
		a.Command = c
	}
	return a, nil
}

// member is one key and value of a JSON object, in document order.
type member struct {
	key string
	val json.RawMessage
}

// members returns the members of the JSON object raw, which must be
// well-formed JSON, in document order, duplicates included.
func members(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errNotObject
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		ms = append(ms, member{key: key, val: v})
	}
	return ms, nil
}

var errNotObject = errors.New("not an object")

// objectAny returns the members of the object at path, refusing
// duplicate keys.
func (d *decoder) objectAny(raw json.RawMessage, path string) ([]member, *RuleError) {
	if kind(raw) != '{' {
		return nil, d.fail(path, ErrMalformed, "must be an object, not "+kindName(raw), nil)
	}
	ms, err := members(raw)
	if err != nil {
		return nil, d.fail(path, ErrMalformed, err.Error(), err)
	}
	seen := make(map[string]struct{}, len(ms))
	for _, m := range ms {
		if _, dup := seen[m.key]; dup {
			return nil, d.fail(join(path, m.key), ErrDuplicate, "duplicate key", nil)
		}
		seen[m.key] = struct{}{}
	}
	return ms, nil
}

// object returns the members of the object at path by key, refusing
// duplicate keys and keys not in allowed.
func (d *decoder) object(raw json.RawMessage, path string, allowed []string) (map[string]json.RawMessage, *RuleError) {
	if kind(raw) != '{' {
		what := "an object"
		if path == "" && d.rule == "" {
			what = `an object such as {"rules": [...]}`
		}
		return nil, d.fail(path, ErrMalformed, "must be "+what+", not "+kindName(raw), nil)
	}
	ms, err := members(raw)
	if err != nil {
		return nil, d.fail(path, ErrMalformed, err.Error(), err)
	}
	out := make(map[string]json.RawMessage, len(ms))
	for _, m := range ms {
		if !contains(allowed, m.key) {
			return nil, d.fail(join(path, m.key), ErrUnknownField, "unknown key; known keys are "+strings.Join(allowed, ", "), nil)
		}
		if _, dup := out[m.key]; dup {
			return nil, d.fail(join(path, m.key), ErrDuplicate, "duplicate key", nil)
		}
		out[m.key] = m.val
	}
	return out, nil
}

func (d *decoder) array(raw json.RawMessage, path string) ([]json.RawMessage, *RuleError) {
	if kind(raw) != '[' {
		return nil, d.fail(path, ErrMalformed, "must be an array, not "+kindName(raw), nil)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, d.fail(path, ErrMalformed, err.Error(), err)
	}
	return elems, nil
}

func (d *decoder) str(raw json.RawMessage, path string) (string, *RuleError) {
	if kind(raw) != '"' {
		return "", d.fail(path, ErrMalformed, "must be a string, not "+kindName(raw), nil)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", d.fail(path, ErrMalformed, err.Error(), err)
	}
	return s, nil
}

// optString returns the string at key of f, or "" when absent.
func (d *decoder) optString(f map[string]json.RawMessage, key, path string) (string, *RuleError) {
	raw, ok := f[key]
	if !ok {
		return "", nil
	}
	return d.str(raw, join(path, key))
}

// optDuration returns the duration at key of f, or 0 when absent.
func (d *decoder) optDuration(f map[string]json.RawMessage, key, path string) (Duration, *RuleError) {
	raw, ok := f[key]
	if !ok {
		return 0, nil
	}
	p := join(path, key)
	s, err := d.str(raw, p)
	if err != nil {
		err.Reason = "must be a duration such as \"30s\", not " + kindName(raw)
		return 0, err
	}
	v, perr := time.ParseDuration(s)
	if perr != nil {
		return 0, d.fail(p, ErrInvalid, "not a duration such as \"30s\": "+strconv.Quote(s), perr)
	}
	return Duration(v), nil
}

// number returns the JSON number raw as an int64 when it is written as an
// integer that fits, and as a float64 otherwise.
func (d *decoder) number(raw json.RawMessage, path string) (any, *RuleError) {
	if kind(raw) != '0' {
		return nil, d.fail(path, ErrMalformed, "must be a number, not "+kindName(raw), nil)
	}
	s := string(raw)
	if !strings.ContainsAny(s, ".eE") {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return v, nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) {
		return nil, d.fail(path, ErrInvalid, "number out of range: "+s, err)
	}
	return v, nil
}

// free reads any JSON value, refusing duplicate keys at every level:
// objects become map[string]any, arrays []any, numbers int64 or float64.
func (d *decoder) free(raw json.RawMessage, path string, depth int) (any, *RuleError) {
	if depth > maxDataDepth {
		return nil, d.fail(path, ErrInvalid, "nested deeper than "+strconv.Itoa(maxDataDepth)+" levels", nil)
	}
	switch kind(raw) {
	case '{':
		ms, err := d.objectAny(raw, path)
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, len(ms))
		for _, mem := range ms {
			v, err := d.free(mem.val, join(path, mem.key), depth+1)
			if err != nil {
				return nil, err
			}
			m[mem.key] = v
		}
		return m, nil
	case '[':
		elems, err := d.array(raw, path)
		if err != nil {
			return nil, err
		}
		s := make([]any, 0, len(elems))
		for i, el := range elems {
			v, err := d.free(el, path+"["+strconv.Itoa(i)+"]", depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case '"':
		return d.str(raw, path)
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	default:
		return d.number(raw, path)
	}
}

// kind returns the first byte of the JSON value raw, which must be
// well-formed: '{', '[', '"', 't', 'f', 'n', or '0' for a number.
func kind(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	switch c := raw[0]; c {
	case '{', '[', '"', 't', 'f', 'n':
		return c
	default:
		return '0'
	}
}

func kindName(raw json.RawMessage) string {
	switch kind(raw) {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
