package edgekit

import (
	"testing"

	"github.com/lintel-io/lintel/authz"
)

// TestResetWatchTakesOnlySourceResets feeds the reset watch requests
// that are not resets of a source of a registered edge, or whose reply is
// not nats-server's scoped reply for that source: it sends none of them
// again, so that no request lets anyone steer an edge's answer to a
// subject of their choosing, or reset another consumer.
func TestResetWatchTakesOnlySourceResets(t *testing.T) {
	h := &Hub{cfg: HubConfig{Org: "acme"}}
	h.known.Store(&hubInventory{edges: map[string]bool{"hq": true}})
	w := &Supervisor{h: h}
	n, _ := authz.NamesFor("acme", "hq")
	reset := "$JS.hq.API.CONSUMER.RESET." + n.EventStream + "." + n.EventConsumer
	reply := "$JSC.R.hq.h4sh." + n.EventStream + "." + n.EventConsumer + ".r4nd"
	if edge, ok := w.sourceReset(reset, reply); !ok || edge != "hq" {
		t.Fatalf("the events source's reset: %q %v", edge, ok)
	}
	tlm := "$JS.hq.API.CONSUMER.RESET." + n.TelemetryStream + "." + n.TelemetryConsumer
	if _, ok := w.sourceReset(tlm, "$JSC.R.hq.h4sh."+n.TelemetryStream+"."+n.TelemetryConsumer+".r4nd"); !ok {
		t.Fatal("the telemetry source's reset refused")
	}
	lab, _ := authz.NamesFor("acme", "lab")
	for _, tc := range []struct{ name, subject, reply string }{
		{"reply on a device's command subject", reset, "acme.hq.lock.l1.cmd"},
		{"reply in a device's inbox", reset, "_INBOX.acme.hq.reader.r1.x"},
		{"reply scoped to another edge", reset, "$JSC.R.lab.h4sh." + n.EventStream + "." + n.EventConsumer + ".r4nd"},
		{"reply scoped to another consumer", reset, "$JSC.R.hq.h4sh." + n.EventStream + ".other.r4nd"},
		{"reply longer than nats-server's", reset, reply + ".more"},
		{"no reply", reset, ""},
		{"central's own domain", "$JS.hub.API.CONSUMER.RESET." + n.CredentialStream + "." + n.CredentialConsumer,
			"$JSC.R.hub.h4sh." + n.CredentialStream + "." + n.CredentialConsumer + ".r4nd"},
		{"an edge not registered", "$JS.lab.API.CONSUMER.RESET." + lab.EventStream + "." + lab.EventConsumer,
			"$JSC.R.lab.h4sh." + lab.EventStream + "." + lab.EventConsumer + ".r4nd"},
		{"a consumer of the edge that is no source's", "$JS.hq.API.CONSUMER.RESET." + n.EventStream + ".other",
			"$JSC.R.hq.h4sh." + n.EventStream + ".other.r4nd"},
		{"another edge's stream in the edge's domain", "$JS.hq.API.CONSUMER.RESET." + lab.EventStream + "." + lab.EventConsumer,
			"$JSC.R.hq.h4sh." + lab.EventStream + "." + lab.EventConsumer + ".r4nd"},
		{"not a reset", "$JS.hq.API.CONSUMER.DELETE." + n.EventStream + "." + n.EventConsumer, reply},
	} {
		if _, ok := w.sourceReset(tc.subject, tc.reply); ok {
			t.Errorf("%s: taken (%s, reply %s)", tc.name, tc.subject, tc.reply)
		}
	}
}

// TestNodeResetWatchTakesOnlyItsFlows: an edge node sends again only its
// server's resets of its command source and credential mirror, with
// nats-server's scoped reply; not the access service's own resets of the
// mirror's consumer (whose replies are its sync namespace), nor anything
// of another edge.
func TestNodeResetWatchTakesOnlyItsFlows(t *testing.T) {
	n, _ := authz.NamesFor("acme", "hq")
	wh, _ := authz.NamesFor("acme", "wh")
	node := &Node{names: n}
	cmd := "$JS.hub.API.CONSUMER.RESET." + n.CentralCommandStream + "." + n.CommandConsumer
	cmdReply := "$JSC.R.hub.h4sh." + n.CentralCommandStream + "." + n.CommandConsumer + ".r4nd"
	credReply := "$JSC.R.hub.h4sh." + n.CredentialStream + "." + n.CredentialConsumer + ".r4nd"
	for _, tc := range []struct{ subject, reply string }{{cmd, cmdReply}, {n.CredentialReset, credReply}} {
		if peer, ok := node.centralReset(tc.subject, tc.reply); !ok || peer != peerCentral {
			t.Fatalf("%s: %q %v", tc.subject, peer, ok)
		}
	}
	for _, tc := range []struct{ name, subject, reply string }{
		{"the access service's resync", n.CredentialReset, n.SyncReplyPrefix + ".1"},
		{"reply on a device's command subject", cmd, "acme.hq.lock.l1.cmd"},
		{"reply of the other flow", cmd, credReply},
		{"another edge's command consumer", "$JS.hub.API.CONSUMER.RESET." + wh.CentralCommandStream + "." + wh.CommandConsumer,
			"$JSC.R.hub.h4sh." + wh.CentralCommandStream + "." + wh.CommandConsumer + ".r4nd"},
		{"the edge's own domain", "$JS.hq.API.CONSUMER.RESET." + n.CentralCommandStream + "." + n.CommandConsumer,
			"$JSC.R.hq.h4sh." + n.CentralCommandStream + "." + n.CommandConsumer + ".r4nd"},
	} {
		if _, ok := node.centralReset(tc.subject, tc.reply); ok {
			t.Errorf("%s: taken (%s, reply %s)", tc.name, tc.subject, tc.reply)
		}
	}
}
