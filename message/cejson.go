package message

import "encoding/json"

// Indexes of the CloudEvents attributes the decoder reads, in ceAttrs.
const (
	ceiSpecVersion = iota
	ceiID
	ceiSource
	ceiType
	ceiTime
	ceiDataContentType
	ceiData
	ceiDataBase64
	ceiSequence
	ceiBootID
	ceiCorrelationID
	ceiSchemaVersion
	ceiCount
)

// ceAttrIndex returns the index of the attribute named name, or -1 for an
// attribute the decoder ignores.
func ceAttrIndex[S ~string | ~[]byte](name S) int {
	switch string(name) {
	case ceSpecVersion:
		return ceiSpecVersion
	case ceID:
		return ceiID
	case ceSource:
		return ceiSource
	case ceType:
		return ceiType
	case ceTime:
		return ceiTime
	case ceDataContentType:
		return ceiDataContentType
	case ceData:
		return ceiData
	case ceDataBase64:
		return ceiDataBase64
	case ceSequence:
		return ceiSequence
	case ceBootID:
		return ceiBootID
	case ceCorrelationID:
		return ceiCorrelationID
	case ceSchemaVersion:
		return ceiSchemaVersion
	}
	return -1
}

// ceAttrs holds the raw JSON values of the attributes of a CloudEvents
// object that the decoder reads; a nil value is an absent attribute.
// Values may share memory with the input.
type ceAttrs struct {
	vals [ceiCount][]byte
}

// get returns the raw value of the attribute named name and whether it is
// present.
func (m *ceAttrs) get(name string) ([]byte, bool) {
	i := ceAttrIndex(name)
	if i < 0 {
		return nil, false
	}
	return m.vals[i], m.vals[i] != nil
}

// parseCEObject fills m from data, a JSON object, the way json.Unmarshal
// into a map[string]json.RawMessage would (the last of repeated members
// wins), without allocating. It reports false when data is not a
// well-formed JSON object it can read on its own (a syntax error, another
// JSON type, a member name with escapes, very deep nesting): the caller then
// decodes with encoding/json, which gives the precise error.
func parseCEObject(data []byte, m *ceAttrs) bool {
	p := jsonScanner{b: data}
	p.space()
	if !p.byte('{') {
		return false
	}
	p.space()
	if p.byte('}') {
		p.space()
		return p.i == len(p.b)
	}
	for {
		p.space()
		ks := p.i
		if !p.str() {
			return false
		}
		key := p.b[ks+1 : p.i-1]
		for _, c := range key {
			if c == '\\' {
				return false
			}
		}
		p.space()
		if !p.byte(':') {
			return false
		}
		p.space()
		vs := p.i
		if !p.value(0) {
			return false
		}
		if i := ceAttrIndex(key); i >= 0 {
			m.vals[i] = p.b[vs:p.i:p.i]
		}
		p.space()
		if p.byte(',') {
			continue
		}
		if !p.byte('}') {
			return false
		}
		p.space()
		return p.i == len(p.b)
	}
}

// jsonScanner validates JSON values the way encoding/json's scanner does.
type jsonScanner struct {
	b []byte
	i int
}

// maxScanDepth is how deeply parseCEObject follows nesting before it
// leaves the input to encoding/json.
const maxScanDepth = 1000

func (p *jsonScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScanner) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScanner) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// value skips one JSON value.
func (p *jsonScanner) value(depth int) bool {
	if p.i >= len(p.b) || depth > maxScanDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.str()
	case c == '{':
		p.i++
		p.space()
		if p.byte('}') {
			return true
		}
		for {
			p.space()
			if !p.str() {
				return false
			}
			p.space()
			if !p.byte(':') {
				return false
			}
			p.space()
			if !p.value(depth + 1) {
				return false
			}
			p.space()
			if p.byte(',') {
				continue
			}
			return p.byte('}')
		}
	case c == '[':
		p.i++
		p.space()
		if p.byte(']') {
			return true
		}
		for {
			p.space()
			if !p.value(depth + 1) {
				return false
			}
			p.space()
			if p.byte(',') {
				continue
			}
			return p.byte(']')
		}
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return false
}

// str skips a JSON string.
func (p *jsonScanner) str() bool {
	if !p.byte('"') {
		return false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return false
			}
			switch p.b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				p.i++
				if len(p.b)-p.i < 4 {
					return false
				}
				for _, h := range p.b[p.i : p.i+4] {
					if !isHex(h) {
						return false
					}
				}
				p.i += 4
			default:
				return false
			}
		default:
			p.i++
		}
	}
	return false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *jsonScanner) number() bool {
	p.byte('-')
	switch {
	case p.byte('0'):
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.byte('.') {
		if !p.digits() {
			return false
		}
	}
	if p.byte('e') || p.byte('E') {
		if !p.byte('+') {
			p.byte('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits skips one or more digits, reporting whether there was one.
func (p *jsonScanner) digits() bool {
	s := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > s
}

// ceAttrsFromMap is the slow path's ceAttrs.
func ceAttrsFromMap(raw map[string]json.RawMessage, m *ceAttrs) {
	for k, v := range raw {
		if i := ceAttrIndex(k); i >= 0 {
			m.vals[i] = v
		}
	}
}
