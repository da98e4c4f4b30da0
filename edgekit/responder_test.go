package edgekit_test

import (
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// TestResponderCannotPublishBeyondInboxes checks the responder identity
// against the real server: the connection on which the edge takes device
// requests (and so the one whose publications a device can steer with its
// reply subject) is refused every subject outside devices' inboxes, and
// still reaches a device's inbox and receives its requests.
func TestResponderCannotPublishBeyondInboxes(t *testing.T) {
	env := newNodeEnv(t, 0)
	n := nodeStart(t, nodeTestConfig(t, env, ""))
	names := n.Names()
	if n.ResponderConn() == nil || n.ResponderConn() == n.Conn() {
		t.Fatal("the node has no responder connection of its own")
	}
	// A connection of the test's own as the responder, to see each refusal.
	errs := make(chan error, 64)
	user, token := edgekit.ResponderLogin(n)
	rc, err := nats.Connect("", nats.InProcessServer(n.Server()), nats.UserInfo(user, token),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	expect := func(what string) {
		t.Helper()
		for {
			select {
			case err := <-errs:
				if strings.Contains(err.Error(), what) {
					return
				}
			case <-nodeCtx(t).Done():
				t.Fatalf("no %s", what)
			}
		}
	}

	refused := []string{
		"$JS.API.STREAM.DELETE." + names.EventStream,
		"$JS." + names.Domain + ".API.STREAM.DELETE." + names.EventStream,
		"$JS.API.CONSUMER.DELETE." + names.EventStream + "." + names.EventConsumer,
		"$JS.API.STREAM.PURGE." + names.CredentialStream,
		"$JS.ACK.x.y.1.1.1.1.1",
		"$KV.x.y",
		"$SYS.REQ.SERVER.PING",
		"acme.hq._sys.audit.evt",
		nodeL1.Subject(topic.Command).String(),
		nodeS1.Subject(topic.Event).String(),
		"_INBOX._edge.acme.hq.x",
		"_INBOX.other.hq.reader.r1.x",
		"_lintel.acme.hq.fwd.evt",
	}
	for _, subj := range refused {
		if err := rc.Publish(subj, nil); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
		// nats-server maps the domain's API prefix to "$JS.API" before it
		// checks permissions, and reports the mapped subject.
		reported := strings.Replace(subj, "$JS."+names.Domain+".API.", "$JS.API.", 1)
		expect(`Permissions Violation for Publish to "` + reported + `"`)
	}
	if _, err := n.JetStream().Stream(nodeCtx(t), names.EventStream); err != nil {
		t.Fatalf("event stream after the attempts: %v", err)
	}

	// What it is for: a device's request in, the answer into its inbox.
	devUser := authz.DeviceUser(nodeR1)
	dev, err := nats.Connect(n.ClientURL(), nats.UserInfo(devUser, env.password(devUser)), nats.CustomInboxPrefix(nodeR1.InboxPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	sub, err := rc.Subscribe("acme.hq.*.*.req", func(m *nats.Msg) {
		if topic.ReplyAllowed(m.Subject, m.Reply) {
			_ = m.Respond([]byte("ok"))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := rc.Flush(); err != nil {
		t.Fatal(err)
	}
	reply, err := dev.RequestWithContext(nodeCtx(t), nodeR1.Subject(topic.Request).String(), []byte("q"))
	if err != nil || string(reply.Data) != "ok" {
		t.Fatalf("request through the responder: %v %v", reply, err)
	}

	// It may not listen to anything but requests.
	wide, err := rc.SubscribeSync("acme.hq.>")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = wide.Unsubscribe() }()
	expect(`Permissions Violation for Subscription to "acme.hq.>"`)
}
