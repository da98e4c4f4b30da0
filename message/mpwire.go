package message

import (
	"encoding/binary"
	"fmt"
	"math"
)

// msgpack format codes (https://github.com/msgpack/msgpack/blob/master/spec.md).
const (
	mpNil      = 0xc0
	mpNeverUse = 0xc1
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpExt8     = 0xc7
	mpExt16    = 0xc8
	mpExt32    = 0xc9
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpFixExt1  = 0xd4
	mpFixExt2  = 0xd5
	mpFixExt4  = 0xd6
	mpFixExt8  = 0xd7
	mpFixExt16 = 0xd8
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf
)

// Appending msgpack.

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpMap16, byte(n>>8), byte(n))
	}
	return append(b, mpMap32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		return append(b, mpStr16, byte(n>>8), byte(n))
	}
	return append(b, mpStr32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendStr(b []byte, s string) []byte {
	return append(appendStrHeader(b, len(s)), s...)
}

func appendBin(b []byte, p []byte) []byte {
	switch n := len(p); {
	case n <= math.MaxUint8:
		b = append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		b = append(b, mpBin16, byte(n>>8), byte(n))
	default:
		b = append(b, mpBin32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, p...)
}

// appendUint appends n in its shortest msgpack form, as msgpack.Encoder.EncodeUint does.
func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= 0x7f:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, mpUint8, byte(n))
	case n <= math.MaxUint16:
		return append(b, mpUint16, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, mpUint32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), n)
}

// Reading msgpack.

// mpReader reads msgpack values from b, starting at off. Its methods return
// ErrTruncated when b ends early, ErrWrongType (with a description) when the
// value is of another type, and ErrMalformed for the never-used code 0xc1.
type mpReader struct {
	b   []byte
	off int
}

func (r *mpReader) remaining() int { return len(r.b) - r.off }

func (r *mpReader) byte1() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *mpReader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrTruncated
	}
	return r.b[r.off], nil
}

// next returns the next n bytes. n may be anything a length field holds.
func (r *mpReader) next(n uint64) ([]byte, error) {
	if n > uint64(r.remaining()) {
		return nil, ErrTruncated
	}
	p := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return p, nil
}

// uintN reads a big-endian unsigned integer of size bytes (1, 2, 4 or 8).
func (r *mpReader) uintN(size int) (uint64, error) {
	if size > r.remaining() {
		return 0, ErrTruncated
	}
	p := r.b[r.off : r.off+size]
	r.off += size
	switch size {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	case 8:
		return binary.BigEndian.Uint64(p), nil
	}
	return 0, ErrMalformed // unreachable: callers pass 1, 2, 4 or 8
}

func isStrCode(c byte) bool {
	return c&0xe0 == 0xa0 || c == mpStr8 || c == mpStr16 || c == mpStr32
}

func isBinCode(c byte) bool { return c == mpBin8 || c == mpBin16 || c == mpBin32 }

// lenSize returns the size of the length field that follows str, bin, array
// and map codes other than the fixed ones, or 0.
func lenSize(c byte) int {
	switch c {
	case mpStr8, mpBin8:
		return 1
	case mpStr16, mpBin16, mpArray16, mpMap16:
		return 2
	case mpStr32, mpBin32, mpArray32, mpMap32:
		return 4
	}
	return 0
}

// codeName names the type of the value starting with code c, for errors.
func codeName(c byte) string {
	switch {
	case c <= 0x7f, c >= 0xe0:
		return "int"
	case c <= 0x8f:
		return "map"
	case c <= 0x9f:
		return "array"
	case c <= 0xbf:
		return "str"
	}
	switch c {
	case mpNil:
		return "nil"
	case mpFalse, mpTrue:
		return "bool"
	case mpBin8, mpBin16, mpBin32:
		return "bin"
	case mpExt8, mpExt16, mpExt32, mpFixExt1, mpFixExt2, mpFixExt4, mpFixExt8, mpFixExt16:
		return "ext"
	case mpFloat32, mpFloat64:
		return "float"
	case mpUint8, mpUint16, mpUint32, mpUint64, mpInt8, mpInt16, mpInt32, mpInt64:
		return "int"
	case mpStr8, mpStr16, mpStr32:
		return "str"
	case mpArray16, mpArray32:
		return "array"
	case mpMap16, mpMap32:
		return "map"
	}
	return "invalid code 0xc1"
}

func wrongType(c byte, want string) error {
	if c == mpNeverUse {
		return fmt.Errorf("%w: invalid code 0xc1", ErrMalformed)
	}
	return fmt.Errorf("%w: got %s, want %s", ErrWrongType, codeName(c), want)
}

// str reads a str value and returns its bytes, which alias r.b.
func (r *mpReader) str() ([]byte, error) {
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	if c&0xe0 == 0xa0 {
		return r.next(uint64(c & 0x1f))
	}
	if !isStrCode(c) {
		r.off--
		return nil, wrongType(c, "str")
	}
	n, err := r.uintN(lenSize(c))
	if err != nil {
		return nil, err
	}
	return r.next(n)
}

// binOrStr reads a bin or str value and returns its bytes, which alias r.b,
// and its code.
func (r *mpReader) binOrStr() ([]byte, byte, error) {
	c, err := r.byte1()
	if err != nil {
		return nil, 0, err
	}
	if c&0xe0 == 0xa0 {
		p, err := r.next(uint64(c & 0x1f))
		return p, c, err
	}
	if !isStrCode(c) && !isBinCode(c) {
		r.off--
		return nil, c, wrongType(c, "bin")
	}
	n, err := r.uintN(lenSize(c))
	if err != nil {
		return nil, c, err
	}
	p, err := r.next(n)
	return p, c, err
}

// mapLen reads a map header.
func (r *mpReader) mapLen() (uint64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	if c&0xf0 == 0x80 {
		return uint64(c & 0x0f), nil
	}
	if c != mpMap16 && c != mpMap32 {
		r.off--
		return 0, wrongType(c, "map")
	}
	return r.uintN(lenSize(c))
}

// arrayLen reads an array header.
func (r *mpReader) arrayLen() (uint64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	if c&0xf0 == 0x90 {
		return uint64(c & 0x0f), nil
	}
	if c != mpArray16 && c != mpArray32 {
		r.off--
		return 0, wrongType(c, "array")
	}
	return r.uintN(lenSize(c))
}

// errTooDeep reports containers nested deeper than the decoder allows.
var errTooDeep = fmt.Errorf("%w: nested too deeply", ErrTooLarge)

// errIntRange reports an integer that does not fit the field.
var errIntRange = fmt.Errorf("%w: integer out of range", ErrInvalidValue)

// uint reads an integer of any msgpack form; negative values are out of range.
func (r *mpReader) uint() (uint64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c >= 0xe0:
		return 0, errIntRange
	}
	switch c {
	case mpUint8, mpUint16, mpUint32, mpUint64:
		return r.uintN(1 << (c - mpUint8))
	case mpInt8, mpInt16, mpInt32, mpInt64:
		n, err := r.intN(1 << (c - mpInt8))
		if err == nil && n < 0 {
			err = errIntRange
		}
		return uint64(n), err
	}
	r.off--
	return 0, wrongType(c, "int")
}

// int reads an integer of any msgpack form; unsigned values above MaxInt64
// are out of range.
func (r *mpReader) int() (int64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	}
	switch c {
	case mpInt8, mpInt16, mpInt32, mpInt64:
		return r.intN(1 << (c - mpInt8))
	case mpUint8, mpUint16, mpUint32, mpUint64:
		n, err := r.uintN(1 << (c - mpUint8))
		if err == nil && n > math.MaxInt64 {
			err = errIntRange
		}
		return int64(n), err
	}
	r.off--
	return 0, wrongType(c, "int")
}

func (r *mpReader) intN(size int) (int64, error) {
	n, err := r.uintN(size)
	switch size {
	case 1:
		return int64(int8(n)), err
	case 2:
		return int64(int16(n)), err
	case 4:
		return int64(int32(n)), err
	}
	return int64(n), err
}

// skip skips one value of any type, allowing containers to nest depth levels
// deep (a scalar needs none). It recurses at most depth frames.
func (r *mpReader) skip(depth int) error {
	c, err := r.byte1()
	if err != nil {
		return err
	}
	switch {
	case c <= 0x7f, c >= 0xe0:
		return nil
	case c <= 0x8f:
		return r.skipN(2*uint64(c&0x0f), depth)
	case c <= 0x9f:
		return r.skipN(uint64(c&0x0f), depth)
	case c <= 0xbf:
		_, err := r.next(uint64(c & 0x1f))
		return err
	}
	var n uint64
	switch c {
	case mpNil, mpFalse, mpTrue:
		return nil
	case mpNeverUse:
		r.off--
		return fmt.Errorf("%w: invalid code 0xc1", ErrMalformed)
	case mpBin8, mpBin16, mpBin32, mpStr8, mpStr16, mpStr32:
		if n, err = r.uintN(lenSize(c)); err != nil {
			return err
		}
	case mpExt8, mpExt16, mpExt32:
		if n, err = r.uintN(1 << (c - mpExt8)); err != nil {
			return err
		}
		n++ // the type byte
	case mpFloat32:
		n = 4
	case mpFloat64:
		n = 8
	case mpUint8, mpUint16, mpUint32, mpUint64:
		n = 1 << (c - mpUint8)
	case mpInt8, mpInt16, mpInt32, mpInt64:
		n = 1 << (c - mpInt8)
	case mpFixExt1, mpFixExt2, mpFixExt4, mpFixExt8, mpFixExt16:
		n = 1 + 1<<(c-mpFixExt1)
	case mpArray16, mpArray32:
		if n, err = r.uintN(lenSize(c)); err != nil {
			return err
		}
		return r.skipN(n, depth)
	case mpMap16, mpMap32:
		if n, err = r.uintN(lenSize(c)); err != nil {
			return err
		}
		return r.skipN(2*n, depth)
	}
	_, err = r.next(n)
	return err
}

// skipN skips the n elements of a container that may nest depth levels deep,
// counting itself.
func (r *mpReader) skipN(n uint64, depth int) error {
	if n == 0 {
		return nil
	}
	if depth < 1 {
		return errTooDeep
	}
	if n > uint64(r.remaining()) { // every element takes at least a byte
		return ErrTruncated
	}
	for ; n > 0; n-- {
		if err := r.skip(depth - 1); err != nil {
			return err
		}
	}
	return nil
}

// timestampExt reads the payload of a msgpack timestamp extension (type -1)
// whose header byte c has been read, returning Unix nanoseconds.
func (r *mpReader) timestamp(c byte) (int64, error) {
	var size uint64
	switch c {
	case mpFixExt4:
		size = 4
	case mpFixExt8:
		size = 8
	case mpExt8:
		n, err := r.uintN(1)
		if err != nil {
			return 0, err
		}
		size = n
	default:
		return 0, wrongType(c, "int")
	}
	p, err := r.next(size + 1)
	if err != nil {
		return 0, err
	}
	if int8(p[0]) != -1 {
		return 0, fmt.Errorf("%w: ext type %d, want -1 (timestamp) or int", ErrWrongType, int8(p[0]))
	}
	p = p[1:]
	var sec, nsec int64
	switch len(p) {
	case 4:
		sec = int64(binary.BigEndian.Uint32(p))
	case 8:
		v := binary.BigEndian.Uint64(p)
		nsec, sec = int64(v>>34), int64(v&(1<<34-1))
	case 12:
		nsec, sec = int64(binary.BigEndian.Uint32(p)), int64(binary.BigEndian.Uint64(p[4:]))
	default:
		return 0, fmt.Errorf("%w: timestamp of %d bytes", ErrMalformed, len(p))
	}
	if nsec > 999999999 {
		return 0, fmt.Errorf("%w: timestamp nanoseconds %d", ErrInvalidValue, nsec)
	}
	const maxSec, minSec = math.MaxInt64/1_000_000_000 - 1, math.MinInt64/1_000_000_000 + 1
	if sec > maxSec || sec < minSec {
		return 0, fmt.Errorf("%w: timestamp outside the range of int64 Unix nanoseconds", ErrInvalidValue)
	}
	return sec*1e9 + nsec, nil
}
