package edgekit_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
)

// TestMQTTClientIDTakeover attacks the edge's MQTT listener with Debian's
// mosquitto clients and real device credentials: a device the inventory
// does not mark as MQTT is refused over MQTT even with its own password,
// and an MQTT device that presents another device's client ID (or any ID
// but its own) is refused, leaving the connected owner of that ID in place
// and still receiving its commands.
func TestMQTTClientIDTakeover(t *testing.T) {
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		if os.Getenv("LINTEL_REQUIRE_TOOLS") != "" {
			t.Fatal("mosquitto_pub not installed (apt-get install -y mosquitto-clients)")
		}
		t.Skip("mosquitto_pub not installed (apt-get install -y mosquitto-clients): skipping the MQTT test")
	}
	sub, err := exec.LookPath("mosquitto_sub")
	if err != nil {
		t.Skip("mosquitto_sub not installed: skipping the MQTT test")
	}
	env := newNodeEnv(t, 1) // s2 besides s1
	s2 := topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s2"}
	for i := range env.inv.Things {
		if env.inv.Things[i].Code == s2.Code {
			env.inv.Things[i].MQTT = true // s1 is an MQTT device already
		}
	}
	cfg := nodeTestConfig(t, env, "")
	cfg.MQTT = edgekit.MQTTConfig{Enabled: true, Port: -1}
	node := nodeStart(t, cfg)
	host, port, err := net.SplitHostPort(node.MQTTAddr())
	if err != nil {
		t.Fatalf("MQTT address %q: %v", node.MQTTAddr(), err)
	}
	publish := func(as topic.Thing, clientID string) ([]byte, error) {
		user := authz.DeviceUser(as)
		cmd := exec.CommandContext(nodeCtx(t), pub, "-h", host, "-p", port, "-V", "mqttv311", "-q", "1",
			"-i", clientID, "-u", user, "-P", env.password(user),
			"-t", "acme/hq/"+as.Type+"/"+as.Code+"/evt", "-m", "x")
		return cmd.CombinedOutput()
	}

	// A NATS-only device, with its own password and client ID: refused.
	if out, err := publish(nodeR1, authz.MQTTClientID(nodeR1)); err == nil {
		t.Fatalf("a device not marked MQTT logged in over MQTT: %s", out)
	}
	// The MQTT device s2 logs in with its own client ID.
	if out, err := publish(s2, authz.MQTTClientID(s2)); err != nil {
		t.Fatalf("MQTT device with its own client ID: %v: %s", err, out)
	}

	// s1 is connected, waiting for one command.
	s1ID := authz.MQTTClientID(nodeS1)
	var got bytes.Buffer
	listen := exec.CommandContext(nodeCtx(t), sub, "-h", host, "-p", port, "-V", "mqttv311", "-q", "0",
		"-i", s1ID, "-u", authz.DeviceUser(nodeS1), "-P", env.password(authz.DeviceUser(nodeS1)),
		"-t", "acme/hq/sensor/s1/cmd", "-C", "1")
	listen.Stdout, listen.Stderr = &got, &got
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- listen.Wait() }()
	owner := func() *server.ConnInfo {
		cz, err := node.Server().Connz(&server.ConnzOptions{MQTTClient: s1ID, Subscriptions: true})
		if err != nil || len(cz.Conns) != 1 || cz.Conns[0].NumSubs == 0 {
			return nil
		}
		return cz.Conns[0]
	}
	nodeWaitFor(t, "s1 to subscribe over MQTT", func() bool { return owner() != nil })
	cid := owner().Cid

	// The takeover: s2, with its real password, presents s1's client ID;
	// and a NATS-only device tries it too.
	for _, as := range []topic.Thing{s2, nodeR1} {
		if out, err := publish(as, s1ID); err == nil {
			t.Fatalf("%s logged in with %s's MQTT client ID: %s", as, nodeS1, out)
		}
	}
	// s2 with a made-up client ID: refused as well.
	if out, err := publish(s2, "anything"); err == nil {
		t.Fatalf("an MQTT device logged in with a client ID not its own: %s", out)
	}
	if o := owner(); o == nil || o.Cid != cid {
		t.Fatalf("s1's MQTT connection %d was replaced or dropped: %+v", cid, o)
	}
	// s1 still gets its commands.
	if err := node.Conn().Publish(nodeS1.Subject(topic.Command).String(), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil || !bytes.Contains(got.Bytes(), []byte("still here")) {
			t.Fatalf("s1's subscriber ended with %v: %q", err, got.String())
		}
	case <-nodeCtx(t).Done():
		t.Fatal("s1 received no command after the takeover attempts")
	}
}
