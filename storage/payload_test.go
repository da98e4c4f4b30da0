package storage_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/lintel-io/lintel/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func TestPayloadJSON(t *testing.T) {
	t.Parallel()
	mp := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name, contentType string
		payload           []byte
		want              string // "" for nil
		wantErr           bool
		value             *float64
	}{
		{name: "empty", contentType: "application/msgpack"},
		{name: "msgpack map", contentType: "application/msgpack", payload: mp(map[string]any{"value": 21.5, "unit": "C"}),
			want: `{"unit":"C","value":21.5}`, value: ptr(21.5)},
		{name: "msgpack number", contentType: "application/msgpack", payload: mp(7), want: `7`, value: ptr(7)},
		{name: "integer keys", contentType: "application/msgpack", payload: mp(map[int]string{1: "a"}), want: `{"1":"a"}`},
		{name: "binary", contentType: "application/msgpack", payload: mp([]byte{1, 2}), want: `"AQI="`},
		{name: "NaN", contentType: "application/msgpack", payload: mp([]any{math.NaN(), 1}), want: `[null,1]`},
		{name: "NUL kept for the database to judge", contentType: "application/msgpack", payload: mp("a\x00b"), want: `"a\u0000b"`},
		{name: "json", contentType: "application/json", payload: []byte(`{"value": 3}`), want: `{"value": 3}`, value: ptr(3)},
		{name: "bad json", contentType: "application/json", payload: []byte(`{`), wantErr: true},
		{name: "bad msgpack", contentType: "application/msgpack", payload: []byte{0xc1}, wantErr: true},
		{name: "opaque", contentType: "application/octet-stream", payload: []byte{1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := storage.PayloadJSON(tt.contentType, tt.payload)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			if tt.want == "" {
				assert.Nil(t, got)
				return
			}
			assert.JSONEq(t, tt.want, string(got))
			assert.True(t, json.Valid(got))
			assert.Equal(t, tt.value, storage.PayloadValue(got))
		})
	}
}

func ptr(f float64) *float64 { return &f }
