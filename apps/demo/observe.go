package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/devicekit/simulator"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// printer prints the live mode's lines, one at a time, each after the
// time of day.
type printer struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// line prints one timestamped line.
func (p *printer) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s  %s\n", p.now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// plain prints one line as it is.
func (p *printer) plain(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// tally counts what the observer summarises rather than prints.
type tally struct {
	telemetry map[string]int // readings by transport
	doors     int            // door state reports
	liveness  int            // births, heartbeats, deaths
	roof      string         // the roof sensor's last reading
}

// observer prints what happens on the site as central sees it: the live
// traffic of org acme on central's service connection, and the access
// decisions, which reach central only through its event stream (the edge
// records them in its platform stream, which central sources). Commands
// to devices stay at the edge; it takes them, and their acks, at the edge.
type observer struct {
	out *printer

	sub, cmds, acked *nats.Subscription
	cons             jetstream.ConsumeContext

	mu       sync.Mutex
	window   tally
	commands map[message.ID]string // action of each command seen and not yet finally acked
	final    uint64                // final acks seen
}

// decisionFilter is the subject of the edge's decision records in
// central's event stream.
var decisionFilter = topic.Thing{Org: org, Edge: topic.Any, Type: topic.ThingTypeAccess, Code: topic.Any}.Subject(topic.Event).String()

// maxCommands bounds observer.commands: commands whose final ack never
// came are forgotten beyond it.
const maxCommands = 1024

// observe starts observing on conn (central's service connection), on
// central's event stream, the org's stream name, through js (on conn),
// and, for the commands the edge sends its devices, which never cross the
// leaf link, on edgeConn, the edge's own connection.
func observe(ctx context.Context, conn *nats.Conn, js jetstream.JetStream, stream string, edgeConn *nats.Conn, out *printer) (*observer, error) {
	o := &observer{out: out, commands: make(map[message.ID]string)}
	o.reset()
	var err error
	all := topic.Thing{Org: org, Edge: edge, Type: topic.Any, Code: topic.Any}
	if o.cmds, err = edgeConn.Subscribe(all.Subject(topic.Command).String(), o.live); err != nil {
		return nil, fmt.Errorf("observe: subscribe to the edge's commands: %w", err)
	}
	if o.acked, err = edgeConn.Subscribe(all.Subject(topic.Ack).String(), o.live); err != nil {
		_ = o.cmds.Unsubscribe()
		return nil, fmt.Errorf("observe: subscribe to the edge's acks: %w", err)
	}
	if err := edgeConn.Flush(); err != nil {
		_ = o.cmds.Unsubscribe()
		_ = o.acked.Unsubscribe()
		return nil, fmt.Errorf("observe: subscribe to the edge's commands: %w", err)
	}
	if o.sub, err = conn.Subscribe(org+".>", o.central); err != nil {
		_ = o.cmds.Unsubscribe()
		_ = o.acked.Unsubscribe()
		return nil, fmt.Errorf("observe: subscribe: %w", err)
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{decisionFilter}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err == nil {
		o.cons, err = cons.Consume(o.decision)
	}
	if err != nil {
		for _, sub := range []*nats.Subscription{o.sub, o.cmds, o.acked} {
			_ = sub.Unsubscribe()
		}
		return nil, fmt.Errorf("observe: central's event stream: %w", err)
	}
	return o, nil
}

// stop stops observing. The decision consumer has stopped when it
// returns; a handler of the live traffic may still finish its message,
// until the connections close.
func (o *observer) stop() {
	o.cons.Stop()
	<-o.cons.Closed()
	for _, sub := range []*nats.Subscription{o.sub, o.cmds, o.acked} {
		_ = sub.Unsubscribe()
	}
}

func (o *observer) reset() {
	o.window = tally{telemetry: make(map[string]int)}
}

// take returns the tally since the last take.
func (o *observer) take() tally {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.window
	o.reset()
	return t
}

// decision prints an access decision record.
func (o *observer) decision(m jetstream.Msg) {
	e, err := message.FromJetStream(m)
	if err != nil {
		o.out.line("central: unreadable decision record on %s: %v", m.Subject(), err)
		return
	}
	d, err := message.DecodePayload[message.AccessDecision](e)
	if err != nil {
		o.out.line("central: unreadable decision of reader %s: %v", e.Source.Code, err)
		return
	}
	who := "an unknown card"
	if d.Holder != "" {
		who = d.Holder
	}
	how := fmt.Sprintf("set version %d", d.CredentialSetVersion)
	if d.Offline {
		how = "offline, " + how
	}
	if d.Granted {
		o.out.line("%s at %s: %s granted (%s)", label(readerThing(e.Source.Code)), d.Door, who, how)
		return
	}
	o.out.line("%s at %s: %s denied: %s (%s)", label(readerThing(e.Source.Code)), d.Door, who, d.Reason, how)
}

// central handles a message of the org's live traffic at central but for
// commands and acks, which the observer takes at the edge.
func (o *observer) central(m *nats.Msg) {
	if st, err := topic.Parse(m.Subject); err == nil && (st.MessageType == topic.Command || st.MessageType == topic.Ack) {
		return
	}
	o.live(m)
}

// live handles a message of the live traffic.
func (o *observer) live(m *nats.Msg) {
	e, err := message.FromMsg(m)
	if err != nil {
		return // not an envelope: not the platform's
	}
	src := e.Source
	switch {
	case src.Type == topic.ThingTypeSystem:
		o.out.line("central: %s about edge %s", e.Name, src.Edge)
	case src.Type == topic.ThingTypeEdge:
		if e.Type == topic.Event {
			o.out.line("edge %s: %s", src.Edge, e.Name)
		}
	case e.Type == topic.Command:
		o.command(e)
	case e.Type == topic.Ack:
		o.ack(e)
	case e.Type == topic.Telemetry:
		o.mu.Lock()
		o.window.telemetry[transport(src)]++
		if src == roofSensor {
			if r, err := message.DecodePayload[message.SensorReading](e); err == nil {
				o.window.roof = fmt.Sprintf("%s %g %s", r.Metric, r.Value, r.Unit)
			}
		}
		o.mu.Unlock()
	case e.Name == message.NameThingBirth || e.Name == message.NameThingHeartbeat || e.Name == message.NameThingDeath:
		o.count(&o.window.liveness)
	case e.Name == message.NameDoorState:
		o.count(&o.window.doors)
	case e.Name == message.NameDoorForcedOpen:
		// Only the incidents force a door, and print it.
	case e.Name == message.NameDoorHeldOpen:
		ds, _ := message.DecodePayload[message.DoorState](e)
		o.out.line("%s: %s at %s", label(src), e.Name, ds.Door)
	case e.Name == nameCheckedIn:
		v, _ := message.DecodePayload[map[string]string](e)
		o.out.line("kiosk %s (HTTP, through the gateway): visitor %s checked in for %s", src.Code, v["visitor"], v["host"])
	case e.Type == topic.Event:
		o.out.line("%s: %s", label(src), e.Name)
	}
}

func (o *observer) count(n *int) {
	o.mu.Lock()
	*n++
	o.mu.Unlock()
}

// label names a thing for the transcript: "reader r1", "reader-1",
// "door contact ds1".
func label(t topic.Thing) string {
	if t.Type == contact.Type || t.Type == string(simulator.DoorSensor) {
		return "door contact " + t.Code
	}
	if strings.HasPrefix(t.Code, t.Type+"-") {
		return t.Code // "reader-1"
	}
	return t.Type + " " + t.Code
}

// readerThing is the reader of edge hq with code.
func readerThing(code string) topic.Thing {
	return topic.Thing{Org: org, Edge: edge, Type: reader.Type, Code: code}
}

// transport says how a device reaches the edge.
func transport(t topic.Thing) string {
	switch t {
	case kiosk:
		return "HTTP"
	case roofSensor:
		return "MQTT"
	}
	return "NATS"
}

// command prints a command as the edge sent it.
func (o *observer) command(e *message.Envelope) {
	c, err := message.DecodePayload[message.Command](e)
	if err != nil {
		o.out.line("%s: unreadable command: %v", label(e.Source), err)
		return
	}
	o.mu.Lock()
	if len(o.commands) >= maxCommands {
		clear(o.commands)
	}
	o.commands[e.ID] = c.Action
	o.mu.Unlock()
	var params []string
	for _, k := range slices.Sorted(maps.Keys(c.Params)) {
		params = append(params, k+" "+c.Params[k])
	}
	by := c.RequestedBy
	if rule, ok := strings.CutPrefix(by, "rule:"); ok {
		by = "rule " + rule
	} else if r, ok := strings.CutPrefix(by, "access:"); ok {
		// "acme.hq.reader.r1": the reader's code is the last token.
		by = "grant at " + label(readerThing(r[strings.LastIndexByte(r, '.')+1:]))
	}
	o.out.line("%s: command %s (%s), for the %s", label(e.Source), c.Action, strings.Join(params, ", "), by)
}

// ack prints a command's final ack.
func (o *observer) ack(e *message.Envelope) {
	a, err := message.DecodePayload[message.Ack](e)
	if err != nil || !a.Status.Final() {
		return
	}
	o.mu.Lock()
	action, ok := o.commands[a.CommandID]
	delete(o.commands, a.CommandID)
	o.final++
	o.mu.Unlock()
	if !ok {
		action = "command"
	}
	if a.Error != "" {
		o.out.line("%s: %s %s: %s", label(e.Source), action, a.Status, a.Error)
		return
	}
	o.out.line("%s: %s %s", label(e.Source), action, a.Status)
}

// acks returns how many final acks the observer has seen.
func (o *observer) acks() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.final
}

// summary formats a tally over the last period.
func (t tally) summary(period time.Duration) string {
	total := 0
	var by []string
	for _, tr := range []string{"NATS", "HTTP", "MQTT"} {
		if n := t.telemetry[tr]; n > 0 {
			total += n
			by = append(by, fmt.Sprintf("%d %s", n, tr))
		}
	}
	s := fmt.Sprintf("last %s: %d telemetry readings", period.Round(time.Second), total)
	if len(by) > 0 {
		s += " (" + strings.Join(by, ", ") + ")"
	}
	if t.roof != "" {
		s += fmt.Sprintf(", roof %s", t.roof)
	}
	return s + fmt.Sprintf("; %d door states, %d births, heartbeats and deaths", t.doors, t.liveness)
}
