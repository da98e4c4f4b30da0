package message

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzCEObjectScanner checks the fast CloudEvents object scanner against
// encoding/json: whatever it accepts, json.Unmarshal into a map accepts
// too, with the same attribute values; and a valid object without escaped
// member names and without deep nesting, it accepts.
func FuzzCEObjectScanner(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"id":"x"}`, `{"id":"x","id":"y"}`, `{"data":null}`, `{"data":[1,-2.5e+3,{"a":[true,false,null]}]}`,
		`{"specversion":"1.0","id":"0190a0a0-0000-7000-8000-000000000001","source":"/a/b/c/d","type":"io.lintel.evt"}`,
		`{"\u0069d":"x"}`, `{"id":"\u00e9\n"}`, `{"id":1e}`, `{"id":01}`, `{"id":-}`, `[]`, `null`, `{"a":1} x`, `{"a":"` + "\x01" + `"}`,
		`{"a":"\xff"}`, `{"a":tru}`, `{,}`, `{"a":1,}`, `{"a" 1}`, strings.Repeat(`{"a":`, 1100) + `1` + strings.Repeat(`}`, 1100),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast ceAttrs
		ok := parseCEObject(data, &fast)
		var raw map[string]json.RawMessage
		err := json.Unmarshal(data, &raw)
		if ok {
			if err != nil || raw == nil {
				t.Fatalf("scanner accepted %q, encoding/json: %v", data, err)
			}
			var slow ceAttrs
			ceAttrsFromMap(raw, &slow)
			for i := range fast.vals {
				if !bytes.Equal(fast.vals[i], slow.vals[i]) || (fast.vals[i] == nil) != (slow.vals[i] == nil) {
					t.Fatalf("attribute %d of %q: scanner %q, encoding/json %q", i, data, fast.vals[i], slow.vals[i])
				}
			}
			return
		}
		if err == nil && raw != nil && !bytes.Contains(data, []byte(`\`)) && bytes.Count(data, []byte("{"))+bytes.Count(data, []byte("[")) < maxScanDepth {
			t.Fatalf("scanner refused %q, which encoding/json takes", data)
		}
	})
}
