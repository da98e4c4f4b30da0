package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// PayloadJSON converts an envelope payload to JSON for the payload column:
// JSON payloads (content types containing "json") are checked and kept as
// they are; msgpack payloads (content types containing "msgpack", and the
// empty content type with a non-empty payload) are decoded generically and
// re-encoded as JSON. Map keys that are not strings become their decimal
// or text form, binary values become base64 strings, timestamps RFC 3339
// strings, and NaN or infinite floats null. An empty payload gives nil (SQL
// NULL). Other content types give an error: the envelope is still stored
// by the ingest, with a NULL payload.
func PayloadJSON(contentType string, payload []byte) (json.RawMessage, error) {
	var t transcoder
	p, _, _, err := t.payloadJSON(contentType, payload)
	return p, err
}

// payloadJSON is PayloadJSON, which also returns PayloadValue of the JSON
// (nil when there is none). A msgpack payload is transcoded in t's buffer,
// valid until t's next use (copy it to keep it): inT reports that.
func (t *transcoder) payloadJSON(contentType string, payload []byte) (p json.RawMessage, value *float64, inT bool, err error) {
	if len(payload) == 0 {
		return nil, nil, false, nil
	}
	ct := strings.ToLower(contentType)
	switch {
	case strings.Contains(ct, "json"):
		if !json.Valid(payload) {
			return nil, nil, false, fmt.Errorf("storage: payload: content type %q but not valid JSON", contentType)
		}
		return payload, PayloadValue(payload), false, nil
	case ct == "" || strings.Contains(ct, "msgpack"):
		f, kind, err := t.transcode(payload)
		switch {
		case errors.Is(err, errTranscodeGeneric):
			if err := msgpackComplete(payload); err != nil {
				return nil, nil, false, fmt.Errorf("storage: payload: msgpack: %w", err)
			}
			out, err := msgpackJSONGeneric(payload)
			if err != nil {
				return nil, nil, false, err
			}
			return out, PayloadValue(out), false, nil
		case err != nil:
			return nil, nil, false, fmt.Errorf("storage: payload: msgpack: %w", err)
		}
		out := t.out[:len(t.out):len(t.out)]
		switch kind {
		case valueFound:
			value = &f
		case valueAsk:
			value = PayloadValue(out)
		}
		return out, value, true, nil
	}
	return nil, nil, false, fmt.Errorf("storage: payload: content type %q has no JSON form", contentType)
}

// msgpackJSONGeneric converts a msgpack payload to JSON by way of generic
// Go values; the transcoder makes the same JSON faster, and leaves what it
// does not handle to this.
func msgpackJSONGeneric(payload []byte) (json.RawMessage, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(payload))
	v, err := decodeGeneric(dec, 0, len(payload))
	if err != nil {
		return nil, fmt.Errorf("storage: payload: msgpack: %w", err)
	}
	out, err := json.Marshal(jsonable(v))
	if err != nil {
		return nil, fmt.Errorf("storage: payload: to JSON: %w", err)
	}
	return out, nil
}

// maxPayloadDepth bounds the nesting of a msgpack payload.
const maxPayloadDepth = 64

// decodeGeneric decodes one msgpack value of a payload of size bytes into
// maps with string keys, slices, base64 strings for binary values, and
// scalars. A map or array claiming more elements than the payload has
// bytes is refused before anything is allocated for it.
func decodeGeneric(dec *msgpack.Decoder, depth, size int) (any, error) {
	if depth > maxPayloadDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxPayloadDepth)
	}
	c, err := dec.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := dec.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		if n > size {
			return nil, fmt.Errorf("map of %d entries in a payload of %d bytes", n, size)
		}
		m := make(map[string]any, max(n, 0))
		for range max(n, 0) {
			k, err := dec.DecodeInterfaceLoose()
			if err != nil {
				return nil, err
			}
			v, err := decodeGeneric(dec, depth+1, size)
			if err != nil {
				return nil, err
			}
			m[keyString(k)] = v
		}
		return m, nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if n > size {
			return nil, fmt.Errorf("array of %d elements in a payload of %d bytes", n, size)
		}
		a := make([]any, max(n, 0))
		for i := range a {
			if a[i], err = decodeGeneric(dec, depth+1, size); err != nil {
				return nil, err
			}
		}
		return a, nil
	case c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32:
		b, err := dec.DecodeBytes()
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return dec.DecodeInterfaceLoose()
}

// jsonable turns a generically decoded msgpack value into one that
// encoding/json accepts and renders faithfully.
func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonable(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[keyString(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = jsonable(e)
		}
		return v
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	case float32:
		return jsonable(float64(v))
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func keyString(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case []byte:
		return string(k)
	case nil:
		return "null"
	}
	return fmt.Sprint(k)
}

// PayloadValue extracts the numeric reading of a JSON payload: the payload
// itself when it is a number, else its top-level "value" field when that is
// a number. It returns nil when there is none.
func PayloadValue(payload json.RawMessage) *float64 {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 {
		return nil
	}
	var f float64
	switch p[0] {
	case '{':
		var obj struct {
			Value *float64 `json:"value"`
		}
		if json.Unmarshal(p, &obj) != nil {
			return nil
		}
		return obj.Value
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if json.Unmarshal(p, &f) != nil {
			return nil
		}
		return &f
	}
	return nil
}
