package devicekit_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
)

// TestReconnectThroughRefusedLogins restarts the server so that it refuses
// the device's login (as a restarting edge does until it is ready): the
// device keeps dialling through many refusals instead of closing its
// connection at the second, and is back once the server lets it in.
func TestReconnectThroughRefusedLogins(t *testing.T) {
	thing := topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}
	opts := func(password string) *server.Options {
		o := natstest.DefaultOptions()
		o.Users = []*server.User{{Username: "s1", Password: password}}
		return o
	}
	srv := natstest.Run(t, opts("right"))
	admin, err := srv.Connect(nats.UserInfo("s1", "right"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(testCtx(t), jetstream.StreamConfig{Name: "device", Subjects: []string{"acme.>"}}); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	proxy, err := natstest.NewProxy(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	c, err := devicekit.Connect(testCtx(t), devicekit.Config{Thing: thing, User: "s1", Password: "right",
		URLs: []string{"nats://" + proxy.Addr()}, HeartbeatInterval: -1, ReconnectWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	if err := srv.RestartWith(opts("changed")); err != nil {
		t.Fatal(err)
	}
	before := proxy.Stats().Accepted
	waitFor(t, "five refused logins in a row", func() bool { return proxy.Stats().Accepted >= before+5 })
	if err := srv.RestartWith(opts("right")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the device back", func() bool { return c.Stats().Reconnects >= 1 })
	e := &message.Envelope{Type: topic.Event, Name: "back"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Publish(ctx, e); err != nil {
		t.Fatalf("the device's event after the refusals: %v", err)
	}
}
