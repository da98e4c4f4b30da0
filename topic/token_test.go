package topic_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/topic"
)

func TestValidateToken(t *testing.T) {
	tests := []struct {
		name    string
		part    topic.Part
		tok     string
		wantErr string // exact message; "" means valid
		sent    error
	}{
		{name: "letters", part: topic.PartOrg, tok: "acme"},
		{name: "all allowed classes", part: topic.PartThingCode, tok: "Door_1-b"},
		{name: "exactly 64 bytes", part: topic.PartThingCode, tok: strings.Repeat("a", 64)},
		{name: "leading underscore is a valid token", part: topic.PartOrg, tok: "_acme"},
		{name: "empty", part: topic.PartEdge, tok: "", wantErr: `topic: edge "": empty`, sent: topic.ErrEmpty},
		{name: "65 bytes", part: topic.PartThingType, tok: strings.Repeat("x", 65),
			wantErr: `topic: thing_type "` + strings.Repeat("x", 65) + `": 65 bytes, at most 64 allowed`, sent: topic.ErrTooLong},
		{name: "space", part: topic.PartThingCode, tok: "door 1", wantErr: `topic: thing_code "door 1": space not allowed`, sent: topic.ErrInvalidChar},
		{name: "dot", part: topic.PartOrg, tok: "a.b", wantErr: `topic: org "a.b": '.' not allowed (it separates tokens)`, sent: topic.ErrInvalidChar},
		{name: "star", part: topic.PartEdge, tok: "a*", wantErr: `topic: edge "a*": wildcard '*' not allowed`, sent: topic.ErrInvalidChar},
		{name: "gt", part: topic.PartEdge, tok: ">", wantErr: `topic: edge ">": wildcard '>' not allowed`, sent: topic.ErrInvalidChar},
		{name: "tab", part: topic.PartThingCode, tok: "a\tb", wantErr: `topic: thing_code "a\tb": whitespace not allowed`, sent: topic.ErrInvalidChar},
		{name: "newline", part: topic.PartThingCode, tok: "a\n", wantErr: `topic: thing_code "a\n": whitespace not allowed`, sent: topic.ErrInvalidChar},
		{name: "carriage return", part: topic.PartThingCode, tok: "a\r", wantErr: `topic: thing_code "a\r": whitespace not allowed`, sent: topic.ErrInvalidChar},
		{name: "NUL", part: topic.PartThingCode, tok: "a\x00", wantErr: `topic: thing_code "a\x00": control character 0x00 not allowed`, sent: topic.ErrInvalidChar},
		{name: "DEL", part: topic.PartThingCode, tok: "a\x7f", wantErr: `topic: thing_code "a\x7f": control character 0x7f not allowed`, sent: topic.ErrInvalidChar},
		{name: "non-ASCII", part: topic.PartThingCode, tok: "tür", wantErr: `topic: thing_code "tür": non-ASCII byte 0xc3 not allowed`, sent: topic.ErrInvalidChar},
		{name: "invalid UTF-8", part: topic.PartThingCode, tok: "a\xff", wantErr: `topic: thing_code "a\xff": non-ASCII byte 0xff not allowed`, sent: topic.ErrInvalidChar},
		{name: "other punctuation", part: topic.PartThingCode, tok: "a/b", wantErr: `topic: thing_code "a/b": character '/' not allowed, only [A-Za-z0-9_-]`, sent: topic.ErrInvalidChar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := topic.ValidateToken(tt.part, tt.tok)
			checkErr(t, err, tt.wantErr, tt.sent, tt.part)
		})
	}
}

// TestValidateTokenEveryByte checks every byte value, alone and inside a
// token, against the rule [A-Za-z0-9_-].
func TestValidateTokenEveryByte(t *testing.T) {
	for c := range 256 {
		b := byte(c)
		want := ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || ('0' <= b && b <= '9') || b == '_' || b == '-'
		for _, tok := range []string{string([]byte{b}), "a" + string([]byte{b}) + "z"} {
			err := topic.ValidateToken(topic.PartThingCode, tok)
			if (err == nil) != want {
				t.Errorf("ValidateToken(%q) = %v, want valid = %v", tok, err, want)
			}
			if err != nil && !errors.Is(err, topic.ErrInvalidChar) {
				t.Errorf("ValidateToken(%q) = %v, want ErrInvalidChar", tok, err)
			}
		}
	}
}

func TestIsReserved(t *testing.T) {
	tests := []struct {
		tok  string
		want bool
	}{
		{"_edge", true},
		{"_sys", true},
		{"_", true},
		{"edge", false},
		{"a_", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := topic.IsReserved(tt.tok); got != tt.want {
			t.Errorf("IsReserved(%q) = %v, want %v", tt.tok, got, tt.want)
		}
	}
}

// checkErr checks that err has exactly the message want ("" means no error),
// wraps sentinel, and is a *topic.Error naming part.
func checkErr(t *testing.T, err error, want string, sentinel error, part topic.Part) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got nil error, want %q", want)
	}
	if got := err.Error(); got != want {
		t.Errorf("error message:\n got %s\nwant %s", got, want)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%v, %v) = false", err, sentinel)
	}
	var te *topic.Error
	if !errors.As(err, &te) {
		t.Fatalf("errors.As(%v, *topic.Error) = false", err)
	}
	if part != "" && te.Part != part {
		t.Errorf("Error.Part = %q, want %q", te.Part, part)
	}
	if te.Reason == "" {
		t.Errorf("Error.Reason is empty")
	}
}
