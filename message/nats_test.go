package message_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// connect starts a server for the test and returns a connection to it.
func connect(t *testing.T) *nats.Conn {
	t.Helper()
	srv := natstest.Run(t, nil)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestToMsg(t *testing.T) {
	e := accessEvent(t)
	m, err := e.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	if message.HeaderMsgID != "Nats-Msg-Id" {
		t.Errorf("HeaderMsgID = %q, want JetStream's Nats-Msg-Id", message.HeaderMsgID)
	}
	if m.Subject != "acme.hq.reader.door-1.evt" {
		t.Errorf("Subject = %q", m.Subject)
	}
	for k, want := range map[string]string{
		message.HeaderMsgID:         e.ID.String(),
		message.HeaderContentType:   message.ContentTypeMsgpack,
		message.HeaderSchemaVersion: "1.0",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if _, err := (&message.Envelope{}).ToMsg(nil); !errors.Is(err, message.ErrMissingField) {
		t.Errorf("ToMsg(empty) = %v", err)
	}
}

func TestNATSRoundTrip(t *testing.T) {
	nc := connect(t)
	for _, codec := range []message.Codec{nil, message.MsgpackCodec{}, message.CloudEventsCodec{}} {
		name := "default"
		if codec != nil {
			name = codec.ContentType()
		}
		t.Run(name, func(t *testing.T) {
			e := accessEvent(t)
			if _, ok := codec.(message.CloudEventsCodec); ok {
				e.ContentType, e.Payload = message.ContentTypeJSON, []byte(`{"granted":true}`)
			}
			sub, err := nc.SubscribeSync(topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "*"}.String() + ".evt")
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			m, err := e.ToMsg(codec)
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			in, err := sub.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			got, err := message.FromMsg(in)
			if err != nil {
				t.Fatal(err)
			}
			checkEqual(t, got, e)
		})
	}
}

func TestNATSRequestReply(t *testing.T) {
	nc := connect(t)
	stamper := message.NewStamper(topic.Thing{Org: "acme", Edge: "hq", Type: "_edge", Code: "hq"}, message.ID{1})
	sub, err := nc.Subscribe("acme.hq.reader.*.req", func(m *nats.Msg) {
		req, err := message.FromMsg(m)
		if err != nil {
			t.Error(err)
			return
		}
		reply := message.Envelope{Type: topic.Event, Name: message.NameAccessGranted, CorrelationID: req.ID}
		stamper.Stamp(&reply)
		if err := message.SetPayload(&reply, message.AccessDecision{Granted: true, Door: "door-1"}); err != nil {
			t.Error(err)
			return
		}
		out, err := reply.ToMsg(nil)
		if err != nil {
			t.Error(err)
			return
		}
		out.Subject = m.Reply
		if err := nc.PublishMsg(out); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	req := minimalEnvelope(t)
	req.Type, req.Name = topic.Request, message.NameAccessRequested
	if err := message.SetPayload(req, message.AccessRequest{Door: "door-1", Kind: message.CredentialCard, Credential: "1234"}); err != nil {
		t.Fatal(err)
	}
	m, err := req.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := nc.RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The reply arrives on an inbox, not on its envelope's subject; that is allowed.
	reply, err := message.FromMsg(resp)
	if err != nil {
		t.Fatal(err)
	}
	if reply.CorrelationID != req.ID {
		t.Errorf("CorrelationID = %s, want %s", reply.CorrelationID, req.ID)
	}
	d, err := message.DecodePayload[message.AccessDecision](reply)
	if err != nil || !d.Granted {
		t.Errorf("decision = %+v, %v", d, err)
	}
}

// TestNATSDeduplication shows that JetStream drops a republished envelope
// because of the Nats-Msg-Id header.
func TestNATSDeduplication(t *testing.T) {
	nc := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"acme.*.*.*.evt"}})
	if err != nil {
		t.Fatal(err)
	}
	e := accessEvent(t)
	for i, wantDup := range []bool{false, true} {
		m, err := e.ToMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != wantDup {
			t.Errorf("publish %d: Duplicate = %v, want %v", i, ack.Duplicate, wantDup)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
	stored, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := message.FromMsg(&nats.Msg{Subject: stored.Subject, Header: stored.Header, Data: stored.Data})
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, got, e)
}

func TestDecodeMsgErrors(t *testing.T) {
	valid := func(t *testing.T) *nats.Msg {
		m, err := accessEvent(t).ToMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name     string
		edit     func(m *nats.Msg)
		opts     *message.DecodeOptions
		sentinel error // nil means success
		field    string
	}{
		{"valid", func(m *nats.Msg) {}, nil, nil, ""},
		{"no headers", func(m *nats.Msg) { m.Header = nil }, nil, nil, ""},
		{"header case", func(m *nats.Msg) {
			m.Header = nats.Header{"content-type": {message.ContentTypeMsgpack}, "lintel-schema-version": {"9.0"}}
		}, nil, message.ErrUnsupportedVersion, message.HeaderSchemaVersion},
		{"no subject", func(m *nats.Msg) { m.Subject = "" }, nil, nil, ""},
		{"inbox", func(m *nats.Msg) { m.Subject = "_INBOX.abc.def" }, nil, nil, ""},
		{"other thing's subject", func(m *nats.Msg) { m.Subject = "acme.hq.reader.door-2.evt" }, nil, message.ErrSubjectMismatch, message.FieldSubject},
		{"other message type", func(m *nats.Msg) { m.Subject = "acme.hq.reader.door-1.state" }, nil, message.ErrSubjectMismatch, message.FieldSubject},
		{"subject check off", func(m *nats.Msg) { m.Subject = "elsewhere" }, &message.DecodeOptions{SkipSubjectCheck: true}, nil, ""},
		{"newer major in header", func(m *nats.Msg) { m.Header.Set(message.HeaderSchemaVersion, "2.0"); m.Data = []byte("v2 stuff") }, nil, message.ErrUnsupportedVersion, message.HeaderSchemaVersion},
		{"bad version header", func(m *nats.Msg) { m.Header.Set(message.HeaderSchemaVersion, "one") }, nil, message.ErrInvalidValue, message.HeaderSchemaVersion},
		{"unknown content type", func(m *nats.Msg) { m.Header.Set(message.HeaderContentType, "text/xml") }, nil, message.ErrUnsupportedContentType, message.HeaderContentType},
		{"wrong codec", func(m *nats.Msg) { m.Header.Set(message.HeaderContentType, message.ContentTypeCloudEventsJSON) }, nil, message.ErrMalformed, ""},
		{"too large", func(m *nats.Msg) {}, &message.DecodeOptions{MaxSize: 10}, message.ErrTooLarge, ""},
		{"empty", func(m *nats.Msg) { m.Data = nil }, nil, message.ErrTruncated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid(t)
			tt.edit(m)
			var e message.Envelope
			err := message.DecodeMsg(m, &e, tt.opts)
			if tt.sentinel == nil {
				if err != nil {
					t.Fatal(err)
				}
				checkEqual(t, &e, accessEvent(t))
				return
			}
			var de *message.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tt.sentinel) || de.Field != tt.field {
				t.Fatalf("DecodeMsg = %v, want a *DecodeError for %q wrapping %v", err, tt.field, tt.sentinel)
			}
		})
	}
}

// A jetstream.Msg is a JetStreamMsg as it is.
var _ message.JetStreamMsg = jetstream.Msg(nil)

// TestDecodeJetStream decodes messages a JetStream consumer delivers, in
// both codecs, and shows that the subject check applies as in DecodeMsg.
func TestDecodeJetStream(t *testing.T) {
	nc := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"acme.*.*.*.evt"}})
	if err != nil {
		t.Fatal(err)
	}

	e := accessEvent(t)
	ce := accessEvent(t)
	ce.ContentType, ce.Payload = message.ContentTypeJSON, []byte(`{"granted":true}`)
	plain, err := e.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := ce.ToMsg(message.CloudEventsCodec{})
	if err != nil {
		t.Fatal(err)
	}
	cloud.Header.Del(message.HeaderMsgID) // not a duplicate of plain
	forged, err := e.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	forged.Subject = "acme.hq.reader.door-2.evt" // door-1's envelope on door-2's subject
	forged.Header.Del(message.HeaderMsgID)
	for _, m := range []*nats.Msg{plain, cloud, forged} {
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("fetched %d messages, want 3", len(got))
	}

	env, err := message.FromJetStream(got[0])
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, env, e)
	var cenv message.Envelope
	if err := message.DecodeJetStream(got[1], &cenv, nil); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, &cenv, ce)

	var de *message.DecodeError
	if _, err := message.FromJetStream(got[2]); !errors.As(err, &de) || !errors.Is(err, message.ErrSubjectMismatch) || de.Field != message.FieldSubject {
		t.Errorf("FromJetStream(forged) = %v, want a *DecodeError for %q wrapping ErrSubjectMismatch", err, message.FieldSubject)
	}
	var skipped message.Envelope
	if err := message.DecodeJetStream(got[2], &skipped, &message.DecodeOptions{SkipSubjectCheck: true}); err != nil {
		t.Errorf("DecodeJetStream(forged, SkipSubjectCheck) = %v", err)
	}
}
