package message

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

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
// after a trip through CloudEvents. Unknown fields are ignored. Every
// time.Time in the result is in UTC, whatever the local zone (msgpack
// decodes times in it) or the offset a JSON time was written with: those
// of T's exported fields, nested structs, pointers, slices, arrays and map
// values, and those held in interface values such as a map[string]any.
// Map keys are left as decoded. Errors are
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
	timesToUTC(reflect.ValueOf(&v).Elem(), 0)
	return v, nil
}

var timeType = reflect.TypeFor[time.Time]()

// maxUTCDepth bounds how deeply timesToUTC follows pointers and
// containers; decoders refuse deeper payloads (DefaultMaxDepth) anyway.
const maxUTCDepth = 2 * DefaultMaxDepth

// timesToUTC sets every time.Time reachable from v through exported
// struct fields, pointers, slices, arrays, map values and interface values
// to the same instant in UTC. Values that cannot be set (unexported
// fields) are left alone, as decoders leave them.
func timesToUTC(v reflect.Value, depth int) {
	if depth > maxUTCDepth || v.Kind() != reflect.Struct && !v.CanInterface() { // reached through an unexported field
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			if v.CanSet() {
				if t := v.Addr().Interface().(*time.Time); t.Location() != time.UTC {
					*t = t.UTC()
				}
			}
			return
		}
		for i := range v.NumField() {
			// Unexported fields cannot be set, but the exported fields of
			// an embedded struct can.
			switch f := v.Field(i); f.Kind() {
			case reflect.Struct, reflect.Interface, reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
				timesToUTC(f, depth+1)
			}
		}
	case reflect.Pointer:
		if !v.IsNil() && mayHoldTime(v.Type().Elem(), 0) {
			timesToUTC(v.Elem(), depth+1)
		}
	case reflect.Slice, reflect.Array:
		if !mayHoldTime(v.Type().Elem(), 0) {
			return
		}
		for i := range v.Len() {
			timesToUTC(v.Index(i), depth+1)
		}
	case reflect.Map:
		if v.IsNil() || !mayHoldTime(v.Type().Elem(), 0) {
			return
		}
		elem := v.Type().Elem()
		it := v.MapRange()
		for it.Next() {
			// Map values cannot be set in place: a changed value is
			// stored back, which a range over a map allows.
			switch elem.Kind() {
			case reflect.Interface:
				if r, ok := interfaceToUTC(it.Value().Elem(), depth+1); ok {
					v.SetMapIndex(it.Key(), r)
				}
			case reflect.Map, reflect.Pointer, reflect.Slice:
				timesToUTC(it.Value(), depth+1) // shares its contents
			default:
				val := reflect.New(elem).Elem()
				val.Set(it.Value())
				timesToUTC(val, depth+1)
				v.SetMapIndex(it.Key(), val)
			}
		}
	case reflect.Interface:
		if r, ok := interfaceToUTC(v.Elem(), depth+1); ok && v.CanSet() {
			v.Set(r)
		}
	}
}

// interfaceToUTC applies timesToUTC to inner, the dynamic value of an
// interface, which cannot be set. It returns the value to store in the
// interface instead and true if inner is a time, struct or array that may
// hold times; maps, pointers and slices are changed in place.
func interfaceToUTC(inner reflect.Value, depth int) (reflect.Value, bool) {
	switch {
	case !inner.IsValid():
		return reflect.Value{}, false
	case inner.Type() == timeType:
		t := inner.Interface().(time.Time)
		if t.Location() == time.UTC {
			return reflect.Value{}, false
		}
		return reflect.ValueOf(t.UTC()), true
	}
	switch inner.Kind() {
	case reflect.Map, reflect.Pointer, reflect.Slice:
		timesToUTC(inner, depth) // shares its contents with the interface
		return reflect.Value{}, false
	case reflect.Struct, reflect.Array:
		if !mayHoldTime(inner.Type(), 0) {
			return reflect.Value{}, false
		}
		val := reflect.New(inner.Type()).Elem()
		val.Set(inner)
		timesToUTC(val, depth)
		return val, true
	}
	return reflect.Value{}, false
}

// mayHoldTime reports whether a value of type t can hold a time.Time that
// timesToUTC would reach.
func mayHoldTime(t reflect.Type, depth int) bool {
	if depth > 8 { // a deep or recursive type: look at the values
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == timeType {
			return true
		}
		for i := range t.NumField() {
			if f := t.Field(i); (f.IsExported() || f.Anonymous && f.Type.Kind() == reflect.Struct) && mayHoldTime(f.Type, depth+1) {
				return true
			}
		}
		return false
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return mayHoldTime(t.Elem(), depth+1)
	case reflect.Interface:
		return true
	}
	return false
}
