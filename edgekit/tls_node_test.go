package edgekit_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
)

// TestNodeTLS: a node rendered with TLS links to central over TLS, pinned
// to central's CA; a devicekit device and an MQTT device (mosquitto_pub,
// mqtts) log in over TLS with the edge's certificate, and an MQTT device
// trusting another CA is refused.
func TestNodeTLS(t *testing.T) {
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		if os.Getenv("LINTEL_REQUIRE_TOOLS") != "" {
			t.Fatal("mosquitto_pub not installed (apt-get install -y mosquitto-clients)")
		}
		t.Skip("mosquitto_pub not installed (apt-get install -y mosquitto-clients)")
	}
	hub, site, other := natstest.TempCA(t), natstest.TempCA(t), natstest.TempCA(t)
	env := newNodeEnv(t, 0)
	copts, err := authz.CentralOptions(env.inv, env.st, authz.RenderOptions{
		Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
		StoreDir: t.TempDir(), MaxMemoryStore: 64 << 20, MaxFileStore: 256 << 20,
		TLS:     &authz.TLSFiles{CertFile: hub.ServerCertFile, KeyFile: hub.ServerKeyFile},
		LeafTLS: &authz.TLSFiles{CertFile: hub.ServerCertFile, KeyFile: hub.ServerKeyFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	copts.NoLog = true
	central := natstest.Run(t, copts)

	cfg := nodeTestConfig(t, env, "nats-leaf://"+central.LeafNodeAddr())
	cfg.Render.TLS = &authz.TLSFiles{CertFile: site.ServerCertFile, KeyFile: site.ServerKeyFile}
	cfg.Render.HubTLS = &authz.HubTLS{CAFile: hub.CAFile}
	cfg.MQTT = edgekit.MQTTConfig{Enabled: true, Port: -1}
	node := nodeStart(t, cfg)
	deadline := time.Now().Add(nodeWait)
	for central.Server().NumLeafNodes() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no leaf link over TLS")
		}
		time.Sleep(10 * time.Millisecond)
	}

	nodeConnectDevice(t, env, node.ClientURL(), nodeR1, func(c *devicekit.Config) { c.CAFile = site.CAFile })
	cz, err := node.Server().Connz(&server.ConnzOptions{Username: true})
	if err != nil {
		t.Fatal(err)
	}
	onTLS := false
	for _, ci := range cz.Conns {
		if ci.AuthorizedUser == authz.DeviceUser(nodeR1) {
			onTLS = ci.TLSVersion != ""
		}
	}
	if !onTLS {
		t.Fatal("device not on TLS")
	}

	host, port, err := net.SplitHostPort(node.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	user := authz.DeviceUser(nodeS1)
	e := &message.Envelope{ID: (&message.IDGenerator{}).New(), Time: time.Now().UTC(), Source: nodeS1, Type: topic.Event, Name: "sensor.tamper"}
	data, err := e.AppendMsgpack(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(cafile string) error {
		out, err := exec.CommandContext(nodeCtx(t), pub, "-h", host, "-p", port, "-V", "mqttv311", "-q", "1",
			"--cafile", cafile, "-i", authz.MQTTClientID(nodeS1), "-u", user, "-P", env.password(user),
			"-t", "acme/hq/sensor/s1/evt", "-f", f).CombinedOutput()
		if err != nil {
			t.Logf("mosquitto_pub --cafile %s: %v: %s", cafile, err, out)
		}
		return err
	}
	if err := run(other.CAFile); err == nil {
		t.Fatal("MQTT device trusting another CA connected")
	}
	if err := run(site.CAFile); err != nil {
		t.Fatal("MQTT publish over TLS failed")
	}
	nodeWaitEnvelope(t, node.JetStream(), node.Names().EventStream, nodeS1.Subject(topic.Event).String(),
		func(g *message.Envelope) bool { return g.ID == e.ID })
}
