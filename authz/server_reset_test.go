package authz_test

import (
	"encoding/json"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

// TestEdgeServiceResetsOnlyItsOwnMirror: the edge service may ask central
// to reset the consumer its own credential mirror reads through, which it
// does after its store was replaced, and gets central's answer in its sync
// namespace, and so may it reset the consumer its server sources its
// commands through; it may not reset the consumer of another edge's mirror
// or commands, nor another consumer of central: its server refuses the
// request, and the leaf link would too (see TestLeafLinkEnforcedByCentral).
func TestEdgeServiceResetsOnlyItsOwnMirror(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central := startCentral(t, inv, c)
	hq := startEdge(t, inv, c, "hq", central, edgeSetup{authenticator: true})
	waitLeaf(t, hq)
	provisionCentral(t, central, c, "hq", "wh")
	nhq, nwh := names(t, "hq"), names(t, "wh")

	svc := connectAs(t, hq.Server, c, authz.EdgeServiceUser("acme", "hq"))
	answers := make(chan *nats.Msg, 4)
	if _, err := svc.ChanSubscribe(nhq.SyncReplyPrefix+".*", answers); err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "central to hear hq's sync replies", func() bool {
		a, err := central.Server().LookupAccount("acme")
		return err == nil && a.SubscriptionInterest(nhq.SyncReplyPrefix+".1")
	})

	// Its own mirror's consumer: reset to sequence 1, answered.
	own := &nats.Msg{Subject: nhq.CredentialReset, Reply: nhq.SyncReplyPrefix + ".1", Data: []byte(`{"seq":1}`)}
	if err := svc.PublishMsg(own); err != nil {
		t.Fatal(err)
	}
	var r struct {
		ResetSeq uint64          `json:"reset_seq"`
		Error    json.RawMessage `json:"error"`
	}
	select {
	case m := <-answers:
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Error != nil || r.ResetSeq != 1 {
			t.Fatalf("answer to the reset of hq's own consumer: %s (%v)", m.Data, err)
		}
	case <-testCtx(t).Done():
		t.Fatal("no answer to the reset of hq's own consumer")
	}
	svc.noViolation(t)

	// Central's command consumer of hq, through which hq's server sources
	// its commands: allowed (the edge service sends again a reset its
	// server lost in an outage) and answered.
	cmd := &nats.Msg{Subject: "$JS.hub.API.CONSUMER.RESET." + nhq.CentralCommandStream + "." + nhq.CommandConsumer,
		Reply: nhq.SyncReplyPrefix + ".4"}
	if err := svc.PublishMsg(cmd); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-answers:
		if m.Subject != cmd.Reply {
			t.Fatalf("central answered %s: %s", m.Subject, m.Data)
		}
	case <-testCtx(t).Done():
		t.Fatal("no answer to the reset of hq's command consumer")
	}
	svc.noViolation(t)

	// Another edge's mirror, another consumer of central: refused.
	for _, subject := range []string{
		nwh.CredentialReset,
		"$JS.hub.API.CONSUMER.RESET." + nwh.CentralCommandStream + "." + nwh.CommandConsumer,
		"$JS.hub.API.CONSUMER.RESET." + nhq.CredentialStream + ".other",
	} {
		if err := svc.PublishMsg(&nats.Msg{Subject: subject, Reply: nhq.SyncReplyPrefix + ".2", Data: []byte(`{"seq":1}`)}); err != nil {
			t.Fatal(err)
		}
		svc.expectViolation(t, "Publish", subject)
	}
	// A last reset of its own, after the refused ones on the same path:
	// its answer is the only one.
	own.Reply = nhq.SyncReplyPrefix + ".3"
	if err := svc.PublishMsg(own); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-answers:
		if m.Subject != own.Reply {
			t.Fatalf("central answered %s: %s", m.Subject, m.Data)
		}
	case <-testCtx(t).Done():
		t.Fatal("no answer to the last reset")
	}
}
