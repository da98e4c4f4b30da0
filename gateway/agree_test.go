package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// TestGatewayAgreesWithServer posts, as each of three devices, a message
// of every message type for every thing of the inventory and for things it
// does not know, and publishes the same subjects as the same device on a
// plain NATS connection to the edge's nats-server: the gateway refuses
// (403) exactly what the server refuses (a permissions violation).
func TestGatewayAgreesWithServer(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, func(c *gateway.Config) { c.Rate = -1 })

	targets := []topic.Thing{r1, r2, l1, s1, labR1, othR1,
		{Org: "acme", Edge: "hq", Type: "reader", Code: "ghost"},
		{Org: "acme", Edge: "hq", Type: "door", Code: "r1"},
		{Org: "acme", Edge: "lab", Type: "reader", Code: "r1"},
		{Org: "other", Edge: "hq", Type: "reader", Code: "r1"},
		{Org: "acme", Edge: "hq", Type: "_edge", Code: "hq"},
		{Org: "acme", Edge: "hq", Type: "_sys", Code: "r1"},
	}
	types := topic.MessageTypes()
	var allowed, refused int
	for _, dev := range []topic.Thing{r1, l1, s1} {
		server := serverRefusals(t, n.ClientURL(), dev, e.password(dev), targets, types)
		for _, target := range targets {
			for _, mt := range types {
				subj := target.Subject(mt).String()
				_, body := event(t, target, mt, "probe", nil)
				res := do(t, e, "POST", g.url+gateway.PathEvents, dev, "", ceHeader(), body)
				gwRefused := res.status == http.StatusForbidden
				if !gwRefused && res.status != http.StatusOK && res.status != http.StatusUnprocessableEntity {
					t.Fatalf("%s publishing %s: status %d %s", dev, subj, res.status, res.body)
				}
				if gwRefused != server[subj] {
					t.Errorf("%s publishing %s: gateway refused=%v, nats-server refused=%v", dev, subj, gwRefused, server[subj])
				}
				if gwRefused {
					refused++
				} else {
					allowed++
				}
			}
		}
	}
	t.Logf("%d subjects allowed and %d refused by both", allowed, refused)
	if allowed == 0 || refused == 0 {
		t.Fatalf("sample not mixed: %d allowed, %d refused", allowed, refused)
	}
}

// serverRefusals publishes every subject of targets × types as dev on a
// NATS connection of its own and returns which the server refused.
func serverRefusals(t *testing.T, url string, dev topic.Thing, pass string, targets []topic.Thing, types []topic.MessageType) map[string]bool {
	t.Helper()
	errs := make(chan error, 1024)
	nc, err := nats.Connect(url, nats.UserInfo(authz.DeviceUser(dev), pass), nats.CustomInboxPrefix(dev.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	refused := map[string]bool{}
	for i, target := range targets {
		for _, mt := range types {
			subj := target.Subject(mt).String()
			if err := nc.Publish(subj, []byte("probe")); err != nil {
				t.Fatal(err)
			}
		}
		// A subject no device may use marks the end of this round: the
		// server's errors arrive in order, so once its refusal is in,
		// every refusal before it is too.
		marker := fmt.Sprintf("zz.marker.%d", i)
		if err := nc.Publish(marker, nil); err != nil {
			t.Fatal(err)
		}
		if err := nc.FlushTimeout(wait); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(wait)
		for done := false; !done; {
			select {
			case err := <-errs:
				msg := err.Error()
				if strings.Contains(msg, `"`+marker+`"`) {
					done = true
					break
				}
				if !strings.Contains(msg, "ermissions violation") {
					t.Fatalf("unexpected error: %v", err)
				}
				start := strings.Index(msg, `"`)
				end := strings.LastIndex(msg, `"`)
				if start < 0 || end <= start {
					t.Fatalf("no subject in %v", err)
				}
				refused[msg[start+1:end]] = true
			case <-timeout:
				t.Fatalf("no refusal of the marker %s", marker)
			}
		}
	}
	return refused
}
