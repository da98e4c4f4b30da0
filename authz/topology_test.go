package authz_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

func ExampleNamesFor() {
	n, err := authz.NamesFor("acme", "hq")
	if err != nil {
		panic(err)
	}
	fmt.Println(n.Domain, n.EventStream, n.EventConsumer)
	fmt.Println(n.CentralEventStream)
	fmt.Println(n.CredentialBucket, n.CredentialConsumer)
	fmt.Println(n.CentralCommandStream, n.CommandFilter, n.CommandConsumer, n.CommandStream)
	fmt.Println(authz.CommandSubject(topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "front"}))
	// Output:
	// hq events-acme-hq to-hub
	// events-acme
	// creds-acme-hq to-hq
	// commands-acme _lintel.acme.hq.cmd.*.* to-hq commands-acme-hq
	// _lintel.acme.hq.cmd.lock.front
}

// TestDeliverSubjects: every flow's deliver subject lies in the edge's
// private namespace.
func TestDeliverSubjects(t *testing.T) {
	n, err := authz.NamesFor("acme", "hq")
	if err != nil {
		t.Fatal(err)
	}
	d := authz.DeliversOf(n)
	if d.Prefix != "_lintel.acme.hq.fwd" {
		t.Fatalf("prefix %q", d.Prefix)
	}
	for _, s := range []string{d.Event, d.Telemetry, d.Platform, d.Credential, d.Command} {
		if !strings.HasPrefix(s, d.Prefix+".") {
			t.Errorf("deliver subject %q is not below %s", s, d.Prefix)
		}
	}
}

func TestNamesForErrors(t *testing.T) {
	for _, tc := range []struct {
		org, edge string
		want      error
	}{
		{"acme", authz.HubDomain, authz.ErrReservedName},
		{authz.SystemAccount, "hq", authz.ErrReservedName},
		{"acme", "_x", topic.ErrReserved},
		{"ac me", "hq", topic.ErrInvalidChar},
		{"acme", "h.q", topic.ErrInvalidChar},
		{"acme", "", topic.ErrEmpty},
	} {
		if _, err := authz.NamesFor(tc.org, tc.edge); !errors.Is(err, tc.want) {
			t.Errorf("NamesFor(%q, %q): %v, want %v", tc.org, tc.edge, err, tc.want)
		}
	}
	if _, err := authz.CentralEventStreamConfig("acme", "hq", authz.HubDomain); !errors.Is(err, authz.ErrReservedName) {
		t.Errorf("central event stream with edge hub: %v", err)
	}
	if _, err := authz.CentralCommandStreamConfig(authz.SystemAccount); !errors.Is(err, authz.ErrReservedName) {
		t.Errorf("command stream of org SYS: %v", err)
	}
	if err := authz.ValidateTopology(natsInv()); err != nil {
		t.Errorf("validateTopology: %v", err)
	}
}

// TestNamesAreValid checks the names against nats-server's and nats.go's
// rules for the longest codes: KV bucket names are [A-Za-z0-9_-]+, stream
// and consumer names have no '.', '*', '>', whitespace or path separators,
// and deliver subjects are literal.
func TestNamesAreValid(t *testing.T) {
	long := strings.Repeat("a", topic.MaxTokenLen)
	bucket := regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	asset := regexp.MustCompile(`^[^.*>\s/\\]{1,255}$`)
	for _, codes := range [][2]string{{"acme", "hq"}, {long, long}, {"a-b", "c_d"}} {
		n, err := authz.NamesFor(codes[0], codes[1])
		if err != nil {
			t.Fatal(err)
		}
		if !bucket.MatchString(n.CredentialBucket) {
			t.Errorf("bucket %q", n.CredentialBucket)
		}
		for _, s := range []string{n.EventStream, n.TelemetryStream, n.CentralEventStream, n.CredentialStream, n.CentralCommandStream, n.CommandStream,
			n.EventConsumer, n.TelemetryConsumer, n.CredentialConsumer, n.CommandConsumer} {
			if !asset.MatchString(s) {
				t.Errorf("asset name %q", s)
			}
		}
		for _, s := range []string{authz.DeliversOf(n).Event, authz.DeliversOf(n).Telemetry, authz.DeliversOf(n).Credential, authz.DeliversOf(n).Command} {
			if strings.ContainsAny(s, "*> ") || !strings.HasPrefix(s, authz.DeliversOf(n).Prefix+".") {
				t.Errorf("deliver subject %q", s)
			}
		}
		// The deliver subjects never fall into the streams they feed or
		// the command intake.
		for _, s := range []string{authz.DeliversOf(n).Event, authz.DeliversOf(n).Telemetry, authz.DeliversOf(n).Credential, authz.DeliversOf(n).Command} {
			if _, err := authz.ParseCommandSubject(s); err == nil {
				t.Errorf("deliver subject %q parses as a command", s)
			}
		}
	}
}

func TestCommandSubject(t *testing.T) {
	th := topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "front-1"}
	s := authz.CommandSubject(th)
	got, err := authz.ParseCommandSubject(s)
	if err != nil || got != th {
		t.Fatalf("ParseCommandSubject(%q) = %v, %v", s, got, err)
	}
	for _, bad := range []string{"acme.hq.lock.front-1.cmd", "_lintel.acme.hq.fwd.lock.front", "_lintel.acme.hq.cmd.lock", "_lintel._x.hq.cmd.lock.f", "_lintel.acme.hq.cmd.lo ck.f"} {
		if _, err := authz.ParseCommandSubject(bad); err == nil {
			t.Errorf("ParseCommandSubject(%q) accepted", bad)
		}
	}
	if authz.UserInboxPrefix(authz.DeviceUser(th)) != th.InboxPrefix() {
		t.Error("a device's user inbox prefix is not its thing's")
	}
	if authz.APIPrefix(authz.HubDomain) != "$JS.hub.API" {
		t.Error(authz.APIPrefix(authz.HubDomain))
	}
}

func TestJetStreamConfigs(t *testing.T) {
	n, _ := authz.NamesFor("acme", "hq")
	if c := n.EventStreamConfig(); c.Name != n.EventStream || !slices.Equal(c.Subjects, []string{"acme.hq.*.*.evt", "acme.hq.*.*.state", "acme.hq.*.*.ack"}) ||
		c.PersistMode != jetstream.DefaultPersistMode {
		t.Errorf("event stream %+v", c)
	}
	if c := n.TelemetryStreamConfig(); c.Name != "telemetry-acme-hq" || !slices.Equal(c.Subjects, []string{"acme.hq.*.*.tlm"}) ||
		c.PersistMode != jetstream.AsyncPersistMode {
		t.Errorf("telemetry stream %+v", c)
	}
	for _, cc := range []struct {
		name, deliver, filter string
		durable, gotDeliver   string
		gotFilter             string
	}{
		{n.EventConsumer, authz.DeliversOf(n).Event, "", n.EventConsumerConfig().Durable, n.EventConsumerConfig().DeliverSubject, n.EventConsumerConfig().FilterSubject},
		{n.TelemetryConsumer, authz.DeliversOf(n).Telemetry, "", n.TelemetryConsumerConfig().Durable, n.TelemetryConsumerConfig().DeliverSubject, n.TelemetryConsumerConfig().FilterSubject},
		{n.CredentialConsumer, authz.DeliversOf(n).Credential, "", n.CredentialConsumerConfig().Durable, n.CredentialConsumerConfig().DeliverSubject, n.CredentialConsumerConfig().FilterSubject},
		{n.CommandConsumer, authz.DeliversOf(n).Command, n.CommandFilter, n.CommandConsumerConfig().Durable, n.CommandConsumerConfig().DeliverSubject, n.CommandConsumerConfig().FilterSubject},
	} {
		if cc.durable != cc.name || cc.gotDeliver != cc.deliver || cc.gotFilter != cc.filter {
			t.Errorf("consumer %+v", cc)
		}
	}
	m := n.CredentialMirrorConfig().Mirror
	if m.Name != n.CredentialStream || m.External.APIPrefix != "$JS.hub.API" || m.Consumer.DeliverSubject != authz.DeliversOf(n).Credential {
		t.Errorf("mirror %+v", m)
	}
	src := n.CommandStreamConfig().Sources[0]
	if src.Name != n.CentralCommandStream || src.Consumer.Name != n.CommandConsumer {
		t.Errorf("command source %+v", src)
	}
	ev, _ := authz.CentralEventStreamConfig("acme", "hq", "wh")
	if !slices.Equal(ev.Subjects, []string{"acme.*._sys.*.evt"}) || len(ev.Sources) != 6 || ev.Sources[3].External.APIPrefix != "$JS.wh.API" ||
		ev.Sources[1].Name != n.TelemetryStream || ev.Sources[1].Consumer.DeliverSubject != authz.DeliversOf(n).Telemetry ||
		ev.Sources[2].Name != n.PlatformStream || ev.Sources[2].Consumer.DeliverSubject != authz.DeliversOf(n).Platform ||
		ev.Sources[4].Name != "telemetry-acme-wh" || ev.Sources[4].External.APIPrefix != "$JS.wh.API" ||
		ev.Sources[5].Name != "platform-acme-wh" {
		t.Errorf("central event stream %+v", ev)
	}
}
