package authz

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The security log key and its values.
const (
	// LogKeySecurity is the log key that marks a log line as a security event,
	// for a SIEM to match on. Its value names the event: one of the Security
	// constants here, devicekit.SecurityCommandRefused,
	// access.SecurityReplyRefused or the edge's "rate_exceeded". Values are
	// never renamed or reused (docs/security-events.md).
	LogKeySecurity = "security"

	// SecurityLoginFailed is a refused login: an unknown user, a
	// wrong password or key, or no credentials (NATS, MQTT, or the HTTP
	// gateway).
	SecurityLoginFailed = "login_failed"
	// SecurityLoginThrottled is a login refused without a password
	// check because its user name, its source address, or the same user
	// and password failed too often recently.
	SecurityLoginThrottled = "login_throttled"
	// SecurityPermissionViolation is a publish, subscription or reply
	// subject a client's permissions refuse.
	SecurityPermissionViolation = "permission_violation"
	// SecurityAuditAlarm is an alarm of central's auditor: a broken
	// audit chain, a revoked credential granted, a decision record that is
	// not authentic or outside the chain, or an event from an origin that
	// may not write it.
	SecurityAuditAlarm = "audit_alarm"
)

// Log keys of security events beside [LogKeySecurity].
const (
	logKeySource     = "source"
	logKeySuppressed = "suppressed"
)

// serverLogUser finds the user name in a line of nats-server's log:
// `User "name"` in refused logins, `"account/user:name"` in the client's
// description that prefixes permission violations.
var serverLogUser = regexp.MustCompile(`(?:User "|"[^"/]*/user:)([^"]*)"`)

// ServerLogSecurityEvent classifies a line of nats-server's log: it
// returns the security event the line reports ("" for none) and the user
// it names ("" for none). The server-log adapters of central and the edge
// add both to the line, under [LogKeySecurity] and "user".
func ServerLogSecurityEvent(line string) (event, user string) {
	switch {
	case strings.Contains(line, "Publish Violation"), strings.Contains(line, "Subscription Violation"),
		strings.Contains(line, "Permissions Violation"):
		event = SecurityPermissionViolation
	case strings.Contains(line, "authentication error"), strings.Contains(line, "Authorization Error"):
		event = SecurityLoginFailed
	default:
		return "", ""
	}
	if m := serverLogUser.FindStringSubmatch(line); m != nil {
		user = m[1]
	}
	return event, user
}

// eventLimiter bounds how many lines a flood of one security event logs:
// at most one per interval, the next one carrying how many were
// suppressed in between.
type eventLimiter struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[string]time.Time
	dropped  map[string]int
}

func newEventLimiter(interval time.Duration) *eventLimiter {
	return &eventLimiter{interval: interval, last: make(map[string]time.Time), dropped: make(map[string]int)}
}

// log logs msg at level as security event with attrs, unless one was
// logged less than the interval ago.
func (l *eventLimiter) log(log *slog.Logger, level slog.Level, event, msg string, attrs ...any) {
	if !log.Enabled(context.Background(), level) {
		return
	}
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.last[event]) < l.interval {
		l.dropped[event]++
		l.mu.Unlock()
		return
	}
	l.last[event] = now
	n := l.dropped[event]
	delete(l.dropped, event)
	l.mu.Unlock()
	args := append([]any{LogKeySecurity, event}, attrs...)
	if n > 0 {
		args = append(args, logKeySuppressed, n)
	}
	log.Log(context.Background(), level, msg, args...)
}

// SecurityLog logs security events under [LogKeySecurity] for services
// of one's own (central's API uses it), at most one line per event and
// interval: after a flood, the next line carries "suppressed", how many
// lines were left out. Its methods are safe for concurrent use.
type SecurityLog struct {
	log *slog.Logger
	lim *eventLimiter
}

// NewSecurityLog returns a SecurityLog that writes to log (nil discards),
// at most one line per event every interval.
func NewSecurityLog(log *slog.Logger, interval time.Duration) *SecurityLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SecurityLog{log: log, lim: newEventLimiter(interval)}
}

// Log logs msg at level as the security event event (one of the Security
// constants) with attrs, unless a line of the same event was logged less
// than the interval ago.
func (l *SecurityLog) Log(level slog.Level, event, msg string, attrs ...any) {
	l.lim.log(l.log, level, event, msg, attrs...)
}
