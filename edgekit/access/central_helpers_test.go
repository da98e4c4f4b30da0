package access_test

import (
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// The manager and auditor tests use the site of service_helpers_test.go
// (newSite): central with edges hq and lab registered, and edge hq's node
// unless noNode.

// manager returns a credential manager with the site's hash key and
// inventory.
func (s *site) manager() *access.Manager {
	s.tb.Helper()
	m, err := access.NewManager(s.cjs, s.hub, access.ManagerConfig{HashKey: s.key, Inventory: s.inv})
	if err != nil {
		s.tb.Fatal(err)
	}
	return m
}

// auditor starts an auditor, stopped at cleanup.
func (s *site) auditor(tweak func(*access.AuditorConfig)) *access.Auditor {
	s.tb.Helper()
	cfg := access.AuditorConfig{Org: "acme", Keys: s.st, Poll: 200 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := access.StartAuditor(siteCtx(s.tb), s.cjs, cfg)
	if err != nil {
		s.tb.Fatalf("start auditor: %v", err)
	}
	s.tb.Cleanup(a.Stop)
	return a
}

// publishEdge publishes msg at edge hq from the node's own connection: a
// decision record (on an "_access" subject) into the edge's platform
// stream, as the access service does, anything else into its event
// stream.
func (s *site) publishEdge(msg *nats.Msg) {
	s.tb.Helper()
	n := s.node.Names()
	subj, err := topic.Parse(msg.Subject)
	if err != nil {
		s.tb.Fatal(err)
	}
	stream := n.EventStream
	if subj.Type == topic.ThingTypeAccess {
		m := *msg
		m.Subject, stream = n.PlatformSubject(subj.Thing, subj.MessageType), n.PlatformStream
		msg = &m
	}
	if _, err := s.node.JetStream().PublishMsg(siteCtx(s.tb), msg, jetstream.WithExpectStream(stream)); err != nil {
		s.tb.Fatalf("publish %s at the edge: %v", msg.Subject, err)
	}
}

// alarms returns the envelopes central's event stream holds on subject
// "acme.{edge}._sys.audit.evt", in stream order, with whether each came
// through sourcing.
func (s *site) alarms(edge string) []cenAlarm {
	s.tb.Helper()
	ctx := siteCtx(s.tb)
	subject := access.AlarmThing("acme", edge).Subject(topic.Event).String()
	str, err := s.cjs.Stream(ctx, s.hub.EventStream())
	if err != nil {
		s.tb.Fatal(err)
	}
	info, err := str.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		s.tb.Fatal(err)
	}
	n := info.State.Subjects[subject]
	if n == 0 {
		return nil
	}
	c, err := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		s.tb.Fatal(err)
	}
	var out []cenAlarm
	for range n {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			s.tb.Fatalf("alarm %d of %d: %v", len(out)+1, n, err)
		}
		var e message.Envelope
		if err := message.DecodeJetStream(m, &e, nil); err != nil {
			s.tb.Fatal(err)
		}
		out = append(out, cenAlarm{env: e, sourced: m.Headers().Get("Nats-Stream-Source") != ""})
	}
	return out
}

// cenAlarm is an event stored on an alarm subject at central.
type cenAlarm struct {
	env     message.Envelope
	sourced bool // it came through sourcing, from an edge
}

// cenNamed returns the alarms named name that central raised itself.
func cenNamed(as []cenAlarm, name string) []cenAlarm {
	var out []cenAlarm
	for _, a := range as {
		if a.env.Name == name && !a.sourced {
			out = append(out, a)
		}
	}
	return out
}

// chainWriter builds the chained decision events of one reader, as the
// edge service does: each carries the next AuditSeq and the hash of the
// previous event's exact bytes.
type chainWriter struct {
	tb     testing.TB
	reader topic.Thing // the reader's DecisionThing
	head   access.ChainHead
	ids    *message.IDGenerator
	key    nkeys.KeyPair // signs each record; nil leaves them unsigned
}

// newChainWriter returns a writer of the decision records of reader,
// signed with key (nil: unsigned).
func newChainWriter(tb testing.TB, reader topic.Thing, key nkeys.KeyPair) *chainWriter {
	return &chainWriter{tb: tb, reader: access.DecisionThing(reader.Org, reader.Edge, reader.Code), ids: &message.IDGenerator{}, key: key}
}

// fork returns a writer that continues from head, as an edge that lost
// its chain head would.
func (w *chainWriter) fork(head access.ChainHead) *chainWriter {
	return &chainWriter{tb: w.tb, reader: w.reader, head: head, ids: w.ids, key: w.key}
}

// next returns the NATS message of the next decision event d, made at time
// at, and advances the chain.
func (w *chainWriter) next(d message.AccessDecision, at time.Time) *nats.Msg {
	w.tb.Helper()
	d.AuditSeq, d.AuditPrev = w.head.Next()
	e := &message.Envelope{ID: w.ids.NewAt(at), Time: at.UTC(), Source: w.reader, Type: topic.Event, Name: d.MessageName()}
	if err := message.SetPayload(e, d); err != nil {
		w.tb.Fatal(err)
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		w.tb.Fatal(err)
	}
	if w.key != nil {
		if err := access.SignRecord(w.key, msg.Subject, msg); err != nil {
			w.tb.Fatal(err)
		}
	}
	w.head = access.ChainHead{Seq: d.AuditSeq, Hash: access.EventHash(msg.Data)}
	return msg
}

// cenGrant returns a granted decision at door for credential id with set
// version v.
func cenGrant(door, id string, v uint64) message.AccessDecision {
	return message.AccessDecision{Granted: true, Door: door, Credential: id, CredentialSetVersion: v, Holder: "someone"}
}

// cenDeny returns a denied decision at door.
func cenDeny(door, id string, v uint64) message.AccessDecision {
	return message.AccessDecision{Reason: message.DenyUnknown, Door: door, Credential: id, CredentialSetVersion: v}
}
