package central

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/topic"
)

// TestGatewayOrigins: the ingest of the gateway stream believes a message
// only on the subject of a marked device of its org, of a type the
// gateway stores, and never one that claims to be sourced.
func TestGatewayOrigins(t *testing.T) {
	var (
		marked    = topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}
		marked2   = topic.Thing{Org: "acme", Edge: "lab", Type: "sensor", Code: "s2"}
		unmarked  = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
		otherOrg  = topic.Thing{Org: "globex", Edge: "plant", Type: "sensor", Code: "s1"}
		inventory = &authz.Inventory{
			Orgs:  []authz.Org{{Code: "acme"}, {Code: "globex"}},
			Edges: []authz.Edge{{Org: "acme", Code: "hq"}, {Org: "acme", Code: "lab"}, {Org: "globex", Code: "plant"}},
			Things: []authz.Thing{
				{Thing: marked, CentralGateway: true},
				{Thing: marked2, CentralGateway: true},
				{Thing: unmarked},
				{Thing: otherOrg, CentralGateway: true},
			},
		}
	)
	o, err := newGatewayOrigins(inventory, "acme")
	if err != nil {
		t.Fatal(err)
	}
	sourced := nats.Header{authz.HeaderStreamSource: {"events-acme-hq 12 acme.hq.sensor.s1.evt"}}
	cases := []struct {
		name, subject string
		h             nats.Header
		ok            bool
	}{
		{"marked device", marked.Subject(topic.Event).String(), nil, true},
		{"marked device at another edge, telemetry", marked2.Subject(topic.Telemetry).String(), nil, true},
		{"ack", marked.Subject(topic.Ack).String(), nil, true},
		{"unmarked device", unmarked.Subject(topic.Event).String(), nil, false},
		{"another org", otherOrg.Subject(topic.Event).String(), nil, false},
		{"request", marked.Subject(topic.Request).String(), nil, false},
		{"command", marked.Subject(topic.Command).String(), nil, false},
		{"sourced", marked.Subject(topic.Event).String(), sourced, false},
		{"internal subject", topology.GatewaySubject(marked, topic.Event), nil, false},
		{"system thing", "acme.hq._sys.audit.evt", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.h
			if h == nil {
				h = nats.Header{}
			}
			org, err := o.Check(c.subject, h)
			if c.ok != (err == nil) {
				t.Fatalf("Check(%s): %v, want ok %v", c.subject, err, c.ok)
			}
			if org.Source != topology.GatewayStream("acme") {
				t.Errorf("origin %+v", org)
			}
			var oe *authz.OriginError
			if err != nil && (!errors.Is(err, authz.ErrOrigin) || !errors.As(err, &oe) || oe.Subject != c.subject) {
				t.Errorf("error %v is not an origin error of %s", err, c.subject)
			}
		})
	}
	inventory.Things[1].CentralGateway = false
	o.Update(inventory)
	if _, err := o.Check(marked2.Subject(topic.Event).String(), nats.Header{}); err == nil {
		t.Error("a device unmarked by an update is still believed")
	}
	if _, err := newGatewayOrigins(inventory, "_bad"); err == nil {
		t.Error("origins of a reserved org")
	}
}
