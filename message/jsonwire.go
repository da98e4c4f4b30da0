package message

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendJSONString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = append(b, '"')
	b = appendJSONStringContent(b, s)
	return append(b, '"')
}

// appendJSONStringContent appends s escaped for use inside a JSON string.
func appendJSONStringContent[S ~string | ~[]byte](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		var buf [utf8.UTFMax]byte
		n := copy(buf[:], s[i:])
		r, size := utf8.DecodeRune(buf[:n])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' { // for JavaScript, as encoding/json does
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// appendJSONFloat appends f as encoding/json does; NaN and infinities have no
// JSON form.
func appendJSONFloat(b []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("%w: %v has no JSON form", ErrInvalidValue, f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' { // e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// errExtJSON reports a msgpack extension value that has no JSON form.
var errExtJSON = fmt.Errorf("%w: msgpack extension types other than timestamps have no JSON form", ErrWrongType)

// appendMsgpackAsJSON transcodes one msgpack value from r to JSON: bin
// becomes a base64 string (as encoding/json writes []byte), timestamps become
// RFC 3339 strings, integer map keys become strings. Other map keys, other
// extension types, NaN and infinities have no JSON form and fail.
func appendMsgpackAsJSON(b []byte, r *mpReader, depth int) ([]byte, error) {
	start := r.off
	c, err := r.byte1()
	if err != nil {
		return b, err
	}
	switch {
	case c <= 0x7f:
		return strconv.AppendUint(b, uint64(c), 10), nil
	case c >= 0xe0:
		return strconv.AppendInt(b, int64(int8(c)), 10), nil
	case c <= 0x8f:
		return appendMsgpackMapAsJSON(b, r, uint64(c&0x0f), depth)
	case c <= 0x9f:
		return appendMsgpackArrayAsJSON(b, r, uint64(c&0x0f), depth)
	}
	switch c {
	case mpNil:
		return append(b, "null"...), nil
	case mpFalse:
		return append(b, "false"...), nil
	case mpTrue:
		return append(b, "true"...), nil
	case mpFloat32:
		n, err := r.uintN(4)
		if err != nil {
			return b, err
		}
		return appendJSONFloat(b, float64(math.Float32frombits(uint32(n))), 32)
	case mpFloat64:
		n, err := r.uintN(8)
		if err != nil {
			return b, err
		}
		return appendJSONFloat(b, math.Float64frombits(n), 64)
	case mpUint8, mpUint16, mpUint32, mpUint64:
		n, err := r.uintN(1 << (c - mpUint8))
		return strconv.AppendUint(b, n, 10), err
	case mpInt8, mpInt16, mpInt32, mpInt64:
		n, err := r.intN(1 << (c - mpInt8))
		return strconv.AppendInt(b, n, 10), err
	case mpArray16, mpArray32:
		n, err := r.uintN(lenSize(c))
		if err != nil {
			return b, err
		}
		return appendMsgpackArrayAsJSON(b, r, n, depth)
	case mpMap16, mpMap32:
		n, err := r.uintN(lenSize(c))
		if err != nil {
			return b, err
		}
		return appendMsgpackMapAsJSON(b, r, n, depth)
	case mpFixExt4, mpFixExt8, mpExt8:
		ns, err := r.timestamp(c)
		if err != nil {
			if errors.Is(err, ErrWrongType) {
				return b, errExtJSON
			}
			return b, err
		}
		b = append(b, '"')
		b = timeFromUnixNano(ns).AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), nil
	case mpFixExt1, mpFixExt2, mpFixExt16, mpExt16, mpExt32:
		return b, errExtJSON
	case mpNeverUse:
		r.off--
		return b, fmt.Errorf("%w: invalid code 0xc1", ErrMalformed)
	}
	r.off = start
	p, c, err := r.binOrStr()
	if err != nil {
		return b, err
	}
	if isBinCode(c) {
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, p)
		return append(b, '"'), nil
	}
	return appendJSONString(b, p), nil
}

func appendMsgpackArrayAsJSON(b []byte, r *mpReader, n uint64, depth int) ([]byte, error) {
	if n > 0 && depth < 1 {
		return b, errTooDeep
	}
	if n > uint64(r.remaining()) {
		return b, ErrTruncated
	}
	b = append(b, '[')
	for i := uint64(0); i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendMsgpackAsJSON(b, r, depth-1); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

func appendMsgpackMapAsJSON(b []byte, r *mpReader, n uint64, depth int) ([]byte, error) {
	if n > 0 && depth < 1 {
		return b, errTooDeep
	}
	if n > uint64(r.remaining())/2 {
		return b, ErrTruncated
	}
	b = append(b, '{')
	for i := uint64(0); i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		c, err := r.peek()
		if err != nil {
			return b, err
		}
		switch {
		case isStrCode(c):
			key, err := r.str()
			if err != nil {
				return b, err
			}
			b = appendJSONString(b, key)
		case codeName(c) == "int":
			k := r.off
			if n, err := r.int(); err == nil {
				b = append(b, '"')
				b = strconv.AppendInt(b, n, 10)
				b = append(b, '"')
				break
			}
			r.off = k
			n, err := r.uint()
			if err != nil {
				return b, err
			}
			b = append(b, '"')
			b = strconv.AppendUint(b, n, 10)
			b = append(b, '"')
		default:
			return b, fmt.Errorf("%w: map key of type %s has no JSON form", ErrWrongType, codeName(c))
		}
		b = append(b, ':')
		if b, err = appendMsgpackAsJSON(b, r, depth-1); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// jsonDepth returns how deeply objects and arrays nest in the valid JSON
// text b.
func jsonDepth(b []byte) int {
	depth, max := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > max {
				max = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return max
}

// jsonKind names the JSON type of the valid JSON value b, for errors.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
