package devicekit_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// BenchmarkPublish compares the device's publishing with raw nats.go doing
// the same on the same server, in the same run:
//
//   - event/devicekit: PublishEvent, stamped, encoded, acknowledged by the
//     stream; event/devicekit-outbox: the same through an outbox in the
//     test's temporary directory (two fsyncs each); event/raw-request: nc.RequestMsg of a pre-encoded envelope to
//     the same stream subject, waiting for the PubAck unparsed;
//   - telemetry/devicekit-unacked: PublishTelemetry without acknowledgement;
//     telemetry/raw-publish: nc.PublishMsg of a pre-encoded envelope.
//
// The raw messages carry a new Nats-Msg-Id each time, so that the stream
// stores every one of them, as it does the device's.
func BenchmarkPublish(b *testing.B) {
	edge, err := devicetest.NewEdge(devicetest.EdgeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(edge.Close)
	things := edge.Things
	noHeartbeat := func(cfg *devicekit.Config) { cfg.HeartbeatInterval = -1 }
	acked := connect(b, edge, things[0], noHeartbeat)
	unacked := connect(b, edge, things[1], func(cfg *devicekit.Config) {
		noHeartbeat(cfg)
		cfg.TelemetryUnacknowledged = true
	})
	kept := connect(b, edge, things[3], func(cfg *devicekit.Config) {
		noHeartbeat(cfg)
		cfg.Outbox = b.TempDir()
	})
	rawThing := things[2]
	raw, err := edge.Server.Connect(
		nats.UserInfo(rawThing.String(), string(devicetest.Password(rawThing))),
		nats.CustomInboxPrefix(rawThing.InboxPrefix()),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.Close)

	ctx := context.Background()
	decision := message.AccessDecision{Granted: true, Door: "front", CredentialSetVersion: 7}
	reading := message.SensorReading{Metric: "temperature", Value: 21.5, Unit: "Cel"}

	// encoded returns the wire form of an envelope like the device's.
	encoded := func(mt topic.MessageType, name string, payload any) *nats.Msg {
		var ids message.IDGenerator
		st := message.Stamper{Source: rawThing, BootID: ids.New()}
		e := &message.Envelope{Type: mt, Name: name}
		if err := message.SetPayload(e, payload); err != nil {
			b.Fatal(err)
		}
		st.Stamp(e)
		m, err := e.ToMsg(nil)
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	perSecond := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	}

	b.Run("event/devicekit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := acked.PublishEvent(ctx, decision.MessageName(), decision); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	b.Run("event/devicekit-outbox", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := kept.PublishEvent(ctx, decision.MessageName(), decision); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	b.Run("event/raw-request", func(b *testing.B) {
		m := encoded(topic.Event, decision.MessageName(), decision)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			m.Header.Set(nats.MsgIdHdr, "bench-"+strconv.Itoa(i)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
			if _, err := raw.RequestMsg(m, 10*time.Second); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	b.Run("telemetry/devicekit-unacked", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := unacked.PublishTelemetry(ctx, message.NameSensorReading, reading); err != nil {
				b.Fatal(err)
			}
		}
		if err := devicekit.Conn(unacked).Flush(); err != nil {
			b.Fatal(err)
		}
		perSecond(b)
	})
	b.Run("telemetry/raw-publish", func(b *testing.B) {
		m := encoded(topic.Telemetry, message.NameSensorReading, reading)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			// A new Nats-Msg-Id each time, or the stream would drop the
			// copies as duplicates without storing them.
			i++
			m.Header.Set(nats.MsgIdHdr, "bench-"+strconv.Itoa(i)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
			if err := raw.PublishMsg(m); err != nil {
				b.Fatal(err)
			}
		}
		if err := raw.Flush(); err != nil {
			b.Fatal(err)
		}
		perSecond(b)
	})
}
