package authz_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

// TestDevicePermissionsEnforced runs a device against an edge started from
// the generated options, with nats-server's own password check and with
// the EdgeAuthenticator: everything a device needs works, and every
// denial is observed as the server's permission violation.
func TestDevicePermissionsEnforced(t *testing.T) {
	for _, mode := range []struct {
		name string
		auth bool
	}{{"config users", false}, {"authenticator", true}} {
		t.Run(mode.name, func(t *testing.T) {
			inv := natsInv()
			c := newNatsCreds(t, inv, bcrypt.MinCost)
			central := startCentral(t, inv, c)
			hq := startEdge(t, inv, c, "hq", central, edgeSetup{authenticator: mode.auth})
			waitLeaf(t, hq)
			provisionEdge(t, hq, c, "hq")
			testDevice(t, hq, c)
		})
	}
}

func testDevice(t *testing.T, hq *testEdge, c *natsCreds) {
	r1 := mkThing("acme", "hq", "reader", "r1")
	r2 := mkThing("acme", "hq", "reader", "r2")
	svc := connectAs(t, hq.Server, c, authz.EdgeServiceUser("acme", "hq"))
	dev := connectAs(t, hq.Server, c, authz.DeviceUser(r1))

	t.Run("publishes events with a JetStream ack to its own inbox", func(t *testing.T) {
		js, err := jetstream.New(dev.Conn)
		if err != nil {
			t.Fatal(err)
		}
		for _, mt := range []topic.MessageType{topic.Event, topic.Telemetry, topic.State, topic.Ack} {
			ack, err := js.Publish(testCtx(t), r1.Subject(mt).String(), []byte("x"))
			if err != nil {
				t.Fatalf("%s: %v", mt, err)
			}
			want := "events-acme-hq"
			if mt == topic.Telemetry {
				want = "telemetry-acme-hq"
			}
			if ack.Stream != want {
				t.Fatalf("%s stored in %q", mt, ack.Stream)
			}
		}
		dev.noViolation(t)
	})

	t.Run("receives its commands and config from the edge service", func(t *testing.T) {
		for _, mt := range []topic.MessageType{topic.Command, topic.Config} {
			sub, err := dev.SubscribeSync(r1.Subject(mt).String())
			if err != nil {
				t.Fatal(err)
			}
			if err := dev.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := svc.Publish(r1.Subject(mt).String(), []byte("unlock")); err != nil {
				t.Fatal(err)
			}
			m, err := sub.NextMsg(waitTimeout)
			if err != nil {
				t.Fatalf("%s: %v", mt, err)
			}
			if string(m.Data) != "unlock" {
				t.Fatalf("got %q", m.Data)
			}
			_ = sub.Unsubscribe()
		}
		dev.noViolation(t)
		svc.noViolation(t)
	})

	t.Run("requests and gets the edge service's reply in its inbox", func(t *testing.T) {
		sub, err := svc.Subscribe(r1.Subject(topic.Request).String(), func(m *nats.Msg) { _ = m.Respond([]byte("granted")) })
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := svc.Flush(); err != nil {
			t.Fatal(err)
		}
		m, err := dev.Request(r1.Subject(topic.Request).String(), []byte("card 1234"), waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != "granted" {
			t.Fatalf("got %q", m.Data)
		}
		dev.noViolation(t)
		svc.noViolation(t)
	})

	t.Run("denied", func(t *testing.T) {
		pubs := []string{
			r2.Subject(topic.Event).String(),   // as another device
			r1.Subject(topic.Command).String(), // its own commands come from the edge service only
			r1.Subject(topic.Config).String(),
			"acme.hq._edge.hq.state",                   // the platform's own things
			"$JS.API.STREAM.INFO.events-acme-hq",       // local JetStream API
			"$JS.hq.API.STREAM.INFO.events-acme-hq",    // its domain's API
			"$JS.hub.API.STREAM.INFO.KV_creds-acme-hq", // central's API
			"$KV.creds-acme-hq.card",
			"$SYS.REQ.SERVER.PING",
			"_INBOX.acme.hq.reader.r2.x", // another device's inbox
			"_lintel.acme.hq.fwd.evt",
		}
		for _, s := range pubs {
			if err := dev.Publish(s, []byte("x")); err != nil {
				t.Fatal(err)
			}
			// nats-server checks permissions after applying the account's
			// subject mappings, among them JetStream's own domain mapping
			// "$JS.hq.API.>" -> "$JS.API.>", and reports the mapped subject.
			dev.expectViolation(t, "Publish", strings.Replace(s, "$JS.hq.API.", "$JS.API.", 1))
		}
		subs := []string{
			r2.Subject(topic.Command).String(),
			r2.InboxPrefix() + ".>",
			"_INBOX.>",
			">",
			"acme.hq.>",
			r1.String() + ".>",
			r1.Subject(topic.Event).String(), // it publishes its events, never reads them
			"$JS.API.>",
			"$JS.hq.API.>",
			"$KV.>",
			"$SYS.>",
			"$SYS.ACCOUNT.acme.CONNECT",
		}
		for _, s := range subs {
			sub, err := dev.SubscribeSync(s)
			if err != nil {
				t.Fatal(err)
			}
			dev.expectViolation(t, "Subscription", s)
			_ = sub.Unsubscribe()
		}
	})

	t.Run("edge service sees its devices come and go", func(t *testing.T) {
		conn, err := svc.SubscribeSync("$SYS.ACCOUNT.acme.CONNECT")
		if err != nil {
			t.Fatal(err)
		}
		disc, err := svc.SubscribeSync("$SYS.ACCOUNT.acme.DISCONNECT")
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Flush(); err != nil {
			t.Fatal(err)
		}
		d2 := connectAs(t, hq.Server, c, authz.DeviceUser(r2))
		if _, err := conn.NextMsg(waitTimeout); err != nil {
			t.Fatalf("connect event: %v", err)
		}
		d2.Close()
		m, err := disc.NextMsg(waitTimeout)
		if err != nil {
			t.Fatalf("disconnect event: %v", err)
		}
		if !containsUser(m.Data, authz.DeviceUser(r2)) {
			t.Fatalf("disconnect event does not name %s: %s", authz.DeviceUser(r2), m.Data)
		}
	})
}

// containsUser reports whether the system event data names user as its
// client's user.
func containsUser(data []byte, user string) bool {
	var ev struct {
		Client struct {
			User string `json:"user"`
		} `json:"client"`
	}
	return json.Unmarshal(data, &ev) == nil && ev.Client.User == user
}
