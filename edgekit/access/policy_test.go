package access_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/topic"
)

func TestParseDoorPolicies(t *testing.T) {
	id1, id2 := coreID("master-1"), coreID("master-2")
	data := `{
	  "front": {"stale_after": "24h", "fallback": "allow_listed", "always_allowed": ["` + id1 + `", "` + id2 + `"], "unlock_for": "5s"},
	  "back": {"stale_after": "-1s", "fallback": "deny", "unlock_for": "1m30s"},
	  "lab": {}
	}`
	got, err := access.ParseDoorPolicies([]byte(data))
	if err != nil {
		t.Fatalf("ParseDoorPolicies: %v", err)
	}
	want := map[string]access.DoorPolicy{
		"front": {StaleAfter: 24 * time.Hour, Fallback: access.FallbackAllowListed, AlwaysAllowed: []string{id1, id2}, UnlockFor: 5 * time.Second},
		"back":  {StaleAfter: -time.Second, Fallback: access.FallbackDeny, UnlockFor: 90 * time.Second},
		"lab":   {},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDoorPolicies =\n%+v, want\n%+v", got, want)
	}
	if empty, err := access.ParseDoorPolicies([]byte(` {} `)); err != nil || len(empty) != 0 {
		t.Errorf("ParseDoorPolicies({}) = %v, %v", empty, err)
	}

	out, err := access.MarshalDoorPolicies(got)
	if err != nil {
		t.Fatalf("MarshalDoorPolicies: %v", err)
	}
	back, err := access.ParseDoorPolicies(out)
	if err != nil {
		t.Fatalf("ParseDoorPolicies(MarshalDoorPolicies): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, want) {
		t.Errorf("round trip =\n%+v, want\n%+v", back, want)
	}
	if strings.Contains(string(out), `"lab": {}`) == false {
		t.Errorf("MarshalDoorPolicies does not leave out zero fields:\n%s", out)
	}
}

func TestParseDoorPoliciesErrors(t *testing.T) {
	id := coreID("master-1")
	tests := []struct {
		name, data, door, field string
		sentinel                error
		inMsg                   string
	}{
		{"not an object", `[]`, "", "", access.ErrMalformed, "want a JSON object"},
		{"empty", ``, "", "", access.ErrMalformed, ""},
		{"trailing", `{"front":{}} {"back":{}}`, "", "", access.ErrMalformed, "after the top-level object"},
		{"syntax in a policy", "{\n\"front\": {\"fallback\": deny}}", "front", "fallback", access.ErrMalformed, "line 2"},
		{"policy not an object", `{"front": "deny"}`, "front", "", access.ErrMalformed, "want an object"},
		{"policy null", `{"front": null}`, "front", "", access.ErrMalformed, "got null"},
		{"door twice", `{"front": {}, "back": {}, "front": {"fallback":"deny"}}`, "front", "", access.ErrMalformed, "given twice"},
		{"unknown field", `{"front": {"fallbak": "deny"}}`, "front", "fallbak", access.ErrUnknownField, `did you mean "fallback"?`},
		{"key twice", `{"front": {"fallback": "deny", "fallback": "allow_listed"}}`, "front", "fallback", access.ErrMalformed, ""},
		{"duration number", `{"front": {"stale_after": 3600}}`, "front", "stale_after", access.ErrMalformed, "want a string"},
		{"duration without unit", `{"front": {"stale_after": "3600"}}`, "front", "stale_after", access.ErrInvalid, "not a duration"},
		{"duration empty", `{"front": {"unlock_for": ""}}`, "", "", nil, ""}, // "" is the default
		{"bad unlock", `{"front": {"unlock_for": "5 s"}}`, "front", "unlock_for", access.ErrInvalid, ""},
		{"negative unlock", `{"front": {"unlock_for": "-5s"}}`, "front", "unlock_for", access.ErrInvalid, "negative"},
		{"unknown fallback", `{"front": {"fallback": "allow_all"}}`, "front", "fallback", access.ErrInvalid, ""},
		{"always_allowed string", `{"front": {"always_allowed": "` + id + `"}}`, "front", "always_allowed", access.ErrMalformed, ""},
		{"always_allowed bad id", `{"front": {"always_allowed": ["` + id + `", "1234"]}}`, "front", "always_allowed[1]", access.ErrInvalid, "64 lower-case hex"},
		{"always_allowed twice", `{"front": {"always_allowed": ["` + id + `", "` + id + `"]}}`, "front", "always_allowed[1]", access.ErrInvalid, "always_allowed[0]"},
		{"bad door code", `{"front door": {}}`, "front door", "", access.ErrInvalid, "space not allowed"},
		{"empty door code", `{"": {}}`, "", "", access.ErrInvalid, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := access.ParseDoorPolicies([]byte(tt.data))
			if tt.sentinel == nil {
				if err != nil {
					t.Fatalf("ParseDoorPolicies: %v", err)
				}
				return
			}
			if got != nil {
				t.Errorf("ParseDoorPolicies returned %v with the error", got)
			}
			fe := wantFieldError(t, err, "door policy", tt.field, tt.sentinel)
			if fe.Name != tt.door {
				t.Errorf("Name = %q, want %q", fe.Name, tt.door)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("message %q does not contain %q", err, tt.inMsg)
			}
		})
	}
}

func TestDoorPolicyValidate(t *testing.T) {
	if err := (access.DoorPolicy{}).Validate("front"); err != nil {
		t.Errorf("zero policy: %v", err)
	}
	err := (access.DoorPolicy{}).Validate("a.b")
	wantFieldError(t, err, "door policy", "", access.ErrInvalid)
	if !errors.Is(err, topic.ErrInvalidChar) {
		t.Errorf("bad door code: %v does not wrap the topic error", err)
	}
	if _, err := access.MarshalDoorPolicies(map[string]access.DoorPolicy{"front": {UnlockFor: -1}}); err == nil {
		t.Error("MarshalDoorPolicies accepted a negative UnlockFor")
	} else {
		wantFieldError(t, err, "door policy", "unlock_for", access.ErrInvalid)
	}
}

func TestDoorPolicyEffective(t *testing.T) {
	tests := []struct {
		p             access.DoorPolicy
		stale, unlock time.Duration
	}{
		{access.DoorPolicy{}, access.DefaultStaleAfter, access.DefaultUnlockFor},
		{access.DoorPolicy{StaleAfter: time.Hour, UnlockFor: time.Second}, time.Hour, time.Second},
		{access.DoorPolicy{StaleAfter: -1}, -1, access.DefaultUnlockFor},
	}
	for _, tt := range tests {
		if got := tt.p.EffectiveStaleAfter(); got != tt.stale {
			t.Errorf("%+v.EffectiveStaleAfter() = %v, want %v", tt.p, got, tt.stale)
		}
		if got := tt.p.EffectiveUnlockFor(); got != tt.unlock {
			t.Errorf("%+v.EffectiveUnlockFor() = %v, want %v", tt.p, got, tt.unlock)
		}
	}
}
