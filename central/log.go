package central

import (
	"fmt"
	"log/slog"

	"github.com/lintel-io/lintel/authz"
)

// serverLogger passes nats-server's log to slog, with the key "server".
type serverLogger struct{ log *slog.Logger }

func newServerLogger(l *slog.Logger) *serverLogger {
	return &serverLogger{log: l.With("component", "nats-server")}
}

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }

// Errorf logs an error; refused logins and permission violations are
// marked as security events.
func (l *serverLogger) Errorf(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if ev, user := authz.ServerLogSecurityEvent(line); ev != "" {
		l.log.Error(line, authz.LogKeySecurity, ev, "user", user)
		return
	}
	l.log.Error(line)
}
func (l *serverLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
