package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/lintel-io/lintel/internal/suggest"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Key prefixes of the entries of an edge's credential bucket. The rest of a
// key is the credential id, group name or schedule name; keys with any other
// prefix belong to others, and [Set.Apply] ignores them.
const (
	KeyPrefixCredential = "cred."
	KeyPrefixGroup      = "group."
	KeyPrefixSchedule   = "schedule."
)

// CredentialKey returns the bucket key of the credential with the given id:
// "cred." + id.
func CredentialKey(id string) string { return KeyPrefixCredential + id }

// GroupKey returns the bucket key of the door group with the given name:
// "group." + name.
func GroupKey(name string) string { return KeyPrefixGroup + name }

// CredentialState says whether a credential may be used.
type CredentialState string

// States of a credential.
const (
	StateActive    CredentialState = "active"    // it opens the doors it lists
	StateSuspended CredentialState = "suspended" // temporarily barred; it may become active again
	StateRevoked   CredentialState = "revoked"   // barred for good
)

// Limits on the free text of a credential, in bytes.
const (
	maxHolderLen = 256
	maxReasonLen = 1024
)

// Token parts used to explain a bad door code, group or schedule name.
const (
	partDoor     topic.Part = "door"
	partGroup    topic.Part = "group"
	partSchedule topic.Part = "schedule"
)

// Credential is one entry of an edge's credential set: who holds the
// credential whose keyed hash is ID, whether it may be used, when, and at
// which doors. Central writes it to the edge's bucket under
// [CredentialKey](ID) as the JSON form of its tagged fields; ID and Revision
// come from the key and the bucket, not the value.
//
// A credential opens a door when it is active, within its validity, lists
// the door (directly or through a [DoorGroup]) and, if it lists schedules,
// one of them allows the moment; see [Set.Decide].
type Credential struct {
	// ID is the credential's keyed hash, [message.Credential.Hash] under
	// the org's hash key: 64 lower-case hex characters.
	ID string `json:"-"`
	// Holder refers to the person or thing holding the credential, as
	// recorded in decisions: required, at most 256 bytes of UTF-8, no
	// control characters.
	Holder string `json:"holder"`
	// Kind is the kind of credential, if recorded: card, pin or mobile.
	Kind message.CredentialKind `json:"kind,omitempty"`
	// State is active, suspended or revoked; required.
	State CredentialState `json:"state"`
	// Reason says why the credential is suspended or revoked; at most 1024
	// bytes of UTF-8, no control characters.
	Reason string `json:"reason,omitempty"`
	// ValidFrom is when the credential becomes valid; zero for always.
	ValidFrom time.Time `json:"valid_from,omitzero"`
	// ValidUntil is when it stops being valid (exclusive); zero for never.
	// When both are set it must be after ValidFrom.
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// Doors lists the codes of the doors at the edge it opens; each a
	// topic token, no duplicates.
	Doors []string `json:"doors,omitempty"`
	// Groups lists door groups whose doors it opens too; each a topic
	// token, no duplicates.
	Groups []string `json:"groups,omitempty"`
	// Schedules lists the weekly schedules that say when it may be used:
	// at a moment some listed schedule allows. Empty means at any time.
	// Each a topic token, no duplicates.
	Schedules []string `json:"schedules,omitempty"`
	// Changed is when central last changed the credential, if known.
	Changed time.Time `json:"changed,omitzero"`
	// Revision is the bucket revision the credential was read at.
	Revision uint64 `json:"-"`
}

// ValidCredentialID returns nil if id is a credential id, 64 lower-case hex
// characters as [message.Credential.Hash] returns, and otherwise a
// [*FieldError] for field "id" wrapping [ErrInvalid].
func ValidCredentialID(id string) error {
	if reason := credentialIDProblem(id); reason != "" {
		return &FieldError{Kind: kindCredential, Name: id, Field: "id", Reason: reason, Err: ErrInvalid}
	}
	return nil
}

// credentialIDProblem says what is wrong with id, or "".
func credentialIDProblem(id string) string {
	const want = "want 64 lower-case hex characters (a keyed hash of the credential)"
	if len(id) != 64 {
		return fmt.Sprintf("%d characters, %s", len(id), want)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Sprintf("character %d is not lower-case hex, %s", i, want)
		}
	}
	return ""
}

// Validate checks c against the rules of its fields (see [Credential]): a
// valid ID, a holder, a known state and kind, a validity that ends after it
// begins, and door, group and schedule names that are topic tokens listed
// once each. It returns the first problem as a [*FieldError] naming the
// field and wrapping [ErrInvalid].
func (c *Credential) Validate() error {
	fail := func(field, reason string, err error) error {
		if err == nil {
			err = ErrInvalid
		}
		return &FieldError{Kind: kindCredential, Name: c.ID, Field: field, Reason: reason, Err: err}
	}
	if reason := credentialIDProblem(c.ID); reason != "" {
		return fail("id", reason, nil)
	}
	if c.Holder == "" {
		return fail("holder", "required", nil)
	}
	if reason := textProblem(c.Holder, maxHolderLen); reason != "" {
		return fail("holder", reason, nil)
	}
	switch c.Kind {
	case "", message.CredentialCard, message.CredentialPIN, message.CredentialMobile:
	default:
		return fail("kind", fmt.Sprintf("%q is not one of card, pin, mobile", c.Kind), nil)
	}
	switch c.State {
	case StateActive, StateSuspended, StateRevoked:
	case "":
		return fail("state", "required: active, suspended or revoked", nil)
	default:
		return fail("state", fmt.Sprintf("%q is not one of active, suspended, revoked", c.State), nil)
	}
	if reason := textProblem(c.Reason, maxReasonLen); reason != "" {
		return fail("reason", reason, nil)
	}
	if !c.ValidFrom.IsZero() && !c.ValidUntil.IsZero() && !c.ValidUntil.After(c.ValidFrom) {
		return fail("valid_until", fmt.Sprintf("%s is not after valid_from %s",
			c.ValidUntil.Format(time.RFC3339Nano), c.ValidFrom.Format(time.RFC3339Nano)), nil)
	}
	for _, l := range [...]struct {
		field string
		part  topic.Part
		names []string
	}{{"doors", partDoor, c.Doors}, {"groups", partGroup, c.Groups}, {"schedules", partSchedule, c.Schedules}} {
		if field, reason, err := tokenListProblem(l.field, l.part, l.names); reason != "" {
			return fail(field, reason, err)
		}
	}
	return nil
}

// textProblem says what is wrong with free text s, or "".
func textProblem(s string, maxLen int) string {
	if len(s) > maxLen {
		return fmt.Sprintf("%d bytes, at most %d allowed", len(s), maxLen)
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character %U not allowed", r)
		}
	}
	return ""
}

// tokenListProblem checks that every name in a list is a topic token and
// appears once. It returns the element's field path, the reason and the
// error to wrap, or an empty reason.
func tokenListProblem(field string, part topic.Part, names []string) (string, string, error) {
	for i, n := range names {
		if err := topic.ValidateToken(part, n); err != nil {
			reason := err.Error()
			var te *topic.Error
			if errors.As(err, &te) {
				reason = fmt.Sprintf("%q: %s", n, te.Reason)
			}
			return fmt.Sprintf("%s[%d]", field, i), reason, errors.Join(ErrInvalid, err)
		}
		if j := slices.Index(names[:i], n); j >= 0 {
			return fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("%q already listed as %s[%d]", n, field, j), ErrInvalid
		}
	}
	return "", "", nil
}

// ParseCredential decodes the bucket value of the credential with the given
// id and validates it with [Credential.Validate]; the result has ID set,
// Revision zero and its times in UTC.
//
// Decoding is strict: data must be one JSON object with keys spelt exactly
// as in [Credential]'s JSON form. An unknown key is a [*FieldError] wrapping
// [ErrUnknownField] and naming the key; a syntax error, a key given twice, a
// value of the wrong JSON type, a string that is not valid UTF-8 or data
// after the object wraps [ErrMalformed], naming the field where there is
// one; a time that is not RFC 3339 wraps [ErrInvalid], as do the problems
// Validate finds. An id that is not 64 lower-case hex
// characters is rejected before data is looked at.
func ParseCredential(id string, data []byte) (*Credential, error) {
	c := new(Credential)
	if err := parseCredential(c, id, data); err != nil {
		return nil, err
	}
	return c, nil
}

// parseCredential is ParseCredential into c, which must be zero.
func parseCredential(c *Credential, id string, data []byte) error {
	if err := ValidCredentialID(id); err != nil {
		return err
	}
	c.ID = id
	if p := decodeStrict(data, c); p != nil {
		return p.fieldError(kindCredential, id)
	}
	return c.Validate()
}

// Marshal validates c and returns its bucket value, the JSON form
// [ParseCredential] reads. It returns the [*FieldError] from
// [Credential.Validate] if c is not valid.
func (c *Credential) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// DoorGroup is a named set of doors at an edge, so that a credential can
// list the group instead of each door. Central writes it under
// [GroupKey](Name) as {"doors": [...]}. A group without doors is allowed
// and opens nothing.
type DoorGroup struct {
	// Name is the group's name, a topic token; it comes from the key.
	Name string `json:"-"`
	// Doors lists the door codes in the group: topic tokens, no
	// duplicates.
	Doors []string `json:"doors"`
}

// Validate checks that the group's name and door codes are topic tokens and
// that no door is listed twice. It returns a [*FieldError] of kind "group"
// wrapping [ErrInvalid] (and the [*topic.Error] for a bad token).
func (g *DoorGroup) Validate() error {
	if err := topic.ValidateToken(partGroup, g.Name); err != nil {
		return nameError(kindGroup, g.Name, err)
	}
	if field, reason, err := tokenListProblem("doors", partDoor, g.Doors); reason != "" {
		return &FieldError{Kind: kindGroup, Name: g.Name, Field: field, Reason: reason, Err: err}
	}
	return nil
}

// nameError reports a group, schedule or door name that is not a topic
// token.
func nameError(kind, name string, err error) error {
	reason := err.Error()
	var te *topic.Error
	if errors.As(err, &te) {
		reason = "name: " + te.Reason
	}
	return &FieldError{Kind: kind, Name: name, Reason: reason, Err: errors.Join(ErrInvalid, err)}
}

// ParseDoorGroup decodes the bucket value of the door group with the given
// name, strictly as [ParseCredential] does, and validates it with
// [DoorGroup.Validate]. Errors are [*FieldError] values of kind "group".
func ParseDoorGroup(name string, data []byte) (*DoorGroup, error) {
	g := &DoorGroup{Name: name}
	if err := topic.ValidateToken(partGroup, name); err != nil {
		return nil, nameError(kindGroup, name, err)
	}
	if p := decodeStrict(data, g); p != nil {
		return nil, p.fieldError(kindGroup, name)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// Marshal validates g and returns its bucket value, the JSON form
// [ParseDoorGroup] reads.
func (g *DoorGroup) Marshal() ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	out := *g
	if out.Doors == nil {
		out.Doors = []string{} // "doors": [] rather than null
	}
	return json.Marshal(&out)
}

// ---- strict JSON decoding ----

// jsonProblem is a problem found while decoding strictly, located by the
// path of the field it concerns ("" for the value as a whole).
type jsonProblem struct {
	field  string
	reason string
	err    error // the sentinel
}

// fieldError turns p into the [*FieldError] for the named entry.
func (p *jsonProblem) fieldError(kind, name string) *FieldError {
	return &FieldError{Kind: kind, Name: name, Field: p.field, Reason: p.reason, Err: p.err}
}

// malformed returns a problem at path wrapping ErrMalformed.
func malformed(path, format string, args ...any) *jsonProblem {
	return &jsonProblem{field: path, reason: fmt.Sprintf(format, args...), err: ErrMalformed}
}

// structInfo describes the JSON form of a struct type: its keys, each
// mapped to the index of its field, and the keys in order for suggestions.
type structInfo struct {
	index map[string]int // key → field index
	names []string       // field index → key ("" if not in the form)
	keys  []string       // the keys, sorted
}

// newStructInfo reads the json tags of struct type t. Fields tagged "-" and
// unexported fields are not part of the form.
func newStructInfo(t reflect.Type) *structInfo {
	if t.NumField() > 64 {
		panic("access: too many fields for the duplicate-key mask: " + t.String())
	}
	info := &structInfo{index: make(map[string]int, t.NumField()), names: make([]string, t.NumField())}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		info.index[name] = i
		info.names[i] = name
		info.keys = append(info.keys, name)
	}
	slices.Sort(info.keys)
	return info
}

// The JSON forms this package decodes; read-only after initialisation.
var (
	timeType    = reflect.TypeFor[time.Time]()
	stringsType = reflect.TypeFor[[]string]()
	structInfos = func() map[reflect.Type]*structInfo {
		m := make(map[reflect.Type]*structInfo)
		for _, t := range []reflect.Type{
			reflect.TypeFor[Credential](),
			reflect.TypeFor[DoorGroup](),
			reflect.TypeFor[Schedule](),
			reflect.TypeFor[Interval](),
			reflect.TypeFor[doorPolicyJSON](),
		} {
			m[t] = newStructInfo(t)
		}
		return m
	}()
)

// strictDecoder decodes JSON more strictly than encoding/json does, in one
// pass over the input: every key must match a json tag exactly
// (encoding/json matches case-insensitively), no key may appear twice in
// one object (encoding/json keeps the last), every value must have the JSON
// type its field needs (null leaves the zero value), strings must be valid
// UTF-8 without unpaired surrogate escapes (encoding/json substitutes
// U+FFFD), and nothing but white space may follow the top-level object.
// Every field of the forms it decodes is a string, a list or an object, so
// it never needs to skip a value: any other value is an error. Problems are
// located by field path.
type strictDecoder struct {
	data []byte
	pos  int
}

// decodeStrict decodes data, one JSON object, into v, a pointer to one of
// the struct types in structInfos.
func decodeStrict(data []byte, v any) *jsonProblem {
	d := &strictDecoder{data: data}
	if p := d.openObject(); p != nil {
		return p
	}
	if p := d.structBody(reflect.ValueOf(v).Elem(), ""); p != nil {
		return p
	}
	return d.end()
}

// ws skips white space.
func (d *strictDecoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the byte at the read position, 0 at the end of the input.
func (d *strictDecoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// openObject reads the '{' that must begin the input.
func (d *strictDecoder) openObject() *jsonProblem {
	d.ws()
	if d.peek() != '{' {
		return d.wrongType("", "a JSON object")
	}
	d.pos++
	return nil
}

// end checks that nothing but white space follows the top-level value.
func (d *strictDecoder) end() *jsonProblem {
	d.ws()
	if d.pos < len(d.data) {
		line, col := d.position()
		got := d.describe()
		if got == "" {
			got = "character " + quoteByte(d.data[d.pos])
		}
		return malformed("", "line %d, column %d: unexpected data after the top-level object: %s", line, col, got)
	}
	return nil
}

// object reads the members of an object whose '{' has been read, calling
// member with each key (valid until the next read) with the read position
// at its value; member must read the value. path locates the object.
func (d *strictDecoder) object(path string, member func(key []byte) *jsonProblem) *jsonProblem {
	d.ws()
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	for {
		d.ws()
		if d.peek() != '"' {
			return d.syntax(path, "a string key")
		}
		key, p := d.str(path)
		if p != nil {
			return p
		}
		d.ws()
		if d.peek() != ':' {
			return d.syntax(path, "':' after the key")
		}
		d.pos++
		d.ws()
		if p := member(key); p != nil {
			return p
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.syntax(path, "',' or '}' after an object member")
		}
	}
}

// array reads the elements of an array whose '[' has been read, calling
// elem with each index with the read position at the element; elem must
// read it. path locates the array.
func (d *strictDecoder) array(path string, elem func(i int) *jsonProblem) *jsonProblem {
	d.ws()
	if d.peek() == ']' {
		d.pos++
		return nil
	}
	for i := 0; ; i++ {
		d.ws()
		if p := elem(i); p != nil {
			return p
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return nil
		default:
			return d.syntax(path, "',' or ']' after an array element")
		}
	}
}

// structBody decodes the members of an object whose '{' has been read into
// the struct v.
func (d *strictDecoder) structBody(v reflect.Value, path string) *jsonProblem {
	info := structInfos[v.Type()]
	if info == nil {
		panic("access: no JSON form for " + v.Type().String())
	}
	var seen uint64
	return d.object(path, func(key []byte) *jsonProblem {
		i, ok := info.index[string(key)]
		if !ok {
			return &jsonProblem{field: joinPath(path, string(key)), reason: "unknown field" + suggest.DidYouMean(string(key), info.keys), err: ErrUnknownField}
		}
		fieldPath := joinPath(path, info.names[i])
		if seen&(1<<i) != 0 {
			return malformed(fieldPath, "key given twice")
		}
		seen |= 1 << i
		return d.value(v.Field(i), fieldPath)
	})
}

// joinPath returns the path of member key of the object at path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath returns the path of element i of the array at path.
func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// value decodes the value at the read position into v.
func (d *strictDecoder) value(v reflect.Value, path string) *jsonProblem {
	if d.null() {
		v.SetZero() // null leaves the zero value, as in encoding/json
		return nil
	}
	switch {
	case v.Type() == timeType:
		if d.peek() != '"' {
			return d.wrongType(path, "an RFC 3339 time string")
		}
		b, p := d.str(path)
		if p != nil {
			return p
		}
		// The parser encoding/json uses for a time.Time; the instant is
		// kept in UTC, whatever offset it was written with.
		t := v.Addr().Interface().(*time.Time)
		if err := t.UnmarshalText(b); err != nil {
			return &jsonProblem{field: path, reason: fmt.Sprintf("%q is not an RFC 3339 time", b), err: ErrInvalid}
		}
		*t = t.UTC()
		return nil
	case v.Kind() == reflect.String:
		if d.peek() != '"' {
			return d.wrongType(path, "a string")
		}
		b, p := d.str(path)
		if p != nil {
			return p
		}
		v.SetString(string(b))
		return nil
	case v.Type() == stringsType:
		if d.peek() != '[' {
			return d.wrongType(path, "an array of strings")
		}
		d.pos++
		list := make([]string, 0, 4)
		p := d.array(path, func(i int) *jsonProblem {
			if d.null() {
				list = append(list, "")
				return nil
			}
			if d.peek() != '"' {
				return d.wrongType(indexPath(path, i), "a string")
			}
			b, p := d.str(indexPath(path, i))
			if p == nil {
				list = append(list, string(b))
			}
			return p
		})
		if p == nil {
			v.Set(reflect.ValueOf(list))
		}
		return p
	case v.Kind() == reflect.Slice:
		if d.peek() != '[' {
			return d.wrongType(path, "an array")
		}
		d.pos++
		list := reflect.MakeSlice(v.Type(), 0, 4)
		p := d.array(path, func(i int) *jsonProblem {
			list = reflect.Append(list, reflect.New(v.Type().Elem()).Elem())
			return d.value(list.Index(i), indexPath(path, i))
		})
		if p == nil {
			v.Set(list)
		}
		return p
	case v.Kind() == reflect.Struct:
		if d.peek() != '{' {
			return d.wrongType(path, "an object")
		}
		d.pos++
		return d.structBody(v, path)
	}
	panic("access: cannot decode JSON into " + v.Type().String())
}

// null reads a null at the read position, if there is one.
func (d *strictDecoder) null() bool {
	if bytes.HasPrefix(d.data[d.pos:], []byte("null")) {
		d.pos += 4
		return true
	}
	return false
}

// str reads the string at the read position, which holds its opening
// quote, and returns its content, unescaped. The result aliases the input
// when the string has no escapes.
func (d *strictDecoder) str(path string) ([]byte, *jsonProblem) {
	start := d.pos + 1
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			d.pos = i + 1
			if !utf8.Valid(d.data[start:i]) {
				return nil, malformed(path, "string is not valid UTF-8")
			}
			return d.data[start:i], nil
		case c == '\\':
			return d.escaped(path, start, i)
		case c < 0x20:
			d.pos = i
			return nil, d.syntax(path, "the string to go on (control characters must be escaped)")
		}
	}
	d.pos = len(d.data)
	return nil, d.syntax(path, "the string's closing quote")
}

// escaped continues str from the first backslash, at i.
func (d *strictDecoder) escaped(path string, start, i int) ([]byte, *jsonProblem) {
	buf := append(make([]byte, 0, i-start+16), d.data[start:i]...)
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			if !utf8.Valid(buf) {
				return nil, malformed(path, "string is not valid UTF-8")
			}
			return buf, nil
		case c < 0x20:
			d.pos = i
			return nil, d.syntax(path, "the string to go on (control characters must be escaped)")
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(d.data) {
			break
		}
		switch e := d.data[i+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(d.data[i+2:])
			if !ok {
				d.pos = i
				return nil, d.syntax(path, `four hex digits after \u`)
			}
			if utf16.IsSurrogate(r) {
				var r2 rune
				if i+7 < len(d.data) && d.data[i+6] == '\\' && d.data[i+7] == 'u' {
					r2, _ = hex4(d.data[i+8:])
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					d.pos = i
					return nil, malformed(path, "unpaired surrogate in a \\u escape")
				}
				i += 6
			}
			buf = utf8.AppendRune(buf, r)
			i += 4
		default:
			d.pos = i
			return nil, d.syntax(path, "a valid escape after '\\'")
		}
		i += 2
	}
	d.pos = len(d.data)
	return nil, d.syntax(path, "the string's closing quote")
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// wrongType reports that the value at the read position is not the want
// its field needs; or a syntax error if it is not a JSON value at all.
func (d *strictDecoder) wrongType(path, want string) *jsonProblem {
	got := d.describe()
	if got == "" {
		return d.syntax(path, want)
	}
	return malformed(path, "want %s, got %s", want, got)
}

// describe names the JSON type of the value at the read position, or ""
// if none begins there.
func (d *strictDecoder) describe() string {
	rest := d.data[d.pos:]
	switch c := d.peek(); {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == '-' || '0' <= c && c <= '9':
		return "a number"
	case bytes.HasPrefix(rest, []byte("true")), bytes.HasPrefix(rest, []byte("false")):
		return "a boolean"
	case bytes.HasPrefix(rest, []byte("null")):
		return "null"
	}
	return ""
}

// syntax reports a syntax error at the read position, where want was
// expected.
func (d *strictDecoder) syntax(path, want string) *jsonProblem {
	if d.pos >= len(d.data) {
		return malformed(path, "unexpected end of input, want %s", want)
	}
	line, col := d.position()
	return malformed(path, "line %d, column %d: invalid character %s, want %s", line, col, quoteByte(d.data[d.pos]), want)
}

// quoteByte quotes the byte c for an error message.
func quoteByte(c byte) string {
	if c < utf8.RuneSelf {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("%#02x", c)
}

// position returns the 1-based line and column of the read position.
func (d *strictDecoder) position() (line, col int) {
	before := d.data[:min(d.pos, len(d.data))]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = 1 + len(before) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}
