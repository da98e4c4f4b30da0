package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// commandKey returns the public key of org acme's command key, which
// central signs its commands with.
func (x *cgw) commandKey(t *testing.T) string {
	t.Helper()
	seed := x.seeds["acme"]
	kp, err := nkeys.FromSeed([]byte(seed.Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// httpDevice connects thing through the central gateway as an HTTP device
// that acts on central's signed commands.
func (x *cgw) httpDevice(t *testing.T, thing topic.Thing) devicekit.Device {
	t.Helper()
	dev, err := devicekit.ConnectHTTP(testCtx(t), devicekit.HTTPConfig{
		Thing: thing, URL: strings.TrimSuffix(x.url, gateway.PathEvents), Password: devicekit.Password(x.password(thing)),
		CommandKeys: []string{x.commandKey(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	return dev
}

// send sends an unlock to thing through central's hub, with deadline d.
func (x *cgw) send(t *testing.T, thing topic.Thing, key string, d time.Duration) message.ID {
	t.Helper()
	res, err := x.c.Hub("acme").SendCommand(testCtx(t), thing,
		message.Command{Action: "calibrate", Deadline: time.Now().Add(d), IdempotencyKey: key}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return res.ID()
}

// outcome waits for the final outcome of command id of thing, as central's
// hub reads it.
func (x *cgw) outcome(t *testing.T, thing topic.Thing, id message.ID) message.AckStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), 30*time.Second)
	defer cancel()
	for {
		o, err := x.c.Hub("acme").CommandStatus(ctx, thing, id)
		if err != nil {
			t.Fatalf("outcome of %s: %v", id, err)
		}
		if o.Final() {
			return o.Status
		}
		select {
		case <-ctx.Done():
			t.Fatalf("outcome of %s: still %q", id, o.Status)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestCentralGatewayCommands: central's commands to a device of the
// central gateway reach it through the gateway, signed by central, and its
// acks reach central's hub and the database; its edge never sees them.
func TestCentralGatewayCommands(t *testing.T) {
	x := startCentralGateway(t)
	dev := x.httpDevice(t, cgwS1)
	got := make(chan devicekit.Command, 4)
	sub, err := dev.HandleCommands(testCtx(t), devicekit.HandlerFunc(func(_ context.Context, cmd devicekit.Command) error {
		got <- cmd
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()

	t.Run("DeliveredAndAcked", func(t *testing.T) {
		id := x.send(t, cgwS1, "k1", time.Minute)
		select {
		case cmd := <-got:
			if cmd.Action != "calibrate" || cmd.IdempotencyKey != "k1" {
				t.Fatalf("device got %+v", cmd)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the device never got the command")
		}
		if st := x.outcome(t, cgwS1, id); st != message.AckCompleted {
			t.Fatalf("outcome %q, want completed", st)
		}
		x.ingested(t)
		var status string
		if err := x.pool.QueryRow(testCtx(t), `SELECT status FROM lintel.command_acks WHERE command_id = $1 AND status = 'completed'`,
			id.String()).Scan(&status); err != nil {
			t.Fatalf("the completed ack is not in the database: %v", err)
		}
	})

	t.Run("NotOnTheEdgeSubject", func(t *testing.T) {
		// The edge's share of the command stream holds none of them.
		n, err := authz.NamesFor("acme", "hq")
		if err != nil {
			t.Fatal(err)
		}
		s, err := x.c.JetStream("acme").Stream(testCtx(t), n.CentralCommandStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(testCtx(t), jetstream.WithSubjectFilter(n.CommandFilter))
		if err != nil {
			t.Fatal(err)
		}
		if len(info.State.Subjects) != 0 || info.State.Msgs == 0 {
			t.Fatalf("edge hq's commands: %v of %d in the stream", info.State.Subjects, info.State.Msgs)
		}
	})

	t.Run("ExpiredNeverDelivered", func(t *testing.T) {
		// s2 does not poll: its command expires at the gateway, which
		// stores the expired ack as the device.
		id := x.send(t, cgwS2, "k2", 1500*time.Millisecond)
		if st := x.outcome(t, cgwS2, id); st != message.AckExpired {
			t.Fatalf("outcome %q, want expired", st)
		}
		dev2 := x.httpDevice(t, cgwS2)
		ran := make(chan struct{}, 1)
		sub2, err := dev2.HandleCommands(testCtx(t), devicekit.HandlerFunc(func(context.Context, devicekit.Command) error {
			ran <- struct{}{}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer sub2.Stop()
		// A command sent after it is delivered; the expired one never is.
		id2 := x.send(t, cgwS2, "k3", time.Minute)
		if st := x.outcome(t, cgwS2, id2); st != message.AckCompleted {
			t.Fatalf("outcome %q, want completed", st)
		}
		if len(ran) != 1 {
			t.Fatalf("the device ran %d commands, want 1", len(ran))
		}
	})
}

// TestCentralGatewayCommandsConfined attacks the central gateway's command
// path against a real central: a device cannot read another's commands,
// and the gateway's own user cannot make itself a consumer that would.
func TestCentralGatewayCommandsConfined(t *testing.T) {
	x := startCentralGateway(t)
	base := strings.TrimSuffix(x.url, gateway.PathEvents)

	t.Run("UnmarkedDeviceRefused", func(t *testing.T) {
		res := do(t, nil, "GET", base+gateway.PathCommands+"?wait=0s", cgwR9, x.password(cgwR9), nil, nil)
		if res.status != http.StatusUnauthorized {
			t.Fatalf("r9 polled: %d %s", res.status, res.body)
		}
	})

	t.Run("OwnCommandsOnly", func(t *testing.T) {
		x.send(t, cgwS2, "for-s2", time.Minute)
		res := do(t, nil, "GET", base+gateway.PathCommands+"?wait=1s", cgwS1, x.password(cgwS1), nil, nil)
		if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != "[]" {
			t.Fatalf("s1 polled: %d %s", res.status, res.body)
		}
	})

	t.Run("GatewayUserCannotMakeConsumers", func(t *testing.T) {
		nc, err := nats.Connect(x.c.ClientURL(), nats.UserInfo(authz.ServiceUser("acme", "gw"), x.service("gw").Reveal()),
			nats.CustomInboxPrefix(authz.UserInboxPrefix(authz.ServiceUser("acme", "gw"))))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(testCtx(t), 3*time.Second)
		defer cancel()
		stream, _ := authz.CentralCommandStreamConfig("acme")
		_, err = js.CreateOrUpdateConsumer(ctx, stream.Name, jetstream.ConsumerConfig{
			Durable: "steal", FilterSubject: authz.InternalPrefix + ".acme.>", AckPolicy: jetstream.AckExplicitPolicy})
		if err == nil {
			t.Fatal("the gateway's user made a consumer of every command")
		}
		_, err = js.OrderedConsumer(ctx, stream.Name, jetstream.OrderedConsumerConfig{})
		if err == nil {
			t.Fatal("the gateway's user made an ordered consumer of the command stream")
		}
		// Its own consumer cannot be widened either.
		cfg := topology.GatewayCommandConsumerConfig("acme")
		cfg.FilterSubject = authz.InternalPrefix + ".acme.>"
		if _, err := js.UpdateConsumer(ctx, stream.Name, cfg); err == nil {
			t.Fatal("the gateway's user widened its command consumer")
		}
	})
}
