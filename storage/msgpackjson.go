package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The payload transcoder turns a msgpack payload into exactly the JSON that
// the generic path (decodeGeneric, jsonable, json.Marshal) makes of it,
// walking the msgpack bytes once and appending to a reused buffer, with no
// intermediate values. It handles nil, booleans, integers, floats, strings,
// binary values, arrays and maps with string or binary keys; anything else
// (extension types such as timestamps, other keys, duplicate keys, codes
// msgpack does not use, nesting beyond maxPayloadDepth) it leaves to the
// generic path, which decides as it always did. A payload whose lengths
// run past its end is refused with errPayloadTruncated before the generic
// path sees it: that path would allocate what the lengths claim.

var (
	// errTranscodeGeneric reports a payload the transcoder leaves to the
	// generic path.
	errTranscodeGeneric = errors.New("storage: payload needs the generic path")
	// errPayloadTruncated reports a msgpack payload that ends inside a
	// value, or claims a length beyond its end.
	errPayloadTruncated = errors.New("a value runs past the end of the payload")
)

// transcoder converts msgpack payloads to JSON; its buffers are reused
// from one payload to the next.
type transcoder struct {
	src   []byte
	pos   int
	out   []byte
	spans []mapEntry // the entries of the maps being written, innermost last
	tmp   []byte
}

// mapEntry is one entry of a map being written: its key (in src), where
// its value starts in src, and its "key":value text in out.
type mapEntry struct {
	keyStart, keyEnd int
	valPos           int
	start, end       int
}

// payloadValueKind says what the transcoder learnt of the payload's numeric
// reading (see [PayloadValue]).
type payloadValueKind uint8

const (
	valueNone  payloadValueKind = iota // none
	valueFound                         // the reading is the value returned
	valueAsk                           // PayloadValue must decide from the JSON
)

// transcode converts payload to JSON in t.out (valid until the next call)
// and reports the payload's numeric reading as PayloadValue would find it
// in that JSON. It returns errTranscodeGeneric for what it leaves to the
// generic path.
func (t *transcoder) transcode(payload []byte) (float64, payloadValueKind, error) {
	t.src, t.pos, t.out, t.spans = payload, 0, t.out[:0], t.spans[:0]
	c := payload[0]
	if isMsgpackMap(c) {
		return t.topMap()
	}
	if err := t.value(0); err != nil {
		return 0, valueNone, err
	}
	if f, ok := msgpackNumber(payload); ok {
		return f, valueFound, nil
	}
	return 0, valueNone, nil
}

// topMap writes the top-level map and finds its "value".
func (t *transcoder) topMap() (float64, payloadValueKind, error) {
	if err := t.value(0); err != nil {
		return 0, valueNone, err
	}
	// t.spans holds the top-level entries, in the order written.
	var f float64
	kind := valueNone
	for _, e := range t.spans {
		k := t.src[e.keyStart:e.keyEnd]
		switch {
		case string(k) == "value":
			if v, ok := msgpackNumber(t.src[e.valPos:]); ok {
				f, kind = v, valueFound
			}
		case len(k) == len("value") && strings.EqualFold(string(k), "value"), !isASCII(k):
			// encoding/json matches field names case-insensitively,
			// with Unicode folding: let it decide.
			return 0, valueAsk, nil
		}
	}
	return f, kind, nil
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isMsgpackMap(c byte) bool { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }

// msgpackNumber returns the number the msgpack value at the start of b
// stands for, as its JSON form parses into a float64; false for anything
// else, NaN and infinities (null in JSON) included.
func msgpackNumber(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	c, b := b[0], b[1:]
	switch {
	case c <= 0x7f:
		return float64(c), true
	case c >= 0xe0:
		return float64(int8(c)), true
	}
	var n int
	switch c {
	case 0xcc, 0xd0:
		n = 1
	case 0xcd, 0xd1:
		n = 2
	case 0xca, 0xce, 0xd2:
		n = 4
	case 0xcb, 0xcf, 0xd3:
		n = 8
	default:
		return 0, false
	}
	if len(b) < n {
		return 0, false
	}
	var f float64
	switch c {
	case 0xca:
		f = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	case 0xcb:
		f = math.Float64frombits(binary.BigEndian.Uint64(b))
	case 0xcc:
		f = float64(b[0])
	case 0xcd:
		f = float64(binary.BigEndian.Uint16(b))
	case 0xce:
		f = float64(binary.BigEndian.Uint32(b))
	case 0xcf:
		f = float64(binary.BigEndian.Uint64(b))
	case 0xd0:
		f = float64(int8(b[0]))
	case 0xd1:
		f = float64(int16(binary.BigEndian.Uint16(b)))
	case 0xd2:
		f = float64(int32(binary.BigEndian.Uint32(b)))
	case 0xd3:
		f = float64(int64(binary.BigEndian.Uint64(b)))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// next returns the next n bytes of src.
func (t *transcoder) next(n int) ([]byte, error) {
	if n < 0 || len(t.src)-t.pos < n {
		return nil, errPayloadTruncated
	}
	b := t.src[t.pos : t.pos+n]
	t.pos += n
	return b, nil
}

// uintN reads the next n bytes as a big-endian unsigned integer.
func (t *transcoder) uintN(n int) (uint64, error) {
	b, err := t.next(n)
	if err != nil {
		return 0, err
	}
	var u uint64
	for _, x := range b {
		u = u<<8 | uint64(x)
	}
	return u, nil
}

// length reads a big-endian length of n bytes.
func (t *transcoder) length(n int) (int, error) {
	b, err := t.next(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return int(b[0]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b)), nil
	}
	l := binary.BigEndian.Uint32(b)
	if uint64(l) > uint64(len(t.src)) {
		return 0, errPayloadTruncated
	}
	return int(l), nil
}

// value writes the msgpack value at t.pos as JSON.
func (t *transcoder) value(depth int) error {
	if depth > maxPayloadDepth {
		return errTranscodeGeneric
	}
	cb, err := t.next(1)
	if err != nil {
		return err
	}
	c := cb[0]
	switch {
	case c <= 0x7f:
		t.out = strconv.AppendInt(t.out, int64(c), 10)
		return nil
	case c >= 0xe0:
		t.out = strconv.AppendInt(t.out, int64(int8(c)), 10)
		return nil
	case c&0xe0 == 0xa0:
		return t.str(int(c & 0x1f))
	case c&0xf0 == 0x90:
		return t.array(int(c&0x0f), depth)
	case c&0xf0 == 0x80:
		return t.object(int(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		t.out = append(t.out, "null"...)
	case 0xc2:
		t.out = append(t.out, "false"...)
	case 0xc3:
		t.out = append(t.out, "true"...)
	case 0xc4, 0xc5, 0xc6:
		n, err := t.length(1 << (c - 0xc4))
		if err != nil {
			return err
		}
		b, err := t.next(n)
		if err != nil {
			return err
		}
		t.out = append(t.out, '"')
		t.out = base64.StdEncoding.AppendEncode(t.out, b)
		t.out = append(t.out, '"')
	case 0xca:
		b, err := t.next(4)
		if err != nil {
			return err
		}
		t.float(float64(math.Float32frombits(binary.BigEndian.Uint32(b))))
	case 0xcb:
		b, err := t.next(8)
		if err != nil {
			return err
		}
		t.float(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := t.uintN(1 << (c - 0xcc))
		if err != nil {
			return err
		}
		t.out = strconv.AppendUint(t.out, u, 10)
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		u, err := t.uintN(n)
		if err != nil {
			return err
		}
		shift := 64 - 8*n // sign-extend
		t.out = strconv.AppendInt(t.out, int64(u<<shift)>>shift, 10)
	case 0xd9, 0xda, 0xdb:
		n, err := t.length(1 << (c - 0xd9))
		if err != nil {
			return err
		}
		return t.str(n)
	case 0xdc, 0xdd:
		n, err := t.length(2 << (c - 0xdc))
		if err != nil {
			return err
		}
		return t.array(n, depth)
	case 0xde, 0xdf:
		n, err := t.length(2 << (c - 0xde))
		if err != nil {
			return err
		}
		return t.object(n, depth)
	default: // extension types (timestamps among them), 0xc1
		return errTranscodeGeneric
	}
	return nil
}

// str writes the next n bytes as a JSON string.
func (t *transcoder) str(n int) error {
	b, err := t.next(n)
	if err != nil {
		return err
	}
	t.out = appendJSONString(t.out, b)
	return nil
}

func (t *transcoder) array(n, depth int) error {
	t.out = append(t.out, '[')
	for i := range n {
		if i > 0 {
			t.out = append(t.out, ',')
		}
		if err := t.value(depth + 1); err != nil {
			return err
		}
	}
	t.out = append(t.out, ']')
	return nil
}

// object writes a map of n entries with its keys in the order json.Marshal
// sorts them. At depth 0, t.spans is left holding its entries.
func (t *transcoder) object(n, depth int) error {
	base := len(t.spans)
	t.out = append(t.out, '{')
	from := len(t.out)
	for i := range n {
		if i > 0 {
			t.out = append(t.out, ',')
		}
		e := mapEntry{start: len(t.out)}
		kb, err := t.next(1)
		if err != nil {
			return err
		}
		var kn int
		switch c := kb[0]; {
		case c&0xe0 == 0xa0:
			kn = int(c & 0x1f)
		case c == 0xd9 || c == 0xda || c == 0xdb:
			kn, err = t.length(1 << (c - 0xd9))
		case c == 0xc4 || c == 0xc5 || c == 0xc6:
			kn, err = t.length(1 << (c - 0xc4))
		default: // a key that is not a string: the generic path names it
			return errTranscodeGeneric
		}
		if err != nil {
			return err
		}
		e.keyStart = t.pos
		k, err := t.next(kn)
		if err != nil {
			return err
		}
		e.keyEnd = t.pos
		t.out = appendJSONString(t.out, k)
		t.out = append(t.out, ':')
		e.valPos = t.pos
		if err := t.value(depth + 1); err != nil {
			return err
		}
		e.end = len(t.out)
		t.spans = append(t.spans, e)
	}
	entries := t.spans[base:]
	sorted := true
	for i := 1; i < len(entries); i++ {
		switch bytes.Compare(t.key(entries[i-1]), t.key(entries[i])) {
		case 0:
			return errTranscodeGeneric // a duplicate key: the generic path keeps the last
		case 1:
			sorted = false
		}
	}
	if !sorted {
		slices.SortFunc(entries, func(a, b mapEntry) int { return bytes.Compare(t.key(a), t.key(b)) })
		for i := 1; i < len(entries); i++ {
			if bytes.Equal(t.key(entries[i-1]), t.key(entries[i])) {
				return errTranscodeGeneric
			}
		}
		t.tmp = append(t.tmp[:0], t.out[from:]...)
		t.out = t.out[:from]
		for i, e := range entries {
			if i > 0 {
				t.out = append(t.out, ',')
			}
			t.out = append(t.out, t.tmp[e.start-from:e.end-from]...)
		}
	}
	t.out = append(t.out, '}')
	if depth > 0 {
		t.spans = t.spans[:base]
	}
	return nil
}

func (t *transcoder) key(e mapEntry) []byte { return t.src[e.keyStart:e.keyEnd] }

// float writes f as encoding/json writes a float64; NaN and infinities,
// which jsonable turns into nil, as null.
func (t *transcoder) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		t.out = append(t.out, "null"...)
		return
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	t.out = strconv.AppendFloat(t.out, f, format, -1, 64)
	if format == 'e' { // e-09 to e-9, as encoding/json
		n := len(t.out)
		if n >= 4 && t.out[n-4] == 'e' && t.out[n-3] == '-' && t.out[n-2] == '0' {
			t.out[n-2] = t.out[n-1]
			t.out = t.out[:n-1]
		}
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends src as encoding/json's Marshal writes a string
// (HTML characters escaped, invalid UTF-8 replaced by U+FFFD).
func appendJSONString(dst, src []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(src); {
		if b := src[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, src[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(src[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, src[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, src[start:]...)
	return append(dst, '"')
}

// msgpackComplete checks that the first msgpack value of b (what the
// generic path decodes) lies within b: every length it claims, of strings,
// binary and extension values, arrays and maps, fits in what follows. It
// returns errPayloadTruncated when one does not.
func msgpackComplete(b []byte) error {
	pos, pending := 0, 1 // pending: values still to walk
	for pending > 0 {
		if pos >= len(b) {
			return errPayloadTruncated
		}
		c := b[pos]
		pos++
		pending--
		skip, lenSize, elems := 0, 0, 0 // bytes to skip; size of a length; values per unit of length
		switch {
		case c <= 0x7f || c >= 0xe0 || (c >= 0xc0 && c <= 0xc3):
		case c&0xe0 == 0xa0:
			skip = int(c & 0x1f)
		case c&0xf0 == 0x90:
			pending += int(c & 0x0f)
		case c&0xf0 == 0x80:
			pending += 2 * int(c&0x0f)
		default:
			switch c {
			case 0xc4, 0xd9:
				lenSize = 1
			case 0xc5, 0xda:
				lenSize = 2
			case 0xc6, 0xdb:
				lenSize = 4
			case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32: a length, a type, the data
				lenSize, skip = 1<<(c-0xc7), 1
			case 0xcc, 0xd0:
				skip = 1
			case 0xcd, 0xd1:
				skip = 2
			case 0xca, 0xce, 0xd2:
				skip = 4
			case 0xcb, 0xcf, 0xd3:
				skip = 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: a type, the data
				skip = 1 + 1<<(c-0xd4)
			case 0xdc, 0xdd:
				lenSize, elems = 2<<(c-0xdc), 1
			case 0xde, 0xdf:
				lenSize, elems = 2<<(c-0xde), 2
			}
		}
		if lenSize > 0 {
			if len(b)-pos < lenSize {
				return errPayloadTruncated
			}
			var n int
			for _, x := range b[pos : pos+lenSize] {
				n = n<<8 | int(x)
			}
			pos += lenSize
			if elems > 0 {
				if n > len(b) {
					return errPayloadTruncated
				}
				pending += elems * n
			} else {
				skip += n
			}
		}
		if len(b)-pos < skip || len(b)-pos < pending {
			return errPayloadTruncated // every pending value takes a byte at least
		}
		pos += skip
	}
	return nil
}
