package access_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// TestReplyRefusedLogged: a request whose reply subject is another
// device's inbox is dropped, and the service logs it as a security event a
// SIEM can match, under the module's shared keys: "security":
// "reply_refused", with the request's subject and the reply it named.
func TestReplyRefusedLogged(t *testing.T) {
	logs := &logBuffer{}
	s := newSite(t, siteOptions{service: func(_ *site, c *access.ServiceConfig) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}})
	user := authz.DeviceUser(siteR1)
	nc, err := nats.Connect(s.node.ClientURL(), nats.UserInfo(user, s.password(user)),
		nats.CustomInboxPrefix(siteR1.InboxPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := siteR1.Subject(topic.Request).String()
	const reply = "_INBOX.acme.hq.lock.l1.x" // another device's inbox
	body := accessRequest(t, "front", "9999")
	if err := nc.PublishMsg(&nats.Msg{Subject: req, Reply: reply, Header: body.Header, Data: body.Data}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	waitFor(t, "the refusal's log line", func() bool {
		for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m[authz.LogKeySecurity] == access.SecurityReplyRefused {
				got = m
				return true
			}
		}
		return false
	})
	if got[message.LogKeySubject] != req || got["reply"] != reply || got["level"] != "WARN" {
		t.Errorf("refusal logged as %v, want a warning with subject %s and reply %s", got, req, reply)
	}
}
