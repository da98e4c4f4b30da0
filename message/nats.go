package message

import (
	"fmt"
	"strings"

	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// NATS headers set by [Envelope.ToMsg] and read by [DecodeMsg].
const (
	// HeaderMsgID carries the envelope ID, so that JetStream drops
	// duplicates of a message within the stream's duplicate window.
	HeaderMsgID = nats.MsgIdHdr
	// HeaderContentType carries the content type of the encoded envelope
	// (not of its payload): ContentTypeMsgpack or ContentTypeCloudEventsJSON.
	HeaderContentType = "Content-Type"
	// HeaderSchemaVersion carries the envelope's schema version, such as
	// "1.0", so that a consumer can reject a major version it does not know
	// before decoding.
	HeaderSchemaVersion = "Lintel-Schema-Version"
)

// inboxPrefix begins the subjects of request replies, which are exempt from
// DecodeMsg's subject check.
const inboxPrefix = "_INBOX."

// ToMsg encodes e with c (nil means [MsgpackCodec]) into a NATS message on
// e's subject, with headers [HeaderMsgID], [HeaderContentType] and
// [HeaderSchemaVersion]. If e is not valid it returns a [*FieldError].
func (e *Envelope) ToMsg(c Codec) (*nats.Msg, error) {
	if c == nil {
		c = MsgpackCodec{}
	}
	data, err := c.Marshal(e)
	if err != nil {
		return nil, err
	}
	v := e.SchemaVersion
	if v == 0 {
		v = CurrentVersion
	}
	return &nats.Msg{
		Subject: e.Subject().String(),
		Header: nats.Header{
			HeaderMsgID:         {e.ID.String()},
			HeaderContentType:   {c.ContentType()},
			HeaderSchemaVersion: {v.String()},
		},
		Data: data,
	}, nil
}

// FromMsg decodes the envelope in m with the default options; see [DecodeMsg].
func FromMsg(m *nats.Msg) (*Envelope, error) {
	e := new(Envelope)
	if err := DecodeMsg(m, e, nil); err != nil {
		return nil, err
	}
	return e, nil
}

// DecodeMsg decodes the envelope in m into e, with opts (nil means the
// defaults). The codec is chosen by the [HeaderContentType] header, msgpack
// when there is none. A [HeaderSchemaVersion] header with an unknown major
// version fails with [ErrUnsupportedVersion] before decoding.
//
// Unless opts.SkipSubjectCheck is set, the message's subject must be the
// envelope's subject, so that a thing allowed to publish only on its own
// subjects cannot pass off an envelope with another source; replies (subjects
// beginning with "_INBOX.") and messages without a subject are exempt.
//
// Errors are [*DecodeError] values: those of the codec, or with Format
// FormatNATS wrapping [ErrUnsupportedContentType], [ErrUnsupportedVersion],
// [ErrInvalidValue] (a malformed version header) or [ErrSubjectMismatch].
//
// For a message received through the jetstream package, use
// [DecodeJetStream].
func DecodeMsg(m *nats.Msg, e *Envelope, opts *DecodeOptions) error {
	return decodeNATS(m.Subject, m.Header, m.Data, e, opts)
}

// JetStreamMsg is what [DecodeJetStream] reads of a received message: its
// subject, headers and data. The jetstream.Msg that consumers, Fetch and
// Next deliver has these methods (it satisfies the interface as is), and
// so may any other type. A *nats.Msg has them as fields: decode it with
// [DecodeMsg].
type JetStreamMsg interface {
	// Subject returns the subject the message was published on.
	Subject() string
	// Headers returns the message's headers.
	Headers() nats.Header
	// Data returns the message's body, the encoded envelope.
	Data() []byte
}

// FromJetStream decodes the envelope in m with the default options; see
// [DecodeJetStream].
func FromJetStream(m JetStreamMsg) (*Envelope, error) {
	e := new(Envelope)
	if err := DecodeJetStream(m, e, nil); err != nil {
		return nil, err
	}
	return e, nil
}

// DecodeJetStream decodes the envelope in m, typically a jetstream.Msg,
// into e, with opts (nil means the defaults). It does exactly what
// [DecodeMsg] does for a *nats.Msg with the same subject, headers and data,
// and returns the same errors.
func DecodeJetStream(m JetStreamMsg, e *Envelope, opts *DecodeOptions) error {
	return decodeNATS(m.Subject(), m.Headers(), m.Data(), e, opts)
}

// decodeNATS is DecodeMsg for a message's parts.
func decodeNATS(subject string, h nats.Header, data []byte, e *Envelope, opts *DecodeOptions) error {
	if opts == nil {
		opts = &DecodeOptions{}
	}
	if hv := header(h, HeaderSchemaVersion); hv != "" {
		v, err := ParseVersion(hv)
		if err != nil {
			return &DecodeError{Format: FormatNATS, Field: HeaderSchemaVersion, Err: err}
		}
		if v.Major() != SupportedMajor {
			return &DecodeError{Format: FormatNATS, Field: HeaderSchemaVersion, Err: unsupportedVersion(v)}
		}
	}
	var err error
	switch ct := header(h, HeaderContentType); {
	case ct == "" || isMsgpackType(ct):
		err = MsgpackCodec{Options: *opts}.Unmarshal(data, e)
	case strings.EqualFold(mediaType(ct), ContentTypeCloudEventsJSON):
		err = CloudEventsCodec{Options: *opts}.Unmarshal(data, e)
	default:
		return &DecodeError{Format: FormatNATS, Field: HeaderContentType, Err: fmt.Errorf("%w: %q", ErrUnsupportedContentType, ct)}
	}
	if err != nil {
		return err
	}
	if !opts.SkipSubjectCheck && subject != "" && !strings.HasPrefix(subject, inboxPrefix) {
		var buf [5*topic.MaxTokenLen + 4]byte
		if want := topic.AppendSubject(buf[:0], e.Subject()); string(want) != subject {
			return &DecodeError{Format: FormatNATS, Field: FieldSubject, Err: fmt.Errorf("%w: message on %q, envelope is for %q", ErrSubjectMismatch, subject, want)}
		}
	}
	return nil
}

// header returns the first value of key in h, matching the key exactly or,
// failing that, case-insensitively.
func header(h nats.Header, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}
