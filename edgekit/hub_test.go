package edgekit_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

func TestHubForwardsEvents(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{})
	devs := h.devices(h.edges["hq"])
	hubPublishEvents(t, devs, 20)
	h.waitForwarded()
	got := h.checkForwarded()
	if n := hubCountEvents(got, message.NameSensorReading); n != 10*20 {
		t.Fatalf("central holds %d events, want %d", n, 10*20)
	}
}

// TestHubOutage publishes 10,000 events from 10 devices while the link to
// central is down, in several kinds of outage, and checks that central ends
// up with every event of the edge exactly once, unchanged and in order.
func TestHubOutage(t *testing.T) {
	const devices, perDevice = 10, 1000
	cases := []struct {
		name string
		// during runs while the link is cut, around the publishing of the
		// events: it publishes them itself.
		during func(t *testing.T, h *hubTopo, e *hubEdge, devs []*devicekit.Client)
	}{
		{"link cut", func(t *testing.T, h *hubTopo, e *hubEdge, devs []*devicekit.Client) {
			hubPublishEvents(t, devs, perDevice)
		}},
		{"central restarted", func(t *testing.T, h *hubTopo, e *hubEdge, devs []*devicekit.Client) {
			hubPublishEvents(t, devs, perDevice)
			if err := h.central.Restart(); err != nil {
				t.Fatal(err)
			}
		}},
		{"edge restarted", func(t *testing.T, h *hubTopo, e *hubEdge, devs []*devicekit.Client) {
			hubPublishEvents(t, devs, perDevice/2)
			if err := e.srv.Restart(); err != nil {
				t.Fatal(err)
			}
			hubPublishEvents(t, devs, perDevice/2)
		}},
		{"link flapping", func(t *testing.T, h *hubTopo, e *hubEdge, devs []*devicekit.Client) {
			// The link comes and goes every second or so while the devices
			// publish, a bounded number of times; the test restores it at
			// the end.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range 8 {
					select {
					case <-stop:
						return
					case <-time.After(time.Duration(700+100*i) * time.Millisecond):
					}
					if i%2 == 0 {
						e.proxy.Restore()
					} else {
						e.proxy.Cut()
					}
				}
			})
			hubPublishEvents(t, devs, perDevice)
			close(stop)
			wg.Wait()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startHubTopo(t, hubTopoOptions{devices: devices})
			e := h.edges["hq"]
			devs := h.devices(e)
			hubPublishEvents(t, devs, 5)
			h.waitForwarded()

			e.proxy.Cut()
			cut := time.Now()
			tc.during(t, h, e, devs)
			e.proxy.Restore()
			h.waitForwarded()
			got := h.checkForwarded()
			if n, want := hubCountEvents(got, message.NameSensorReading), devices*(perDevice+5); n != want {
				t.Fatalf("central holds %d events, want %d", n, want)
			}
			// Central's timestamp of an event that waited out the outage is
			// its own receive time, which is what marks it as replayed
			// downstream; the envelope is untouched (checkForwarded).
			late := 0
			for _, m := range got {
				if m.env.Time.After(cut) && m.received.Before(m.env.Time) {
					t.Fatalf("event %s stored at central at %v, before its time %v", m.env.ID, m.received, m.env.Time)
				}
				if m.env.Time.After(cut) {
					late++
				}
			}
			if late < devices*perDevice {
				t.Fatalf("%d events from the outage, want at least %d", late, devices*perDevice)
			}
			if h.sup != nil {
				t.Logf("supervisor: %+v", h.sup.Stats())
			}
		})
	}
}

// TestHubKickExactlyOnce kicks the source again and again while devices
// publish: every kick restarts sourcing, and nothing is lost or stored
// twice.
func TestHubKickExactlyOnce(t *testing.T) {
	// The supervisor runs, as it does in production: a kick that lands
	// while a reset is in flight can leave a source idle, and restarting
	// idle sources is the supervisor's job. What this test asserts is that
	// kicks neither lose nor duplicate.
	h := startHubTopo(t, hubTopoOptions{devices: 5})
	e := h.edges["hq"]
	devs := h.devices(e)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 3 {
			select {
			case <-done:
				return
			default:
			}
			if err := h.hub.Kick(hubCtx(t), "hq"); err != nil {
				t.Error(err)
				return
			}
			hubWaitFor(t, "sources running again", func() bool {
				st, err := h.hub.Sources(hubCtx(t))
				return err == nil && len(st) == 3 && st[0].Flow == edgekit.FlowEvents && st[0].Active >= 0 &&
					st[1].Flow == edgekit.FlowTelemetry && st[1].Active >= 0 &&
					st[2].Flow == edgekit.FlowPlatform && st[2].Active >= 0
			})
		}
	})
	hubPublishEvents(t, devs, 600)
	close(done)
	wg.Wait()
	h.waitForwarded()
	got := h.checkForwarded()
	if n := hubCountEvents(got, message.NameSensorReading); n != 5*600 {
		t.Fatalf("central holds %d events, want %d", n, 5*600)
	}
	if err := h.hub.Kick(hubCtx(t), "nowhere"); !errors.Is(err, edgekit.ErrEdgeNotRegistered) {
		t.Fatalf("kick of an unregistered edge: %v, want ErrEdgeNotRegistered", err)
	}
}

// TestHubDeviceClockSkew forwards events from devices whose clocks are a
// year off: forwarding does not look at the envelope time.
func TestHubDeviceClockSkew(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{devices: 2})
	e := h.edges["hq"]
	for i, skew := range []time.Duration{-365 * 24 * time.Hour, 365 * 24 * time.Hour} {
		d, err := devicekit.Connect(hubCtx(t), devicekit.Config{
			Thing:             e.things[i],
			URLs:              []string{e.srv.ClientURL()},
			Password:          devicekit.Password(h.passwords[authz.DeviceUser(e.things[i])]),
			HeartbeatInterval: -1,
			Now:               func() time.Time { return time.Now().Add(skew) },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		hubPublishEvents(t, []*devicekit.Client{d}, 10)
	}
	h.waitForwarded()
	got := h.checkForwarded()
	if n := hubCountEvents(got, message.NameSensorReading); n != 20 {
		t.Fatalf("central holds %d events, want 20", n)
	}
}

// TestHubCommandRoundTrip sends a command from central, sees it arrive in
// the edge's command stream, and sees the device's ack, published on the
// edge, arrive in central's event stream.
func TestHubCommandRoundTrip(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{devices: 1})
	e := h.edges["hq"]
	thing := e.things[0]
	cmd := message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k1"}
	res, err := h.hub.SendCommand(hubCtx(t), thing, cmd, "operator:alice")
	if err != nil {
		t.Fatal(err)
	}
	id := res.ID()

	var got message.Envelope
	hubWaitFor(t, "the command in the edge's command stream", func() bool {
		s, err := e.js.Stream(hubCtx(t), e.names.CommandStream)
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(hubCtx(t), authz.CommandSubject(thing))
		if err != nil {
			return false
		}
		got = message.Envelope{}
		return message.DecodeMsg(hubRawMsg{m}.msg(), &got, &message.DecodeOptions{SkipSubjectCheck: true}) == nil
	})
	if got.ID != id || got.Type != topic.Command || got.Source != thing {
		t.Fatalf("edge got envelope %s %s from %s, want command %s to %s", got.ID, got.Type, got.Source, id, thing)
	}
	c, err := message.DecodePayload[message.Command](&got)
	if err != nil {
		t.Fatal(err)
	}
	if c.Action != "unlock" || c.IdempotencyKey != "k1" || c.RequestedBy != "operator:alice" || c.Deadline.Sub(cmd.Deadline).Abs() > time.Millisecond {
		t.Fatalf("command arrived as %+v", c)
	}

	// The device's ack, as the edge publishes it on the device's ack
	// subject, lands in the edge's event stream and so at central.
	ack := &message.Envelope{
		ID: (&message.IDGenerator{}).New(), Time: time.Now().UTC(), Source: thing,
		Type: topic.Ack, Name: message.NameAck, CorrelationID: id, Seq: 1,
	}
	if err := message.SetPayload(ack, message.Ack{CommandID: id, Status: message.AckCompleted}); err != nil {
		t.Fatal(err)
	}
	msg, err := ack.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(hubCtx(t), msg); err != nil {
		t.Fatal(err)
	}
	h.waitForwarded()
	all := h.checkForwarded()
	m, ok := all[ack.ID]
	if !ok || m.env.CorrelationID != id {
		t.Fatalf("ack %s of command %s not at central", ack.ID, id)
	}
}

func TestHubSendCommandRejects(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{devices: 1, noSupervisor: true})
	thing := h.edges["hq"].things[0]
	other := thing
	other.Org = "globex"
	soon := time.Now().Add(time.Minute)
	cases := []struct {
		name  string
		thing topic.Thing
		cmd   message.Command
		want  error
	}{
		{"no deadline", thing, message.Command{Action: "unlock", IdempotencyKey: "k"}, edgekit.ErrNoDeadline},
		{"expired", thing, message.Command{Action: "unlock", IdempotencyKey: "k", Deadline: time.Now().Add(-time.Second)}, edgekit.ErrCommandExpired},
		{"no idempotency key", thing, message.Command{Action: "unlock", Deadline: soon}, edgekit.ErrNoIdempotencyKey},
		{"other org", other, message.Command{Action: "unlock", IdempotencyKey: "k", Deadline: soon}, edgekit.ErrWrongOrg},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.hub.SendCommand(hubCtx(t), tc.thing, tc.cmd, "test"); !errors.Is(err, tc.want) {
				t.Fatalf("SendCommand: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := h.hub.SendCommand(hubCtx(t), topic.Thing{Org: hubOrg}, message.Command{}, ""); err == nil {
		t.Fatal("SendCommand to an invalid thing succeeded")
	}
}

// TestHubRegisterRemoveEdge registers a second edge after the first, checks
// its events and credentials flow, then removes it.
func TestHubRegisterRemoveEdge(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{edges: []string{"hq", "wh"}, devices: 2})
	ctx := hubCtx(t)
	// Start over with a hub that knows only hq, then register wh.
	if err := h.hub.RemoveEdge(ctx, "wh"); err != nil {
		t.Fatal(err)
	}
	if edges, err := h.hub.Edges(ctx); err != nil || len(edges) != 1 || edges[0] != "hq" {
		t.Fatalf("edges after removal: %v, %v", edges, err)
	}
	if err := h.hub.RemoveEdge(ctx, "wh"); err != nil {
		t.Fatalf("second removal: %v", err)
	}
	if _, err := h.hub.PutCredential(ctx, "wh", "card.1", []byte("x")); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("credential of a removed edge: %v", err)
	}
	wh := h.edges["wh"]
	n := hubStreamMsgs(h.hubJS, h.hub.EventStream())
	hubPublishEvents(t, h.devices(wh), 3)

	if err := h.hub.RegisterEdge(ctx, "wh"); err != nil {
		t.Fatal(err)
	}
	if err := h.hub.RegisterEdge(ctx, "wh"); err != nil {
		t.Fatalf("second registration: %v", err)
	}
	h.waitForwarded()
	h.checkForwarded()
	if hubStreamMsgs(h.hubJS, h.hub.EventStream()) <= n {
		t.Fatal("no event of wh reached central")
	}

	// Its credential bucket reaches the edge's mirror.
	if _, err := h.hub.PutCredential(ctx, "wh", "card.1", []byte("holder-7")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.hub.PutCredential(ctx, "wh", "card.2", []byte("holder-8")); err != nil {
		t.Fatal(err)
	}
	if err := h.hub.DeleteCredential(ctx, "wh", "card.2"); err != nil {
		t.Fatal(err)
	}
	kv, err := wh.js.KeyValue(ctx, wh.names.CredentialBucket)
	if err != nil {
		t.Fatal(err)
	}
	hubWaitFor(t, "credentials in the edge's mirror", func() bool {
		e1, err1 := kv.Get(ctx, "card.1")
		_, err2 := kv.Get(ctx, "card.2")
		return err1 == nil && string(e1.Value()) == "holder-7" && errors.Is(err2, jetstream.ErrKeyNotFound)
	})
	st, err := h.hub.Sources(ctx)
	if err != nil || len(st) != 6 {
		t.Fatalf("sources: %+v, %v", st, err)
	}
	for i, s := range st {
		wantFlow, wantStream := edgekit.FlowEvents, "events-"+hubOrg+"-"+s.Edge
		switch i % 3 {
		case 1:
			wantFlow, wantStream = edgekit.FlowTelemetry, "telemetry-"+hubOrg+"-"+s.Edge
		case 2:
			wantFlow, wantStream = edgekit.FlowPlatform, "platform-"+hubOrg+"-"+s.Edge
		}
		if s.Flow != wantFlow || s.Stream != wantStream {
			t.Errorf("source %d: %+v, want flow %s of %s", i, s, wantFlow, wantStream)
		}
	}
	if _, err := h.hub.PutCredential(ctx, "HUB", "k", nil); err == nil {
		t.Fatal("credential for an invalid edge code accepted")
	}
}
