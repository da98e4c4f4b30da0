package devicetest

import (
	"testing"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// commandsNotSigned sends the device what reaches a cmd subject without
// being a command signed for it by a trusted key: a JetStream publish-ack
// (what a reply subject steered to the cmd subject delivers), an unsigned
// command, one signed by an untrusted key, one signed for another thing and
// replayed to this one, and a signed command whose body was changed. None
// may run or be acked; a signed command sent after them still runs.
func (s *suite) commandsNotSigned(t *testing.T) {
	c := s.commandEnv(t, 2%len(s.h.Things))
	thing := c.d.Thing()
	other := s.h.Things[(2+1)%len(s.h.Things)]
	subject := thing.Subject(topic.Command).String()
	stranger, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	cmd := func() (*message.Envelope, *nats.Msg) {
		t.Helper()
		e, err := NewCommand(thing, message.Command{Action: "unlock", Deadline: deadline(timeout)})
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.ToMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Subject = subject
		return e, m
	}
	var sent []message.ID
	publish := func(m *nats.Msg) {
		t.Helper()
		if err := s.h.Edge.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}

	// A publish-ack, as JetStream sends it to a reply subject.
	publish(&nats.Msg{Subject: subject, Data: []byte(`{"stream":"events-acme-hq","domain":"hq","seq":42}`)})
	// An empty message, as an access service's rejection was.
	publish(&nats.Msg{Subject: subject, Header: nats.Header{"Lintel-Error": {"malformed request"}}})
	// Unsigned.
	e, m := cmd()
	sent = append(sent, e.ID)
	publish(m)
	// Signed by a key the device does not trust.
	e, m = cmd()
	if err := message.SignCommand(m, thing, stranger); err != nil {
		t.Fatal(err)
	}
	sent = append(sent, e.ID)
	publish(m)
	// Signed for another thing, replayed to this one.
	e, m = cmd()
	if err := message.SignCommand(m, other, s.h.CommandKey); err != nil {
		t.Fatal(err)
	}
	sent = append(sent, e.ID)
	publish(m)
	// Signed for this thing, then changed.
	e, m = cmd()
	if err := message.SignCommand(m, thing, s.h.CommandKey); err != nil {
		t.Fatal(err)
	}
	m.Data = append(m.Data[:len(m.Data):len(m.Data)], 0xc0)
	sent = append(sent, e.ID)
	publish(m)

	// Commands are handled one at a time, in order: once the probe is done,
	// everything above has been dealt with.
	c.probe(t)
	for _, id := range sent {
		if acks := c.acks.Acks(id); len(acks) > 0 {
			t.Errorf("command %s, not signed for the device, was acked %v", id, Statuses(acks))
		}
		if n := c.rec.runs(id); n != 0 {
			t.Errorf("command %s, not signed for the device, ran %d times", id, n)
		}
	}
	for _, a := range c.rec.actions() {
		if a != "probe" {
			t.Errorf("a command not signed for the device ran: action %q", a)
		}
	}
}
