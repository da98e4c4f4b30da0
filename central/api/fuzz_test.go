package api

import (
	"strings"
	"testing"
)

// FuzzParseToken: any string either parses as an API token whose id is
// 16 hex characters, or is refused; nothing panics.
func FuzzParseToken(f *testing.F) {
	tok, _ := newToken()
	for _, s := range []string{tok, "lintel_", "lintel_0123456789abcdef_", "lintel_zz23456789abcdef_" + strings.Repeat("A", 43), "Bearer x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := parseToken(s)
		if !ok {
			return
		}
		if len(id) != 16 || !strings.HasPrefix(s, tokenPrefix+id+"_") {
			t.Fatalf("%q parsed as id %q", s, id)
		}
	})
}

// FuzzOpenSession: a session cookie opens only if the server sealed it;
// a tampered or foreign one never does.
func FuzzOpenSession(f *testing.F) {
	s := &Server{sessionKey: []byte("0123456789abcdef0123456789abcdef")}
	good, err := s.seal(sessionCookie, session{Subject: "alice", Role: RoleAdmin, CSRF: "x"})
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range []string{good, good + "x", "e30.AAAA", ".", "", strings.Replace(good, "a", "b", 1)} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var sess session
		if err := s.open(sessionCookie, v, &sess); err == nil && v != good {
			t.Fatalf("opened a cookie the server did not seal: %q", v)
		}
		// Sealed for another purpose, the same value does not open.
		if v == good {
			var ls loginState
			if err := s.open(loginCookie, v, &ls); err == nil {
				t.Fatal("a session cookie opened as a login cookie")
			}
		}
	})
}
