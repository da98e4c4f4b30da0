package authz_test

import (
	"slices"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

// TestCentralSendsEdgeOnlyConfig has central's identities publish, at
// central, on the subjects of a device of edge hq: its events, telemetry,
// state and acks. None of it crosses the leaf link (had it, hq's streams
// would capture it and source it back to central with hq's genuine
// stream-source header), while the device's configuration does.
func TestCentralSendsEdgeOnlyConfig(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central := startCentral(t, inv, c)
	hq := startEdge(t, inv, c, "hq", central, edgeSetup{authenticator: true})
	waitLeaf(t, hq)
	provisionCentral(t, central, c, "hq")
	ejs := provisionEdge(t, hq, c, "hq")
	n := names(t, "hq")

	r1 := mkThing("acme", "hq", "reader", "r1")
	r2 := mkThing("acme", "hq", "reader", "r2")
	marker := r2.Subject(topic.Config).String()
	svc := connectAs(t, hq.Server, c, authz.EdgeServiceUser("acme", "hq"))
	// Every thing subject of hq. (A subscriber on "acme.hq.>" at the edge
	// gets no configuration from central: nats-server v2.15.2 accepts that
	// wildcard interest from the leaf but delivers nothing through it once
	// the leaf's subscribe list is narrower.)
	onHQ := record(t, svc.Conn, "acme.hq.*.*.*", marker)

	for _, user := range []string{authz.ServiceUser("acme", "ingest"), authz.ServiceUser("acme", "ops")} {
		cl := connectAs(t, central, c, user, nats.CustomInboxPrefix(authz.UserInboxPrefix(user)))
		// Configuration reaches the edge once its interest has crossed the link.
		warm := r1.Subject(topic.Config).String()
		waitFor(t, "configuration from central at the edge", func() bool {
			if err := cl.Publish(warm, []byte("cfg")); err != nil {
				t.Fatal(err)
			}
			_ = cl.Flush()
			return slices.Contains(onHQ.seen(), warm)
		})
		for _, mt := range []topic.MessageType{topic.Event, topic.Telemetry, topic.State, topic.Ack} {
			if err := cl.Publish(r1.Subject(mt).String(), []byte("forged")); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.Publish(marker, nil); err != nil {
			t.Fatal(err)
		}
		onHQ.waitMarker(t)
		cl.noViolation(t)
	}
	for _, s := range onHQ.seen() {
		if s != r1.Subject(topic.Config).String() && s != marker {
			t.Errorf("the edge received %s from central", s)
		}
	}
	for _, name := range []string{n.EventStream, n.TelemetryStream} {
		str, err := ejs.Stream(testCtx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := str.Info(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 0 {
			t.Errorf("edge stream %s captured %d messages from central", name, info.State.Msgs)
		}
	}
}
