package authz_test

import (
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"golang.org/x/crypto/bcrypt"
)

// TestLeafCarriesNoDeviceRequest checks the rendered configurations of a
// real central and edge: a device's request, with a reply subject that
// would steer a responder into central's JetStream API, never reaches
// central live, while the device's events still do.
func TestLeafCarriesNoDeviceRequest(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	hub := startCentral(t, inv, c)
	e := startEdge(t, inv, c, "hq", hub, edgeSetup{})
	waitLeaf(t, e)

	central := connectAs(t, hub, c, authz.ServiceUser("acme", "ingest"))
	sub, err := central.SubscribeSync("acme.hq.>")
	if err != nil {
		t.Fatal(err)
	}
	central.noViolation(t)

	r1 := mkThing("acme", "hq", "reader", "r1")
	dev := connectAs(t, e.Server, c, authz.DeviceUser(r1))
	evt := r1.Subject(topic.Event).String()
	// Interest crosses the leaf asynchronously: publish events until one
	// arrives, then the request, then a last event as a barrier.
	waitFor(t, "an event at central", func() bool {
		if err := dev.Publish(evt, []byte("first")); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(50 * time.Millisecond)
		return err == nil && m.Subject == evt
	})
	if err := dev.PublishRequest(r1.Subject(topic.Request).String(), "$JS.API.STREAM.DELETE.events-acme", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := dev.Publish(evt, []byte("barrier")); err != nil {
		t.Fatal(err)
	}
	dev.noViolation(t)
	for {
		m, err := sub.NextMsg(waitTimeout)
		if err != nil {
			t.Fatalf("the barrier event did not arrive: %v", err)
		}
		if m.Subject == r1.Subject(topic.Request).String() {
			t.Fatalf("a device request reached central, reply %q", m.Reply)
		}
		if string(m.Data) == "barrier" {
			return
		}
	}
}
