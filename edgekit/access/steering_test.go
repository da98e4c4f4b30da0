package access_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDeviceCannotSteerReplies attacks the access service the way a
// compromised reader would: it sends requests on its own req subject, which
// the server lets it publish, naming as reply subject the JetStream API,
// the edge's KV state, a platform alarm subject or a lock's command
// subject. Each request must be dropped unanswered: the streams, the
// consumer, the mirror and the chain head keep their data, no alarm is
// raised, the lock hears nothing, and the device's later publishes are
// still acknowledged.
func TestDeviceCannotSteerReplies(t *testing.T) {
	s := newSite(t, siteOptions{})
	n := s.node.Names()
	ctx := siteCtx(t)
	js := s.node.JetStream()

	rev := s.put(s.card("1001"))
	s.synced(rev)
	reader := s.device(siteR1)
	if d := request(t, reader, "front", "9999"); d.Granted {
		t.Fatalf("unknown card granted: %+v", d)
	}
	s.waitFor("the chain head to be written", func() bool {
		e, err := kvState(t, js).Get(ctx, "head")
		return err == nil && e.Value() != nil
	})

	// Watch what the attacks must not reach: the platform's alarm subject
	// and the lock's command subject, through the edge service, which may
	// subscribe to the whole edge; and the lock itself, logged in as the
	// lock with its own password.
	var forbidden []*nats.Msg
	watch, err := s.node.Conn().SubscribeSync("acme.hq.>")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Unsubscribe() }()
	lockUser := authz.DeviceUser(siteL1)
	lock, err := nats.Connect(s.node.ClientURL(), nats.UserInfo(lockUser, s.password(lockUser)),
		nats.CustomInboxPrefix(siteL1.InboxPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	lockCmds, err := lock.SubscribeSync(siteL1.Subject(topic.Command).String())
	if err != nil {
		t.Fatal(err)
	}
	if err := lock.Flush(); err != nil {
		t.Fatal(err)
	}

	before := streamState(t, js, n.EventStream)
	evCreated := streamCreated(t, js, n.EventStream)
	mirror := streamState(t, js, n.CredentialStream)
	head, err := kvState(t, js).Get(ctx, "head")
	if err != nil {
		t.Fatal(err)
	}

	// The attacker: reader r1 with its real user and password.
	user := authz.DeviceUser(siteR1)
	nc, err := nats.Connect(s.node.ClientURL(), nats.UserInfo(user, s.password(user)),
		nats.CustomInboxPrefix(siteR1.InboxPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	good := accessRequest(t, "front", "9999")
	targets := []string{
		"$JS.API.STREAM.DELETE." + n.EventStream,
		"$JS." + n.Domain + ".API.STREAM.DELETE." + n.EventStream,
		"$JS.API.CONSUMER.DELETE." + n.EventStream + "." + n.EventConsumer,
		"$JS.API.STREAM.PURGE." + n.CredentialStream,
		"$KV." + access.StateBucket("acme", "hq") + ".head",
		access.AlarmThing("acme", "hq").Subject(topic.Event).String(),
		siteL1.Subject(topic.Command).String(),
		"_INBOX.acme.hq.lock.l1.x",      // another device's inbox
		siteR1.InboxPrefix(),            // its inbox prefix alone
		siteR1.InboxPrefix() + "0.evil", // a longer code sharing the prefix
	}
	req := siteR1.Subject(topic.Request).String()
	for _, to := range targets {
		for _, body := range []*nats.Msg{good, {}} { // a request to decide, and one to reject
			m := &nats.Msg{Subject: req, Reply: to, Header: body.Header, Data: body.Data}
			if err := nc.PublishMsg(m); err != nil {
				t.Fatalf("publish with reply %s: %v", to, err)
			}
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	want := uint64(2 * len(targets))
	s.waitFor("every steering request to be refused", func() bool { return s.svc.Stats().RepliesRefused >= want })
	if st := s.svc.Stats(); st.RepliesRefused != want || st.Malformed != 0 {
		t.Fatalf("stats %+v, want %d replies refused and no request handled", st, want)
	}

	// A legitimate request still works, after the attacks.
	if d := request(t, reader, "front", "9999"); d.Granted {
		t.Fatalf("unknown card granted: %+v", d)
	}
	if _, err := reader.PublishEvent(ctx, "test.after_attack", map[string]string{"k": "v"}); err != nil {
		t.Fatalf("a device's publish after the attacks: %v", err)
	}

	// The event stream keeps messages until central has them, so its first
	// sequence moves on by itself; deleted, it would be a new stream.
	after := streamState(t, js, n.EventStream)
	if created := streamCreated(t, js, n.EventStream); !created.Equal(evCreated) || after.LastSeq < before.LastSeq+1 {
		t.Fatalf("event stream created %v, then %v; went from %+v to %+v", evCreated, created, before, after)
	}
	if after.Consumers != before.Consumers || before.Consumers == 0 {
		t.Fatalf("event stream consumers went from %d to %d", before.Consumers, after.Consumers)
	}
	if _, err := js.PushConsumer(ctx, n.EventStream, n.EventConsumer); err != nil {
		t.Fatalf("consumer %s: %v", n.EventConsumer, err)
	}
	if got := streamState(t, js, n.CredentialStream); got.Msgs != mirror.Msgs || got.FirstSeq != mirror.FirstSeq {
		t.Fatalf("credential mirror went from %+v to %+v", mirror, got)
	}
	s.waitFor("the chain head to move on", func() bool {
		e, err := kvState(t, js).Get(ctx, "head")
		return err == nil && e.Revision() > head.Revision()
	})
	e, err := kvState(t, js).Get(ctx, "head")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.Seq != s.svc.Head().Seq {
		t.Fatalf("chain head entry %q (%v), service head %+v", e.Value(), err, s.svc.Head())
	}

	// Round trips through the server order everything before them.
	if err := s.node.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := lock.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := watch.NextMsg(0)
		if err != nil {
			break
		}
		if strings.Contains(m.Subject, "._sys.") || m.Subject == siteL1.Subject(topic.Command).String() {
			forbidden = append(forbidden, m)
		}
	}
	for _, m := range forbidden {
		t.Errorf("steered message on %s: %q", m.Subject, m.Data)
	}
	if m, err := lockCmds.NextMsg(0); err == nil {
		t.Errorf("the lock received %q on its command subject", m.Data)
	}
}

// accessRequest returns an access request message for door and card.
func accessRequest(t *testing.T, door, card string) *nats.Msg {
	t.Helper()
	e := &message.Envelope{ID: (&message.IDGenerator{}).New(), Source: siteR1, Type: topic.Request, Name: message.NameAccessRequested}
	e.Time = e.ID.Time().UTC()
	if err := message.SetPayload(e, message.AccessRequest{Door: door, Kind: message.CredentialCard, Credential: message.Credential(card)}); err != nil {
		t.Fatal(err)
	}
	m, err := e.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func streamState(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamState {
	t.Helper()
	str, err := js.Stream(siteCtx(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return str.CachedInfo().State
}

func kvState(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(siteCtx(t), access.StateBucket("acme", "hq"))
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func streamCreated(t *testing.T, js jetstream.JetStream, name string) time.Time {
	t.Helper()
	str, err := js.Stream(siteCtx(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return str.CachedInfo().Created
}
