package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats.go"
)

// waitTimeout is the generous bound for every condition a test waits on.
const waitTimeout = 20 * time.Second

// testContext returns a context that ends after waitTimeout or with the test.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// noErr fails the test at once when err is not nil.
func noErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// connect connects to srv and closes the connection in cleanup.
func connect(t *testing.T, srv *natstest.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect(opts...)
	noErr(t, err, "connect")
	t.Cleanup(nc.Close)
	return nc
}

// eventually calls f until it returns nil, failing the test with f's last
// error after waitTimeout.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", waitTimeout, err)
		}
		<-tick.C
	}
}

// requireDelivered subscribes with sub, waits until pubSrv (the server pub
// is connected to) knows about the interest, then publishes once with pub and
// expects the message.
func requireDelivered(t *testing.T, pubSrv *natstest.Server, pub, sub *nats.Conn, subject string) {
	t.Helper()
	s, err := sub.SubscribeSync(subject)
	noErr(t, err, "subscribe")
	defer func() { noErr(t, s.Unsubscribe(), "unsubscribe") }()
	noErr(t, sub.Flush(), "flush subscription")
	noErr(t, pubSrv.WaitInterest(testContext(t), subject), "wait for interest")

	want := "hello " + subject
	noErr(t, pub.Publish(subject, []byte(want)), "publish")
	msg, err := s.NextMsg(waitTimeout)
	noErr(t, err, "receive "+subject)
	if got := string(msg.Data); got != want {
		t.Fatalf("received %q, want %q", got, want)
	}
}
