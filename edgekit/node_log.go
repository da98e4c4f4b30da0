package edgekit

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/lintel-io/lintel/authz"
)

// nodeServerLog adapts a *slog.Logger to nats-server's logger.
type nodeServerLog struct{ l *slog.Logger }

var _ server.Logger = nodeServerLog{}

func (s nodeServerLog) log(level slog.Level, format string, v []any) {
	if s.l.Enabled(context.Background(), level) {
		line := fmt.Sprintf(format, v...)
		// Refused logins and permission violations are security events.
		if ev, user := authz.ServerLogSecurityEvent(line); ev != "" {
			s.l.Log(context.Background(), level, line, authz.LogKeySecurity, ev, "user", user)
			return
		}
		s.l.Log(context.Background(), level, line)
	}
}

func (s nodeServerLog) Noticef(format string, v ...any) { s.log(slog.LevelInfo, format, v) }
func (s nodeServerLog) Warnf(format string, v ...any)   { s.log(slog.LevelWarn, format, v) }
func (s nodeServerLog) Fatalf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s nodeServerLog) Errorf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s nodeServerLog) Debugf(format string, v ...any)  { s.log(slog.LevelDebug-4, format, v) }
func (s nodeServerLog) Tracef(format string, v ...any)  { s.log(slog.LevelDebug-8, format, v) }
