package message

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lintel-io/lintel/topic"
)

// Envelope is the standard wrapper around every Lintel message: who sent it
// (Source), what it is (Type and Name), when (Time), its identity for
// deduplication (ID), its place in the sender's stream (BootID and Seq), what
// it answers (CorrelationID), and the payload itself, kept as encoded bytes
// with their ContentType. Decode a payload into its Go type with
// [DecodePayload]; set it with [SetPayload].
//
// An envelope is valid when ID, Time, Source and Type are set and valid; see
// [Envelope.Validate]. Producers fill the identity fields with a [Stamper].
type Envelope struct {
	// ID identifies the message; it doubles as the JetStream deduplication
	// id (Nats-Msg-Id). Required.
	ID ID
	// Time is when the message was produced, by the producer's clock, in UTC
	// with nanosecond precision. Required, and must lie within the range of
	// int64 Unix nanoseconds (years 1678 to 2262).
	Time time.Time
	// Source is the thing that produced the message. Required.
	Source topic.Thing
	// Type is the message type, the last token of the subject. Required.
	Type topic.MessageType
	// Name says what happened or what is asked, such as "access.granted"
	// (see the Name constants). Optional; valid UTF-8.
	Name string
	// Seq is the message's sequence number within the source's boot: 1, 2,
	// 3, ... and 0 for none. Together with BootID it lets a receiver detect
	// lost messages, as Sparkplug B's bdSeq and seq do.
	Seq uint64
	// BootID identifies the source's current boot; Seq restarts with it.
	// Zero for none.
	BootID ID
	// CorrelationID is the ID of the message this one answers, such as the
	// command an ack acknowledges. Zero for none.
	CorrelationID ID
	// SchemaVersion is the version of the envelope and payload schemas. Zero
	// means CurrentVersion; encoders write CurrentVersion in its place and
	// decoders always set it. Decoders reject major versions other than
	// SupportedMajor with ErrUnsupportedVersion and accept any minor version.
	SchemaVersion Version
	// ContentType is the media type of Payload, such as ContentTypeMsgpack.
	// Required when Payload is not empty; printable ASCII.
	ContentType string
	// Payload is the encoded payload. With a msgpack content type it must be
	// exactly one msgpack value. A decoded envelope owns its payload: it does
	// not share memory with the input.
	Payload []byte
}

// Subject returns the NATS subject the envelope travels on, from its Source
// and Type. It does not validate them.
func (e *Envelope) Subject() topic.Subject { return e.Source.Subject(e.Type) }

// Log keys used by [Envelope.LogValue] besides [LogKeyMsgID],
// [LogKeySubject] and [LogKeyBootID].
const (
	logKeyName          = "name"
	logKeySeq           = "seq"
	logKeyCorrelationID = "correlation_id"
	logKeyContentType   = "content_type"
	logKeyPayloadBytes  = "payload_bytes"
)

// LogValue describes e for [log/slog] by its identity, subject, name and
// sequence, and the content type and size of its payload but never the
// payload itself, which may hold secrets such as a [Credential]. It
// implements [slog.LogValuer].
func (e *Envelope) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String(LogKeyMsgID, e.ID.String()),
		slog.String(LogKeySubject, e.Subject().String()))
	if e.Name != "" {
		attrs = append(attrs, slog.String(logKeyName, e.Name))
	}
	if e.Seq != 0 {
		attrs = append(attrs, slog.Uint64(logKeySeq, e.Seq))
	}
	if !e.BootID.IsZero() {
		attrs = append(attrs, slog.String(LogKeyBootID, e.BootID.String()))
	}
	if !e.CorrelationID.IsZero() {
		attrs = append(attrs, slog.String(logKeyCorrelationID, e.CorrelationID.String()))
	}
	if e.ContentType != "" {
		attrs = append(attrs, slog.String(logKeyContentType, e.ContentType))
	}
	if len(e.Payload) > 0 {
		attrs = append(attrs, slog.Int(logKeyPayloadBytes, len(e.Payload)))
	}
	return slog.GroupValue(attrs...)
}

// Validate reports whether e can be encoded: ID, Time, Source and Type are
// set; Source and Type are valid tokens (see [topic.Thing.Validate]); Time fits
// in int64 Unix nanoseconds; Name is valid UTF-8; ContentType is printable
// ASCII and set when there is a payload; a msgpack payload is exactly one
// msgpack value; and SchemaVersion is zero or has the supported major
// version. The error is a [*FieldError] naming the first bad field and
// wrapping [ErrMissingField], [ErrInvalidValue] or [ErrUnsupportedVersion].
func (e *Envelope) Validate() error { return e.validate(DefaultMaxDepth) }

func (e *Envelope) validate(maxDepth int) error {
	if e.ID.IsZero() {
		return &FieldError{Field: FieldID, Err: ErrMissingField}
	}
	if e.Time.IsZero() {
		return &FieldError{Field: FieldTime, Err: ErrMissingField}
	}
	if _, ok := unixNano(e.Time); !ok {
		return &FieldError{Field: FieldTime, Err: fmt.Errorf("%w: %s is outside the range of int64 Unix nanoseconds", ErrInvalidValue, e.Time.Format(time.RFC3339))}
	}
	if err := validateSource(e.Source); err != nil {
		return &FieldError{Field: FieldSource, Err: err}
	}
	if err := validateType(e.Type); err != nil {
		return &FieldError{Field: FieldType, Err: err}
	}
	if !utf8.ValidString(e.Name) {
		return &FieldError{Field: FieldName, Err: fmt.Errorf("%w: not valid UTF-8", ErrInvalidValue)}
	}
	if v := e.SchemaVersion; v != 0 && v.Major() != SupportedMajor {
		return &FieldError{Field: FieldSchemaVersion, Err: unsupportedVersion(v)}
	}
	if err := validateContentType(e.ContentType); err != nil {
		return &FieldError{Field: FieldContentType, Err: err}
	}
	if len(e.Payload) > 0 {
		if e.ContentType == "" {
			return &FieldError{Field: FieldContentType, Err: fmt.Errorf("%w: a payload needs a content type", ErrMissingField)}
		}
		if isMsgpackType(e.ContentType) {
			r := mpReader{b: e.Payload}
			if err := r.skip(maxDepth); err != nil {
				return &FieldError{Field: FieldPayload, Err: fmt.Errorf("%w: not a msgpack value: %w", ErrInvalidValue, err)}
			}
			if r.off != len(e.Payload) {
				return &FieldError{Field: FieldPayload, Err: fmt.Errorf("%w: %d bytes after the msgpack value", ErrInvalidValue, len(e.Payload)-r.off)}
			}
		}
	}
	return nil
}

func validateSource(t topic.Thing) error {
	if t == (topic.Thing{}) {
		return ErrMissingField
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	return nil
}

func validateType(mt topic.MessageType) error {
	if mt == "" {
		return ErrMissingField
	}
	if err := topic.ValidateToken(topic.PartMessageType, string(mt)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	return nil
}

func validateContentType(ct string) error {
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: byte %#02x at offset %d is not printable ASCII", ErrInvalidValue, c, i)
		}
	}
	return nil
}

// timeFromUnixNano returns the UTC time ns nanoseconds after the Unix epoch.
func timeFromUnixNano(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// unixNano returns t as int64 Unix nanoseconds, and false if it does not fit.
func unixNano(t time.Time) (int64, bool) {
	const (
		minSec, minNsec = -9223372037, 145224192 // math.MinInt64 ns
		maxSec, maxNsec = 9223372036, 854775807  // math.MaxInt64 ns
	)
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	switch {
	case sec < minSec || sec > maxSec,
		sec == minSec && nsec < minNsec,
		sec == maxSec && nsec > maxNsec:
		return 0, false
	case sec < 0:
		return (sec+1)*1e9 + (nsec - 1e9), true
	}
	return sec*1e9 + nsec, true
}

// Version is a schema version, major.minor, packed as major<<16 | minor so
// that versions can be constants and compare in order. Minor versions add
// fields that older readers ignore; a new major version may change meaning,
// and decoders reject majors they do not know.
type Version uint32

// CurrentVersion is the schema version this package writes: 1.0.
const CurrentVersion Version = SupportedMajor<<16 | 0

// SupportedMajor is the only schema major version this package reads.
const SupportedMajor = 1

// NewVersion returns the version major.minor.
func NewVersion(major, minor uint16) Version { return Version(major)<<16 | Version(minor) }

// Major returns v's major version.
func (v Version) Major() uint16 { return uint16(v >> 16) }

// Minor returns v's minor version.
func (v Version) Minor() uint16 { return uint16(v) }

// String returns v as "major.minor", such as "1.0".
func (v Version) String() string { return string(v.appendText(nil)) }

func (v Version) appendText(b []byte) []byte {
	b = strconv.AppendUint(b, uint64(v.Major()), 10)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(v.Minor()), 10)
}

// ParseVersion parses "major.minor", two decimal numbers of at most 65535.
// Errors wrap [ErrInvalidValue].
func ParseVersion(s string) (Version, error) {
	for i := 0; i < len(s); i++ {
		if s[i] != '.' {
			continue
		}
		major, err1 := parseDecimal16(s[:i])
		minor, err2 := parseDecimal16(s[i+1:])
		if err1 != nil || err2 != nil {
			break
		}
		return NewVersion(major, minor), nil
	}
	return 0, fmt.Errorf("%w: version %q, want major.minor", ErrInvalidValue, s)
}

func parseDecimal16(s string) (uint16, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, ErrInvalidValue
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

func unsupportedVersion(v Version) error {
	return fmt.Errorf("%w: schema version %s, this package reads major version %d", ErrUnsupportedVersion, v, SupportedMajor)
}
