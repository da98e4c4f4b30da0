package edgekit_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// TestNodeMQTT: an MQTT-only device (Debian's mosquitto_pub) logs in with
// its device user through the edge's authenticator and publishes on its own
// topic into the event stream; a wrong password and another device's topic
// are refused.
func TestNodeMQTT(t *testing.T) {
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed (apt-get install -y mosquitto-clients): skipping the MQTT test")
	}
	env := newNodeEnv(t, 0)
	cfg := nodeTestConfig(t, env, "")
	cfg.MQTT = edgekit.MQTTConfig{Enabled: true, Port: -1}
	node := nodeStart(t, cfg)
	host, port, err := net.SplitHostPort(node.MQTTAddr())
	if err != nil {
		t.Fatalf("MQTT address %q: %v", node.MQTTAddr(), err)
	}
	user := authz.DeviceUser(nodeS1)

	var ids message.IDGenerator
	envelope := func(th topic.Thing) (*message.Envelope, string) {
		e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: th, Type: topic.Event, Name: "sensor.tamper"}
		data, err := e.AppendMsgpack(nil)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "msg")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return e, f
	}
	run := func(password, topicName, file string) error {
		cmd := exec.CommandContext(nodeCtx(t), pub, "-h", host, "-p", port, "-V", "mqttv311", "-q", "1",
			"-i", authz.MQTTClientID(nodeS1), "-u", user, "-P", password, "-t", topicName, "-f", file)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("mosquitto_pub -t %s: %v: %s", topicName, err, out)
		}
		return err
	}

	e, f := envelope(nodeS1)
	if err := run(env.password(user), "acme/hq/sensor/s1/evt", f); err != nil {
		t.Fatal("MQTT publish on the device's own topic failed")
	}
	nodeWaitEnvelope(t, node.JetStream(), node.Names().EventStream, nodeS1.Subject(topic.Event).String(),
		func(g *message.Envelope) bool { return g.ID == e.ID })

	if err := run("wrong", "acme/hq/sensor/s1/evt", f); err == nil {
		t.Fatal("MQTT login with a wrong password accepted")
	}

	other, f2 := envelope(nodeR1)
	_ = run(env.password(user), "acme/hq/reader/r1/evt", f2) // refused or dropped by the server
	// A barrier: a second, allowed publish is stored after the refused one
	// would have been.
	e3, f3 := envelope(nodeS1)
	if err := run(env.password(user), "acme/hq/sensor/s1/evt", f3); err != nil {
		t.Fatal(err)
	}
	nodeWaitEnvelope(t, node.JetStream(), node.Names().EventStream, nodeS1.Subject(topic.Event).String(),
		func(g *message.Envelope) bool { return g.ID == e3.ID })
	for _, g := range nodeStreamEnvelopes(t, node.JetStream(), node.Names().EventStream, nodeR1.Subject(topic.Event).String()) {
		if g.ID == other.ID {
			t.Fatal("an MQTT device published on another device's topic")
		}
	}
}
