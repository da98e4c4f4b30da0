package simulator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/devicekit/simulator"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

const testTimeout = 30 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// answerAccessRequests answers every reader's access requests on the edge,
// granting even card numbers.
func answerAccessRequests(t *testing.T, edge *devicetest.Edge) {
	t.Helper()
	sub, err := edge.Conn.Subscribe(edge.Org+"."+edge.Code+".reader.*.req", func(m *nats.Msg) {
		req, err := message.FromMsg(m)
		if err != nil {
			t.Errorf("access request: %v", err)
			return
		}
		ar, err := message.DecodePayload[message.AccessRequest](req)
		if err != nil {
			t.Errorf("access request: %v", err)
			return
		}
		dec := message.AccessDecision{Door: ar.Door, Granted: ar.Credential[len(ar.Credential)-1]%2 == 0, CredentialSetVersion: 1}
		if !dec.Granted {
			dec.Reason = message.DenyUnknown
		}
		var ids message.IDGenerator
		r := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: devicetest.EdgeThing(edge.Org, edge.Code), Type: topic.Event, Name: dec.MessageName(), CorrelationID: req.ID}
		if err := message.SetPayload(r, dec); err != nil {
			t.Error(err)
			return
		}
		rm, err := r.ToMsg(nil)
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
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := edge.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
}

func simConfig(edge *devicetest.Edge) simulator.Config {
	return simulator.Config{
		Org: devicetest.DefaultOrg, Edge: devicetest.DefaultEdge,
		Readers: 2, Locks: 2, DoorSensors: 2, EnvSensors: 2,
		ReaderInterval: 10 * time.Millisecond, DoorInterval: 10 * time.Millisecond, TelemetryInterval: 10 * time.Millisecond,
		Seed: 42,
		Connect: func(ctx context.Context, thing topic.Thing) (devicekit.Device, error) {
			if edge == nil {
				return nil, errors.New("no edge")
			}
			return devicekit.Connect(ctx, edge.Config(thing))
		},
	}
}

func TestSimulator(t *testing.T) {
	cfg := simConfig(nil)
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{Things: simulator.Things(cfg)})
	cfg = simConfig(edge)
	answerAccessRequests(t, edge)

	sim, err := simulator.Start(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	if got := sim.Stats().Devices; got != 8 {
		t.Fatalf("%d devices, want 8", got)
	}

	// Command every lock: unlock and lock are carried out, others rejected.
	for _, thing := range simulator.Things(cfg) {
		if thing.Type != string(simulator.Lock) {
			continue
		}
		acks, err := devicetest.RecordAcks(edge.Conn, thing)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			action string
			want   message.AckStatus
		}{{"unlock", message.AckCompleted}, {"lock", message.AckCompleted}, {"dance", message.AckRejected}} {
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
			if last := got[len(got)-1]; last.Status != tc.want {
				t.Errorf("%s %s: final ack %s, want %s", thing, tc.action, last.Status, tc.want)
			}
		}
		acks.Close()
	}

	waitFor(t, "every kind of device to have sent a few messages", func() bool {
		s := sim.Stats()
		return s.Acked >= 40 && s.Commands == 4
	})
	if err := sim.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-sim.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	s := sim.Stats()
	t.Logf("stats: %v", s)
	if s.Errors != 0 || s.Sent-s.Acked > uint64(s.Devices) {
		t.Errorf("stats %v: want every call acknowledged, but for those cut short by Stop", s)
	}

	// Every device was born, died, and reported what its kind reports.
	msgs, err := devicetest.Stored(testCtx(t), edge.JetStream, edge.Stream, ">")
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		thing topic.Thing
		name  string
	}
	seen := make(map[key]int)
	for _, m := range msgs {
		seen[key{m.Envelope.Source, m.Envelope.Name}]++
	}
	for _, thing := range simulator.Things(cfg) {
		want := []string{message.NameThingBirth, message.NameThingDeath}
		switch simulator.Kind(thing.Type) {
		case simulator.Lock, simulator.DoorSensor:
			want = append(want, message.NameDoorState)
		case simulator.EnvSensor:
			want = append(want, message.NameSensorReading)
		}
		for _, name := range want {
			if seen[key{thing, name}] == 0 {
				t.Errorf("%s stored no %q", thing, name)
			}
		}
	}
}

func TestStartFailsCleanly(t *testing.T) {
	cfg := simConfig(nil)
	things := simulator.Things(cfg)
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{Things: things})
	cfg = simConfig(edge)
	connected := 0
	cfg.Connect = func(ctx context.Context, thing topic.Thing) (devicekit.Device, error) {
		if connected == 3 {
			return nil, errors.New("no route to device")
		}
		connected++
		return devicekit.Connect(ctx, edge.Config(thing))
	}
	if _, err := simulator.Start(testCtx(t), cfg); err == nil {
		t.Fatal("Start succeeded with a failing connection")
	}
	// The devices connected before the failure were closed: each died.
	msgs, err := devicetest.Stored(testCtx(t), edge.JetStream, edge.Stream, ">")
	if err != nil {
		t.Fatal(err)
	}
	deaths := 0
	for _, m := range msgs {
		if m.Envelope.Name == message.NameThingDeath {
			deaths++
		}
	}
	if deaths != 3 {
		t.Errorf("%d deaths, want the 3 connected devices closed", deaths)
	}
}

// TestStartContextBoundsStartOnly: the context given to Start bounds the
// start only. The devices go on sending after it ends, and stop with Stop.
func TestStartContextBoundsStartOnly(t *testing.T) {
	cfg := simConfig(nil)
	cfg.Readers, cfg.Locks, cfg.DoorSensors = 0, 0, 0
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{Things: simulator.Things(cfg)})
	cfg = simConfig(edge)
	cfg.Readers, cfg.Locks, cfg.DoorSensors = 0, 0, 0
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := simulator.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	waitFor(t, "a reading", func() bool { return sim.Stats().Acked > 0 })
	cancel()
	after := sim.Stats().Acked
	waitFor(t, "readings after the start's context ended", func() bool { return sim.Stats().Acked >= after+4 })
	select {
	case <-sim.Done():
		t.Fatal("the simulator stopped when the start's context ended")
	default:
	}

	sim.Stop()
	select {
	case <-sim.Done():
	default:
		t.Fatal("Done not closed once Stop returned")
	}
	for _, d := range sim.Devices() {
		if _, err := d.PublishTelemetry(testCtx(t), message.NameSensorReading, message.SensorReading{Metric: "temperature", Value: 20, Unit: "Cel"}); !errors.Is(err, devicekit.ErrClosed) {
			t.Errorf("%s after Stop: publish error %v, want ErrClosed", d.Thing(), err)
		}
	}
	if err := sim.Close(); err != nil { // idempotent, and Stop met no error
		t.Errorf("Close after Stop: %v", err)
	}
}

func TestThings(t *testing.T) {
	got := simulator.Things(simulator.Config{Org: "acme", Edge: "hq", Readers: 2, Locks: 1, EnvSensors: 1})
	want := []string{"acme.hq.reader.reader-1", "acme.hq.reader.reader-2", "acme.hq.lock.lock-1", "acme.hq.sensor.sensor-1"}
	if len(got) != len(want) {
		t.Fatalf("Things = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("Things[%d] = %s, want %s", i, got[i], want[i])
		}
	}
}
