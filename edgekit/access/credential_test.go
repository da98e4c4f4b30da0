package access_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// coreHashKey is the hash key the core tests hash credentials with.
var coreHashKey = []byte("0123456789abcdef0123456789abcdef")

// coreID returns the id of the clear credential s under coreHashKey.
func coreID(s string) string { return message.Credential(s).Hash(coreHashKey) }

// wantFieldError checks that err is a *FieldError of the given kind about
// field, wrapping sentinel, and returns it.
func wantFieldError(t *testing.T, err error, kind, field string, sentinel error) *access.FieldError {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a %s error about field %q wrapping %v", kind, field, sentinel)
	}
	var fe *access.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Kind != kind {
		t.Errorf("Kind = %q, want %q (error %v)", fe.Kind, kind, err)
	}
	if fe.Field != field {
		t.Errorf("Field = %q, want %q (error %v)", fe.Field, field, err)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("error %v does not wrap %v", err, sentinel)
	}
	for _, other := range []error{access.ErrMalformed, access.ErrUnknownField, access.ErrInvalid} {
		if other != sentinel && errors.Is(err, other) {
			t.Errorf("error %v wraps %v as well as %v", err, other, sentinel)
		}
	}
	if !strings.HasPrefix(err.Error(), "access: "+kind) {
		t.Errorf("message %q does not begin with %q", err, "access: "+kind)
	}
	return fe
}

func TestParseCredential(t *testing.T) {
	id := coreID("card-1001")
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	full := `{"holder": "Ada Lovelace", "kind": "card", "state": "active",
		"valid_from": "2026-01-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z",
		"doors": ["front", "back"], "groups": ["staff"], "schedules": ["office"],
		"changed": "2025-12-24T10:00:00+01:00"}`
	got, err := access.ParseCredential(id, []byte(full))
	if err != nil {
		t.Fatalf("ParseCredential: %v", err)
	}
	want := &access.Credential{
		ID: id, Holder: "Ada Lovelace", Kind: message.CredentialCard, State: access.StateActive,
		ValidFrom: from, ValidUntil: until,
		Doors: []string{"front", "back"}, Groups: []string{"staff"}, Schedules: []string{"office"},
	}
	if !got.Changed.Equal(time.Date(2025, 12, 24, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("Changed = %v", got.Changed)
	}
	got.Changed = time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCredential =\n%+v, want\n%+v", got, want)
	}

	minimal, err := access.ParseCredential(id, []byte(`{"holder":"x","state":"revoked","reason":"lost"}`))
	if err != nil {
		t.Fatalf("ParseCredential(minimal): %v", err)
	}
	if minimal.State != access.StateRevoked || minimal.Reason != "lost" || minimal.Doors != nil {
		t.Errorf("ParseCredential(minimal) = %+v", minimal)
	}
}

func TestParseCredentialErrors(t *testing.T) {
	id := coreID("card-1001")
	tests := []struct {
		name     string
		id       string // default id
		data     string
		field    string
		sentinel error
		inMsg    string // a substring of the message
	}{
		{name: "empty input", data: ``, sentinel: access.ErrMalformed, inMsg: "end of input"},
		{name: "syntax error", data: `{"holder": "a", "state": }`, field: "state", sentinel: access.ErrMalformed, inMsg: "line 1, column"},
		{name: "cut short", data: `{"holder": "a"`, sentinel: access.ErrMalformed},
		{name: "not an object", data: `["holder"]`, sentinel: access.ErrMalformed, inMsg: "want a JSON object, got an array"},
		{name: "null", data: `null`, sentinel: access.ErrMalformed, inMsg: "got null"},
		{name: "trailing object", data: `{"holder":"a","state":"active"} {}`, sentinel: access.ErrMalformed, inMsg: "after the top-level object"},
		{name: "trailing garbage", data: `{"holder":"a","state":"active"}x`, sentinel: access.ErrMalformed},
		{name: "unknown key", data: `{"holder":"a","state":"active","valid_untill":"2027-01-01T00:00:00Z"}`,
			field: "valid_untill", sentinel: access.ErrUnknownField, inMsg: `did you mean "valid_until"?`},
		{name: "key in wrong case", data: `{"Holder":"a","state":"active"}`, field: "Holder", sentinel: access.ErrUnknownField, inMsg: `did you mean "holder"?`},
		{name: "id key", data: `{"holder":"a","state":"active","id":"x"}`, field: "id", sentinel: access.ErrUnknownField},
		{name: "duplicate key", data: `{"holder":"a","state":"revoked","state":"active"}`, field: "state", sentinel: access.ErrMalformed, inMsg: "given twice"},
		{name: "holder number", data: `{"holder":42,"state":"active"}`, field: "holder", sentinel: access.ErrMalformed, inMsg: "want a string, got a number"},
		{name: "state object", data: `{"holder":"a","state":{}}`, field: "state", sentinel: access.ErrMalformed},
		{name: "doors string", data: `{"holder":"a","state":"active","doors":"front"}`, field: "doors", sentinel: access.ErrMalformed, inMsg: "want an array"},
		{name: "door number", data: `{"holder":"a","state":"active","doors":["front",7]}`, field: "doors[1]", sentinel: access.ErrMalformed},
		{name: "time number", data: `{"holder":"a","state":"active","valid_from":1767225600}`, field: "valid_from", sentinel: access.ErrMalformed},
		{name: "date only", data: `{"holder":"a","state":"active","valid_from":"2026-01-01"}`, field: "valid_from", sentinel: access.ErrInvalid, inMsg: "RFC 3339"},
		{name: "no zone", data: `{"holder":"a","state":"active","valid_until":"2026-01-01T00:00:00"}`, field: "valid_until", sentinel: access.ErrInvalid},
		{name: "month 13", data: `{"holder":"a","state":"active","changed":"2026-13-01T00:00:00Z"}`, field: "changed", sentinel: access.ErrInvalid},
		{name: "until equals from", data: `{"holder":"a","state":"active","valid_from":"2026-01-01T00:00:00Z","valid_until":"2026-01-01T01:00:00+01:00"}`,
			field: "valid_until", sentinel: access.ErrInvalid, inMsg: "not after valid_from"},
		{name: "until before from", data: `{"holder":"a","state":"active","valid_from":"2026-01-02T00:00:00Z","valid_until":"2026-01-01T00:00:00Z"}`,
			field: "valid_until", sentinel: access.ErrInvalid},
		{name: "no holder", data: `{"state":"active"}`, field: "holder", sentinel: access.ErrInvalid, inMsg: "required"},
		{name: "null holder", data: `{"holder":null,"state":"active"}`, field: "holder", sentinel: access.ErrInvalid},
		{name: "holder too long", data: `{"holder":"` + strings.Repeat("é", 129) + `","state":"active"}`, field: "holder", sentinel: access.ErrInvalid, inMsg: "258 bytes"},
		{name: "holder control", data: `{"holder":"a\u0007b","state":"active"}`, field: "holder", sentinel: access.ErrInvalid, inMsg: "U+0007"},
		{name: "holder newline", data: `{"holder":"a\nb","state":"active"}`, field: "holder", sentinel: access.ErrInvalid},
		{name: "reason control", data: `{"holder":"a","state":"revoked","reason":"x\u0085"}`, field: "reason", sentinel: access.ErrInvalid},
		{name: "no state", data: `{"holder":"a"}`, field: "state", sentinel: access.ErrInvalid, inMsg: "required"},
		{name: "unknown state", data: `{"holder":"a","state":"disabled"}`, field: "state", sentinel: access.ErrInvalid},
		{name: "state in caps", data: `{"holder":"a","state":"ACTIVE"}`, field: "state", sentinel: access.ErrInvalid},
		{name: "unknown kind", data: `{"holder":"a","state":"active","kind":"badge"}`, field: "kind", sentinel: access.ErrInvalid},
		{name: "door with space", data: `{"holder":"a","state":"active","doors":["front door"]}`, field: "doors[0]", sentinel: access.ErrInvalid, inMsg: "space not allowed"},
		{name: "empty door", data: `{"holder":"a","state":"active","doors":[""]}`, field: "doors[0]", sentinel: access.ErrInvalid},
		{name: "door listed twice", data: `{"holder":"a","state":"active","doors":["front","back","front"]}`, field: "doors[2]", sentinel: access.ErrInvalid, inMsg: "doors[0]"},
		{name: "group with dot", data: `{"holder":"a","state":"active","groups":["a.b"]}`, field: "groups[0]", sentinel: access.ErrInvalid},
		{name: "schedule listed twice", data: `{"holder":"a","state":"active","schedules":["x","x"]}`, field: "schedules[1]", sentinel: access.ErrInvalid},
		{name: "lone surrogate", data: `{"holder":"a\ud83d b","state":"active"}`, field: "holder", sentinel: access.ErrMalformed, inMsg: "surrogate"},
		{name: "invalid UTF-8", data: "{\"holder\":\"a\xffb\",\"state\":\"active\"}", field: "holder", sentinel: access.ErrMalformed, inMsg: "UTF-8"},
		{name: "raw newline in string", data: "{\"holder\":\"a\nb\",\"state\":\"active\"}", field: "holder", sentinel: access.ErrMalformed, inMsg: "control characters must be escaped"},
		{name: "bad escape", data: `{"holder":"a\xb","state":"active"}`, field: "holder", sentinel: access.ErrMalformed, inMsg: "escape"},
		{name: "short unicode escape", data: `{"holder":"a\u12","state":"active"}`, field: "holder", sentinel: access.ErrMalformed},
		{name: "unterminated string", data: `{"holder":"abc`, field: "holder", sentinel: access.ErrMalformed, inMsg: "end of input"},
		{name: "trailing comma", data: `{"holder":"a","state":"active",}`, sentinel: access.ErrMalformed, inMsg: "want a string key"},
		{name: "trailing comma in array", data: `{"holder":"a","state":"active","doors":["a",]}`, field: "doors[1]", sentinel: access.ErrMalformed},
		{name: "missing colon", data: `{"holder" "a"}`, sentinel: access.ErrMalformed, inMsg: "':'"},
		{name: "single quotes", data: `{'holder':'a'}`, sentinel: access.ErrMalformed, inMsg: "line 1, column 2"},
		{name: "boolean", data: `{"holder":true,"state":"active"}`, field: "holder", sentinel: access.ErrMalformed, inMsg: "got a boolean"},
		{name: "id too short", id: "abc", data: `{"holder":"a","state":"active"}`, field: "id", sentinel: access.ErrInvalid},
		{name: "id upper case", id: strings.ToUpper(id), data: `{"holder":"a","state":"active"}`, field: "id", sentinel: access.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cid := id
			if tt.id != "" {
				cid = tt.id
			}
			c, err := access.ParseCredential(cid, []byte(tt.data))
			if c != nil {
				t.Errorf("ParseCredential returned %+v with the error", c)
			}
			fe := wantFieldError(t, err, "credential", tt.field, tt.sentinel)
			if fe.Name != cid {
				t.Errorf("Name = %q, want %q", fe.Name, cid)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("message %q does not contain %q", err, tt.inMsg)
			}
		})
	}
}

func TestParseCredentialEscapes(t *testing.T) {
	c, err := access.ParseCredential(coreID("x"), []byte(`{"hol\u0064er":"\ud83d\ude00 \u00e9\/\"\\ caf\u00E9","state":"active"}`))
	if err != nil {
		t.Fatalf("ParseCredential: %v", err)
	}
	if want := "😀 é/\"\\ café"; c.Holder != want {
		t.Errorf("Holder = %q, want %q", c.Holder, want)
	}
}

func TestParseCredentialTopicError(t *testing.T) {
	_, err := access.ParseCredential(coreID("x"), []byte(`{"holder":"a","state":"active","doors":["a*b"]}`))
	var te *topic.Error
	if !errors.As(err, &te) || !errors.Is(err, topic.ErrInvalidChar) {
		t.Fatalf("error %v does not wrap the *topic.Error", err)
	}
	if te.Value != "a*b" {
		t.Errorf("topic.Error.Value = %q", te.Value)
	}
}

func TestFieldErrorMessage(t *testing.T) {
	id := "3fa2b1c0" + strings.Repeat("0", 56)
	tests := []struct {
		err  *access.FieldError
		want string
	}{
		{&access.FieldError{Kind: "credential", Name: id, Field: "valid_until", Reason: "not after valid_from", Err: access.ErrInvalid},
			`access: credential 3fa2b1c0…: field "valid_until": not after valid_from`},
		{&access.FieldError{Kind: "schedule", Name: "office", Field: "intervals[1].from", Reason: "bad", Err: access.ErrInvalid},
			`access: schedule office: field "intervals[1].from": bad`},
		{&access.FieldError{Kind: "door policy", Reason: "unexpected end of input", Err: access.ErrMalformed},
			`access: door policy: unexpected end of input`},
		{&access.FieldError{Kind: "group", Name: "a b", Err: access.ErrInvalid},
			`access: group "a b": access: invalid value`},
		{&access.FieldError{Kind: "credential", Name: "short", Field: "id", Reason: "r", Err: access.ErrInvalid},
			`access: credential short: field "id": r`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, tt.err.Err) {
			t.Errorf("%v does not unwrap to %v", tt.err, tt.err.Err)
		}
	}
}

func TestValidCredentialID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{coreID("a"), true},
		{strings.Repeat("0", 64), true},
		{"", false},
		{strings.Repeat("0", 63), false},
		{strings.Repeat("0", 65), false},
		{strings.Repeat("0", 63) + "g", false},
		{strings.Repeat("0", 63) + "A", false},
	}
	for _, tt := range tests {
		err := access.ValidCredentialID(tt.id)
		if tt.ok {
			if err != nil {
				t.Errorf("ValidCredentialID(%q) = %v", tt.id, err)
			}
			continue
		}
		fe := wantFieldError(t, err, "credential", "id", access.ErrInvalid)
		if fe.Name != tt.id {
			t.Errorf("Name = %q, want %q", fe.Name, tt.id)
		}
	}
}

func TestCredentialMarshalRoundTrip(t *testing.T) {
	c := &access.Credential{
		ID: coreID("pin-4711"), Holder: "Grace <Hopper> & co", Kind: message.CredentialPIN, State: access.StateSuspended,
		Reason: "on leave", ValidUntil: time.Date(2026, 9, 1, 0, 0, 0, 0, time.FixedZone("", 2*3600)),
		Doors: []string{"front"}, Schedules: []string{"office", "weekend"}, Revision: 9,
	}
	data, err := c.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if strings.Contains(string(data), c.ID) || strings.Contains(string(data), "valid_from") || strings.Contains(string(data), "groups") {
		t.Errorf("Marshal = %s: holds the id or zero fields", data)
	}
	back, err := access.ParseCredential(c.ID, data)
	if err != nil {
		t.Fatalf("ParseCredential(Marshal): %v\n%s", err, data)
	}
	if !back.ValidUntil.Equal(c.ValidUntil) {
		t.Errorf("ValidUntil = %v, want %v", back.ValidUntil, c.ValidUntil)
	}
	back.ValidUntil, back.Revision = c.ValidUntil, c.Revision
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip =\n%+v, want\n%+v", back, c)
	}

	bad := *c
	bad.Doors = []string{"x", "x"}
	if _, err := bad.Marshal(); err == nil {
		t.Error("Marshal of an invalid credential succeeded")
	} else {
		wantFieldError(t, err, "credential", "doors[1]", access.ErrInvalid)
	}
}

func TestDoorGroup(t *testing.T) {
	g, err := access.ParseDoorGroup("staff", []byte(`{"doors":["front","lab"]}`))
	if err != nil {
		t.Fatalf("ParseDoorGroup: %v", err)
	}
	if want := (&access.DoorGroup{Name: "staff", Doors: []string{"front", "lab"}}); !reflect.DeepEqual(g, want) {
		t.Errorf("ParseDoorGroup = %+v, want %+v", g, want)
	}
	data, err := g.Marshal()
	if err != nil || string(data) != `{"doors":["front","lab"]}` {
		t.Errorf("Marshal = %s, %v", data, err)
	}
	empty, err := (&access.DoorGroup{Name: "none"}).Marshal()
	if err != nil || string(empty) != `{"doors":[]}` {
		t.Errorf("Marshal(no doors) = %s, %v", empty, err)
	}

	tests := []struct {
		name, group, data, field string
		sentinel                 error
	}{
		{"unknown key", "staff", `{"door":["front"]}`, "door", access.ErrUnknownField},
		{"doors object", "staff", `{"doors":{}}`, "doors", access.ErrMalformed},
		{"bad door", "staff", `{"doors":["front","a b"]}`, "doors[1]", access.ErrInvalid},
		{"door twice", "staff", `{"doors":["front","front"]}`, "doors[1]", access.ErrInvalid},
		{"trailing", "staff", `{"doors":[]}]`, "", access.ErrMalformed},
		{"bad name", "st aff", `{"doors":[]}`, "", access.ErrInvalid},
		{"empty name", "", `{"doors":[]}`, "", access.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := access.ParseDoorGroup(tt.group, []byte(tt.data))
			if fe := wantFieldError(t, err, "group", tt.field, tt.sentinel); fe.Name != tt.group {
				t.Errorf("Name = %q, want %q", fe.Name, tt.group)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	id := coreID("a")
	for _, tt := range []struct{ got, want string }{
		{access.CredentialKey(id), "cred." + id},
		{access.GroupKey("staff"), "group.staff"},
		{access.ScheduleKey("office"), "schedule.office"},
	} {
		if tt.got != tt.want {
			t.Errorf("key = %q, want %q", tt.got, tt.want)
		}
	}
}
