package access_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
)

// TestAuditAlarmLogged: a gap in an edge's audit chain raises an alarm,
// and the auditor logs it as a security event a SIEM can match:
// "security":"audit_alarm", with the edge.
func TestAuditAlarmLogged(t *testing.T) {
	logs := &logBuffer{}
	s := newSite(t, siteOptions{noService: true})
	a := s.auditor(func(c *access.AuditorConfig) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	w := newChainWriter(t, siteR1, s.auditKey)
	var msgs []*nats.Msg
	for range 3 {
		msgs = append(msgs, w.next(cenGrant("front", s.id("a"), 1), time.Now()))
	}
	s.publishEdge(msgs[0])
	s.publishEdge(msgs[2]) // the second never reaches central
	if st := waitProcessed(t, a, 2); st.Breaks != 1 {
		t.Fatalf("stats %+v, want a break", st)
	}
	var alarm map[string]any
	waitFor(t, "the alarm's log line", func() bool {
		for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m[authz.LogKeySecurity] == authz.SecurityAuditAlarm {
				alarm = m
				return true
			}
		}
		return false
	})
	if alarm["edge"] != "hq" || alarm["level"] != "WARN" {
		t.Fatalf("audit alarm logged as %v, want a warning naming edge hq", alarm)
	}
}
