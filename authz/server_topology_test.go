package authz_test

import (
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// provisionCentral creates, as the central service "ingest", what central
// holds for edges: the org's event stream sourcing them, its command
// stream, and per edge the credential bucket with the durable consumers its
// mirror and its command stream read through.
func provisionCentral(t testing.TB, central *natstest.Server, c *natsCreds, edges ...string) jetstream.JetStream {
	t.Helper()
	nc := connectAs(t, central, c, authz.ServiceUser("acme", "ingest"))
	js, err := jetstream.New(nc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	cmdCfg, err := authz.CentralCommandStreamConfig("acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, cmdCfg); err != nil {
		t.Fatalf("command stream: %v", err)
	}
	for _, e := range edges {
		n := names(t, e)
		if _, err := js.CreateOrUpdateKeyValue(ctx, n.CredentialBucketConfig()); err != nil {
			t.Fatalf("credential bucket %s: %v", n.CredentialBucket, err)
		}
		if _, err := js.CreateOrUpdatePushConsumer(ctx, n.CredentialStream, n.CredentialConsumerConfig()); err != nil {
			t.Fatalf("credential consumer: %v", err)
		}
		if _, err := js.CreateOrUpdatePushConsumer(ctx, n.CentralCommandStream, n.CommandConsumerConfig()); err != nil {
			t.Fatalf("command consumer: %v", err)
		}
	}
	evCfg, err := authz.CentralEventStreamConfig("acme", edges...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, evCfg); err != nil {
		t.Fatalf("central event stream: %v", err)
	}
	return js
}

// provisionEdge creates, as the edge service, what an edge holds: its event
// and telemetry streams with the durable consumers central sources through, its mirror of
// its credential bucket and its command stream.
func provisionEdge(t testing.TB, e *testEdge, c *natsCreds, edge string) jetstream.JetStream {
	t.Helper()
	nc := connectAs(t, e.Server, c, authz.EdgeServiceUser("acme", edge))
	js, err := jetstream.New(nc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	n := names(t, edge)
	if _, err := js.CreateOrUpdateStream(ctx, n.EventStreamConfig()); err != nil {
		t.Fatalf("event stream: %v", err)
	}
	if _, err := js.CreateOrUpdatePushConsumer(ctx, n.EventStream, n.EventConsumerConfig()); err != nil {
		t.Fatalf("event consumer: %v", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, n.TelemetryStreamConfig()); err != nil {
		t.Fatalf("telemetry stream: %v", err)
	}
	if _, err := js.CreateOrUpdatePushConsumer(ctx, n.TelemetryStream, n.TelemetryConsumerConfig()); err != nil {
		t.Fatalf("telemetry consumer: %v", err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, n.CredentialMirrorConfig()); err != nil {
		t.Fatalf("credential mirror: %v", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, n.CommandStreamConfig()); err != nil {
		t.Fatalf("command stream: %v", err)
	}
	return js
}

func names(t testing.TB, edge string) authz.EdgeNames {
	t.Helper()
	n, err := authz.NamesFor("acme", edge)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// streamMsgs returns the number of messages in stream, or -1 if it cannot
// be read.
func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) int {
	t.Helper()
	s, err := js.Stream(testCtx(t), stream)
	if err != nil {
		return -1
	}
	info, err := s.Info(testCtx(t))
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}

// waitStreamSubject waits until stream holds a message on subject and
// returns its data.
func waitStreamSubject(t testing.TB, js jetstream.JetStream, stream, subject string) []byte {
	t.Helper()
	var data []byte
	waitFor(t, "message on "+subject+" in stream "+stream, func() bool {
		s, err := js.Stream(testCtx(t), stream)
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(testCtx(t), subject)
		if err != nil {
			return false
		}
		data = m.Data
		return true
	})
	return data
}
