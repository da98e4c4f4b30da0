package authz

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/lintel-io/lintel/internal/suggest"
)

// jsonError locates a problem found while decoding strictly: the path of the
// entry ("things[3]", "passwords[\"acme.hq.reader.r1\"]", or the root name)
// and what is wrong there.
type jsonError struct {
	path string
	err  *problem
}

func (e *jsonError) Error() string { return e.path + ": " + e.err.Error() }

// decodeStrict decodes the JSON object in data into v, a pointer to a struct,
// more strictly than encoding/json: every key must match a json tag exactly
// (encoding/json matches case-insensitively, so "Code" would pass as "code"),
// no key may appear twice in one object (encoding/json keeps the last), every
// value must have the JSON type its field needs, and nothing may follow the
// top-level object. Errors are *jsonError values naming the entry, with the
// line of the offending key or value; root names the top level.
func decodeStrict(data []byte, v any, root string) error {
	w := &walker{data: data, root: root, fields: make(map[reflect.Type]map[string]reflect.Type)}
	w.dec = json.NewDecoder(bytes.NewReader(data))
	w.dec.UseNumber()
	tok, err := w.dec.Token()
	if err != nil {
		return w.syntax(err, "")
	}
	if tok != json.Delim('{') {
		return w.fail("", ErrMalformed, "want a JSON object, got %s", describe(tok))
	}
	if err := w.valueTok(tok, reflect.TypeOf(v).Elem(), ""); err != nil {
		return err
	}
	if tok, err := w.dec.Token(); err != io.EOF {
		if err != nil {
			return w.syntax(err, "")
		}
		return w.fail("", ErrMalformed, "unexpected data after the top-level object: %s", describe(tok))
	}

	// The walk proved the shape; encoding/json now fills v. It can still
	// reject a value its type parses itself, such as a malformed time.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return w.fail("", ErrMalformed, "%v", err)
	}
	return nil
}

type walker struct {
	dec    *json.Decoder
	data   []byte
	root   string
	fields map[reflect.Type]map[string]reflect.Type // json key → field type, per struct type
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// valueTok checks the value that begins with tok against type t.
func (w *walker) valueTok(tok json.Token, t reflect.Type, path string) error {
	if tok == nil {
		return nil // null leaves the zero value, as in encoding/json
	}
	if pt := reflect.PointerTo(t); pt.Implements(jsonUnmarshalerType) || pt.Implements(textUnmarshalerType) {
		// The type parses its own input, e.g. time.Time. Try a string on it
		// here, where the error can name the entry.
		if str, ok := tok.(string); ok && pt.Implements(textUnmarshalerType) {
			if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(str)); err != nil {
				return w.fail(path, ErrMalformed, "%v", err)
			}
		}
		return w.skip(tok, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return w.fail(path, ErrMalformed, "want an object, got %s", describe(tok))
		}
		fields := w.structFields(t)
		return w.object(path, func(key string) (reflect.Type, error) {
			ft, ok := fields[key]
			if !ok {
				return nil, w.fail(path, ErrUnknownKey, "unknown key %q%s", key, suggest.DidYouMean(key, slices.Sorted(maps.Keys(fields))))
			}
			return ft, nil
		}, func(key string) string { return join(path, key) })
	case reflect.Map:
		if tok != json.Delim('{') {
			return w.fail(path, ErrMalformed, "want an object, got %s", describe(tok))
		}
		elem := t.Elem()
		return w.object(path, func(string) (reflect.Type, error) { return elem, nil },
			func(key string) string { return fmt.Sprintf("%s[%q]", path, key) })
	case reflect.Slice:
		if tok != json.Delim('[') {
			return w.fail(path, ErrMalformed, "want an array, got %s", describe(tok))
		}
		for i := 0; w.dec.More(); i++ {
			tok, err := w.dec.Token()
			if err != nil {
				return w.syntax(err, path)
			}
			if err := w.valueTok(tok, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := w.dec.Token() // ']'
		if err != nil {
			return w.syntax(err, path)
		}
		return nil
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return w.fail(path, ErrMalformed, "want a string, got %s", describe(tok))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return w.fail(path, ErrMalformed, "want an integer, got %s", describe(tok))
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return w.fail(path, ErrMalformed, "want an integer, got %s", n)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return w.fail(path, ErrMalformed, "want true or false, got %s", describe(tok))
		}
	default:
		return w.skip(tok, path)
	}
	return nil
}

// object walks the members of an object whose '{' has been read. typeOf
// returns the type of a key's value (or the error for an unknown key);
// pathOf its path.
func (w *walker) object(path string, typeOf func(string) (reflect.Type, error), pathOf func(string) string) error {
	seen := make(map[string]bool)
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return w.syntax(err, path)
		}
		key := tok.(string) // the decoder guarantees a string key here
		if seen[key] {
			return w.fail(path, ErrDuplicateKey, "key %q given twice", key)
		}
		seen[key] = true
		t, err := typeOf(key)
		if err != nil {
			return err
		}
		tok, err = w.dec.Token()
		if err != nil {
			return w.syntax(err, path)
		}
		if err := w.valueTok(tok, t, pathOf(key)); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // '}'
		return w.syntax(err, path)
	}
	return nil
}

// skip consumes the rest of a value that begins with tok, without recursion,
// so deep nesting cannot exhaust the stack.
func (w *walker) skip(tok json.Token, path string) error {
	depth := 0
	for {
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
		var err error
		if tok, err = w.dec.Token(); err != nil {
			return w.syntax(err, path)
		}
	}
}

// structFields returns the json keys of struct type t and their types.
func (w *walker) structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := w.fields[t]; ok {
		return f
	}
	f := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			// An embedded struct's keys sit beside the outer struct's,
			// as encoding/json promotes them.
			maps.Copy(f, w.structFields(sf.Type))
			continue
		}
		if !sf.IsExported() {
			continue
		}
		switch name {
		case "-":
			continue
		case "":
			name = sf.Name
		}
		f[name] = sf.Type
	}
	w.fields[t] = f
	return f
}

// fail returns a jsonError at path, with the current line appended.
func (w *walker) fail(path string, sentinel error, format string, args ...any) error {
	line, _ := w.position(w.dec.InputOffset())
	p := newProblem(sentinel, format, args...)
	p.msg += fmt.Sprintf(" (line %d)", line)
	return &jsonError{path: w.name(path), err: p}
}

// syntax converts a decoder error into a jsonError.
func (w *walker) syntax(err error, path string) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		line, col := w.position(se.Offset)
		return &jsonError{path: w.name(path), err: newProblem(ErrMalformed, "line %d, column %d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &jsonError{path: w.name(path), err: newProblem(ErrMalformed, "unexpected end of input")}
	default:
		return &jsonError{path: w.name(path), err: newProblem(ErrMalformed, "%s", strings.TrimPrefix(err.Error(), "json: "))}
	}
}

func (w *walker) name(path string) string {
	if path == "" {
		return w.root
	}
	return path
}

// position converts a byte offset into a 1-based line and column.
func (w *walker) position(off int64) (line, col int) {
	off = min(max(off, 0), int64(len(w.data)))
	before := w.data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = 1 + len(before) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names the JSON type of tok for an error message.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		if v == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", rune(v))
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return fmt.Sprintf("%T", tok)
	}
}
