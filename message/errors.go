package message

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors wrapped by [*DecodeError] and [*FieldError]; compare with
// [errors.Is].
var (
	// ErrTruncated reports input that ends in the middle of a value.
	ErrTruncated = errors.New("message: truncated")
	// ErrTooLarge reports input longer than DecodeOptions.MaxSize, or nested
	// deeper than DecodeOptions.MaxDepth.
	ErrTooLarge = errors.New("message: too large")
	// ErrMalformed reports input that is not well-formed msgpack or JSON, or
	// that has bytes after the envelope.
	ErrMalformed = errors.New("message: malformed")
	// ErrWrongType reports a field whose value has the wrong type, such as a
	// string where an integer belongs.
	ErrWrongType = errors.New("message: wrong type")
	// ErrInvalidValue reports a field whose value has the right type but is not
	// acceptable, such as a source that is not a valid thing.
	ErrInvalidValue = errors.New("message: invalid value")
	// ErrMissingField reports a required field that is absent.
	ErrMissingField = errors.New("message: missing field")
	// ErrDuplicateField reports a field that occurs twice in one envelope.
	ErrDuplicateField = errors.New("message: duplicate field")
	// ErrUnsupportedVersion reports a schema major version (or CloudEvents
	// specversion) this package does not understand.
	ErrUnsupportedVersion = errors.New("message: unsupported version")
	// ErrUnsupportedContentType reports a content type with no codec.
	ErrUnsupportedContentType = errors.New("message: unsupported content type")
	// ErrInvalidID reports text that is not a UUID in canonical form.
	ErrInvalidID = errors.New("message: invalid id")
	// ErrSubjectMismatch reports a NATS message whose subject is not the
	// subject of the envelope it carries.
	ErrSubjectMismatch = errors.New("message: subject does not match envelope")
)

// Field names used in [*DecodeError] and [*FieldError]. They are the
// CloudEvents attribute names where one exists; the msgpack keys are listed in
// docs/envelope.md.
const (
	FieldID            = "id"
	FieldTime          = "time"
	FieldSource        = "source"
	FieldType          = "type"
	FieldName          = "name"
	FieldSeq           = "sequence"
	FieldBootID        = "bootid"
	FieldCorrelationID = "correlationid"
	FieldSchemaVersion = "schemaversion"
	FieldSpecVersion   = "specversion"
	FieldContentType   = "datacontenttype"
	FieldPayload       = "data"
	FieldSubject       = "subject"
)

// Formats named by [DecodeError.Format].
const (
	FormatMsgpack     = "msgpack"
	FormatCloudEvents = "cloudevents"
	FormatNATS        = "nats"
	FormatJSON        = "json"
)

// DecodeError reports why input could not be decoded: in which format, which
// field (empty when the input as a whole is wrong), and why. Err wraps one of
// the package's sentinel errors, such as [ErrTruncated] or [ErrWrongType], so
// callers can branch with [errors.Is]:
//
//	message: msgpack: field "time": wrong type: got str, want int
type DecodeError struct {
	Format string // FormatMsgpack, FormatCloudEvents, FormatNATS, FormatJSON (a payload), or ""
	Field  string // a Field constant, a NATS header name for FormatNATS, or "" for the input as a whole
	Err    error  // wraps a sentinel error
}

// Error returns "message: {format}: field {field}: {reason}", leaving out
// the parts that are empty.
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("message: ")
	if e.Format != "" {
		b.WriteString(e.Format)
		b.WriteString(": ")
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	b.WriteString(errText(e.Err))
	return b.String()
}

// Unwrap returns the underlying error, which wraps a sentinel error.
func (e *DecodeError) Unwrap() error { return e.Err }

// FieldError reports an envelope field that cannot be encoded: it is missing,
// or its value is invalid. Err wraps a sentinel error such as
// [ErrMissingField] or [ErrInvalidValue].
//
//	message: field "source": invalid value: topic: org "": empty
type FieldError struct {
	Field string // one of the Field constants
	Err   error  // wraps a sentinel error
}

// Error returns "message: field {field}: {reason}".
func (e *FieldError) Error() string {
	return fmt.Sprintf("message: field %q: %s", e.Field, errText(e.Err))
}

// Unwrap returns the underlying error, which wraps a sentinel error.
func (e *FieldError) Unwrap() error { return e.Err }

// errText is err's text without the package prefix, for embedding in a
// message that already carries it.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.TrimPrefix(err.Error(), "message: ")
}

// decodeErr returns a *DecodeError for field wrapping sentinel with an
// optional detail.
func decodeErr(format, field string, sentinel error, detail string) error {
	err := sentinel
	if detail != "" {
		err = fmt.Errorf("%w: %s", sentinel, detail)
	}
	return &DecodeError{Format: format, Field: field, Err: err}
}
