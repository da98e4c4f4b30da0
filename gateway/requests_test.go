package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// TestRequests sends a structured-mode request through the gateway to a
// responder at the edge, which answers into the device's own inbox; a
// request nobody answers gets 503 no-responders, and one from another
// device's source 403.
func TestRequests(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, nil)
	var ids message.IDGenerator
	sub, err := n.Conn().Subscribe(r1.Subject(topic.Request).String(), func(m *nats.Msg) {
		req, err := message.FromMsg(m)
		if err != nil {
			return
		}
		if !topic.InInbox(r1, m.Reply) {
			t.Errorf("reply subject %q is not r1's inbox", m.Reply)
			return
		}
		reply := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: topic.Thing{Org: "acme", Edge: "hq", Type: "_edge", Code: "hq"},
			Type: topic.Event, Name: "access.granted", CorrelationID: req.ID}
		rm, err := reply.ToMsg(nil)
		if err != nil {
			t.Error(err)
			return
		}
		rm.Subject = m.Reply
		_ = m.RespondMsg(rm)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := n.Conn().Flush(); err != nil {
		t.Fatal(err)
	}

	req, body := event(t, r1, topic.Request, "access.requested", map[string]string{"door": "front"})
	res := do(t, e, "POST", g.url+gateway.PathRequests, r1, "", ceHeader(), body)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != message.ContentTypeCloudEventsJSON {
		t.Fatalf("request: %d %s", res.status, res.body)
	}
	var reply message.Envelope
	if err := reply.UnmarshalJSON(res.body); err != nil || reply.CorrelationID != req.ID || reply.Name != "access.granted" {
		t.Fatalf("reply %+v: %v", reply, err)
	}

	_, body = event(t, r2, topic.Request, "access.requested", nil)
	if res := do(t, e, "POST", g.url+gateway.PathRequests, r2, "", ceHeader(), body); res.status != http.StatusServiceUnavailable || res.problem(t).Slug() != gateway.SlugNoResponders {
		t.Fatalf("no responders: %d %s", res.status, res.body)
	}
	_, body = event(t, r2, topic.Request, "access.requested", nil)
	if res := do(t, e, "POST", g.url+gateway.PathRequests, r1, "", ceHeader(), body); res.status != http.StatusForbidden || res.problem(t).Subject != r2.Subject(topic.Request).String() {
		t.Fatalf("r1 asking as r2: %d %s", res.status, res.body)
	}
}

// TestBinaryPercentEncoding posts an event in binary content mode whose
// name needs percent-encoding in its ce-type header; it is stored with the
// name decoded.
func TestBinaryPercentEncoding(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, nil)
	var ids message.IDGenerator
	id := ids.New()
	h := http.Header{
		"Ce-Specversion": {"1.0"}, "Ce-Id": {id.String()}, "Ce-Source": {"/acme/hq/reader/r1"},
		"Ce-Type": {"io.lintel.evt.porte%20ouverte%C3%A9"},
	}
	if res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", h, nil); res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	got := storedEnvelopes(t, n.JetStream(), n.Names().EventStream, r1.Subject(topic.Event).String())
	if len(got) != 1 || got[0].ID != id || got[0].Name != "porte ouverteé" {
		t.Fatalf("stored %+v", got)
	}
	h.Set("Ce-Type", "io.lintel.evt.bad%zz")
	h.Set("Ce-Id", ids.New().String())
	if res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", h, nil); res.status != http.StatusUnprocessableEntity || res.problem(t).Field != "type" {
		t.Fatalf("bad percent-encoding: %d %s", res.status, res.body)
	}
}
