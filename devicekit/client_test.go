package devicekit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func TestBirthOnConnect(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[2]
	c := connect(t, edge, thing, func(cfg *devicekit.Config) {
		cfg.Model, cfg.Firmware = "L-100", "1.2.3"
		cfg.HeartbeatInterval = time.Hour
	})
	msgs := stored(t, edge, thing.Subject(topic.State).String())
	if len(msgs) != 1 {
		t.Fatalf("stored %d state messages after Connect, want the birth", len(msgs))
	}
	e := msgs[0].Envelope
	b, err := message.DecodePayload[message.Birth](e)
	if err != nil {
		t.Fatal(err)
	}
	want := message.Birth{BootID: c.BootID(), Model: "L-100", Firmware: "1.2.3", HeartbeatInterval: time.Hour}
	if e.Name != message.NameThingBirth || e.Seq != 1 || e.BootID != c.BootID() || b != want {
		t.Errorf("birth %q seq %d boot %s payload %+v, want %+v", e.Name, e.Seq, e.BootID, b, want)
	}
}

func TestHeartbeats(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[3]
	ch := subscribe(t, edge.Conn, thing.Subject(topic.State).String())
	c := connect(t, edge, thing, func(cfg *devicekit.Config) { cfg.HeartbeatInterval = 20 * time.Millisecond })

	isHeartbeat := func(e *message.Envelope) bool { return e.Name == message.NameThingHeartbeat }
	h1 := next(t, ch, "first heartbeat", isHeartbeat)
	h2 := next(t, ch, "second heartbeat", isHeartbeat)
	p1, err1 := message.DecodePayload[message.Heartbeat](h1)
	p2, err2 := message.DecodePayload[message.Heartbeat](h2)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if p1.BootID != c.BootID() || h2.Seq <= h1.Seq || p2.Uptime < p1.Uptime {
		t.Errorf("heartbeats %+v seq %d then %+v seq %d", p1, h1.Seq, p2, h2.Seq)
	}
}

func TestHeartbeatsOff(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[3]
	c := connect(t, edge, thing, func(cfg *devicekit.Config) { cfg.HeartbeatInterval = -1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range stored(t, edge, thing.Subject(topic.State).String()) {
		names = append(names, m.Envelope.Name)
	}
	if want := []string{message.NameThingBirth, message.NameThingDeath}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("state messages %v, want %v", names, want)
	}
}

// TestOwnInbox checks that replies, the stream's acknowledgements included,
// come back on the device's own inbox, the only one it may subscribe to.
func TestOwnInbox(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[0]
	c := connect(t, edge, thing, nil)
	replies := make(chan string, 1)
	sub, err := edge.Conn.Subscribe(thing.Subject(topic.Request).String(), func(m *nats.Msg) {
		replies <- m.Reply
		e, _ := message.FromMsg(m)
		r := &message.Envelope{ID: e.ID, Time: time.Now(), Source: devicetest.EdgeThing(thing.Org, thing.Edge), Type: topic.Event, Name: "test.reply", CorrelationID: e.ID}
		rm, _ := r.ToMsg(nil)
		rm.Subject = m.Reply
		_ = m.RespondMsg(rm)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := edge.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(testCtx(t), "test.request", nil); err != nil {
		t.Fatal(err)
	}
	if r := <-replies; !strings.HasPrefix(r, thing.InboxPrefix()+".") {
		t.Errorf("reply subject %q, want one under %q", r, thing.InboxPrefix())
	}
}

func TestTelemetry(t *testing.T) {
	tests := []struct {
		name        string
		noTelemetry bool // the stream does not capture tlm
		unacked     bool
		wantErr     error
		wantStored  bool
	}{
		{"acknowledged", false, false, nil, true},
		{"unacknowledged", false, true, nil, true},
		{"unacknowledged, not captured", true, true, nil, false},
		{"acknowledged, not captured", true, false, devicekit.ErrNotAcknowledged, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edge := devicetest.StartEdge(t, devicetest.EdgeOptions{NoTelemetry: tt.noTelemetry})
			thing := edge.Things[4]
			var live <-chan *nats.Msg
			if tt.wantErr == nil {
				live = subscribe(t, edge.Conn, thing.Subject(topic.Telemetry).String())
			}
			c := connect(t, edge, thing, func(cfg *devicekit.Config) {
				cfg.TelemetryUnacknowledged = tt.unacked
				cfg.AckTimeout = 100 * time.Millisecond
			})
			ctx := testCtx(t)
			if tt.wantErr != nil {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
			}
			_, err := c.PublishTelemetry(ctx, message.NameSensorReading, message.SensorReading{Metric: "temperature", Value: 20.5, Unit: "Cel"})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PublishTelemetry = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				var pe *devicekit.PublishError
				// Nothing captures the subject and nobody listens: the server
				// says so at once, and the device tries again until ctx ends.
				if !errors.As(err, &pe) || pe.Subject != thing.Subject(topic.Telemetry).String() || pe.Attempts < 2 || !errors.Is(err, nats.ErrNoResponders) {
					t.Errorf("error %v: want a *PublishError naming the subject, after several attempts, caused by no responders", err)
				}
				t.Logf("error: %v", err)
				return
			}
			e := next(t, live, "telemetry", func(*message.Envelope) bool { return true })
			if tt.wantStored {
				waitFor(t, "telemetry stored", func() bool {
					return count(storedIDs(t, edge, thing.Subject(topic.Telemetry).String()), e.ID) == 1
				})
			}
		})
	}
}

// TestPermissions checks, with the device's own credentials on a raw
// connection, that the server confines a device to its subjects.
func TestPermissions(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	reader, lock := edge.Things[0], edge.Things[2]
	seen := subscribe(t, edge.Conn, reader.Org+"."+reader.Edge+".>")

	asyncErrs := make(chan error, 16)
	nc, err := edge.Server.Connect(
		nats.UserInfo(reader.String(), string(devicetest.Password(reader))),
		nats.CustomInboxPrefix(reader.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErrs <- err }),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	violation := func(what string) {
		t.Helper()
		select {
		case err := <-asyncErrs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("%s: %v, want a permission violation", what, err)
			}
		case <-time.After(testTimeout):
			t.Fatalf("%s: no permission violation", what)
		}
	}

	forbidden := []string{
		lock.Subject(topic.Command).String(),   // another device's commands
		reader.Subject(topic.Command).String(), // its own commands: only the edge sends those
		lock.Subject(topic.Event).String(),     // another device's events
		"$JS.API.STREAM.INFO." + edge.Stream,   // the JetStream API
	}
	for _, subj := range forbidden {
		if err := nc.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
		violation("publish to " + subj)
	}
	// Messages from one connection arrive in order: had the server let a
	// forbidden one through, the edge would see it before this one.
	allowed := reader.Subject(topic.Request).String()
	if err := nc.Publish(allowed, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if m := <-seen; m.Subject != allowed {
		t.Fatalf("the edge saw %s first, want only %s", m.Subject, allowed)
	}

	for _, subj := range []string{lock.Subject(topic.Command).String(), "_INBOX.>", lock.InboxPrefix() + ".>"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		violation("subscribe to " + subj)
	}
}

// TestPermissionDenied checks that a device whose permissions are not those
// of its thing gets a clear error rather than a silent timeout.
func TestPermissionDenied(t *testing.T) {
	things := devicetest.DefaultThings(devicetest.DefaultOrg, devicetest.DefaultEdge)
	reader, lock, door := things[0], things[2], things[3]
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{Server: func(o *server.Options) {
		for _, u := range o.Users {
			switch u.Username {
			case reader.String():
				u.Permissions = devicetest.DevicePermissions(lock) // misconfigured
			case door.String():
				// May publish, but not receive its commands.
				u.Permissions.Subscribe.Allow = []string{door.InboxPrefix() + ".>"}
			}
		}
	}})

	cfg := edge.Config(reader)
	cfg.AckTimeout = 100 * time.Millisecond
	_, err := devicekit.Connect(testCtx(t), cfg)
	if !errors.Is(err, devicekit.ErrPermissionDenied) {
		t.Fatalf("Connect = %v, want ErrPermissionDenied", err)
	}
	t.Logf("publish: %v", err)

	c := connect(t, edge, door, nil)
	_, err = c.HandleCommands(testCtx(t), devicekit.HandlerFunc(func(context.Context, devicekit.Command) error { return nil }))
	if !errors.Is(err, devicekit.ErrPermissionDenied) {
		t.Fatalf("HandleCommands = %v, want ErrPermissionDenied", err)
	}
	t.Logf("subscribe: %v", err)
	// The failed attempt leaves no handler behind.
	_, err = c.HandleCommands(testCtx(t), devicekit.HandlerFunc(func(context.Context, devicekit.Command) error { return nil }))
	if !errors.Is(err, devicekit.ErrPermissionDenied) {
		t.Errorf("HandleCommands again = %v, want ErrPermissionDenied again", err)
	}
}

func TestStreamFull(t *testing.T) {
	const limit = 4
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{MaxMsgs: limit})
	thing := edge.Things[0]
	c := connect(t, edge, thing, nil) // the birth takes one place
	ctx := testCtx(t)

	var sent []message.ID
	for range limit - 1 {
		e := &message.Envelope{Type: topic.Event, Name: "test.fill"}
		if err := c.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e.ID)
	}
	e := &message.Envelope{Type: topic.Event, Name: "test.overflow"}
	err := c.Publish(ctx, e)
	if !errors.Is(err, devicekit.ErrStreamFull) {
		t.Fatalf("Publish into a full stream = %v, want ErrStreamFull", err)
	}
	var pe *devicekit.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("%T is not a *PublishError", err)
	}
	if pe.MsgID != e.ID || pe.Stream != edge.Stream || pe.Code != 10077 || !strings.Contains(pe.Description, "maximum messages") {
		t.Errorf("PublishError %+v: want the envelope ID, the stream, code 10077 and the server's text", pe)
	}
	t.Logf("error: %v", err)

	// Telemetry goes into the same stream, and is refused alike.
	if _, err := c.PublishTelemetry(ctx, message.NameSensorReading, nil); !errors.Is(err, devicekit.ErrStreamFull) {
		t.Errorf("PublishTelemetry = %v, want ErrStreamFull", err)
	}

	// Nothing stored before is lost.
	all := stored(t, edge, ">")
	if len(all) != limit || all[0].Envelope.Name != message.NameThingBirth {
		t.Fatalf("stream holds %d messages, want %d starting with the birth", len(all), limit)
	}
	for i, id := range sent {
		if all[i+1].Envelope.ID != id {
			t.Errorf("stored #%d is %s, want %s", i+1, all[i+1].Envelope.ID, id)
		}
	}
	if c.Stats().PublishErrors < 2 {
		t.Errorf("Stats %+v: want the refusals counted", c.Stats())
	}
}

func TestConnectErrors(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[0]
	tests := []struct {
		name    string
		mutate  func(*devicekit.Config)
		wantErr error
	}{
		{"no thing", func(c *devicekit.Config) { c.Thing = topic.Thing{} }, devicekit.ErrInvalidConfig},
		{"reserved thing type", func(c *devicekit.Config) { c.Thing.Type = topic.ThingTypeEdge }, devicekit.ErrInvalidConfig},
		{"wildcard code", func(c *devicekit.Config) { c.Thing.Code = "*" }, devicekit.ErrInvalidConfig},
		{"no URL", func(c *devicekit.Config) { c.URLs = nil }, devicekit.ErrInvalidConfig},
		{"negative timeout", func(c *devicekit.Config) { c.AckTimeout = -time.Second }, devicekit.ErrInvalidConfig},
		{"negative history", func(c *devicekit.Config) { c.CommandHistory = -1 }, devicekit.ErrInvalidConfig},
		{"wrong password", func(c *devicekit.Config) { c.Password = "hunter2-wrong" }, devicekit.ErrAuth},
		{"another thing's password", func(c *devicekit.Config) { c.Password = devicetest.Password(edge.Things[1]) }, devicekit.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := edge.Config(thing)
			tt.mutate(&cfg)
			c, err := devicekit.Connect(testCtx(t), cfg)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Connect = %v, want %v", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), string(cfg.Password)) {
				t.Errorf("the error %q shows the password", err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		cfg := edge.Config(thing)
		cfg.URLs = []string{"nats://127.0.0.1:1"}
		ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
		defer cancel()
		if _, err := devicekit.Connect(ctx, cfg); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Connect to a closed port: %v, want it to try until ctx ends", err)
		}
	})
}

func TestPasswordRedacted(t *testing.T) {
	const secret = "s3cr3t-value"
	cfg := devicekit.Config{User: "acme.hq.reader.r1", Password: secret}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "password", cfg.Password, "config", cfg)
	for _, s := range []string{
		fmt.Sprint(cfg.Password), fmt.Sprintf("%v %s %q %#v %+v", cfg.Password, cfg.Password, cfg.Password, cfg.Password, cfg),
		fmt.Sprintf("%#v", cfg), logged.String(),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("the password shows in %q", s)
		}
	}
}

// TestLogs checks that the device logs what happens, and never its password.
func TestLogs(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[0]
	var logs syncBuffer
	c := connect(t, edge, thing, func(cfg *devicekit.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if _, err := c.PublishEvent(testCtx(t), "test.logged", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if strings.Contains(out, string(devicetest.Password(thing))) {
		t.Error("the password appears in the logs")
	}
	if !strings.Contains(out, `"thing":"`+thing.String()+`"`) || !strings.Contains(out, `"msg":"born"`) {
		t.Errorf("logs lack the thing or the birth:\n%s", out)
	}
}

// TestHandlerPanic checks that a panicking handler fails its command and
// handling carries on.
func TestHandlerPanic(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[2]
	c := connect(t, edge, thing, nil)
	acks, err := devicetest.RecordAcks(edge.Conn, thing)
	if err != nil {
		t.Fatal(err)
	}
	defer acks.Close()
	sub, err := c.HandleCommands(testCtx(t), devicekit.HandlerFunc(func(_ context.Context, cmd devicekit.Command) error {
		if cmd.Action == "explode" {
			panic("boom")
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	for _, tc := range []struct {
		action string
		want   message.AckStatus
	}{{"explode", message.AckFailed}, {"unlock", message.AckCompleted}} {
		e, err := devicetest.NewCommand(thing, message.Command{Action: tc.action, Deadline: time.Now().Add(testTimeout)})
		if err != nil {
			t.Fatal(err)
		}
		if err := devicetest.PublishCommand(edge.Conn, thing, e, edge.CommandKey); err != nil {
			t.Fatal(err)
		}
		got, err := acks.Wait(testCtx(t), e.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if last := got[len(got)-1]; last.Status != tc.want || (tc.want == message.AckFailed && !strings.Contains(last.Error, "boom")) {
			t.Errorf("%s: final ack %+v, want %s", tc.action, last, tc.want)
		}
	}
	if s := c.Stats(); s.Commands != 2 || s.CommandsRun != 2 {
		t.Errorf("Stats %+v: want 2 commands received and run", s)
	}
}

// TestPublishTooLarge checks that a message larger than the server accepts
// fails at once rather than being retried.
func TestPublishTooLarge(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	c := connect(t, edge, edge.Things[0], nil)
	huge := map[string]string{"blob": strings.Repeat("x", 2<<20)}
	for _, unacked := range []bool{false, true} {
		var err error
		if unacked {
			c2 := connect(t, edge, edge.Things[4], func(cfg *devicekit.Config) { cfg.TelemetryUnacknowledged = true })
			_, err = c2.PublishTelemetry(testCtx(t), "test.huge", huge)
		} else {
			_, err = c.PublishEvent(testCtx(t), "test.huge", huge)
		}
		var pe *devicekit.PublishError
		if !errors.Is(err, devicekit.ErrInvalidEnvelope) || !errors.Is(err, nats.ErrMaxPayload) || !errors.As(err, &pe) || pe.Attempts != 1 {
			t.Errorf("unacked %t: %v, want one attempt failing with ErrInvalidEnvelope and nats.ErrMaxPayload", unacked, err)
		}
	}
}
