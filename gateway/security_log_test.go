package gateway_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/topic"
)

// syncLog collects JSON log lines, safe for concurrent writes.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLoginEventsLogged guesses a device's password through a real
// gateway in front of a real edge node: the wrong passwords and then the
// throttled logins are logged as security events (login_failed,
// login_throttled) with the user and the client's address as the proxy
// named it, and no guessed password appears in the log.
func TestLoginEventsLogged(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	var logs syncLog
	auth, err := authz.NewEdgeAuthenticator(e.inv, e.st, "acme", "hq",
		authz.EdgeAuthConfig{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	g, err := gateway.New(gateway.Config{Org: "acme", Edge: "hq", URLs: []string{n.ClientURL()}, Auth: auth, PublishTimeout: wait,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); _ = g.Close() })

	h := ceHeader()
	h.Set("X-Forwarded-For", "198.51.100.7")
	var guesses []string
	for i := range authz.DefaultFailureBurst + 2 {
		pw := "guess-" + strconv.Itoa(i) + "-of-the-password"
		guesses = append(guesses, pw)
		_, b := event(t, r1, topic.Event, "x", nil)
		if res := do(t, e, "POST", srv.URL+gateway.PathEvents, r1, pw, h, b); res.status < 400 {
			t.Fatalf("guess %d: %d", i, res.status)
		}
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m[authz.LogKeySecurity] == nil {
			continue
		}
		ev, _ := m[authz.LogKeySecurity].(string)
		if m["user"] != authz.DeviceUser(r1) || m["source"] != "198.51.100.7" {
			t.Errorf("%s logged without the user and the client's address: %v", ev, m)
		}
		seen[ev] = true
	}
	if !seen[authz.SecurityLoginFailed] || !seen[authz.SecurityLoginThrottled] {
		t.Fatalf("security events logged: %v; want login_failed and login_throttled\n%s", seen, logs.String())
	}
	for _, pw := range append(guesses, e.password(r1)) {
		if strings.Contains(logs.String(), pw) {
			t.Fatalf("a password appears in the log:\n%s", logs.String())
		}
	}
}
