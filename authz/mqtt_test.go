package authz_test

import (
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nats-server/v2/server"
)

// TestRenderMQTTConnectionTypes: in a configuration for a stock
// nats-server, only a device the inventory marks as MQTT may use MQTT.
func TestRenderMQTTConnectionTypes(t *testing.T) {
	inv := natsInv()
	for i := range inv.Things {
		if inv.Things[i].Code == "l1" {
			inv.Things[i].MQTT = true
		}
	}
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	st := goldenState(t, inv)
	text, err := authz.RenderEdge(inv, st, "acme", "hq", authz.RenderOptions{HubURLs: []string{"nats-leaf://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := &server.Options{}
	err = opts.ProcessConfigString(strings.Replace(string(text), "include \"leaf-seed.conf\"", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, u := range opts.Users {
		_, mqtt := u.AllowedConnectionTypes["MQTT"]
		_, std := u.AllowedConnectionTypes["STANDARD"]
		want := u.Username == "acme.hq.lock.l1"
		if mqtt != want || !std {
			t.Errorf("user %s: connection types %v", u.Username, u.AllowedConnectionTypes)
		}
		seen++
	}
	if seen == 0 {
		t.Fatal("no users rendered")
	}
	if got := authz.MQTTClientID(mkThing("acme", "hq", "lock", "l1")); got != "acme/hq/lock/l1" {
		t.Errorf("MQTTClientID = %q", got)
	}
}
