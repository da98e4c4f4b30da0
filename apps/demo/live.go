package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/devicekit/simulator"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
)

// liveOptions are the live mode's flags.
type liveOptions struct {
	database      string  // -database
	speed         float64 // -speed
	cycle, outage time.Duration
}

// check returns an error naming the first flag with a value out of range.
func (o liveOptions) check() error {
	switch {
	case !(o.speed > 0) || math.IsInf(o.speed, 0):
		return fmt.Errorf("-speed %v: want a positive number", o.speed)
	case o.cycle < 0:
		return fmt.Errorf("-cycle %v: want a duration of 0 (never) or more", o.cycle)
	case o.outage <= 0:
		return fmt.Errorf("-outage %v: want a positive duration", o.outage)
	}
	return nil
}

// Pace of the live mode.
const (
	// tallyEvery is how often the telemetry is summarised.
	tallyEvery = 10 * time.Second
	// firstIncident is when the first forced door and outage come, or
	// after -cycle if that is shorter.
	firstIncident = 10 * time.Second
	// pollEvery paces the polls of central's release marks while waiting
	// for central to catch up after an outage.
	pollEvery = 50 * time.Millisecond
)

// live is the live mode: the site, and what runs beside it.
type live struct {
	*site
	opts liveOptions
	out  *printer
	hist *history

	js         jetstream.JetStream // on central's service connection
	obs        *observer
	sim        *simulator.Simulator
	gatewayURL string
	dir        string // the demo's temporary directory
	apiURL     string // central's API and console
	apiToken   string // an admin token of the API
}

// runLive starts the site and everything of the live mode under dir,
// prints what happens to stdout until ctx ends, then stops everything.
func runLive(ctx context.Context, fail context.CancelCauseFunc, o liveOptions, dir string, stdout io.Writer, log *slog.Logger) error {
	began := time.Now()
	out := &printer{w: stdout, now: time.Now}
	hist, err := openHistory(ctx, o.database)
	if err != nil {
		return err
	}
	defer hist.close() // after the site: central's ingest uses it
	s, err := startSite(ctx, fail, dir, log, siteOptions{live: true, database: hist.pool})
	if err != nil {
		return err
	}
	defer s.close()

	l := &live{site: s, opts: o, out: out, hist: hist, dir: dir}
	for _, start := range []func(context.Context) error{l.enrolBadges, l.putRules, l.startObserver, l.startSimulator, l.startKiosk, l.startRoofSensor, l.startAPI} {
		if err := start(ctx); err != nil {
			return err
		}
	}
	path, err := l.writeContext(dir)
	if err != nil {
		return err
	}
	l.every(tallyEvery, l.tally)
	l.banner(time.Since(began), path)
	l.incidents(ctx)
	return nil
}

// putRules has central put the rule document and waits for the edge's
// engine to load it.
func (l *live) putRules(ctx context.Context) error {
	rev, err := l.manager.PutRules(ctx, edge, []byte(rulesDocument))
	if err != nil {
		return fmt.Errorf("put the rules: %w", err)
	}
	if err := waitFor(ctx, "the edge to load the rules", func() bool { return l.engine.Rules().Len() == 1 }); err != nil {
		return err
	}
	return waitFor(ctx, fmt.Sprintf("the edge to apply set version %d", rev), func() bool { return l.service.Version() >= rev })
}

// startObserver starts printing what central sees.
func (l *live) startObserver(ctx context.Context) error {
	var err error
	if l.js, err = jetstream.New(l.conn); err != nil {
		return fmt.Errorf("central's JetStream: %w", err)
	}
	obs, err := observe(ctx, l.conn, l.js, l.central.Hub(org).EventStream(), l.node.Conn(), l.out)
	if err != nil {
		return err
	}
	l.obs = obs
	l.onClose(obs.stop)
	return nil
}

// every runs f every d until the site closes; f's ctx ends then.
func (l *live) every(d time.Duration, f func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			f(ctx)
		}
	}()
	l.onClose(func() { cancel(); <-done })
}

// banner prints what runs, how long the start took, and how to reach it.
func (l *live) banner(took time.Duration, contextPath string) {
	sim := simulatedThings()
	p := l.out
	p.plain("Lintel demo: the whole system runs in this process until Ctrl-C.")
	p.plain("  central    %s (JetStream domain %s); history: %s", l.central.ClientURL(), authz.HubDomain, l.hist.describe())
	p.plain("  edge %s    its leaf node, through a proxy that can cut the link (JetStream domain %s)", edge, l.node.Names().Domain)
	p.plain("             MQTT on %s; HTTP gateway on %s", l.node.MQTTAddr(), l.gatewayURL)
	p.plain("  devices    %d simulated, over NATS: %d readers, %d locks, %d door contacts, %d environment sensors",
		l.sim.Stats().Devices, len(sim[simulator.Reader]), len(sim[simulator.Lock]), len(sim[simulator.DoorSensor]), len(sim[simulator.EnvSensor]))
	p.plain("             kiosk %s over HTTP (the gateway), sensor %s over MQTT; at door %s reader %s, lock %s, door contact %s; sounder %s",
		kiosk.Code, roofSensor.Code, door, reader.Code, lock.Code, contact.Code, sounder.Code)
	p.plain("  doors      %s", strings.Join(append([]string{door}, doorNames...), ", "))
	var cards []string
	unknown := 0
	for _, b := range badges {
		switch {
		case b.holder == "":
			unknown++
		case b.reason != "":
			cards = append(cards, fmt.Sprintf("%s (suspended: %s)", b.holder, b.reason))
		case b.doors == nil:
			cards = append(cards, b.holder+" (every door)")
		default:
			cards = append(cards, fmt.Sprintf("%s (%d doors)", b.holder, len(b.doors)))
		}
	}
	p.plain("  cards      %s; and %d cards nobody enrolled", strings.Join(cards, ", "), unknown)
	p.plain("  rules      door-forced: a door contact's %s sounds sounder %s", message.NameDoorForcedOpen, sounder.Code)
	if l.opts.cycle > 0 {
		p.plain("  incidents  after %s, then every %s: door %s forced open, then the link to central cut for %s",
			min(firstIncident, l.opts.cycle), l.opts.cycle, door, l.opts.outage)
	}
	p.plain("Up in %.1fs.", took.Seconds())
	p.plain("")
	p.plain("Central's console and API (log in to the console with the token; API clients send it as a bearer token):")
	p.plain("  console    %s%s", l.apiURL, api.ConsolePath)
	p.plain("  API        %s/api/v1/ (OpenAPI: %s/api/v1/openapi.json)", l.apiURL, l.apiURL)
	p.plain("  token      %s", l.apiToken)
	p.plain("  curl -H 'Authorization: Bearer %s' %s/api/v1/edges", l.apiToken, l.apiURL)
	p.plain("")
	p.plain("lintelctl's live commands use this context, as operator %s:", operatorUser)
	p.plain("  export LINTEL_CONTEXT=%s", contextPath)
	p.plain("Watch the traffic with the nats CLI:")
	p.plain("  nats --server %s --user %s --password %s sub '%s.>'", l.central.ClientURL(), operatorUser, l.password(operatorUser), org)
	p.plain("")
}

// tally prints the summary of the last tallyEvery.
func (l *live) tally(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	s := l.obs.take().summary(tallyEvery)
	if st, err := l.node.Status(ctx); err == nil {
		s += fmt.Sprintf("; %d devices online", st.DevicesOnline)
	}
	if l.hist.pool != nil {
		if o, ok := l.central.Status(ctx).Orgs[org]; ok && o.Ingest != nil {
			s += fmt.Sprintf("; %d messages stored in PostgreSQL so far", o.Ingest.Ingested)
		}
	}
	l.out.line("%s", s)
}

// incidents forces door front open and cuts the link, after
// firstIncident and then every -cycle, until ctx ends.
func (l *live) incidents(ctx context.Context) {
	if l.opts.cycle == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTimer(min(firstIncident, l.opts.cycle))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, incident := range []func(context.Context) error{l.forceDoor, l.cutLink} {
			if err := incident(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				l.out.line("incident: %v", err)
			}
		}
		t.Reset(l.opts.cycle)
	}
}

// forceDoor has door contact ds1 report door front forced open, which
// the edge's rule answers with a command to the sounder; it waits until
// the sounder has it and acked it.
func (l *live) forceDoor(ctx context.Context) error {
	acked := l.obs.acks()
	l.out.line("incident: door contact %s reports door %s forced open (%s)", contact.Code, door, message.NameDoorForcedOpen)
	if _, err := l.contact.PublishEvent(ctx, message.NameDoorForcedOpen, message.DoorState{Door: door, Open: true, Locked: true, Forced: true}); err != nil {
		return fmt.Errorf("door contact %s: %w", contact.Code, err)
	}
	if _, err := receive(ctx, "the sounder's command", l.sounds); err != nil {
		return err
	}
	return waitFor(ctx, "the sounder's ack", func() bool { return l.obs.acks() > acked })
}

// cutLink cuts the link between the edge and central for -outage, then
// restores it and waits until central has received what the edge held,
// printing how much that was.
func (l *live) cutLink(ctx context.Context) error {
	before := l.service.Stats()
	l.proxy.Cut()
	defer l.proxy.Restore()
	if err := waitFor(ctx, "the link to drop", func() bool { return !l.node.LinkUp() }); err != nil {
		return err
	}
	l.out.line("incident: the link to central is cut for %s; edge %s carries on alone", l.opts.outage, edge)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(l.opts.outage):
	}
	held, err := l.backlogs(ctx)
	if err != nil {
		return fmt.Errorf("the edge's streams: %w", err)
	}
	l.proxy.Restore()
	restored := time.Now()
	if err := waitFor(ctx, "the link to come back", l.node.LinkUp); err != nil {
		return err
	}
	if err := waitEvery(ctx, "central to receive what the edge held", pollEvery, func() bool { return l.caughtUp(ctx, held) }); err != nil {
		return err
	}
	took := time.Since(restored)
	var total uint64
	var parts []string
	for _, b := range held {
		total += b.held
		parts = append(parts, fmt.Sprintf("%d %s", b.held, b.what))
	}
	l.out.line("incident: link back; central received the %d messages edge %s held for it (%s) within %.1fs",
		total, edge, strings.Join(parts, ", "), took.Seconds())
	after := l.service.Stats()
	l.out.line("incident: meanwhile edge %s made %d access decisions offline, from its own copy of the credentials",
		edge, after.Offline-before.Offline)
	return nil
}

// backlog is what one of the edge's streams holds that central lacks.
type backlog struct {
	stream, flow, what string
	last               uint64 // the stream's last sequence
	held               uint64 // how many of its messages central lacks
}

// backlogs reads, for each of the edge's streams that central sources,
// its last sequence and how far central holds it.
func (l *live) backlogs(ctx context.Context) ([]backlog, error) {
	n := l.node.Names()
	bs := []backlog{
		{stream: n.EventStream, flow: authz.FlowEvents, what: "events and states"},
		{stream: n.TelemetryStream, flow: authz.FlowTelemetry, what: "telemetry readings"},
		{stream: n.PlatformStream, flow: authz.FlowPlatform, what: "decision records"},
	}
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	for i, b := range bs {
		s, err := l.node.JetStream().Stream(ctx, b.stream)
		if err != nil {
			return nil, err
		}
		stored, err := l.stored(ctx, b.flow)
		if err != nil {
			return nil, err
		}
		bs[i].last = s.CachedInfo().State.LastSeq
		if bs[i].last > stored {
			bs[i].held = bs[i].last - stored
		}
	}
	return bs, nil
}

// stored returns how far central holds the edge's stream of flow without
// a gap, as central's release tracker marks it in its release bucket
// (topology.ReleaseMark).
func (l *live) stored(ctx context.Context, flow string) (uint64, error) {
	kv, err := l.js.KeyValue(ctx, topology.ReleaseBucket(org))
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, l.node.Names().ReleaseKey(flow))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var m topology.ReleaseMark
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return 0, fmt.Errorf("release mark of %s: %w", flow, err)
	}
	return m.Stored, nil
}

// caughtUp reports whether central holds, of each of the edge's streams,
// every message up to the last the stream held in held.
func (l *live) caughtUp(ctx context.Context, held []backlog) bool {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	for _, b := range held {
		if stored, err := l.stored(ctx, b.flow); err != nil || stored < b.last {
			return false
		}
	}
	return true
}
