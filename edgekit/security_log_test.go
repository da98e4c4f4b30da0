package edgekit_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
)

// logBuffer collects a logger's JSON lines, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the logged lines that match keep, decoded.
func (l *logBuffer) lines(t *testing.T, keep func(map[string]any) bool) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// records returns the lines whose message is msg and whose key is value.
func (l *logBuffer) records(t *testing.T, msg, key, value string) []map[string]any {
	t.Helper()
	return l.lines(t, func(m map[string]any) bool { return m["msg"] == msg && m[key] == value })
}

// events returns the lines whose key "security" is event.
func (l *logBuffer) events(t *testing.T, event string) []map[string]any {
	t.Helper()
	return l.lines(t, func(m map[string]any) bool { return m[authz.LogKeySecurity] == event })
}

// TestSecurityEventsLogged provokes security events against a real edge
// node, a flood of wrong passwords and a publish outside a device's
// permissions, and finds each logged with its stable "security" value and
// the user; neither the device's password nor the guessed ones appear in
// any line.
func TestSecurityEventsLogged(t *testing.T) {
	env := newNodeEnv(t, 0)
	cfg := nodeTestConfig(t, env, "")
	var logs logBuffer
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Auth = authz.EdgeAuthConfig{FailureBurst: 2, FailureRefill: time.Hour}
	node := nodeStart(t, cfg)
	user := authz.DeviceUser(nodeR1)

	// Another device, connected before the flood, will publish to a lock's
	// command subject.
	r2 := authz.DeviceUser(nodeR2)
	nc, err := nats.Connect(node.ClientURL(), nats.UserInfo(r2, env.password(r2)), nats.MaxReconnects(0),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the violation is expected
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const attempts = 8
	var guesses []string
	for i := range attempts {
		pw := "guess-" + strconv.Itoa(i) + "-not-the-password"
		guesses = append(guesses, pw)
		nc, err := nats.Connect(node.ClientURL(), nats.UserInfo(user, pw), nats.MaxReconnects(0), nats.Timeout(5*time.Second))
		if err == nil {
			nc.Close()
			t.Fatal("a wrong password was accepted")
		}
	}

	other := topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	if err := nc.Publish(other.Subject(topic.Command).String(), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()

	for _, want := range []string{authz.SecurityLoginFailed, authz.SecurityLoginThrottled, authz.SecurityPermissionViolation} {
		var got []map[string]any
		waitCond(t, want+" logged", func() bool { got = logs.events(t, want); return len(got) > 0 })
		wantUser := user
		if want == authz.SecurityPermissionViolation {
			wantUser = r2
		}
		for _, m := range got {
			if m["user"] != wantUser {
				t.Errorf("%s logged without the user %s: %v", want, wantUser, m)
			}
		}
	}
	for _, s := range append(guesses, env.password(user), env.password(r2)) {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("a password appears in the log:\n%s", logs.String())
		}
	}
}

// waitCond waits for cond, failing the test after a minute.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
