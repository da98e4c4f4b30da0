package edgekit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// TestDeviceRateLimited floods a real edge node from one device's own
// subjects, which its permissions allow, as fast as the connection goes:
// the node closes that connection, refuses the device's next login while
// its ban lasts, and counts it, while another device keeps publishing and
// its events are stored.
func TestDeviceRateLimited(t *testing.T) {
	env := newNodeEnv(t, 0)
	cfg := nodeTestConfig(t, env, "")
	cfg.DeviceRate = 200
	cfg.DeviceBurst = 400
	cfg.DeviceBanFor = time.Hour // the ban outlasts the test
	node := nodeStart(t, cfg)

	user := authz.DeviceUser(nodeR1)
	closed := make(chan struct{})
	nc, err := nats.Connect(node.ClientURL(), nats.UserInfo(user, env.password(user)),
		nats.CustomInboxPrefix(nodeR1.InboxPrefix()), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatalf("connect the flooding device: %v", err)
	}
	defer nc.Close()

	// A well-behaved device publishes a few events meanwhile.
	good := nodeConnectDevice(t, env, node.ClientURL(), nodeS1, nil)

	ctx := nodeCtx(t)
	subject := nodeR1.Subject(topic.Event).String()
	payload := make([]byte, 64)
flood:
	for {
		select {
		case <-closed:
			break flood
		case <-ctx.Done():
			t.Fatalf("the flooding device was never disconnected (node stats %+v)", node.Stats())
		default:
		}
		for range 100 {
			if err := nc.Publish(subject, payload); err != nil {
				break
			}
		}
	}
	if got := node.Stats().RateLimited; got != 1 {
		t.Fatalf("RateLimited = %d, want 1", got)
	}

	// Its next login is refused while the ban lasts.
	_, err = nats.Connect(node.ClientURL(), nats.UserInfo(user, env.password(user)), nats.NoReconnect())
	if err == nil || !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("login during the ban = %v, want an authorization violation", err)
	}

	// The other device is unaffected: its events are stored.
	for i := range 5 {
		if _, err := good.PublishEvent(ctx, "sensor.reading", map[string]int{"n": i}); err != nil {
			t.Fatalf("well-behaved device's event %d: %v", i, err)
		}
	}
	es := nodeStreamEnvelopes(t, node.JetStream(), node.Names().EventStream, nodeS1.Subject(topic.Event).String())
	var n int
	for _, e := range es {
		if e.Name == "sensor.reading" {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("well-behaved device: %d events stored, want 5", n)
	}
}
