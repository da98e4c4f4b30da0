package topic_test

import (
	"testing"

	"github.com/lintel-io/lintel/topic"
)

func TestReplyAllowed(t *testing.T) {
	const req = "acme.hq.reader.r1.req"
	tests := []struct {
		name           string
		subject, reply string
		want           bool
	}{
		{"own inbox", req, "_INBOX.acme.hq.reader.r1.abc", true},
		{"own inbox, deeper", req, "_INBOX.acme.hq.reader.r1.abc.7", true},
		{"inbox prefix only", req, "_INBOX.acme.hq.reader.r1", false},
		{"inbox prefix with dot", req, "_INBOX.acme.hq.reader.r1.", false},
		{"empty token", req, "_INBOX.acme.hq.reader.r1..x", false},
		{"longer code sharing the prefix", req, "_INBOX.acme.hq.reader.r10.abc", false},
		{"other thing's inbox", req, "_INBOX.acme.hq.lock.l1.abc", false},
		{"shared inbox", req, "_INBOX.abc", false},
		{"JetStream delete", req, "$JS.API.STREAM.DELETE.events-acme-hq", false},
		{"KV", req, "$KV.access-acme-hq.head", false},
		{"system event", req, "acme.hq._sys.audit.evt", false},
		{"lock command", req, "acme.hq.lock.l1.cmd", false},
		{"wildcard", req, "_INBOX.acme.hq.reader.r1.*", false},
		{"full wildcard", req, "_INBOX.acme.hq.reader.r1.>", false},
		{"space", req, "_INBOX.acme.hq.reader.r1.a b", false},
		{"no reply", req, "", false},
		{"not a Lintel subject", "_INBOX.acme.hq.reader.r1.x", "_INBOX.acme.hq.reader.r1.abc", false},
		{"wildcard subject", "acme.hq.reader.*.req", "_INBOX.acme.hq.reader.*.abc", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := topic.ReplyAllowed(tc.subject, tc.reply); got != tc.want {
				t.Errorf("ReplyAllowed(%q, %q) = %v, want %v", tc.subject, tc.reply, got, tc.want)
			}
		})
	}
}

// BenchmarkReplyAllowed measures the reply check a service makes per
// request, beside parsing the request's subject alone, which it includes.
func BenchmarkReplyAllowed(b *testing.B) {
	const subject, reply = "acme.hq.reader.front-in.req", "_INBOX.acme.hq.reader.front-in.Xk9mUq2bT4c7nLp0aZ3e1R.1"
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := topic.Parse(subject); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reply-allowed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !topic.ReplyAllowed(subject, reply) {
				b.Fatal("refused")
			}
		}
	})
}
