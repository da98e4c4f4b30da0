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
func DecodeMsg(m *nats.Msg, e *Envelope, opts *DecodeOptions) error {
	if opts == nil {
		opts = &DecodeOptions{}
	}
	if hv := header(m.Header, HeaderSchemaVersion); hv != "" {
		v, err := ParseVersion(hv)
		if err != nil {
			return &DecodeError{Format: FormatNATS, Field: HeaderSchemaVersion, Err: err}
		}
		if v.Major() != SupportedMajor {
			return &DecodeError{Format: FormatNATS, Field: HeaderSchemaVersion, Err: unsupportedVersion(v)}
		}
	}
	var err error
	switch ct := header(m.Header, HeaderContentType); {
	case ct == "" || isMsgpackType(ct):
		err = MsgpackCodec{Options: *opts}.Unmarshal(m.Data, e)
	case strings.EqualFold(mediaType(ct), ContentTypeCloudEventsJSON):
		err = CloudEventsCodec{Options: *opts}.Unmarshal(m.Data, e)
	default:
		return &DecodeError{Format: FormatNATS, Field: HeaderContentType, Err: fmt.Errorf("%w: %q", ErrUnsupportedContentType, ct)}
	}
	if err != nil {
		return err
	}
	if !opts.SkipSubjectCheck && m.Subject != "" && !strings.HasPrefix(m.Subject, inboxPrefix) {
		var buf [5*topic.MaxTokenLen + 4]byte
		if want := topic.AppendSubject(buf[:0], e.Subject()); string(want) != m.Subject {
			return &DecodeError{Format: FormatNATS, Field: FieldSubject, Err: fmt.Errorf("%w: message on %q, envelope is for %q", ErrSubjectMismatch, m.Subject, want)}
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
