package gateway_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// sendCommand writes a command for t into central's command stream, signed
// with central's key, as central's services do.
func sendCommand(tb testing.TB, c *central, t topic.Thing, cmd message.Command) *message.Envelope {
	tb.Helper()
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: t, Type: topic.Command, Name: message.NameCommand}
	if err := message.SetPayload(e, cmd); err != nil {
		tb.Fatal(err)
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		tb.Fatal(err)
	}
	msg.Subject = authz.CommandSubject(t)
	if err := message.SignCommand(msg, t, c.cmdKey); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.js.PublishMsg(testCtx(tb), msg); err != nil {
		tb.Fatalf("command intake: %v", err)
	}
	return e
}

// httpCommand is a command as the gateway hands it over.
type httpCommand struct {
	env    *message.Envelope
	data   string
	header map[string]string
}

func parseCommand(tb testing.TB, b []byte) httpCommand {
	tb.Helper()
	var c httpCommand
	c.env = new(message.Envelope)
	if err := json.Unmarshal(b, c.env); err != nil {
		tb.Fatalf("command %s: %v", b, err)
	}
	var attrs struct {
		Data   string            `json:"lintelnatsdata"`
		Header map[string]string `json:"lintelnatsheader"`
	}
	if err := json.Unmarshal(b, &attrs); err != nil {
		tb.Fatal(err)
	}
	c.data, c.header = attrs.Data, attrs.Header
	return c
}

// verify checks the command's signature as a NATS device does, from the
// attributes the gateway adds.
func (c httpCommand) verify(tb testing.TB, t topic.Thing, trusted string) {
	tb.Helper()
	data, err := base64.StdEncoding.DecodeString(c.data)
	if err != nil {
		tb.Fatal(err)
	}
	msg := &nats.Msg{Subject: t.Subject(topic.Command).String(), Data: data, Header: nats.Header{}}
	for k, v := range c.header {
		msg.Header.Set(k, v)
	}
	if msg.Header.Get(message.HeaderMsgID) != c.env.ID.String() {
		tb.Errorf("header %v: want the command's id %s", c.header, c.env.ID)
	}
	if _, err := message.VerifyCommand(msg, t, []string{trusted}); err != nil {
		tb.Fatalf("signature: %v", err)
	}
	// A tampered command fails.
	msg.Data = append([]byte(nil), data...)
	msg.Data[len(msg.Data)-1] ^= 1
	if _, err := message.VerifyCommand(msg, t, []string{trusted}); err == nil {
		tb.Fatal("a tampered command verified")
	}
}

// centralAck waits for an ack of command id in central's event stream
// matching st, and returns it.
func centralAck(tb testing.TB, c *central, id message.ID, st message.AckStatus) message.Ack {
	tb.Helper()
	var found message.Ack
	waitFor(tb, "ack "+string(st)+" of "+id.String()+" at central", func() bool {
		ctx := testCtx(tb)
		s, err := c.js.Stream(ctx, "events-acme")
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.State.Msgs == 0 {
			return false
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			e := new(message.Envelope)
			if message.DecodeMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, e, &message.DecodeOptions{SkipSubjectCheck: true}) != nil {
				continue
			}
			if e.Type != topic.Ack || e.CorrelationID != id {
				continue
			}
			a, err := message.DecodePayload[message.Ack](e)
			if err == nil && a.Status == st {
				found = a
				return true
			}
		}
		return false
	})
	return found
}

// ackBody returns an ack of command id by t as CloudEvents JSON.
func ackBody(tb testing.TB, t topic.Thing, id message.ID, st message.AckStatus) []byte {
	tb.Helper()
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: t, Type: topic.Ack, Name: message.NameAck, CorrelationID: id}
	if err := message.SetPayload(e, message.Ack{CommandID: id, Status: st}); err != nil {
		tb.Fatal(err)
	}
	b, err := e.AppendCloudEvent(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestCommandsLongPoll sends a command from central to a lock that only
// polls over HTTP: the poll returns it, signed by central, and the lock's
// ack, posted as an event, reaches central like a NATS device's.
func TestCommandsLongPoll(t *testing.T) {
	e := newEnv(t)
	c := startCentral(t, e)
	n := startNode(t, e, c)
	waitFor(t, "the leaf link", n.LinkUp)
	g := startGateway(t, e, n, nil)

	type polled struct {
		res *response
	}
	done := make(chan polled, 1)
	go func() {
		done <- polled{do(t, e, "GET", g.url+gateway.PathCommands+"?wait=30s", l1, "", nil, nil)}
	}()
	cmd := sendCommand(t, c, l1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Hour)})
	var got []json.RawMessage
	for len(got) == 0 { // a poll that ended before the command came in returns []; poll again
		p := <-done
		if p.res.status != 200 || json.Unmarshal(p.res.body, &got) != nil {
			t.Fatalf("poll: %d %s", p.res.status, p.res.body)
		}
		if len(got) == 0 {
			go func() { done <- polled{do(t, e, "GET", g.url+gateway.PathCommands+"?wait=30s", l1, "", nil, nil)} }()
		}
	}
	if len(got) != 1 {
		t.Fatalf("polled %d commands, want 1", len(got))
	}
	hc := parseCommand(t, got[0])
	if hc.env.ID != cmd.ID || hc.env.Source != l1 || hc.env.Type != topic.Command {
		t.Fatalf("polled %+v, want %+v", hc.env, cmd)
	}
	pc, err := message.DecodePayload[message.Command](hc.env)
	if err != nil || pc.Action != "unlock" {
		t.Fatalf("payload %+v: %v", pc, err)
	}
	hc.verify(t, l1, mustPublic(t, c))

	res := do(t, e, "POST", g.url+gateway.PathEvents, l1, "", ceHeader(), ackBody(t, l1, cmd.ID, message.AckCompleted))
	if res.status != 200 {
		t.Fatalf("ack: %d %s", res.status, res.body)
	}
	centralAck(t, c, cmd.ID, message.AckCompleted)
}

func mustPublic(tb testing.TB, c *central) string {
	tb.Helper()
	pub, err := c.cmdKey.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

// TestCommandsExpiredNeverDelivered runs the gateway with a clock an hour
// ahead of the edge's: a command the edge hands over with ten minutes
// left is past its deadline for the gateway, which acks it expired (the
// ack reaches central) and never hands it to the device; a later command
// that is still valid is handed over.
func TestCommandsExpiredNeverDelivered(t *testing.T) {
	e := newEnv(t)
	c := startCentral(t, e)
	n := startNode(t, e, c)
	waitFor(t, "the leaf link", n.LinkUp)
	g := startGateway(t, e, n, func(cfg *gateway.Config) {
		cfg.Now = func() time.Time { return time.Now().Add(time.Hour) }
	})
	results := make(chan *response, 16)
	poll := func() { results <- do(t, e, "GET", g.url+gateway.PathCommands+"?wait=30s", l1, "", nil, nil) }
	go poll()
	stale := sendCommand(t, c, l1, message.Command{Action: "unlock", Deadline: time.Now().Add(10 * time.Minute)})
	a := centralAck(t, c, stale.ID, message.AckExpired)
	if !strings.Contains(a.Error, "HTTP device") {
		t.Fatalf("expired ack %+v: not the gateway's", a)
	}
	fresh := sendCommand(t, c, l1, message.Command{Action: "lock", Deadline: time.Now().Add(3 * time.Hour)})
	for {
		res := <-results
		var got []json.RawMessage
		if res.status != 200 || json.Unmarshal(res.body, &got) != nil {
			t.Fatalf("poll: %d %s", res.status, res.body)
		}
		for _, raw := range got {
			if hc := parseCommand(t, raw); hc.env.ID == stale.ID {
				t.Fatal("an expired command was handed to the device")
			} else if hc.env.ID == fresh.ID {
				if s := g.Stats(); s.CommandsExpired != 1 || s.CommandsDelivered != 1 {
					t.Errorf("stats %+v", s)
				}
				return
			}
		}
		go poll()
	}
}

// TestCommandsSSE receives commands as Server-Sent Events: each command
// is one event named "command" whose id is the command's.
func TestCommandsSSE(t *testing.T) {
	e := newEnv(t)
	c := startCentral(t, e)
	n := startNode(t, e, c)
	waitFor(t, "the leaf link", n.LinkUp)
	g := startGateway(t, e, n, nil)

	sc := openCommandStream(t, e, g, l1)
	var sent []*message.Envelope
	for i := range 3 {
		sent = append(sent, sendCommand(t, c, l1, message.Command{Action: "pulse", Params: map[string]string{"n": string(rune('0' + i))}, Deadline: time.Now().Add(time.Hour)}))
	}
	var ev struct{ name, id, data string }
	var got []httpCommand
	for len(got) < len(sent) && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name == "command" {
				hc := parseCommand(t, []byte(ev.data))
				if hc.env.ID.String() != ev.id {
					t.Fatalf("event id %s, command id %s", ev.id, hc.env.ID)
				}
				got = append(got, hc)
			}
			ev = struct{ name, id, data string }{}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		}
	}
	if len(got) != len(sent) {
		t.Fatalf("received %d commands, want %d (%v)", len(got), len(sent), sc.Err())
	}
	for i := range sent {
		if got[i].env.ID != sent[i].ID {
			t.Errorf("command %d: %s, want %s (in order)", i, got[i].env.ID, sent[i].ID)
		}
		got[i].verify(t, l1, mustPublic(t, c))
	}
}

// openCommandStream opens thing's event stream of commands and reads up
// to its opening comment (the stream is open: the device is present); the
// body closes with the test.
func openCommandStream(t *testing.T, e *env, g *gw, thing topic.Thing) *bufio.Scanner {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), "GET", g.url+gateway.PathCommands, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.SetBasicAuth(authz.DeviceUser(thing), e.password(thing))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ":") {
		t.Fatalf("stream start: %q %v", sc.Text(), sc.Err())
	}
	return sc
}

// TestCommandBetweenPolls sends a command while the device has no poll
// open, just after one ended: the device is still present (the
// subscription lingers), so the edge hands the command over at once, and
// the device's next poll returns it.
func TestCommandBetweenPolls(t *testing.T) {
	e := newEnv(t)
	c := startCentral(t, e)
	n := startNode(t, e, c)
	waitFor(t, "the leaf link", n.LinkUp)
	g := startGateway(t, e, n, func(cfg *gateway.Config) { cfg.CommandLinger = time.Hour })
	if res := do(t, e, "GET", g.url+gateway.PathCommands+"?wait=0s", l1, "", nil, nil); res.status != 200 || string(res.body) != "[]\n" {
		t.Fatalf("first poll: %d %q", res.status, res.body)
	}
	cmd := sendCommand(t, c, l1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Hour)})
	waitFor(t, "the edge to hand the command over", func() bool { return n.Stats().CommandsDelivered == 1 })
	// The edge has handed the command to the lingering subscription; it may
	// still be on its way to the gateway, so the poll may wait for it (it
	// returns as soon as it is there).
	res := do(t, e, "GET", g.url+gateway.PathCommands+"?wait=30s", l1, "", nil, nil)
	var got []json.RawMessage
	if res.status != 200 || json.Unmarshal(res.body, &got) != nil || len(got) != 1 || parseCommand(t, got[0]).env.ID != cmd.ID {
		t.Fatalf("next poll: %d %s", res.status, res.body)
	}
}

// TestNewestStreamTakesCommands: a device whose command handler stopped
// may open its next stream before the gateway notices that the first
// one's connection is gone. The first stream, held open here, ends as soon
// as the second opens, and the command sent then reaches the second: the
// old one cannot take it.
func TestNewestStreamTakesCommands(t *testing.T) {
	e := newEnv(t)
	c := startCentral(t, e)
	n := startNode(t, e, c)
	waitFor(t, "the leaf link", n.LinkUp)
	g := startGateway(t, e, n, nil)

	first := openCommandStream(t, e, g, l1)
	second := openCommandStream(t, e, g, l1)

	// The first stream ends, with no command.
	for first.Scan() {
		if line := first.Text(); strings.HasPrefix(line, "event: command") {
			t.Fatalf("the superseded stream handed a command over: %q", line)
		}
	}
	if err := first.Err(); err != nil {
		t.Fatalf("the superseded stream: %v, want its end", err)
	}
	cmd := sendCommand(t, c, l1, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Hour)})
	for second.Scan() {
		if line := second.Text(); strings.HasPrefix(line, "id: ") {
			if id := line[len("id: "):]; id != cmd.ID.String() {
				t.Fatalf("the newest stream got command %s, want %s", id, cmd.ID)
			}
			return
		}
	}
	t.Fatalf("the newest stream ended without the command: %v", second.Err())
}
