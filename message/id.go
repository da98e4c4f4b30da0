package message

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// ID is a 16-byte RFC 9562 UUID. Envelope IDs are version 7: a 48-bit Unix
// millisecond timestamp followed by counter and random bits, so IDs sort by
// creation time byte-wise and as text. Make them with an [IDGenerator].
//
// The zero ID means "none". As text, in JSON and in msgpack payloads an ID is
// its canonical form "0190f3a8-7c1e-7d2a-8b3c-4d5e6f708192", so that payloads
// read the same in both and survive transcoding from msgpack to JSON; the
// envelope itself stores its IDs more compactly, as 16-byte msgpack bin values.
type ID [16]byte

// idLen is the length of an ID in canonical text form.
const idLen = 36

const hexDigits = "0123456789abcdef"

// IsZero reports whether id is the zero ID, which means "none".
func (id ID) IsZero() bool { return id == ID{} }

// Version returns the UUID version from id's version field: 7 for IDs made by
// an [IDGenerator].
func (id ID) Version() int { return int(id[6] >> 4) }

// Time returns the Unix millisecond timestamp of a version 7 id, in UTC. For
// other versions the result is meaningless.
func (id ID) Time() time.Time {
	ms := int64(binary.BigEndian.Uint64(id[:8]) >> 16)
	return time.UnixMilli(ms).UTC()
}

// Compare returns -1, 0 or +1 as id sorts before, equal to or after other.
// Version 7 IDs sort by creation time.
func (id ID) Compare(other ID) int { return bytes.Compare(id[:], other[:]) }

// String returns id in canonical form: 36 lowercase characters, such as
// "0190f3a8-7c1e-7d2a-8b3c-4d5e6f708192".
func (id ID) String() string {
	var b [idLen]byte
	id.put(&b)
	return string(b[:])
}

// AppendText appends id in canonical form to b. It never fails; it
// implements [encoding.TextAppender].
func (id ID) AppendText(b []byte) ([]byte, error) {
	var t [idLen]byte
	id.put(&t)
	return append(b, t[:]...), nil
}

// MarshalText returns id in canonical form. It never fails; it implements
// [encoding.TextMarshaler], so JSON carries IDs as strings.
func (id ID) MarshalText() ([]byte, error) {
	b := make([]byte, idLen)
	id.put((*[idLen]byte)(b))
	return b, nil
}

// UnmarshalText parses an ID in canonical form, as [ParseID] does. On error it
// leaves id unchanged and returns an error wrapping [ErrInvalidID].
func (id *ID) UnmarshalText(text []byte) error {
	v, err := parseID(text)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// EncodeMsgpack writes id as a msgpack string in canonical form. It
// implements [msgpack.CustomEncoder].
func (id ID) EncodeMsgpack(enc *msgpack.Encoder) error {
	var b [idLen]byte
	id.put(&b)
	return enc.EncodeString(string(b[:]))
}

// DecodeMsgpack reads a string in canonical form, or a 16-byte bin value,
// into id (or the canonical form as bin); nil reads as the zero ID. It implements [msgpack.CustomDecoder].
// Other values yield an error wrapping [ErrInvalidID].
func (id *ID) DecodeMsgpack(dec *msgpack.Decoder) error {
	code, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if isStrCode(code) {
		s, err := dec.DecodeString()
		if err != nil {
			return err
		}
		return id.UnmarshalText([]byte(s))
	}
	b, err := dec.DecodeBytes()
	if err != nil {
		return err
	}
	if b == nil { // msgpack nil
		*id = ID{}
		return nil
	}
	switch len(b) {
	case len(id):
		copy(id[:], b)
		return nil
	case idLen:
		return id.UnmarshalText(b)
	}
	return fmt.Errorf("%w: %d bytes, want %d", ErrInvalidID, len(b), len(id))
}

// ParseID parses an ID in canonical form: 36 characters, hexadecimal digits in
// either case and hyphens after the 8th, 12th, 16th and 20th digit. It accepts
// any UUID version. Errors wrap [ErrInvalidID].
func ParseID(s string) (ID, error) { return parseID(s) }

// hyphenAt marks the positions of the hyphens in canonical form.
func hyphenAt(i int) bool { return i == 8 || i == 13 || i == 18 || i == 23 }

func parseID[S ~string | ~[]byte](s S) (ID, error) {
	var id ID
	if len(s) != idLen {
		return ID{}, fmt.Errorf("%w: %d characters, want %d", ErrInvalidID, len(s), idLen)
	}
	j := 0
	for i := 0; i < idLen; {
		if hyphenAt(i) {
			if s[i] != '-' {
				return ID{}, fmt.Errorf("%w: want '-' at offset %d", ErrInvalidID, i)
			}
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return ID{}, fmt.Errorf("%w: non-hex character at offset %d", ErrInvalidID, i)
		}
		id[j] = hi<<4 | lo
		j++
		i += 2
	}
	return id, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// put writes id in canonical form into b.
func (id ID) put(b *[idLen]byte) {
	j := 0
	for i := 0; i < len(id); i++ {
		if hyphenAt(j) {
			b[j] = '-'
			j++
		}
		b[j] = hexDigits[id[i]>>4]
		b[j+1] = hexDigits[id[i]&0x0f]
		j += 2
	}
}

var (
	_ msgpack.CustomEncoder = ID{}
	_ msgpack.CustomDecoder = (*ID)(nil)
)
