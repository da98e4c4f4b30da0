package message

import (
	"fmt"
	"strings"
	"time"
)

// Media types this package knows.
const (
	// ContentTypeMsgpack is msgpack, the default for envelopes and payloads.
	ContentTypeMsgpack = "application/msgpack"
	// ContentTypeJSON is JSON, for payloads.
	ContentTypeJSON = "application/json"
	// ContentTypeCloudEventsJSON is a CloudEvents 1.0 event in structured
	// mode, the JSON form of an envelope.
	ContentTypeCloudEventsJSON = "application/cloudevents+json"
	// ContentTypeOctetStream is opaque bytes.
	ContentTypeOctetStream = "application/octet-stream"
)

// Limits applied by decoders when DecodeOptions leaves them zero.
const (
	// DefaultMaxSize is the largest encoded envelope decoders accept: NATS's
	// default max_payload of 1 MiB less 16 KiB, so that the envelope and its
	// headers fit in one NATS message.
	DefaultMaxSize = 1<<20 - 16<<10
	// DefaultMaxDepth is how deeply maps and arrays may nest in a payload.
	DefaultMaxDepth = 100
)

// DecodeOptions configures decoding. The zero value means the defaults.
type DecodeOptions struct {
	// MaxSize is the largest encoded envelope accepted, in bytes; zero or
	// less means DefaultMaxSize. Larger input fails with ErrTooLarge.
	MaxSize int
	// MaxDepth is how deeply maps and arrays may nest in a payload; zero or
	// less means DefaultMaxDepth. Deeper input fails with ErrTooLarge.
	MaxDepth int
	// SkipSubjectCheck turns off DecodeMsg's check that a NATS message's
	// subject is the subject of its envelope. Leave it off unless subjects
	// are rewritten between producer and consumer.
	SkipSubjectCheck bool
	// Now is the clock that gives the receive time, which the CloudEvents
	// decoder stamps as Time on an event without a time attribute; nil
	// means time.Now.
	Now func() time.Time
}

func (o *DecodeOptions) maxSize() int {
	if o == nil || o.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return o.MaxSize
}

func (o *DecodeOptions) now() time.Time {
	if o == nil || o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

func (o *DecodeOptions) maxDepth() int {
	if o == nil || o.MaxDepth <= 0 {
		return DefaultMaxDepth
	}
	return o.MaxDepth
}

// Codec encodes envelopes to bytes and back in one format. Implementations are
// safe for concurrent use.
type Codec interface {
	// ContentType returns the media type of the encoded form, which
	// [CodecFor] maps back to the codec.
	ContentType() string
	// Append appends the encoded form of e to dst and returns the extended
	// buffer. If e is not valid it returns dst unchanged and a [*FieldError].
	Append(dst []byte, e *Envelope) ([]byte, error)
	// Marshal returns the encoded form of e, as Append(nil, e) does.
	Marshal(e *Envelope) ([]byte, error)
	// Unmarshal decodes data into e, overwriting every field. Errors are
	// [*DecodeError] values wrapping the package's sentinel errors; on error
	// the contents of e are unspecified.
	Unmarshal(data []byte, e *Envelope) error
}

// MsgpackCodec is the msgpack [Codec], content type [ContentTypeMsgpack]. It
// writes the form described in docs/envelope.md, and reads it
// however the map is ordered, with unknown keys skipped. The zero value uses
// the default options.
type MsgpackCodec struct {
	Options DecodeOptions // Unmarshal's limits (MaxSize, MaxDepth); the zero value means the defaults
}

// ContentType returns [ContentTypeMsgpack].
func (MsgpackCodec) ContentType() string { return ContentTypeMsgpack }

// Append appends e's msgpack form to dst; see [Envelope.AppendMsgpack].
func (MsgpackCodec) Append(dst []byte, e *Envelope) ([]byte, error) { return e.AppendMsgpack(dst) }

// Marshal returns e's msgpack form; see [Envelope.AppendMsgpack].
func (MsgpackCodec) Marshal(e *Envelope) ([]byte, error) { return e.AppendMsgpack(nil) }

// Unmarshal decodes the msgpack form of an envelope into e. It never panics.
// Errors are [*DecodeError] values wrapping ErrTooLarge (input larger than
// MaxSize, or nested deeper than MaxDepth), ErrTruncated, ErrMalformed,
// ErrWrongType, ErrInvalidValue, ErrDuplicateField, ErrMissingField (id, time,
// source or type absent, or a payload without a content type) or
// ErrUnsupportedVersion (a schema major version other than SupportedMajor,
// reported in preference to any other error). Strings cost one allocation
// each except built-in message types, known names and common content types;
// the source costs one; the payload is copied.
func (c MsgpackCodec) Unmarshal(data []byte, e *Envelope) error {
	return decodeMsgpack(data, e, c.Options.maxSize(), c.Options.maxDepth())
}

// CloudEventsCodec is the CloudEvents 1.0 structured-mode JSON [Codec],
// content type [ContentTypeCloudEventsJSON]; see docs/envelope.md for the
// mapping of envelope fields to attributes. The zero value uses the
// default options.
type CloudEventsCodec struct {
	Options DecodeOptions // Unmarshal's limits (MaxSize, MaxDepth) and clock (Now); the zero value means the defaults
}

// ContentType returns [ContentTypeCloudEventsJSON].
func (CloudEventsCodec) ContentType() string { return ContentTypeCloudEventsJSON }

// Append appends e as a CloudEvents JSON object to dst; see
// [Envelope.AppendCloudEvent].
func (CloudEventsCodec) Append(dst []byte, e *Envelope) ([]byte, error) {
	return e.AppendCloudEvent(dst)
}

// Marshal returns e as a CloudEvents JSON object; see [Envelope.AppendCloudEvent].
func (CloudEventsCodec) Marshal(e *Envelope) ([]byte, error) { return e.AppendCloudEvent(nil) }

// Unmarshal decodes a CloudEvents JSON object into e. It never panics. The
// time attribute is optional, as in CloudEvents 1.0: an event without one
// (or with null) gets the receive time, Options.Now() in UTC, as its Time.
// Errors are [*DecodeError] values wrapping ErrTooLarge, ErrTruncated,
// ErrMalformed (not JSON), ErrWrongType (an attribute of the wrong JSON
// type), ErrInvalidValue (among others, a time that is not RFC 3339 or is
// outside the range of int64 Unix nanoseconds, with Field "time"),
// ErrMissingField (specversion, id, source or type absent) or
// ErrUnsupportedVersion (a specversion other than "1.0", or a schema major
// version other than SupportedMajor). Unknown attributes are ignored.
func (c CloudEventsCodec) Unmarshal(data []byte, e *Envelope) error {
	return decodeCloudEvent(data, e, &c.Options)
}

var (
	_ Codec = MsgpackCodec{}
	_ Codec = CloudEventsCodec{}
)

// CodecFor returns the codec with the given content type, with the default
// options: [MsgpackCodec] for "application/msgpack" (and
// "application/x-msgpack" and "application/vnd.msgpack") and
// [CloudEventsCodec] for "application/cloudevents+json". Case and parameters
// such as "; charset=utf-8" are ignored. Other content types, including the
// empty one, yield an error wrapping [ErrUnsupportedContentType].
func CodecFor(contentType string) (Codec, error) {
	switch {
	case isMsgpackType(contentType):
		return MsgpackCodec{}, nil
	case strings.EqualFold(mediaType(contentType), ContentTypeCloudEventsJSON):
		return CloudEventsCodec{}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedContentType, contentType)
}

// mediaType returns ct without parameters and surrounding space.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// isMsgpackType reports whether ct names msgpack.
func isMsgpackType(ct string) bool {
	if ct == ContentTypeMsgpack {
		return true
	}
	switch mt := mediaType(ct); {
	case strings.EqualFold(mt, ContentTypeMsgpack),
		strings.EqualFold(mt, "application/x-msgpack"),
		strings.EqualFold(mt, "application/vnd.msgpack"):
		return true
	}
	return false
}

// isJSONType reports whether ct names JSON: application/json, text/json or
// any type with the +json suffix.
func isJSONType(ct string) bool {
	if ct == ContentTypeJSON {
		return true
	}
	mt := mediaType(ct)
	return strings.EqualFold(mt, ContentTypeJSON) || strings.EqualFold(mt, "text/json") ||
		len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json")
}

// isTextType reports whether ct is a text/* type.
func isTextType(ct string) bool {
	return len(ct) >= 5 && strings.EqualFold(ct[:5], "text/")
}
