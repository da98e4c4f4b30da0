package authz_test

import (
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

// TestJetStreamThroughLeafAllowList proves that the JetStream subjects of
// the leaf allow-lists are sufficient: across the leaf link between the
// edge's domain and central's, central's event stream sources the edge's
// events, the edge mirrors its credential bucket, and the edge's command
// stream sources its commands.
func TestJetStreamThroughLeafAllowList(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central := startCentral(t, inv, c)
	hq := startEdge(t, inv, c, "hq", central, edgeSetup{authenticator: true})
	waitLeaf(t, hq)
	cjs := provisionCentral(t, central, c, "hq")
	ejs := provisionEdge(t, hq, c, "hq")
	n := names(t, "hq")

	// A device's event, published with a JetStream acknowledgement into the
	// edge's stream, reaches central's event stream.
	r1 := mkThing("acme", "hq", "reader", "r1")
	dev := connectAs(t, hq.Server, c, authz.DeviceUser(r1))
	djs, err := jetstream.New(dev.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := djs.Publish(testCtx(t), r1.Subject(topic.Event).String(), []byte("access granted"))
	if err != nil {
		t.Fatalf("device JetStream publish: %v", err)
	}
	if ack.Stream != n.EventStream || ack.Domain != n.Domain {
		t.Fatalf("ack from stream %q domain %q, want %q in %q", ack.Stream, ack.Domain, n.EventStream, n.Domain)
	}
	if got := waitStreamSubject(t, cjs, n.CentralEventStream, r1.Subject(topic.Event).String()); string(got) != "access granted" {
		t.Fatalf("central has %q", got)
	}

	// A credential written on central reaches the edge's mirror.
	kv, err := cjs.KeyValue(testCtx(t), n.CredentialBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(testCtx(t), "card.1234", []byte("allow")); err != nil {
		t.Fatal(err)
	}
	mirror, err := ejs.KeyValue(testCtx(t), n.CredentialBucket)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "credential in the edge's mirror", func() bool {
		e, err := mirror.Get(testCtx(t), "card.1234")
		return err == nil && string(e.Value()) == "allow"
	})

	// A command written into central's command stream reaches the edge's.
	if _, err := cjs.Publish(testCtx(t), authz.CommandSubject(r1), []byte("unlock")); err != nil {
		t.Fatalf("command intake: %v", err)
	}
	if got := waitStreamSubject(t, ejs, n.CommandStream, authz.CommandSubject(r1)); string(got) != "unlock" {
		t.Fatalf("edge command stream has %q", got)
	}
}
