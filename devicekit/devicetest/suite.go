package devicetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Harness is what [Run] needs to test an implementation of
// [devicekit.Device]: a way to connect devices, and the edge they talk to.
type Harness struct {
	// Things are things the suite may connect as, each with working
	// credentials; at least two. The suite connects one device per thing at
	// a time.
	Things []topic.Thing
	// Connect returns a connected device of the implementation under test,
	// as thing, with its default configuration: acknowledged telemetry,
	// heartbeats at their default interval. The suite closes it.
	Connect func(ctx context.Context, thing topic.Thing) (devicekit.Device, error)
	// Edge is a connection with the edge service's rights on the server the
	// devices reach: the suite publishes commands and answers requests with
	// it, and reads Stream through it.
	Edge *nats.Conn
	// Stream is the name of the JetStream stream that captures the things'
	// evt, tlm, state and ack subjects. It must bound the size of a
	// message (max_msg_size) below the server's max payload, as an edge's
	// event stream does: the suite checks the refusal of a larger one.
	Stream string
	// CommandKey signs the commands the suite sends; the devices Connect
	// returns must trust its public key (devicekit.Config.CommandKeys).
	CommandKey nkeys.KeyPair
}

// timeout bounds each step of the suite; generous, for loaded CI machines.
const timeout = 30 * time.Second

// Run runs the conformance suite of [devicekit.Device] against h, as
// subtests of t. Each subtest connects its own devices and checks one part
// of the contract: identity, birth, publishing (stored with the same ID,
// increasing sequence, deduplicated, validated), requests, command handling
// with its automatic acks, and Close.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if len(h.Things) < 2 || h.Connect == nil || h.Edge == nil || h.Stream == "" || h.CommandKey == nil {
		t.Fatal("devicetest: Harness needs at least two Things, Connect, Edge, Stream and CommandKey")
	}
	js, err := jetstream.New(h.Edge)
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{h: h, js: js}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Identity", s.identity},
		{"Birth", s.birth},
		{"PublishStored", s.publishStored},
		{"PublishEvent", s.publishEvent},
		{"PublishState", s.publishState},
		{"PublishTelemetry", s.publishTelemetry},
		{"PublishSameEnvelopeTwice", s.publishTwice},
		{"PublishInvalid", s.publishInvalid},
		{"PublishTooLarge", s.publishTooLarge},
		{"PublishConcurrent", s.publishConcurrent},
		{"Request", s.request},
		{"RequestNoResponders", s.requestNoResponders},
		{"Commands", s.commands},
		{"CommandsRepeated", s.commandsRepeated},
		{"CommandsExpired", s.commandsExpired},
		{"CommandsMalformed", s.commandsMalformed},
		{"CommandsNotSigned", s.commandsNotSigned},
		{"CommandsDeadlineInHandler", s.commandsDeadlineInHandler},
		{"HandleCommandsLifecycle", s.handleLifecycle},
		{"HandleCommandsStartContext", s.handleStartContext},
		{"Close", s.close},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

type suite struct {
	h  Harness
	js jetstream.JetStream
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// device connects a device as thing i and closes it in cleanup.
func (s *suite) device(t *testing.T, i int) devicekit.Device {
	t.Helper()
	d, err := s.h.Connect(ctxFor(t), s.h.Things[i])
	if err != nil {
		t.Fatalf("Connect(%s): %v", s.h.Things[i], err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// stored returns the messages of d's current boot stored on d's subject of
// type mt.
func (s *suite) stored(t *testing.T, d devicekit.Device, mt topic.MessageType) []StoredMsg {
	t.Helper()
	all, err := Stored(ctxFor(t), s.js, s.h.Stream, d.Thing().Subject(mt).String())
	if err != nil {
		t.Fatal(err)
	}
	var mine []StoredMsg
	for _, m := range all {
		if m.Envelope.BootID == d.BootID() {
			mine = append(mine, m)
		}
	}
	return mine
}

// subscribe subscribes the edge to subj and returns the channel of messages.
func (s *suite) subscribe(t *testing.T, subj string) <-chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 1024)
	sub, err := s.h.Edge.ChanSubscribe(subj, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := s.h.Edge.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

func receive(t *testing.T, ch <-chan *nats.Msg, what string) *message.Envelope {
	t.Helper()
	select {
	case m := <-ch:
		e, err := message.FromMsg(m)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return e
	case <-time.After(timeout):
		t.Fatalf("no %s within %v", what, timeout)
		return nil
	}
}

func (s *suite) identity(t *testing.T) {
	thing := s.h.Things[0]
	d := s.device(t, 0)
	if d.Thing() != thing {
		t.Errorf("Thing() = %s, want %s", d.Thing(), thing)
	}
	boot := d.BootID()
	if boot.IsZero() {
		t.Fatal("BootID() is zero")
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	d2 := s.device(t, 0)
	if d2.BootID() == boot {
		t.Errorf("a second connection has the same boot ID %s, want a new boot", boot)
	}
}

func (s *suite) birth(t *testing.T) {
	d := s.device(t, 0)
	states := s.stored(t, d, topic.State)
	if len(states) == 0 {
		t.Fatalf("no state message of boot %s stored after Connect", d.BootID())
	}
	e := states[0].Envelope
	if e.Name != message.NameThingBirth || e.Seq != 1 || e.Source != d.Thing() {
		t.Fatalf("first state message of the boot: name %q seq %d source %s, want %q seq 1 source %s", e.Name, e.Seq, e.Source, message.NameThingBirth, d.Thing())
	}
	b, err := message.DecodePayload[message.Birth](e)
	if err != nil {
		t.Fatal(err)
	}
	if b.BootID != d.BootID() {
		t.Errorf("birth payload boot ID %s, want %s", b.BootID, d.BootID())
	}
	for _, m := range states[1:] {
		if m.Envelope.Name == message.NameThingBirth {
			t.Errorf("a second birth in the same boot: %s seq %d", m.Envelope.ID, m.Envelope.Seq)
		}
	}
}

// publishStored checks that Publish stamps envelopes, and that they are
// stored with the same ID, in order, with increasing sequence numbers.
func (s *suite) publishStored(t *testing.T) {
	d := s.device(t, 0)
	ctx := ctxFor(t)
	var sent []*message.Envelope
	for i := range 3 {
		e := &message.Envelope{Type: topic.Event, Name: message.NameDoorForcedOpen}
		if err := message.SetPayload(e, message.DoorState{Door: fmt.Sprintf("door-%d", i), Open: true, Locked: true, Forced: true}); err != nil {
			t.Fatal(err)
		}
		if err := d.Publish(ctx, e); err != nil {
			t.Fatalf("Publish #%d: %v", i, err)
		}
		if e.ID.IsZero() || e.Source != d.Thing() || e.BootID != d.BootID() || e.Time.IsZero() {
			t.Fatalf("Publish did not stamp the envelope: id %s source %s boot %s time %v", e.ID, e.Source, e.BootID, e.Time)
		}
		if i > 0 && e.Seq <= sent[i-1].Seq {
			t.Fatalf("sequence %d after %d, want increasing", e.Seq, sent[i-1].Seq)
		}
		sent = append(sent, e)
	}
	if sent[0].Seq < 2 {
		t.Errorf("first event has sequence %d; the birth is 1", sent[0].Seq)
	}
	got := s.stored(t, d, topic.Event)
	if len(got) != len(sent) {
		t.Fatalf("stored %d events of the boot, want %d", len(got), len(sent))
	}
	for i, m := range got {
		want := sent[i]
		e := m.Envelope
		if e.ID != want.ID || e.Seq != want.Seq || e.Name != want.Name || m.Header.Get(message.HeaderMsgID) != want.ID.String() {
			t.Errorf("stored #%d: id %s seq %d name %q msg-id %q, want id %s seq %d name %q", i, e.ID, e.Seq, e.Name, m.Header.Get(message.HeaderMsgID), want.ID, want.Seq, want.Name)
		}
		if i > 0 && m.Seq <= got[i-1].Seq {
			t.Errorf("stream sequence %d after %d", m.Seq, got[i-1].Seq)
		}
		ds, err := message.DecodePayload[message.DoorState](e)
		if err != nil || ds.Door != fmt.Sprintf("door-%d", i) || !ds.Forced {
			t.Errorf("stored #%d payload %+v, %v", i, ds, err)
		}
	}
}

func (s *suite) publishEvent(t *testing.T) {
	d := s.device(t, 0)
	dec := message.AccessDecision{Granted: true, Door: "front", CredentialSetVersion: 7}
	id, err := d.PublishEvent(ctxFor(t), message.NameAccessGranted, dec)
	if err != nil {
		t.Fatal(err)
	}
	got := s.stored(t, d, topic.Event)
	if len(got) != 1 || got[0].Envelope.Name != message.NameAccessGranted || got[0].Subject != d.Thing().Subject(topic.Event).String() {
		t.Fatalf("stored events %+v, want one %q on the evt subject", got, message.NameAccessGranted)
	}
	if got[0].Envelope.ID != id {
		t.Errorf("stored event %s, PublishEvent returned %s", got[0].Envelope.ID, id)
	}
	p, err := message.DecodePayload[message.AccessDecision](got[0].Envelope)
	if err != nil || p != dec {
		t.Errorf("payload %+v, %v; want %+v", p, err, dec)
	}
}

func (s *suite) publishState(t *testing.T) {
	d := s.device(t, 0)
	st := message.DoorState{Door: "front", Open: false, Locked: true}
	id, err := d.PublishState(ctxFor(t), message.NameDoorState, st)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range s.stored(t, d, topic.State) {
		if m.Envelope.Name == message.NameDoorState {
			p, err := message.DecodePayload[message.DoorState](m.Envelope)
			found = err == nil && p == st && m.Envelope.ID == id
		}
	}
	if !found {
		t.Errorf("no stored %q state %+v with the ID PublishState returned, %s", message.NameDoorState, st, id)
	}
}

func (s *suite) publishTelemetry(t *testing.T) {
	d := s.device(t, 0)
	ch := s.subscribe(t, d.Thing().Subject(topic.Telemetry).String())
	r := message.SensorReading{Metric: "temperature", Value: 21.5, Unit: "Cel"}
	id, err := d.PublishTelemetry(ctxFor(t), message.NameSensorReading, r)
	if err != nil {
		t.Fatal(err)
	}
	e := receive(t, ch, "telemetry")
	p, err := message.DecodePayload[message.SensorReading](e)
	if e.Name != message.NameSensorReading || e.Type != topic.Telemetry || e.BootID != d.BootID() || err != nil || p != r || e.ID != id {
		t.Errorf("telemetry %s %q %q boot %s payload %+v (%v), want %s %q %+v", e.ID, e.Type, e.Name, e.BootID, p, err, id, message.NameSensorReading, r)
	}
}

// publishTwice checks that publishing an envelope again, with its ID, is a
// success that the stream deduplicates.
func (s *suite) publishTwice(t *testing.T) {
	d := s.device(t, 0)
	ctx := ctxFor(t)
	e := &message.Envelope{Type: topic.Event, Name: "test.twice"}
	if err := d.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	id, seq := e.ID, e.Seq
	if err := d.Publish(ctx, e); err != nil {
		t.Fatalf("publishing the same envelope again: %v", err)
	}
	if e.ID != id || e.Seq != seq {
		t.Errorf("the envelope was stamped again: id %s seq %d, was %s %d", e.ID, e.Seq, id, seq)
	}
	got := s.stored(t, d, topic.Event)
	if len(got) != 1 || got[0].Envelope.ID != id {
		t.Errorf("stored %d events, want the one %s", len(got), id)
	}
}

func (s *suite) publishInvalid(t *testing.T) {
	d := s.device(t, 0)
	other := s.h.Things[1]
	stamped := func(src topic.Thing, mt topic.MessageType) *message.Envelope {
		var ids message.IDGenerator
		return &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: src, Type: mt}
	}
	tests := []struct {
		name string
		e    *message.Envelope
	}{
		{"unstamped from another thing", &message.Envelope{Source: other, Type: topic.Event}},
		{"stamped from another thing", stamped(other, topic.Event)},
		{"command", &message.Envelope{Type: topic.Command}},
		{"config", &message.Envelope{Type: topic.Config}},
		{"request", &message.Envelope{Type: topic.Request}},
		{"no type", &message.Envelope{}},
		{"stamped command on own subject", stamped(d.Thing(), topic.Command)},
		{"bad name", &message.Envelope{Type: topic.Event, Name: "\xff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.Publish(ctxFor(t), tt.e)
			if !errors.Is(err, devicekit.ErrInvalidEnvelope) {
				t.Errorf("Publish = %v, want ErrInvalidEnvelope", err)
			}
		})
	}
}

// publishTooLarge checks that an event larger than the stream stores (its
// max_msg_size), but within the server's max payload, fails with
// ErrStreamRejected, as the stream's refusal, not ErrStreamFull: it is not
// stored, sending it again cannot help, and the device goes on working.
func (s *suite) publishTooLarge(t *testing.T) {
	ctx := ctxFor(t)
	st, err := s.js.Stream(ctx, s.h.Stream)
	if err != nil {
		t.Fatal(err)
	}
	limit := st.CachedInfo().Config.MaxMsgSize
	if limit <= 0 {
		t.Fatalf("stream %s has no max_msg_size; the Harness needs one", s.h.Stream)
	}
	d := s.device(t, 0)
	e := &message.Envelope{Type: topic.Event, Name: "test.too_large"}
	if err := message.SetPayload(e, map[string]string{"pad": strings.Repeat("x", int(limit))}); err != nil {
		t.Fatal(err)
	}
	err = d.Publish(ctx, e)
	var pe *devicekit.PublishError
	if !errors.Is(err, devicekit.ErrStreamRejected) || errors.Is(err, devicekit.ErrStreamFull) || !errors.As(err, &pe) {
		t.Fatalf("Publish of a %d-byte payload into a stream of max_msg_size %d = %v, want a PublishError wrapping ErrStreamRejected", len(e.Payload), limit, err)
	}
	if pe.MsgID != e.ID || pe.Subject != d.Thing().Subject(topic.Event).String() {
		t.Errorf("PublishError names %s id %s, want %s id %s", pe.Subject, pe.MsgID, d.Thing().Subject(topic.Event), e.ID)
	}
	small, err := d.PublishEvent(ctx, "test.small", nil)
	if err != nil {
		t.Fatalf("Publish after the refusal: %v", err)
	}
	got := s.stored(t, d, topic.Event)
	if len(got) != 1 || got[0].Envelope.ID != small {
		t.Errorf("stored %d events, want only the small one %s", len(got), small)
	}
}

func (s *suite) publishConcurrent(t *testing.T) {
	d := s.device(t, 0)
	ctx := ctxFor(t)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := d.PublishEvent(ctx, "test.concurrent", map[string]int{"w": w, "i": i}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := s.stored(t, d, topic.Event)
	if len(got) != workers*each {
		t.Fatalf("stored %d events, want %d", len(got), workers*each)
	}
	seqs := make(map[uint64]bool)
	for _, m := range got {
		if seqs[m.Envelope.Seq] {
			t.Errorf("sequence %d used twice", m.Envelope.Seq)
		}
		seqs[m.Envelope.Seq] = true
	}
}

func (s *suite) request(t *testing.T) {
	d := s.device(t, 0)
	thing := d.Thing()
	reqs := make(chan *message.Envelope, 1)
	sub, err := s.h.Edge.Subscribe(thing.Subject(topic.Request).String(), func(m *nats.Msg) {
		req, err := message.FromMsg(m)
		if err != nil {
			t.Errorf("request: %v", err)
			return
		}
		reqs <- req
		ar, _ := message.DecodePayload[message.AccessRequest](req)
		dec := message.AccessDecision{Granted: true, Door: ar.Door, CredentialSetVersion: 3}
		var ids message.IDGenerator
		reply := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: EdgeThing(thing.Org, thing.Edge), Type: topic.Event, Name: dec.MessageName(), CorrelationID: req.ID}
		if err := message.SetPayload(reply, dec); err != nil {
			t.Error(err)
			return
		}
		rm, err := reply.ToMsg(nil)
		if err != nil {
			t.Error(err)
			return
		}
		rm.Subject = m.Reply
		if err := m.RespondMsg(rm); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.h.Edge.Flush(); err != nil {
		t.Fatal(err)
	}

	ar := message.AccessRequest{Door: "front", Kind: message.CredentialCard, Credential: "12345678"}
	reply, err := d.Request(ctxFor(t), message.NameAccessRequested, ar)
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	req := <-reqs
	if req.Type != topic.Request || req.Name != message.NameAccessRequested || req.Source != thing || req.BootID != d.BootID() || req.Seq < 2 {
		t.Errorf("request envelope: type %q name %q source %s boot %s seq %d", req.Type, req.Name, req.Source, req.BootID, req.Seq)
	}
	if reply.CorrelationID != req.ID || reply.Name != message.NameAccessGranted {
		t.Errorf("reply: correlation %s name %q, want %s %q", reply.CorrelationID, reply.Name, req.ID, message.NameAccessGranted)
	}
	dec, err := message.DecodePayload[message.AccessDecision](reply)
	if err != nil || !dec.Granted || dec.Door != "front" {
		t.Errorf("reply payload %+v, %v", dec, err)
	}
}

func (s *suite) requestNoResponders(t *testing.T) {
	d := s.device(t, 1)
	_, err := d.Request(ctxFor(t), "test.nobody", nil)
	if !errors.Is(err, devicekit.ErrNoResponders) {
		t.Errorf("Request with nobody listening = %v, want ErrNoResponders", err)
	}
}

// recorder is a Handler that records the commands it runs and answers them
// by action: "fail" fails, "refuse" is rejected, "wait" waits for its
// context, "block" waits for release; anything else completes.
type recorder struct {
	mu      sync.Mutex
	ran     []handled
	release chan struct{}
}

// handled is a command as the suite's handler saw it.
type handled struct {
	devicekit.Command
	CtxErr      error // the context's error when the handler returned
	HasDeadline bool  // whether the context had a deadline
}

func newRecorder() *recorder { return &recorder{release: make(chan struct{})} }

func (r *recorder) HandleCommand(ctx context.Context, cmd devicekit.Command) error {
	rec := handled{Command: cmd}
	_, rec.HasDeadline = ctx.Deadline()
	var err error
	switch cmd.Action {
	case "fail":
		err = errors.New("jammed")
	case "refuse":
		err = fmt.Errorf("%w: no such action", devicekit.ErrCommandRejected)
	case "wait":
		<-ctx.Done()
		err = ctx.Err()
	case "block":
		select {
		case <-r.release:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	rec.CtxErr = ctx.Err()
	r.mu.Lock()
	r.ran = append(r.ran, rec)
	r.mu.Unlock()
	return err
}

// runs returns the commands run so far with ID id.
func (r *recorder) runs(id message.ID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.ran {
		if c.ID == id {
			n++
		}
	}
	return n
}

func (r *recorder) get(id message.ID) (handled, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.ran {
		if c.ID == id {
			return c, true
		}
	}
	return handled{}, false
}

// actions returns the actions of the commands run so far, in order.
func (r *recorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := make([]string, len(r.ran))
	for i, c := range r.ran {
		a[i] = c.Action
	}
	return a
}

// commandEnv is a handling session: a device running a recorder, and the
// edge recording its acks.
type commandEnv struct {
	s    *suite
	d    devicekit.Device
	rec  *recorder
	acks *AckRecorder
	sub  devicekit.Subscription
}

func (s *suite) commandEnv(t *testing.T, i int) *commandEnv {
	t.Helper()
	d := s.device(t, i)
	acks, err := RecordAcks(s.h.Edge, d.Thing())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		acks.Close()
		if err := acks.Err(); err != nil {
			t.Errorf("bad acks: %v", err)
		}
	})
	rec := newRecorder()
	sub, err := d.HandleCommands(ctxFor(t), rec)
	if err != nil {
		t.Fatalf("HandleCommands: %v", err)
	}
	t.Cleanup(sub.Stop)
	return &commandEnv{s: s, d: d, rec: rec, acks: acks, sub: sub}
}

func (c *commandEnv) send(t *testing.T, cmd message.Command) *message.Envelope {
	t.Helper()
	e, err := NewCommand(c.d.Thing(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	c.sendEnv(t, e)
	return e
}

func (c *commandEnv) sendEnv(t *testing.T, e *message.Envelope) {
	t.Helper()
	if err := PublishCommand(c.s.h.Edge, c.d.Thing(), e, c.s.h.CommandKey); err != nil {
		t.Fatal(err)
	}
}

func (c *commandEnv) wait(t *testing.T, id message.ID, finals int) []message.Ack {
	t.Helper()
	acks, err := c.acks.Wait(ctxFor(t), id, finals)
	if err != nil {
		t.Fatal(err)
	}
	return acks
}

func deadline(d time.Duration) time.Time { return time.Now().Add(d) }

func checkAcks(t *testing.T, what string, acks []message.Ack, want ...message.AckStatus) {
	t.Helper()
	if got := Statuses(acks); !slices.Equal(got, want) {
		t.Errorf("%s: acks %v, want %v", what, got, want)
	}
}

func (s *suite) commands(t *testing.T) {
	c := s.commandEnv(t, 2%len(s.h.Things))
	tests := []struct {
		name    string
		action  string
		want    []message.AckStatus
		errText string
	}{
		{"completed", "unlock", []message.AckStatus{message.AckAccepted, message.AckCompleted}, ""},
		{"failed", "fail", []message.AckStatus{message.AckAccepted, message.AckFailed}, "jammed"},
		{"rejected by handler", "refuse", []message.AckStatus{message.AckAccepted, message.AckRejected}, "no such action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := message.Command{Action: tt.action, Params: map[string]string{"duration": "5s"}, Deadline: deadline(timeout), IdempotencyKey: "k-" + tt.name, RequestedBy: "suite"}
			e := c.send(t, cmd)
			acks := c.wait(t, e.ID, 1)
			checkAcks(t, tt.name, acks, tt.want...)
			if last := acks[len(acks)-1]; tt.errText != "" && !strings.Contains(last.Error, tt.errText) {
				t.Errorf("final ack error %q, want it to contain %q", last.Error, tt.errText)
			}
			got, ok := c.rec.get(e.ID)
			if !ok {
				t.Fatal("the handler did not run")
			}
			if got.Action != tt.action || got.Params["duration"] != "5s" || got.IdempotencyKey != cmd.IdempotencyKey || got.RequestedBy != "suite" || got.Envelope == nil || got.Envelope.ID != e.ID {
				t.Errorf("handler saw %+v", got.Command)
			}
			if !got.Deadline.Equal(cmd.Deadline) || !got.HasDeadline {
				t.Errorf("handler saw deadline %v (context deadline %t), want %v", got.Deadline, got.HasDeadline, cmd.Deadline)
			}
		})
	}
	t.Run("from the thing's own source", func(t *testing.T) {
		// Some edges address commands with the target as source, so that
		// the envelope's subject is the cmd subject; both must work.
		e, err := NewCommand(c.d.Thing(), message.Command{Action: "unlock", Deadline: deadline(timeout)})
		if err != nil {
			t.Fatal(err)
		}
		e.Source = c.d.Thing()
		c.sendEnv(t, e)
		checkAcks(t, "own source", c.wait(t, e.ID, 1), message.AckAccepted, message.AckCompleted)
	})
	t.Run("acks stored", func(t *testing.T) {
		e := c.send(t, message.Command{Action: "unlock", Deadline: deadline(timeout)})
		c.wait(t, e.ID, 1)
		// The acks were seen on their subject; the stream stores them
		// right after, so look until both are there (or the time is up).
		want := []message.AckStatus{message.AckAccepted, message.AckCompleted}
		var statuses []message.AckStatus
		for end := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
			statuses = statuses[:0]
			for _, m := range s.stored(t, c.d, topic.Ack) {
				if m.Envelope.CorrelationID == e.ID {
					a, err := message.DecodePayload[message.Ack](m.Envelope)
					if err != nil {
						t.Fatal(err)
					}
					statuses = append(statuses, a.Status)
				}
			}
			if len(statuses) >= len(want) || time.Now().After(end) {
				break
			}
		}
		if !slices.Equal(statuses, want) {
			t.Errorf("stored acks %v, want %v", statuses, want)
		}
	})
}

// probe sends a command that completes and waits for it: commands run one
// at a time in order, so every command sent before it has been dealt with.
func (c *commandEnv) probe(t *testing.T) {
	t.Helper()
	e := c.send(t, message.Command{Action: "probe", Deadline: deadline(timeout)})
	checkAcks(t, "probe", c.wait(t, e.ID, 1), message.AckAccepted, message.AckCompleted)
}

func (s *suite) commandsRepeated(t *testing.T) {
	c := s.commandEnv(t, 2%len(s.h.Things))
	t.Run("same ID", func(t *testing.T) {
		e := c.send(t, message.Command{Action: "unlock", Deadline: deadline(timeout)})
		c.sendEnv(t, e)
		acks := c.wait(t, e.ID, 2)
		checkAcks(t, "same ID twice", acks, message.AckAccepted, message.AckCompleted, message.AckCompleted)
		if n := c.rec.runs(e.ID); n != 1 {
			t.Errorf("the handler ran %d times, want 1", n)
		}
	})
	t.Run("same idempotency key", func(t *testing.T) {
		cmd := message.Command{Action: "fail", Deadline: deadline(timeout), IdempotencyKey: "unlock-42"}
		e1 := c.send(t, cmd)
		e2 := c.send(t, cmd)
		checkAcks(t, "first", c.wait(t, e1.ID, 1), message.AckAccepted, message.AckFailed)
		acks := c.wait(t, e2.ID, 1)
		checkAcks(t, "second, same key", acks, message.AckFailed)
		if acks[0].Error != "jammed" {
			t.Errorf("repeated outcome error %q, want the recorded %q", acks[0].Error, "jammed")
		}
		if n := c.rec.runs(e2.ID); n != 0 {
			t.Errorf("the handler ran the repeated command %d times, want 0", n)
		}
	})
}

func (s *suite) commandsExpired(t *testing.T) {
	c := s.commandEnv(t, 2%len(s.h.Things))
	e := c.send(t, message.Command{Action: "unlock", Deadline: time.Now().Add(-time.Second), IdempotencyKey: "late"})
	checkAcks(t, "expired", c.wait(t, e.ID, 1), message.AckExpired)
	c.probe(t)
	if n := c.rec.runs(e.ID); n != 0 {
		t.Fatalf("an expired command ran %d times", n)
	}
	// An expired command did not run: its idempotency key stays free.
	e2 := c.send(t, message.Command{Action: "unlock", Deadline: deadline(timeout), IdempotencyKey: "late"})
	checkAcks(t, "retry of an expired command", c.wait(t, e2.ID, 1), message.AckAccepted, message.AckCompleted)

	// A command that expires while it waits behind another never runs.
	blocker := c.send(t, message.Command{Action: "block", Deadline: deadline(timeout)})
	short := time.Now().Add(200 * time.Millisecond)
	queued := c.send(t, message.Command{Action: "unlock", Deadline: short})
	// The queued command cannot run before the blocker is released; release
	// it once the queued command's deadline has passed.
	<-time.After(time.Until(short) + 10*time.Millisecond)
	close(c.rec.release)
	checkAcks(t, "blocker", c.wait(t, blocker.ID, 1), message.AckAccepted, message.AckCompleted)
	checkAcks(t, "queued past its deadline", c.wait(t, queued.ID, 1), message.AckExpired)
	if n := c.rec.runs(queued.ID); n != 0 {
		t.Errorf("a command that expired in the queue ran %d times", n)
	}
}

func (s *suite) commandsMalformed(t *testing.T) {
	c := s.commandEnv(t, 2%len(s.h.Things))
	thing := c.d.Thing()
	var ids message.IDGenerator
	t.Run("not an envelope", func(t *testing.T) {
		id := ids.New()
		m := nats.NewMsg(thing.Subject(topic.Command).String())
		m.Header.Set(message.HeaderMsgID, id.String())
		m.Data = []byte("unlock please")
		if err := message.SignCommand(m, thing, s.h.CommandKey); err != nil {
			t.Fatal(err)
		}
		if err := s.h.Edge.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		acks := c.wait(t, id, 1)
		checkAcks(t, "garbage", acks, message.AckRejected)
		if acks[0].Error == "" {
			t.Error("a rejection without a reason")
		}
	})
	t.Run("not a command", func(t *testing.T) {
		e, err := NewCommand(thing, message.Command{Action: "unlock"})
		if err != nil {
			t.Fatal(err)
		}
		e.Type = topic.Event
		c.sendEnv(t, e)
		checkAcks(t, "event on cmd", c.wait(t, e.ID, 1), message.AckRejected)
	})
	t.Run("bad payload", func(t *testing.T) {
		e, err := NewCommand(thing, message.Command{})
		if err != nil {
			t.Fatal(err)
		}
		if err := message.SetPayload(e, []int{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		c.sendEnv(t, e)
		checkAcks(t, "bad payload", c.wait(t, e.ID, 1), message.AckRejected)
	})
	t.Run("no action", func(t *testing.T) {
		e := c.send(t, message.Command{Deadline: deadline(timeout)})
		checkAcks(t, "no action", c.wait(t, e.ID, 1), message.AckRejected)
	})
	t.Run("without an ID", func(t *testing.T) {
		m := nats.NewMsg(thing.Subject(topic.Command).String())
		m.Data = []byte{0xc1}
		if err := message.SignCommand(m, thing, s.h.CommandKey); err != nil {
			t.Fatal(err)
		}
		if err := s.h.Edge.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		c.probe(t) // still handling
	})
	for _, a := range c.rec.actions() {
		if a != "probe" {
			t.Errorf("a malformed command ran: action %q", a)
		}
	}
}

func (s *suite) commandsDeadlineInHandler(t *testing.T) {
	c := s.commandEnv(t, 2%len(s.h.Things))
	e := c.send(t, message.Command{Action: "wait", Deadline: deadline(time.Second)})
	acks := c.wait(t, e.ID, 1)
	switch last := acks[len(acks)-1]; last.Status {
	case message.AckFailed:
		got, _ := c.rec.get(e.ID)
		if !errors.Is(got.CtxErr, context.DeadlineExceeded) {
			t.Errorf("the handler's context ended with %v, want DeadlineExceeded at the command's deadline", got.CtxErr)
		}
	case message.AckExpired:
		t.Log("the machine is so slow that the command expired before it ran")
	default:
		t.Errorf("acks %v, want failed when the handler outlives the deadline", Statuses(acks))
	}
}

func (s *suite) handleLifecycle(t *testing.T) {
	c := s.commandEnv(t, 2%len(s.h.Things))
	if _, err := c.d.HandleCommands(ctxFor(t), newRecorder()); !errors.Is(err, devicekit.ErrHandlerRunning) {
		t.Errorf("a second HandleCommands = %v, want ErrHandlerRunning", err)
	}
	done := c.send(t, message.Command{Action: "unlock", Deadline: deadline(timeout)})
	c.wait(t, done.ID, 1)

	c.sub.Stop()
	select {
	case <-c.sub.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := c.sub.Err(); err != nil {
		t.Errorf("Err after Stop = %v, want nil", err)
	}
	c.sub.Stop() // idempotent

	// A new handler; the device still remembers what it did.
	rec := newRecorder()
	ctx, cancel := context.WithCancel(ctxFor(t))
	sub, err := c.d.HandleCommands(ctx, rec)
	if err != nil {
		t.Fatalf("HandleCommands after Stop: %v", err)
	}
	defer sub.Stop()
	// The context bounds the start only: handling outlives it.
	cancel()
	c.sendEnv(t, mustResend(done))
	checkAcks(t, "repeat after a new handler", c.wait(t, done.ID, 2), message.AckAccepted, message.AckCompleted, message.AckCompleted)
	if rec.runs(done.ID) != 0 {
		t.Error("a command handled before the handler changed ran again")
	}
	after := c.send(t, message.Command{Action: "unlock", Deadline: deadline(timeout)})
	checkAcks(t, "a command after the start context ended", c.wait(t, after.ID, 1), message.AckAccepted, message.AckCompleted)
	if rec.runs(after.ID) != 1 {
		t.Errorf("the handler ran %d times a command sent after the start context ended, want 1", rec.runs(after.ID))
	}
	select {
	case <-sub.Done():
		t.Fatalf("handling stopped when the start context ended: %v", sub.Err())
	default:
	}

	// Only the handle stops it.
	sub.Stop()
	select {
	case <-sub.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := sub.Err(); err != nil {
		t.Errorf("Err after Stop = %v, want nil", err)
	}
}

// handleStartContext shows that a HandleCommands whose context has
// already ended does not start.
func (s *suite) handleStartContext(t *testing.T) {
	d := s.device(t, 2%len(s.h.Things))
	ctx, cancel := context.WithCancel(ctxFor(t))
	cancel()
	sub, err := d.HandleCommands(ctx, newRecorder())
	if err == nil {
		sub.Stop()
		t.Fatal("HandleCommands with an ended context started")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("HandleCommands with an ended context = %v, want context.Canceled", err)
	}
	// The device can handle its commands all the same.
	sub, err = d.HandleCommands(ctxFor(t), newRecorder())
	if err != nil {
		t.Fatalf("HandleCommands after a failed start: %v", err)
	}
	sub.Stop()
}

func mustResend(e *message.Envelope) *message.Envelope { c := *e; return &c }

func (s *suite) close(t *testing.T) {
	d := s.device(t, 1)
	ch := s.subscribe(t, d.Thing().Subject(topic.State).String())
	sub, err := d.HandleCommands(ctxFor(t), newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	if _, err := d.PublishEvent(ctx, "test.before_close", nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-sub.Done():
	case <-time.After(timeout):
		t.Fatal("command handling still running after Close")
	}
	if err := sub.Err(); !errors.Is(err, devicekit.ErrClosed) {
		t.Errorf("handling Err after Close = %v, want ErrClosed", err)
	}

	var death *message.Envelope
	for death == nil {
		if e := receive(t, ch, "death"); e.Name == message.NameThingDeath && e.BootID == d.BootID() {
			death = e
		}
	}
	p, err := message.DecodePayload[message.Death](death)
	if err != nil || p.BootID != d.BootID() || p.Reason != "shutdown" || p.LastSeq != death.Seq {
		t.Errorf("death %+v (seq %d), %v; want boot %s, reason shutdown, last seq its own", p, death.Seq, err, d.BootID())
	}
	var stored bool
	for _, m := range s.stored(t, d, topic.State) {
		stored = stored || m.Envelope.ID == death.ID
	}
	if !stored {
		t.Error("the death is not stored")
	}

	if id, err := d.PublishEvent(ctx, "test.after_close", nil); !errors.Is(err, devicekit.ErrClosed) || !id.IsZero() {
		t.Errorf("PublishEvent after Close = %s, %v, want no ID and ErrClosed", id, err)
	}
	if err := d.Publish(ctx, &message.Envelope{Type: topic.Event}); !errors.Is(err, devicekit.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := d.Request(ctx, "test.after_close", nil); !errors.Is(err, devicekit.ErrClosed) {
		t.Errorf("Request after Close = %v, want ErrClosed", err)
	}
	if _, err := d.HandleCommands(ctx, newRecorder()); !errors.Is(err, devicekit.ErrClosed) {
		t.Errorf("HandleCommands after Close = %v, want ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}
