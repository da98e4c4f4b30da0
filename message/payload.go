package message

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// SetPayload encodes v with msgpack and makes it e's payload, with content
// type [ContentTypeMsgpack]. Payload structs may use msgpack tags (the payload
// types of this package use short keys). If v cannot be encoded it leaves e
// unchanged and returns a [*FieldError] wrapping [ErrInvalidValue].
func SetPayload(e *Envelope, v any) error {
	p, err := msgpack.Marshal(v)
	if err != nil {
		return &FieldError{Field: FieldPayload, Err: fmt.Errorf("%w: %w", ErrInvalidValue, err)}
	}
	e.Payload, e.ContentType = p, ContentTypeMsgpack
	return nil
}

// SetPayloadJSON encodes v with encoding/json and makes it e's payload, with
// content type [ContentTypeJSON]. If v cannot be encoded it leaves e unchanged
// and returns a [*FieldError] wrapping [ErrInvalidValue].
func SetPayloadJSON(e *Envelope, v any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return &FieldError{Field: FieldPayload, Err: fmt.Errorf("%w: %w", ErrInvalidValue, err)}
	}
	e.Payload, e.ContentType = p, ContentTypeJSON
	return nil
}

// DecodePayload decodes e's payload into a T according to its content type:
// msgpack (see [SetPayload]) or JSON, which is what a msgpack payload becomes
// after a trip through CloudEvents. Unknown fields are ignored. Errors are
// [*DecodeError] values with Field FieldPayload wrapping [ErrMissingField]
// (no payload), [ErrUnsupportedContentType], [ErrMalformed] or
// [ErrInvalidValue] (the payload does not decode into a T).
func DecodePayload[T any](e *Envelope) (T, error) {
	var v T
	if len(e.Payload) == 0 {
		return v, &DecodeError{Field: FieldPayload, Err: ErrMissingField}
	}
	switch {
	case isMsgpackType(e.ContentType):
		if err := msgpack.Unmarshal(e.Payload, &v); err != nil {
			return v, &DecodeError{Format: FormatMsgpack, Field: FieldPayload, Err: fmt.Errorf("%w: %w", ErrInvalidValue, err)}
		}
	case isJSONType(e.ContentType):
		if err := json.Unmarshal(e.Payload, &v); err != nil {
			sentinel := ErrInvalidValue
			var se *json.SyntaxError
			if errors.As(err, &se) {
				sentinel = ErrMalformed
			}
			return v, &DecodeError{Format: FormatJSON, Field: FieldPayload, Err: fmt.Errorf("%w: %w", sentinel, err)}
		}
	default:
		return v, &DecodeError{Field: FieldPayload, Err: fmt.Errorf("%w: %q", ErrUnsupportedContentType, e.ContentType)}
	}
	return v, nil
}
