package message_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/vmihailenco/msgpack/v5"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // canonical form; "" means an error
	}{
		{"canonical", "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d", "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d"},
		{"upper case", "0195512A-1BDB-7A3F-9C2E-5D6F7A8B9C0D", "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d"},
		{"zero", "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"},
		{"version 4", "f47ac10b-58cc-4372-a567-0e02b2c3d479", "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
		{"empty", "", ""},
		{"no hyphens", "0195512a1bdb7a3f9c2e5d6f7a8b9c0d", ""},
		{"braces", "{0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d}", ""},
		{"urn", "urn:uuid:0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d", ""},
		{"hyphen moved", "0195512a1-bdb-7a3f-9c2e-5d6f7a8b9c0d", ""},
		{"non-hex", "0195512g-1bdb-7a3f-9c2e-5d6f7a8b9c0d", ""},
		{"too long", "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d0", ""},
		{"space", " 0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := message.ParseID(tt.in)
			if tt.want == "" {
				if !errors.Is(err, message.ErrInvalidID) {
					t.Fatalf("ParseID(%q) = %v, %v; want ErrInvalidID", tt.in, id, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseID(%q): %v", tt.in, err)
			}
			if got := id.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIDText(t *testing.T) {
	id := mustID(t, "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d")
	text, err := id.MarshalText()
	if err != nil || string(text) != id.String() {
		t.Fatalf("MarshalText = %q, %v", text, err)
	}
	var back message.ID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Fatalf("UnmarshalText = %v, %v", back, err)
	}
	if err := back.UnmarshalText([]byte("nope")); !errors.Is(err, message.ErrInvalidID) || back != id {
		t.Errorf("UnmarshalText(bad) = %v and changed the id to %v", err, back)
	}
	b, _ := id.AppendText([]byte("id="))
	if string(b) != "id="+id.String() {
		t.Errorf("AppendText = %q", b)
	}

	// In JSON an ID is a string, including inside a struct.
	j, err := json.Marshal(struct{ ID message.ID }{id})
	if err != nil || string(j) != `{"ID":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d"}` {
		t.Fatalf("json.Marshal = %s, %v", j, err)
	}
	var s struct{ ID message.ID }
	if err := json.Unmarshal(j, &s); err != nil || s.ID != id {
		t.Fatalf("json.Unmarshal = %v, %v", s.ID, err)
	}
}

func TestIDMsgpack(t *testing.T) {
	id := mustID(t, "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d")
	type holder struct {
		ID   message.ID `msgpack:"id"`
		Zero message.ID `msgpack:"zero,omitempty"`
	}
	b, err := msgpack.Marshal(holder{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := msgpack.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["id"] != id.String() || len(generic) != 1 {
		t.Errorf("generic view = %v, want the canonical string and no zero id", generic)
	}
	var back holder
	if err := msgpack.Unmarshal(b, &back); err != nil || back.ID != id {
		t.Fatalf("round trip = %v, %v", back.ID, err)
	}

	// A 16-byte bin and nil are read too; other forms are not.
	tests := []struct {
		name    string
		value   any
		want    message.ID
		wantErr bool
	}{
		{"bin", id[:], id, false},
		{"nil", nil, message.ID{}, false},
		{"short bin", id[:15], message.ID{}, true},
		{"bad string", "not-an-id", message.ID{}, true},
		{"int", 7, message.ID{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := msgpack.Marshal(map[string]any{"id": tt.value})
			if err != nil {
				t.Fatal(err)
			}
			var got holder
			err = msgpack.Unmarshal(b, &got)
			if (err != nil) != tt.wantErr || got.ID != tt.want {
				t.Errorf("decode = %v, %v; want %v, error %v", got.ID, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestIDFields(t *testing.T) {
	id := newTestGenerator(1).New()
	if got := id.Version(); got != 7 {
		t.Errorf("Version() = %d, want 7", got)
	}
	if id[8]>>6 != 0b10 {
		t.Errorf("variant bits = %02b, want 10", id[8]>>6)
	}
	if got, want := id.Time(), testTime.Truncate(time.Millisecond); !got.Equal(want) {
		t.Errorf("Time() = %v, want %v", got, want)
	}
	if id.IsZero() || !(message.ID{}).IsZero() {
		t.Error("IsZero wrong")
	}
	if ms := testTime.UnixMilli(); !strings.HasPrefix(id.String(), fmt.Sprintf("%08x-%04x", ms>>16, ms&0xffff)) {
		t.Errorf("String() = %s, want the timestamp %x first", id, ms)
	}
	other := newTestGenerator(1).NewAt(testTime.Add(time.Millisecond))
	if id.Compare(other) != -1 || other.Compare(id) != 1 || id.Compare(id) != 0 {
		t.Error("Compare does not order by time")
	}
}
