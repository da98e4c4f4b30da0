package storage

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// samePayloadJSON checks that the transcoder makes of payload exactly what
// the generic path makes: the same JSON and the same reading, or the same
// error. A payload whose lengths run past its end is refused before the
// generic path, which would allocate what they claim; with checkGeneric,
// the generic path must fail on it too.
func samePayloadJSON(t *testing.T, payload []byte, checkGeneric bool) {
	t.Helper()
	var tr transcoder
	if msgpackComplete(payload) != nil {
		_, _, _, err := tr.payloadJSON("application/msgpack", payload)
		require.ErrorIs(t, err, errPayloadTruncated, "payload %x", payload)
		if checkGeneric {
			_, err := msgpackJSONGeneric(payload)
			require.Error(t, err, "payload %x", payload)
		}
		return
	}
	want, wantErr := msgpackJSONGeneric(payload)
	for range 2 { // the second time with the buffers of the first
		got, value, _, err := tr.payloadJSON("application/msgpack", payload)
		if wantErr != nil {
			require.EqualError(t, err, wantErr.Error(), "payload %x", payload)
			continue
		}
		require.NoError(t, err, "payload %x", payload)
		require.Equal(t, string(want), string(got), "payload %x", payload)
		require.Equal(t, PayloadValue(want), value, "payload %x (JSON %s)", payload, want)
	}
}

func TestTranscoderMatchesGeneric(t *testing.T) {
	t.Parallel()
	mp := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return b
	}
	deep := any(1.5)
	for range 70 {
		deep = []any{deep}
	}
	tests := map[string][]byte{
		"reading":              mp(map[string]any{"value": 21.5}),
		"unsorted keys":        mp(map[string]any{"z": 1, "a": map[string]any{"y": true, "b": nil}, "m": []any{"x", 2}}),
		"sorted keys":          {0x83, 0xa1, 'a', 0x01, 0xa1, 'b', 0x02, 0xa1, 'c', 0x03},
		"reversed keys":        {0x83, 0xa1, 'c', 0x01, 0xa1, 'b', 0x02, 0xa1, 'a', 0x03},
		"duplicate keys":       {0x82, 0xa5, 'v', 'a', 'l', 'u', 'e', 0x01, 0xa5, 'v', 'a', 'l', 'u', 'e', 0x02},
		"duplicate unsorted":   {0x83, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02, 0xa1, 'b', 0x03},
		"binary key":           {0x81, 0xc4, 0x05, 'v', 'a', 'l', 'u', 'e', 0x07},
		"integer keys":         mp(map[int]string{1: "a", 2: "b"}),
		"Value key":            mp(map[string]any{"Value": 3}),
		"both value keys":      mp(map[string]any{"Value": 3, "value": 4}),
		"VALUE null":           mp(map[string]any{"VALUE": nil, "value": 4}),
		"unicode key":          mp(map[string]any{"vaſue": 3, "é": 1}),
		"value string":         mp(map[string]any{"value": "3"}),
		"value null":           mp(map[string]any{"value": nil}),
		"value NaN":            mp(map[string]any{"value": math.NaN()}),
		"value map":            mp(map[string]any{"value": map[string]any{"value": 1}}),
		"value uint64":         mp(map[string]any{"value": uint64(math.MaxUint64)}),
		"value int64":          mp(map[string]any{"value": int64(math.MinInt64)}),
		"value big int":        mp(map[string]any{"value": int64(1<<53 + 1)}),
		"value float32":        mp(map[string]any{"value": float32(0.1)}),
		"number":               mp(7),
		"negative":             mp(-7),
		"int8":                 {0xd0, 0x80},
		"int16":                {0xd1, 0xff, 0x00},
		"int32":                {0xd2, 0x80, 0x00, 0x00, 0x00},
		"uint8":                {0xcc, 0xff},
		"uint16":               {0xcd, 0xff, 0xff},
		"uint32":               {0xce, 0xff, 0xff, 0xff, 0xff},
		"floats":               mp([]any{0.0, math.Copysign(0, -1), 1e-7, 1e-6, 1e20, 1e21, 123456789.125, -2.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64}),
		"float32s":             mp([]any{float32(1e-7), float32(3.4e38), float32(-0.5)}),
		"NaN and infinities":   mp([]any{math.NaN(), math.Inf(1), math.Inf(-1), float32(math.Inf(1))}),
		"top-level NaN":        mp(math.NaN()),
		"strings":              mp([]any{"", "plain", `<a href="x">&</a>`, "tab\tnl\ncr\rbs\\q\"", "\x00\x01\x1f\x7f", "\u2028\u2029", "é€😀", "bad\xff\xfeutf8", "\xe2\x82"}),
		"long string":          mp(strings.Repeat("x<", 40000)),
		"binary":               mp([]byte{0, 1, 2, 0xff, 0xfe}),
		"bin16":                append([]byte{0xc5, 0x01, 0x00}, make([]byte, 256)...),
		"empty containers":     mp([]any{[]any{}, map[string]any{}}),
		"nil":                  mp(nil),
		"bools":                mp([]any{true, false}),
		"timestamp":            mp(time.Date(2024, 5, 1, 12, 0, 0, 5, time.UTC)),
		"timestamp in map":     mp(map[string]any{"at": time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), "value": 1}),
		"ext":                  {0xd4, 0x05, 0x01},
		"never used":           {0xc1},
		"truncated map":        {0x82, 0xa1, 'a'},
		"truncated string":     {0xd9, 0x10, 'a'},
		"huge array":           {0xdd, 0xff, 0xff, 0xff, 0xf0},
		"huge map":             {0xdf, 0xff, 0xff, 0xff, 0xf0, 0xa1, 'a', 0x01},
		"huge map in a map":    {0x81, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xf0},
		"huge binary":          {0xc6, 0xc6, 0xaf, 0x52, 0x3f},
		"huge ext":             {0x81, 0x01, 0xc9, 0xff, 0xff, 0xff, 0xf0, 0x05},
		"short ext":            {0xd8, 0x05, 0x01},
		"nested too deep":      mp(deep),
		"trailing bytes":       {0x01, 0x02, 0x03},
		"map key array":        {0x81, 0x91, 0x01, 0x02},
		"map16":                append([]byte{0xde, 0x00, 0x01}, mp("k")[0:2]...),
		"array16 of maps":      mp([]any{map[string]any{"b": 1, "a": 2}, map[string]any{"d": 1, "c": 2}}),
		"nested map unsorted":  mp(map[string]any{"value": 1, "x": map[string]any{"q": 1, "p": map[string]any{"z": 0, "y": 1}}}),
		"html in keys":         mp(map[string]any{"<k>": "&", "a\u2028": 1}),
		"invalid utf-8 keys":   {0x82, 0xa2, 0xff, 'a', 0x01, 0xa1, 'a', 0x02},
		"fixstr 31":            mp(strings.Repeat("é", 15) + "a"),
		"negative fixint keys": {0x81, 0xff, 0x01},
	}
	for name, payload := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			samePayloadJSON(t, payload, !strings.HasPrefix(name, "huge"))
		})
	}
}

func FuzzTranscoder(f *testing.F) {
	for _, v := range []any{
		map[string]any{"value": 21.5, "unit": "C"},
		map[string]any{"z": []any{1, "two", 3.5, nil, true}, "a": map[string]any{"b": []byte{1}}},
		"<&>\u2028", -1, uint64(math.MaxUint64), float32(0.1), math.Inf(1),
	} {
		b, err := msgpack.Marshal(v)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{0x82, 0xa1, 'b', 0x01, 0xa1, 'b', 0x02})
	f.Add([]byte{0xc6, 0xc6, 0xaf, 0x52, 0x3f})
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 {
			return
		}
		samePayloadJSON(t, payload, false)
	})
}
