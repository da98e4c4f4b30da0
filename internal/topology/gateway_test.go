package topology_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
)

// TestGatewayStream publishes on a gateway-stream subject into a real
// server's stream of that configuration: the stream stores the message
// under the device's subject, and drops a retry with the same
// Nats-Msg-Id. Another org's subject is captured by no stream.
func TestGatewayStream(t *testing.T) {
	srv := natstest.Run(t, nil)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg, err := topology.GatewayStreamConfig("acme")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != topology.GatewayStream("acme") || cfg.Storage != jetstream.FileStorage {
		t.Fatalf("config %+v", cfg)
	}
	s, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	device := topic.Thing{Org: "acme", Edge: "lab", Type: "sensor", Code: "s2"}
	msg := nats.NewMsg(topology.GatewaySubject(device, topic.Telemetry))
	msg.Data = []byte("reading")
	for round := range 2 {
		ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("m1"))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Stream != cfg.Name || ack.Sequence != 1 || ack.Duplicate != (round == 1) {
			t.Fatalf("round %d: ack %+v", round, ack)
		}
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := device.Subject(topic.Telemetry).String(); m.Subject != want || string(m.Data) != "reading" {
		t.Fatalf("stored on %q (%q), want %q", m.Subject, m.Data, want)
	}
	other := topic.Thing{Org: "globex", Edge: "plant", Type: "sensor", Code: "s1"}
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: topology.GatewaySubject(other, topic.Event), Data: []byte("x")})
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("another org's gateway subject: %v, want no stream", err)
	}
	if _, err := topology.GatewayStreamConfig("$SYS"); err == nil {
		t.Error("a gateway stream for an invalid org")
	}
	if _, err := topology.GatewayStreamConfig(topology.SystemAccount); !errors.Is(err, topology.ErrReservedName) {
		t.Errorf("a gateway stream for the system account: %v, want ErrReservedName", err)
	}
}

// TestCommandSubjects: both command subjects parse back to their thing,
// neither parses as the other, and each falls in the org's command stream
// but only the gateway's in the gateway's consumer.
func TestCommandSubjects(t *testing.T) {
	th := topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "front-1"}
	cmd, gw := topology.CommandSubject(th), topology.GatewayCommandSubject(th)
	if cmd != "_lintel.acme.hq.cmd.lock.front-1" || gw != "_lintel.acme.hq.gwcmd.lock.front-1" {
		t.Fatalf("subjects %q, %q", cmd, gw)
	}
	if got, err := topology.ParseCommandSubject(cmd); err != nil || got != th {
		t.Errorf("ParseCommandSubject(%q) = %v, %v", cmd, got, err)
	}
	if got, err := topology.ParseGatewayCommandSubject(gw); err != nil || got != th {
		t.Errorf("ParseGatewayCommandSubject(%q) = %v, %v", gw, got, err)
	}
	if _, err := topology.ParseCommandSubject(gw); !errors.Is(err, topic.ErrTokenCount) {
		t.Errorf("ParseCommandSubject(%q): %v, want ErrTokenCount", gw, err)
	}
	for _, bad := range []string{cmd, "_lintel.acme.hq.gwcmd.lock", "_lintel._x.hq.gwcmd.lock.f", "_lintel.acme.hq.gwcmd.lo ck.f"} {
		if _, err := topology.ParseGatewayCommandSubject(bad); err == nil {
			t.Errorf("ParseGatewayCommandSubject(%q) accepted", bad)
		}
	}
	subjects := topology.CommandStreamSubjects("acme")
	if len(subjects) != 2 || !subjectMatch(subjects[0], cmd) || !subjectMatch(subjects[1], gw) {
		t.Errorf("command stream subjects %v", subjects)
	}
	filter := topology.GatewayCommandConsumerConfig("acme").FilterSubject
	if !subjectMatch(filter, gw) || subjectMatch(filter, cmd) {
		t.Errorf("gateway consumer filter %q", filter)
	}
}

// subjectMatch reports whether subject falls in the NATS filter, whose
// tokens may be "*" (any one token) or a final ">" (one or more).
func subjectMatch(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s) || (tok != "*" && tok != s[i]):
			return false
		}
	}
	return len(f) == len(s)
}
