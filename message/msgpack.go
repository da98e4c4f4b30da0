package message

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/lintel-io/lintel/topic"
	"github.com/vmihailenco/msgpack/v5"
)

// The msgpack form of an envelope is a map with short string keys (see
// docs/envelope.md). Keys this package does not know are skipped.
const (
	keyVersion     = "v"
	keyID          = "id"
	keyTime        = "t"
	keySource      = "src"
	keyType        = "mt"
	keyName        = "name"
	keySeq         = "seq"
	keyBootID      = "boot"
	keyCorrelation = "corr"
	keyContentType = "ct"
	keyPayload     = "p"
)

// AppendMsgpack appends the msgpack form of e to dst and returns the extended
// buffer. It allocates nothing when dst has room, so a producer that reuses
// its buffer encodes without allocating. It first checks e with
// [Envelope.Validate] and returns its [*FieldError], with dst unchanged, if e is
// not valid.
func (e *Envelope) AppendMsgpack(dst []byte) ([]byte, error) {
	if err := e.validate(DefaultMaxDepth); err != nil {
		return dst, err
	}
	return e.appendMsgpack(dst), nil
}

// MarshalMsgpack returns the msgpack form of e, as [Envelope.AppendMsgpack]
// does. It implements [msgpack.Marshaler], so msgpack.Marshal of an Envelope,
// or of a struct that contains one, writes the same bytes.
func (e Envelope) MarshalMsgpack() ([]byte, error) { return e.AppendMsgpack(nil) }

// UnmarshalMsgpack decodes the msgpack form of an envelope into e with the
// default [DecodeOptions]. It implements [msgpack.Unmarshaler]. Errors are
// [*DecodeError] values; see [MsgpackCodec.Unmarshal].
func (e *Envelope) UnmarshalMsgpack(data []byte) error {
	return decodeMsgpack(data, e, DefaultMaxSize, DefaultMaxDepth)
}

func (e *Envelope) appendMsgpack(b []byte) []byte {
	n := 5
	if e.Name != "" {
		n++
	}
	if e.Seq != 0 {
		n++
	}
	if !e.BootID.IsZero() {
		n++
	}
	if !e.CorrelationID.IsZero() {
		n++
	}
	if e.ContentType != "" {
		n++
	}
	if len(e.Payload) > 0 {
		n++
	}
	b = append(b, 0x80|byte(n))

	v := e.SchemaVersion
	if v == 0 {
		v = CurrentVersion
	}
	b = append(b, 0xa1, 'v', 0x92)
	b = appendUint(b, uint64(v.Major()))
	b = appendUint(b, uint64(v.Minor()))

	b = append(b, 0xa2, 'i', 'd', mpBin8, 16)
	b = append(b, e.ID[:]...)

	ns, _ := unixNano(e.Time)
	b = append(b, 0xa1, 't', mpInt64)
	b = binary.BigEndian.AppendUint64(b, uint64(ns))

	s := &e.Source
	b = append(b, 0xa3, 's', 'r', 'c')
	b = appendStrHeader(b, len(s.Org)+len(s.Edge)+len(s.Type)+len(s.Code)+3)
	b = append(b, s.Org...)
	b = append(b, '.')
	b = append(b, s.Edge...)
	b = append(b, '.')
	b = append(b, s.Type...)
	b = append(b, '.')
	b = append(b, s.Code...)

	b = append(b, 0xa2, 'm', 't')
	b = appendStr(b, string(e.Type))

	if e.Name != "" {
		b = append(b, 0xa4, 'n', 'a', 'm', 'e')
		b = appendStr(b, e.Name)
	}
	if e.Seq != 0 {
		b = append(b, 0xa3, 's', 'e', 'q')
		b = appendUint(b, e.Seq)
	}
	if !e.BootID.IsZero() {
		b = append(b, 0xa4, 'b', 'o', 'o', 't', mpBin8, 16)
		b = append(b, e.BootID[:]...)
	}
	if !e.CorrelationID.IsZero() {
		b = append(b, 0xa4, 'c', 'o', 'r', 'r', mpBin8, 16)
		b = append(b, e.CorrelationID[:]...)
	}
	if e.ContentType != "" {
		b = append(b, 0xa2, 'c', 't')
		b = appendStr(b, e.ContentType)
	}
	if len(e.Payload) > 0 {
		b = append(b, 0xa1, 'p')
		if isMsgpackType(e.ContentType) {
			b = append(b, e.Payload...) // embedded as a msgpack value
		} else {
			b = appendBin(b, e.Payload)
		}
	}
	return b
}

// Bits of the fields seen while decoding.
const (
	seenVersion uint16 = 1 << iota
	seenID
	seenTime
	seenSource
	seenType
	seenName
	seenSeq
	seenBootID
	seenCorrelation
	seenContentType
	seenPayload
)

// decodeMsgpack decodes data into e. On error e holds what was decoded so far.
func decodeMsgpack(data []byte, e *Envelope, maxSize, maxDepth int) error {
	if len(data) > maxSize {
		return decodeErr(FormatMsgpack, "", ErrTooLarge, fmt.Sprintf("%d bytes, at most %d allowed", len(data), maxSize))
	}
	err := decodeMsgpackFields(data, e, maxDepth)
	if err != nil && !isVersionErr(err) {
		// A newer major version may have changed any field; say so rather
		// than reporting the field.
		if v, ok := scanMsgpackVersion(data, maxDepth); ok && v.Major() != SupportedMajor {
			return &DecodeError{Format: FormatMsgpack, Field: FieldSchemaVersion, Err: unsupportedVersion(v)}
		}
	}
	return err
}

func isVersionErr(err error) bool {
	de, ok := err.(*DecodeError)
	return ok && de.Field == FieldSchemaVersion
}

func decodeMsgpackFields(data []byte, e *Envelope, maxDepth int) error {
	const format = FormatMsgpack
	*e = Envelope{}
	r := mpReader{b: data}
	n, err := r.mapLen()
	if err != nil {
		return &DecodeError{Format: format, Err: err}
	}
	if n > uint64(r.remaining())/2 { // every entry takes at least two bytes
		return &DecodeError{Format: format, Err: ErrTruncated}
	}

	var (
		seen    uint16
		payload []byte // the raw "p" value
	)
	for ; n > 0; n-- {
		c, err := r.peek()
		if err != nil {
			return &DecodeError{Format: format, Err: err}
		}
		if !isStrCode(c) { // not a key of ours: skip it and its value
			if err := r.skip(maxDepth); err != nil {
				return &DecodeError{Format: format, Err: err}
			}
			if err := r.skip(maxDepth); err != nil {
				return &DecodeError{Format: format, Err: err}
			}
			continue
		}
		key, err := r.str()
		if err != nil {
			return &DecodeError{Format: format, Err: err}
		}
		bit, field := keyField(key)
		if bit == 0 {
			if err := r.skip(maxDepth); err != nil {
				return &DecodeError{Format: format, Err: err}
			}
			continue
		}
		if seen&bit != 0 {
			return &DecodeError{Format: format, Field: field, Err: fmt.Errorf("%w: key %q", ErrDuplicateField, key)}
		}
		if c, err := r.peek(); err == nil && c == mpNil && bit != seenPayload {
			r.off++ // nil means absent
			continue
		}
		seen |= bit
		if err := decodeMsgpackField(&r, e, bit, maxDepth, &payload); err != nil {
			return &DecodeError{Format: format, Field: field, Err: err}
		}
	}
	if r.off != len(data) {
		return decodeErr(format, "", ErrMalformed, fmt.Sprintf("%d bytes after the envelope", len(data)-r.off))
	}

	switch {
	case seen&seenID == 0:
		return &DecodeError{Format: format, Field: FieldID, Err: ErrMissingField}
	case seen&seenTime == 0:
		return &DecodeError{Format: format, Field: FieldTime, Err: ErrMissingField}
	case seen&seenSource == 0:
		return &DecodeError{Format: format, Field: FieldSource, Err: ErrMissingField}
	case seen&seenType == 0:
		return &DecodeError{Format: format, Field: FieldType, Err: ErrMissingField}
	}
	if e.ID.IsZero() {
		return decodeErr(format, FieldID, ErrMissingField, "the zero id means none")
	}
	if seen&seenVersion == 0 {
		e.SchemaVersion = CurrentVersion
	}
	if err := e.Source.Validate(); err != nil {
		return &DecodeError{Format: format, Field: FieldSource, Err: fmt.Errorf("%w: %w", ErrInvalidValue, err)}
	}
	if err := validateType(e.Type); err != nil {
		return &DecodeError{Format: format, Field: FieldType, Err: err}
	}
	if len(payload) == 1 && payload[0] == mpNil && !isMsgpackType(e.ContentType) {
		payload = nil // nil means absent, unless it is the msgpack payload itself
	}
	if payload != nil {
		if e.ContentType == "" {
			return &DecodeError{Format: format, Field: FieldContentType, Err: fmt.Errorf("%w: a payload needs a content type", ErrMissingField)}
		}
		if isMsgpackType(e.ContentType) {
			e.Payload = slices.Clone(payload)
		} else {
			pr := mpReader{b: payload}
			p, _, err := pr.binOrStr()
			if err != nil {
				return &DecodeError{Format: format, Field: FieldPayload, Err: fmt.Errorf("%w (a %s payload is carried as bin)", err, e.ContentType)}
			}
			if len(p) > 0 {
				e.Payload = slices.Clone(p)
			}
		}
	}
	return nil
}

// keyField returns the seen bit and field name for a msgpack key, or 0 for a
// key this package does not know.
func keyField(key []byte) (uint16, string) {
	switch string(key) {
	case keyVersion:
		return seenVersion, FieldSchemaVersion
	case keyID:
		return seenID, FieldID
	case keyTime:
		return seenTime, FieldTime
	case keySource:
		return seenSource, FieldSource
	case keyType:
		return seenType, FieldType
	case keyName:
		return seenName, FieldName
	case keySeq:
		return seenSeq, FieldSeq
	case keyBootID:
		return seenBootID, FieldBootID
	case keyCorrelation:
		return seenCorrelation, FieldCorrelationID
	case keyContentType:
		return seenContentType, FieldContentType
	case keyPayload:
		return seenPayload, FieldPayload
	}
	return 0, ""
}

// decodeMsgpackField decodes the value of the field with the given bit.
func decodeMsgpackField(r *mpReader, e *Envelope, bit uint16, maxDepth int, payload *[]byte) error {
	switch bit {
	case seenVersion:
		v, err := readMsgpackVersion(r, maxDepth)
		if err != nil {
			return err
		}
		if v.Major() != SupportedMajor {
			return unsupportedVersion(v)
		}
		e.SchemaVersion = v
	case seenID:
		return readMsgpackID(r, &e.ID)
	case seenBootID:
		return readMsgpackID(r, &e.BootID)
	case seenCorrelation:
		return readMsgpackID(r, &e.CorrelationID)
	case seenTime:
		c, err := r.peek()
		if err != nil {
			return err
		}
		var ns int64
		if c == mpFixExt4 || c == mpFixExt8 || c == mpExt8 {
			r.off++
			ns, err = r.timestamp(c)
		} else {
			ns, err = r.int()
		}
		if err != nil {
			return err
		}
		e.Time = timeFromUnixNano(ns)
	case seenSource:
		b, err := r.str()
		if err != nil {
			return err
		}
		s := string(b) // one allocation; the four parts share it
		org, rest, _ := strings.Cut(s, ".")
		edge, rest, _ := strings.Cut(rest, ".")
		typ, code, _ := strings.Cut(rest, ".")
		e.Source = topic.Thing{Org: org, Edge: edge, Type: typ, Code: code}
	case seenType:
		b, err := r.str()
		if err != nil {
			return err
		}
		e.Type = internType(b)
	case seenName:
		b, err := r.str()
		if err != nil {
			return err
		}
		if e.Name = internName(b); e.Name == "" && len(b) > 0 {
			if !utf8.Valid(b) {
				return fmt.Errorf("%w: not valid UTF-8", ErrInvalidValue)
			}
			e.Name = string(b)
		}
	case seenSeq:
		n, err := r.uint()
		if err != nil {
			return err
		}
		e.Seq = n
	case seenContentType:
		b, err := r.str()
		if err != nil {
			return err
		}
		if e.ContentType = internContentType(b); e.ContentType == "" && len(b) > 0 {
			if err := validateContentType(string(b)); err != nil {
				return err
			}
			e.ContentType = string(b)
		}
	case seenPayload:
		start := r.off
		if err := r.skip(maxDepth); err != nil {
			return err
		}
		*payload = r.b[start:r.off]
	}
	return nil
}

func readMsgpackID(r *mpReader, id *ID) error {
	b, c, err := r.binOrStr()
	if err != nil {
		return err
	}
	if isStrCode(c) {
		v, err := parseID(b)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidValue, err)
		}
		*id = v
		return nil
	}
	if len(b) != len(id) {
		return fmt.Errorf("%w: %d-byte id, want 16", ErrInvalidValue, len(b))
	}
	copy(id[:], b)
	return nil
}

// readMsgpackVersion reads [major, minor, ...] or "major.minor".
func readMsgpackVersion(r *mpReader, maxDepth int) (Version, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if isStrCode(c) {
		b, err := r.str()
		if err != nil {
			return 0, err
		}
		return ParseVersion(string(b))
	}
	n, err := r.arrayLen()
	if err != nil {
		return 0, err
	}
	if n < 2 {
		return 0, fmt.Errorf("%w: %d-element version, want [major, minor]", ErrInvalidValue, n)
	}
	major, err := r.uint()
	if err != nil {
		return 0, err
	}
	minor, err := r.uint()
	if err != nil {
		return 0, err
	}
	if major > 0xffff || minor > 0xffff {
		return 0, fmt.Errorf("%w: version %d.%d", ErrInvalidValue, major, minor)
	}
	for n -= 2; n > 0; n-- { // later elements are for later versions
		if err := r.skip(maxDepth); err != nil {
			return 0, err
		}
	}
	return NewVersion(uint16(major), uint16(minor)), nil
}

// scanMsgpackVersion looks for the version of a msgpack envelope, skipping
// everything else, and reports whether it found one.
func scanMsgpackVersion(data []byte, maxDepth int) (Version, bool) {
	r := mpReader{b: data}
	n, err := r.mapLen()
	if err != nil {
		return 0, false
	}
	for ; n > 0; n-- {
		if c, err := r.peek(); err == nil && isStrCode(c) {
			key, err := r.str()
			if err != nil {
				return 0, false
			}
			if string(key) == keyVersion {
				v, err := readMsgpackVersion(&r, maxDepth)
				return v, err == nil
			}
		} else if r.skip(maxDepth) != nil {
			return 0, false
		}
		if r.skip(maxDepth) != nil {
			return 0, false
		}
	}
	return 0, false
}

// internType returns the built-in message type spelled b without allocating,
// or a new string.
func internType(b []byte) topic.MessageType {
	switch string(b) {
	case string(topic.Event):
		return topic.Event
	case string(topic.Telemetry):
		return topic.Telemetry
	case string(topic.State):
		return topic.State
	case string(topic.Command):
		return topic.Command
	case string(topic.Ack):
		return topic.Ack
	case string(topic.Config):
		return topic.Config
	case string(topic.Request):
		return topic.Request
	}
	return topic.MessageType(b)
}

// internContentType returns the common content type spelled b without
// allocating, or "".
func internContentType(b []byte) string {
	switch string(b) {
	case ContentTypeMsgpack:
		return ContentTypeMsgpack
	case ContentTypeJSON:
		return ContentTypeJSON
	case ContentTypeOctetStream:
		return ContentTypeOctetStream
	}
	return ""
}

var (
	_ msgpack.Marshaler   = Envelope{}
	_ msgpack.Unmarshaler = (*Envelope)(nil)
)
