package message

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lintel-io/lintel/topic"
)

// CloudEvents attribute names and values.
const (
	// CloudEventsSpecVersion is the CloudEvents version written and read.
	CloudEventsSpecVersion = "1.0"
	// CloudEventsTypePrefix begins the CloudEvents type of every Lintel
	// envelope: io.lintel.{message_type}[.{name}].
	CloudEventsTypePrefix = "io.lintel."

	ceSpecVersion     = "specversion"
	ceID              = "id"
	ceSource          = "source"
	ceType            = "type"
	ceTime            = "time"
	ceDataContentType = "datacontenttype"
	ceData            = "data"
	ceDataBase64      = "data_base64"
	ceSequence        = "sequence" // the CloudEvents sequence extension
	ceBootID          = "bootid"
	ceCorrelationID   = "correlationid"
	ceSchemaVersion   = "schemaversion"
)

// AppendCloudEvent appends e to dst as a CloudEvents 1.0 event in structured
// JSON mode, as described in docs/envelope.md, and returns the
// extended buffer. A msgpack payload is transcoded to JSON (data, with
// datacontenttype application/json); a JSON payload is embedded as is (less
// any white space around it); a
// text/* payload that is valid UTF-8 is a JSON string in data; any other
// payload is base64 in data_base64. If e is not valid, or its payload
// cannot be written (a JSON payload that is not valid JSON, a msgpack payload
// holding NaN, an extension type or a non-string map key, a payload nested
// deeper than DefaultMaxDepth), it returns dst unchanged and a [*FieldError].
func (e *Envelope) AppendCloudEvent(dst []byte) ([]byte, error) {
	if err := e.validate(DefaultMaxDepth); err != nil {
		return dst, err
	}
	b := append(dst, `{"specversion":"1.0","id":"`...)
	b, _ = e.ID.AppendText(b)
	s := &e.Source
	b = append(b, `","source":"/`...)
	b = append(b, s.Org...)
	b = append(b, '/')
	b = append(b, s.Edge...)
	b = append(b, '/')
	b = append(b, s.Type...)
	b = append(b, '/')
	b = append(b, s.Code...)
	b = append(b, `","type":"`+CloudEventsTypePrefix...)
	b = append(b, e.Type...)
	if e.Name != "" {
		b = append(b, '.')
		b = appendJSONStringContent(b, e.Name)
	}
	b = append(b, `","time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","schemaversion":"`...)
	v := e.SchemaVersion
	if v == 0 {
		v = CurrentVersion
	}
	b = v.appendText(b)
	b = append(b, '"')
	if e.Seq != 0 {
		b = append(b, `,"sequence":"`...)
		b = appendPaddedUint(b, e.Seq)
		b = append(b, '"')
	}
	if !e.BootID.IsZero() {
		b = append(b, `,"bootid":"`...)
		b, _ = e.BootID.AppendText(b)
		b = append(b, '"')
	}
	if !e.CorrelationID.IsZero() {
		b = append(b, `,"correlationid":"`...)
		b, _ = e.CorrelationID.AppendText(b)
		b = append(b, '"')
	}
	switch {
	case len(e.Payload) == 0:
		if e.ContentType != "" {
			b = append(b, `,"datacontenttype":`...)
			b = appendJSONString(b, e.ContentType)
		}
	case isMsgpackType(e.ContentType):
		b = append(b, `,"datacontenttype":"application/json","data":`...)
		var err error
		if b, err = appendMsgpackAsJSON(b, &mpReader{b: e.Payload}, DefaultMaxDepth); err != nil {
			return dst, &FieldError{Field: FieldPayload, Err: fmt.Errorf("%w: msgpack payload has no JSON form: %w", ErrInvalidValue, err)}
		}
	case isJSONType(e.ContentType):
		if !json.Valid(e.Payload) {
			return dst, &FieldError{Field: FieldPayload, Err: fmt.Errorf("%w: payload of type %s is not valid JSON", ErrInvalidValue, e.ContentType)}
		}
		if jsonDepth(e.Payload) > DefaultMaxDepth {
			return dst, &FieldError{Field: FieldPayload, Err: errTooDeep}
		}
		b = append(b, `,"datacontenttype":`...)
		b = appendJSONString(b, e.ContentType)
		b = append(b, `,"data":`...)
		b = append(b, bytes.Trim(e.Payload, jsonSpace)...)
	case isTextType(e.ContentType) && utf8.Valid(e.Payload):
		b = append(b, `,"datacontenttype":`...)
		b = appendJSONString(b, e.ContentType)
		b = append(b, `,"data":`...)
		b = appendJSONString(b, e.Payload)
	default:
		b = append(b, `,"datacontenttype":`...)
		b = appendJSONString(b, e.ContentType)
		b = append(b, `,"data_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Payload)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// jsonSpace is the white space JSON allows around values.
const jsonSpace = " \t\r\n"

// appendPaddedUint appends n as 20 decimal digits, so that sequence values
// order lexicographically as the CloudEvents sequence extension requires.
func appendPaddedUint(b []byte, n uint64) []byte {
	var d [20]byte
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:]...)
}

// MarshalJSON returns e as a CloudEvents JSON object; see
// [Envelope.AppendCloudEvent]. It implements [json.Marshaler].
func (e Envelope) MarshalJSON() ([]byte, error) { return e.AppendCloudEvent(nil) }

// UnmarshalJSON decodes a CloudEvents JSON object into e with the default
// [DecodeOptions] (an event without a time gets time.Now()); see
// [CloudEventsCodec.Unmarshal]. It implements [json.Unmarshaler].
func (e *Envelope) UnmarshalJSON(data []byte) error {
	return decodeCloudEvent(data, e, nil)
}

// str returns the string attribute name and whether it is present; null
// counts as absent. Non-strings fail with ErrWrongType.
func (m *ceAttrs) str(name string) (string, bool, error) {
	raw, ok := m.get(name)
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	if len(raw) < 2 || raw[0] != '"' {
		return "", true, &DecodeError{Format: FormatCloudEvents, Field: name, Err: fmt.Errorf("%w: got %s, want string", ErrWrongType, jsonKind(raw))}
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, &DecodeError{Format: FormatCloudEvents, Field: name, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	return s, true, nil
}

// required is str for a required attribute.
func (m *ceAttrs) required(name string) (string, error) {
	s, ok, err := m.str(name)
	if err == nil && !ok {
		err = &DecodeError{Format: FormatCloudEvents, Field: name, Err: ErrMissingField}
	}
	return s, err
}

func ceInvalid(field string, format string, args ...any) error {
	return &DecodeError{Format: FormatCloudEvents, Field: field, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidValue}, args...)...)}
}

// decodeCloudEvent is CloudEventsCodec.Unmarshal with opts (nil means the
// defaults).
func decodeCloudEvent(data []byte, e *Envelope, opts *DecodeOptions) error {
	const format = FormatCloudEvents
	maxSize, maxDepth := opts.maxSize(), opts.maxDepth()
	*e = Envelope{}
	if len(data) > maxSize {
		return decodeErr(format, "", ErrTooLarge, fmt.Sprintf("%d bytes, at most %d allowed", len(data), maxSize))
	}
	m := new(ceAttrs)
	if !parseCEObject(data, m) {
		if err := decodeCEObjectSlow(data, m); err != nil {
			return err
		}
	}

	// Versions first: a version this package does not know may have changed
	// every other attribute.
	spec, err := m.required(ceSpecVersion)
	if err != nil {
		return err
	}
	if spec != CloudEventsSpecVersion {
		return decodeErr(format, FieldSpecVersion, ErrUnsupportedVersion, fmt.Sprintf("specversion %q, want %q", spec, CloudEventsSpecVersion))
	}
	e.SchemaVersion = CurrentVersion
	if s, ok, err := m.str(ceSchemaVersion); err != nil {
		return err
	} else if ok {
		v, err := ParseVersion(s)
		if err != nil {
			return &DecodeError{Format: format, Field: FieldSchemaVersion, Err: err}
		}
		if v.Major() != SupportedMajor {
			return &DecodeError{Format: format, Field: FieldSchemaVersion, Err: unsupportedVersion(v)}
		}
		e.SchemaVersion = v
	}

	s, err := m.required(ceID)
	if err != nil {
		return err
	}
	if e.ID, err = ParseID(s); err != nil {
		return &DecodeError{Format: format, Field: FieldID, Err: fmt.Errorf("%w: %w", ErrInvalidValue, err)}
	}
	if e.ID.IsZero() {
		return decodeErr(format, FieldID, ErrMissingField, "the zero id means none")
	}

	if s, err = m.required(ceSource); err != nil {
		return err
	}
	if e.Source, err = parseCloudEventsSource(s); err != nil {
		return &DecodeError{Format: format, Field: FieldSource, Err: err}
	}

	if s, err = m.required(ceType); err != nil {
		return err
	}
	if e.Type, e.Name, err = parseCloudEventsType(s); err != nil {
		return &DecodeError{Format: format, Field: FieldType, Err: err}
	}

	// time is optional in CloudEvents 1.0: an event without it gets the
	// time it was received.
	s, ok, err := m.str(ceTime)
	if err != nil {
		return err
	}
	if ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return ceInvalid(FieldTime, "%q is not an RFC 3339 time", s)
		}
		ns, ok := unixNano(t)
		if !ok {
			return ceInvalid(FieldTime, "%s is outside the range of int64 Unix nanoseconds", s)
		}
		e.Time = timeFromUnixNano(ns)
	} else {
		now := opts.now()
		ns, ok := unixNano(now)
		if !ok {
			return ceInvalid(FieldTime, "absent, and the receive time %s is outside the range of int64 Unix nanoseconds", now)
		}
		e.Time = timeFromUnixNano(ns)
	}

	if s, ok, err := m.str(ceSequence); err != nil {
		return err
	} else if ok {
		if e.Seq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return ceInvalid(FieldSeq, "%q is not a decimal uint64", s)
		}
	}
	for _, f := range [...]struct {
		name string
		id   *ID
	}{{ceBootID, &e.BootID}, {ceCorrelationID, &e.CorrelationID}} {
		s, ok, err := m.str(f.name)
		if err != nil {
			return err
		}
		if ok {
			if *f.id, err = ParseID(s); err != nil {
				return &DecodeError{Format: format, Field: f.name, Err: fmt.Errorf("%w: %w", ErrInvalidValue, err)}
			}
		}
	}
	return decodeCloudEventData(m, e, maxDepth)
}

// decodeCloudEventData sets e's ContentType and Payload from datacontenttype,
// data and data_base64.
func decodeCloudEventData(m *ceAttrs, e *Envelope, maxDepth int) error {
	const format = FormatCloudEvents
	ct, _, err := m.str(ceDataContentType)
	if err != nil {
		return err
	}
	if err := validateContentType(ct); err != nil {
		return &DecodeError{Format: format, Field: FieldContentType, Err: err}
	}
	data, hasData := m.get(ceData) // null is a JSON payload here, not absence
	b64, hasB64, err := m.str(ceDataBase64)
	if err != nil {
		return err
	}
	switch {
	case hasData && hasB64:
		return ceInvalid(FieldPayload, "both data and data_base64 are present")
	case hasB64:
		p, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return ceInvalid(FieldPayload, "data_base64 is not base64: %v", err)
		}
		if ct == "" {
			ct = ContentTypeOctetStream
		}
		if len(p) > 0 {
			e.Payload = p
		}
	case hasData && (ct == "" || isJSONType(ct)):
		if ct == "" {
			ct = ContentTypeJSON
		}
		if jsonDepth(data) > maxDepth {
			return &DecodeError{Format: format, Field: FieldPayload, Err: errTooDeep}
		}
		e.Payload = bytes.Clone(data) // the decoded envelope owns its payload
	case hasData:
		s, _, err := m.str(ceData)
		if err != nil || string(data) == "null" {
			return &DecodeError{Format: format, Field: FieldPayload, Err: fmt.Errorf("%w: got %s, want a string for datacontenttype %s (or use data_base64)", ErrWrongType, jsonKind(data), ct)}
		}
		if s != "" {
			e.Payload = []byte(s)
		}
	}
	e.ContentType = ct
	if len(e.Payload) > 0 && isMsgpackType(ct) {
		r := mpReader{b: e.Payload}
		if err := r.skip(maxDepth); err != nil {
			return &DecodeError{Format: format, Field: FieldPayload, Err: err}
		}
		if r.off != len(e.Payload) {
			return ceInvalid(FieldPayload, "%d bytes after the msgpack value", len(e.Payload)-r.off)
		}
	}
	return nil
}

// decodeCEObjectSlow fills m from data with encoding/json, which gives the
// precise error for input the fast scanner does not take.
func decodeCEObjectSlow(data []byte, m *ceAttrs) error {
	const format = FormatCloudEvents
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end of JSON input"):
			return decodeErr(format, "", ErrTruncated, err.Error())
		case errors.As(err, &te):
			return decodeErr(format, "", ErrWrongType, "got "+te.Value+", want object")
		}
		return decodeErr(format, "", ErrMalformed, err.Error())
	}
	if raw == nil {
		return decodeErr(format, "", ErrWrongType, "got null, want object")
	}
	ceAttrsFromMap(raw, m)
	return nil
}

// parseCloudEventsSource parses "/org/edge/thing_type/thing_code".
func parseCloudEventsSource(s string) (topic.Thing, error) {
	rest, ok := strings.CutPrefix(s, "/")
	var parts [4]string
	for i := range parts {
		if !ok {
			break
		}
		if i < len(parts)-1 {
			parts[i], rest, ok = strings.Cut(rest, "/")
		} else {
			parts[i] = rest
		}
	}
	if !ok {
		return topic.Thing{}, fmt.Errorf("%w: source %q, want /org/edge/thing_type/thing_code", ErrInvalidValue, s)
	}
	t := topic.Thing{Org: parts[0], Edge: parts[1], Type: parts[2], Code: parts[3]}
	if err := t.Validate(); err != nil {
		return topic.Thing{}, fmt.Errorf("%w: source %q: %w", ErrInvalidValue, s, err)
	}
	return t, nil
}

// parseCloudEventsType parses "io.lintel.{message_type}[.{name}]".
func parseCloudEventsType(s string) (topic.MessageType, string, error) {
	rest, ok := strings.CutPrefix(s, CloudEventsTypePrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: type %q, want %s{message_type}[.{name}]", ErrInvalidValue, s, CloudEventsTypePrefix)
	}
	mt, name, dot := strings.Cut(rest, ".")
	if err := validateType(topic.MessageType(mt)); err != nil {
		return "", "", fmt.Errorf("%w: type %q: %w", ErrInvalidValue, s, err)
	}
	if dot && name == "" {
		return "", "", fmt.Errorf("%w: type %q ends with '.'", ErrInvalidValue, s)
	}
	if n := internName([]byte(name)); n != "" {
		name = n
	}
	return internType([]byte(mt)), name, nil
}
