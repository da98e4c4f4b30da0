package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central/api"
)

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON lines logged so far, decoded, and the raw text.
func (b *lockedBuffer) lines(t *testing.T) ([]map[string]any, string) {
	t.Helper()
	b.mu.Lock()
	raw := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(raw), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out, raw
}

// testSecurityEvents: the API logs a bearer credential that does not
// verify as login_failed, a route refused to the caller's role as
// permission_violation naming the user, and a flood of failed token
// logins as login_failed then login_throttled, each with the client's
// address and under the key a SIEM matches (docs/security-events.md);
// a request without credentials is not an event, and no line holds a
// token.
func testSecurityEvents(t *testing.T, f *fixture) {
	var logs lockedBuffer
	srv, err := api.Start(ctx(t), api.Config{Central: f.c, TokenLogin: true,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	do := func(method, path, auth, body string) int {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(ctx(t), method, api.PathPrefix+path, strings.NewReader(body))
		req.RemoteAddr = "192.0.2.7:40000"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.Header.Set("Content-Type", "application/json")
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	events := func(event string) []map[string]any {
		t.Helper()
		lines, _ := logs.lines(t)
		var out []map[string]any
		for _, l := range lines {
			if l[authz.LogKeySecurity] == event {
				out = append(out, l)
			}
		}
		return out
	}

	if code := do("GET", "/edges", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", code)
	}
	if lines, raw := logs.lines(t); slices.ContainsFunc(lines, func(l map[string]any) bool { return l[authz.LogKeySecurity] != nil }) {
		t.Fatalf("a request without credentials was logged as a security event:\n%s", raw)
	}

	forged := "lintel_0123456789abcdef_" + strings.Repeat("Q", 43)
	if code := do("GET", "/edges", "Bearer "+forged, ""); code != http.StatusUnauthorized {
		t.Fatalf("a forged token: %d, want 401", code)
	}
	failed := events(authz.SecurityLoginFailed)
	if len(failed) != 1 || failed[0]["source"] != "192.0.2.7" || failed[0]["route"] != "GET "+api.PathPrefix+"/edges" || failed[0]["level"] != "WARN" {
		t.Fatalf("login_failed lines for a forged token: %v", failed)
	}

	_, viewer := f.token(t, "auditor-viewer", "viewer")
	if code := do("POST", "/edges/hq/rules/validate", "Bearer "+viewer, `{"rules": []}`); code != http.StatusForbidden {
		t.Fatalf("a viewer on an operator route: %d, want 403", code)
	}
	denied := events(authz.SecurityPermissionViolation)
	if len(denied) != 1 || !strings.HasPrefix(fmt.Sprint(denied[0]["user"]), "token:") || denied[0]["name"] != "auditor-viewer" ||
		denied[0]["route"] != "POST "+api.PathPrefix+"/edges/hq/rules/validate" ||
		denied[0]["role"] != "viewer" || denied[0]["needs"] != "operator" || denied[0]["source"] != "192.0.2.7" {
		t.Fatalf("permission_violation lines: %v", denied)
	}

	// Failed token logins from one address: refused, then throttled. At
	// most one line a second per event, so at least one of each.
	throttled := false
	for range 10 {
		code := do("POST", "/auth/token", "", `{"token": "`+forged+`"}`)
		if code == http.StatusTooManyRequests {
			throttled = true
			break
		}
		if code != http.StatusUnauthorized {
			t.Fatalf("a failed token login: %d, want 401 or 429", code)
		}
	}
	if !throttled {
		t.Fatal("ten failed token logins from one address were never throttled")
	}
	if th := events(authz.SecurityLoginThrottled); len(th) != 1 || th[0]["source"] != "192.0.2.7" || th[0]["route"] != "POST "+api.PathPrefix+"/auth/token" {
		t.Fatalf("login_throttled lines: %v", th)
	}
	_, raw := logs.lines(t)
	for _, secret := range []string{forged, viewer} {
		if strings.Contains(raw, secret) {
			t.Fatalf("the log holds a token:\n%s", raw)
		}
	}
}
