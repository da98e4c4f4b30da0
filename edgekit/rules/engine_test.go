package rules_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

func TestLoopGuardSelf(t *testing.T) {
	b := startBus(t)
	out := b.record(t, edgeEvt)
	// echo matches every event, its own output included.
	eng := b.engine(t, `{"rules": [{"name": "echo", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "echoed"}}]}]}`, nil)
	for range 3 {
		b.event(t, doorD1, "ping")
	}
	waitFor(t, "the three echoes to come back", func() bool { return eng.Stats().Rules["echo"].DroppedLoop == 3 })
	st := eng.Stats()
	if r := st.Rules["echo"]; r.Fired != 3 || r.Errors != 0 || r.PublishErrors != 0 {
		t.Errorf("echo stats %+v, want 3 firings, one per input", r)
	}
	if got := out.names(t); !slices.Equal(got, []string{"echoed", "echoed", "echoed"}) {
		t.Errorf("edge events %v, want three echoes", got)
	}
	if st.DroppedDepth != 0 || st.Inputs != 6 {
		t.Errorf("stats %+v", st)
	}
}

func TestLoopGuardPair(t *testing.T) {
	b := startBus(t)
	out := b.record(t, edgeEvt)
	// a and b trigger each other: a's output triggers b, whose output
	// would trigger a again.
	eng := b.engine(t, `{"rules": [
	 {"name": "a", "match": "acme.hq.*.*.evt", "when": "name == 'x'", "actions": [{"event": {"name": "y"}}]},
	 {"name": "b", "match": "acme.hq.*.*.evt", "when": "name == 'y'", "actions": [{"event": {"name": "x"}}]}]}`, nil)
	b.event(t, doorD1, "x")
	waitFor(t, "a to refuse b's output", func() bool { return eng.Stats().Rules["a"].DroppedLoop == 1 })
	st := eng.Stats()
	if st.Rules["a"].Fired != 1 || st.Rules["b"].Fired != 1 || st.Rules["b"].DroppedLoop != 0 {
		t.Errorf("stats %+v, want a and b to fire once each", st.Rules)
	}
	msgs := out.all()
	if got := out.names(t); !slices.Equal(got, []string{"y", "x"}) {
		t.Fatalf("edge events %v, want y, x", got)
	}
	last := msgs[1].Header
	if last.Get(rules.HeaderRule) != "b" || last.Get(rules.HeaderRuleChain) != "a,b" || last.Get(rules.HeaderRuleDepth) != "2" {
		t.Errorf("headers of b's output %v", last)
	}
}

func TestLoopGuardMaxDepth(t *testing.T) {
	b := startBus(t)
	out := b.record(t, edgeEvt)
	// A chain of distinct rules, s0 → s1 → ... → s6, stopped at depth 3.
	var sb strings.Builder
	sb.WriteString(`{"rules": [`)
	for i := 1; i <= 6; i++ {
		if i > 1 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"name": "r` + string(rune('0'+i)) + `", "match": "acme.hq.*.*.evt", "when": "name == 's` + string(rune('0'+i-1)) +
			`'", "actions": [{"event": {"name": "s` + string(rune('0'+i)) + `"}}]}`)
	}
	sb.WriteString(`]}`)
	eng := b.engine(t, sb.String(), func(c *rules.Config) { c.MaxDepth = 3 })
	b.event(t, doorD1, "s0")
	waitFor(t, "the chain to stop", func() bool { return eng.Stats().DroppedDepth == 1 })
	if got := out.names(t); !slices.Equal(got, []string{"s1", "s2", "s3"}) {
		t.Errorf("edge events %v, want s1, s2, s3", got)
	}
	if st := eng.Stats(); st.Rules["r3"].Fired != 1 || st.Rules["r4"].Fired != 0 || st.Fired != 3 {
		t.Errorf("stats %+v", st)
	}
}

// A device cannot silence a rule by dressing its message up as the rule's
// output: loop headers count only on messages of the edge itself.
func TestLoopHeadersFromDevicesIgnored(t *testing.T) {
	b := startBus(t)
	eng := b.engine(t, `{"rules": [{"name": "door-forced", "match": "acme.hq.door_sensor.*.evt", "actions": [{"event": {"name": "alarm"}}]}]}`, nil)
	e := envelope(t, doorD1, topic.Event, message.NameDoorForcedOpen, nil)
	b.publish(t, e, nats.Header{rules.HeaderRule: {"door-forced"}, rules.HeaderRuleChain: {"door-forced"}, rules.HeaderRuleDepth: {"99"}})
	waitFor(t, "the rule to fire", func() bool { return eng.Stats().Rules["door-forced"].Fired == 1 })
	if st := eng.Stats(); st.DroppedDepth != 0 || st.DroppedLoop != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestStorm(t *testing.T) {
	b := startBus(t)
	out := b.record(t, edgeEvt)
	clk := newClock()
	logs := &recordHandler{}
	eng := b.engine(t, `{"rules": [{"name": "storm", "match": "acme.hq.door_sensor.*.evt",
	  "actions": [{"event": {"name": "alarm"}}], "rate": {"per_minute": 1, "burst": 3}}]}`,
		func(c *rules.Config) { c.Now = clk.Now; c.Logger = slog.New(logs) })
	for range 100 {
		b.event(t, doorD1, message.NameDoorForcedOpen)
	}
	waitFor(t, "100 inputs", func() bool { st := eng.Stats(); return st.Fired+st.DroppedRate == 100 })
	st := eng.Stats().Rules["storm"]
	if st.Fired != 3 || st.DroppedRate != 97 {
		t.Errorf("stats %+v, want 3 fired, 97 dropped", st)
	}
	waitFor(t, "three alarms", func() bool { return len(out.all()) == 3 })
	if n := logs.count("rule not fired: over its rate limit"); n != 1 {
		t.Errorf("%d rate-limit records, want 1 per interval", n)
	}

	// A minute later the bucket holds one more token.
	clk.Advance(time.Minute)
	b.event(t, doorD1, message.NameDoorForcedOpen)
	b.event(t, doorD1, message.NameDoorForcedOpen)
	waitFor(t, "102 inputs", func() bool { st := eng.Stats(); return st.Fired+st.DroppedRate == 102 })
	if st := eng.Stats().Rules["storm"]; st.Fired != 4 || st.DroppedRate != 98 {
		t.Errorf("stats %+v, want 4 fired, 98 dropped", st)
	}
	if n := logs.count("rule not fired: over its rate limit"); n != 2 {
		t.Errorf("%d rate-limit records, want 2 (one per interval)", n)
	}
}

func TestDuplicateInput(t *testing.T) {
	b := startBus(t)
	eng := b.engine(t, `{"rules": [{"name": "r", "match": "acme.hq.*.*.evt", "actions": [{"event": {"name": "alarm"}}]}]}`, nil)
	e := envelope(t, doorD1, topic.Event, "x", nil)
	b.publish(t, e, nil)
	b.publish(t, e, nil) // a device's retried publish
	b.event(t, doorD1, "y")
	waitFor(t, "three messages", func() bool { return eng.Stats().Rules["r"].Fired == 2 && eng.Stats().Duplicates == 1 })
}

func TestIgnored(t *testing.T) {
	b := startBus(t)
	eng := b.engine(t, `{"rules": [{"name": "r", "match": "acme.hq.>", "actions": [{"event": {"name": "seen"}}]}]}`, nil)
	if err := b.nc.Publish("acme.hq.door_sensor.d1.evt", []byte("not an envelope")); err != nil {
		t.Fatal(err)
	}
	b.publish(t, envelope(t, hvacH1, topic.Command, message.NameCommand, message.Command{Action: "cool"}), nil)
	if err := b.nc.Publish("acme.hq.odd", []byte("x")); err != nil {
		t.Fatal(err)
	}
	b.event(t, doorD1, "marker")
	waitFor(t, "the marker", func() bool { return eng.Stats().Rules["r"].Fired == 1 })
	if st := eng.Stats(); st.Ignored != 3 {
		t.Errorf("stats %+v, want 3 ignored", st)
	}
}

// An event no stream stores is an error of the rule, counted and logged.
func TestPublishError(t *testing.T) {
	b := startBus(t)
	eng := b.engine(t, `{"rules": [{"name": "r", "match": "acme.hq.*.*.tlm", "actions": [{"event": {"name": "x"}}]}]}`,
		func(c *rules.Config) { c.JetStream = nil; c.Timeout = 500 * time.Millisecond })
	if err := b.js.DeleteStream(testCtx(t), busStream); err != nil {
		t.Fatal(err)
	}
	b.publish(t, envelope(t, sensorT1, topic.Telemetry, message.NameSensorReading, nil), nil)
	waitFor(t, "the publish error", func() bool { return eng.Stats().Rules["r"].PublishErrors == 1 })
}

func TestForEpisodesAcrossLoads(t *testing.T) {
	b := startBus(t)
	const held = `{"name": "held", "match": "acme.hq.door_sensor.*.state", "when": "payload.open", "for": "1h", "actions": [{"event": {"name": "held"}}]}`
	eng := b.engine(t, `{"rules": [`+held+`]}`, nil)
	b.publish(t, envelope(t, doorD1, topic.State, message.NameDoorState, message.DoorState{Door: "d1", Open: true}), nil)
	waitFor(t, "the episode", func() bool { return eng.Stats().Rules["held"].Pending == 1 })

	// An unchanged rule keeps its episodes.
	if err := eng.Reload([]byte(`{"rules": [` + held + `, {"name": "other", "match": "acme.hq.>", "actions": [{"event": {"name": "o"}}]}]}`)); err != nil {
		t.Fatal(err)
	}
	if p := eng.Stats().Rules["held"].Pending; p != 1 {
		t.Errorf("%d episodes pending after reloading the same rule, want 1", p)
	}
	// An invalid document changes nothing.
	err := eng.Reload([]byte(`{"rules": [` + held + `, {"name": "bad", "match": "acme.hq.>", "when": "nope", "actions": [{"event": {"name": "o"}}]}]}`))
	var re *rules.RuleError
	if !errors.As(err, &re) || re.Rule != "bad" || re.Field != "when" {
		t.Fatalf("reload error %v", err)
	}
	if st := eng.Stats(); st.Rules["held"].Pending != 1 || len(st.Rules) != 2 || st.ReloadErrors != 1 {
		t.Errorf("stats after a refused reload %+v", st)
	}
	// A changed rule starts afresh.
	if err := eng.Reload([]byte(`{"rules": [` + strings.Replace(held, `"1h"`, `"2h"`, 1) + `]}`)); err != nil {
		t.Fatal(err)
	}
	if st := eng.Stats(); st.Rules["held"].Pending != 0 || len(st.Rules) != 1 {
		t.Errorf("stats after changing the rule %+v", st)
	}
}

func TestStartAndLoadErrors(t *testing.T) {
	b := startBus(t)
	ctx := testCtx(t)
	for name, cfg := range map[string]rules.Config{
		"no conn":          {Org: "acme", Edge: "hq"},
		"no edge":          {Org: "acme", Conn: b.nc},
		"bad org":          {Org: "ac me", Edge: "hq", Conn: b.nc},
		"negative maximum": {Org: "acme", Edge: "hq", Conn: b.nc, MaxDepth: -1},
	} {
		if _, err := rules.Start(ctx, cfg, nil); !errors.Is(err, rules.ErrInvalidConfig) {
			t.Errorf("%s: error %v, want ErrInvalidConfig", name, err)
		}
	}
	other, err := rules.Parse([]byte(`{"rules": []}`), rules.Scope{Org: "acme", Edge: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Start(ctx, rules.Config{Org: "acme", Edge: "hq", Conn: b.nc}, other); !errors.Is(err, rules.ErrScope) {
		t.Errorf("start with another edge's rules: %v, want ErrScope", err)
	}
	eng := b.engine(t, `{"rules": []}`, nil)
	if err := eng.Load(other); !errors.Is(err, rules.ErrScope) {
		t.Errorf("load of another edge's rules: %v, want ErrScope", err)
	}
}

// TestStartContextBoundsStartOnly: the context given to Start bounds the
// start only. The engine goes on firing after it ends, and stops with
// Stop.
func TestStartContextBoundsStartOnly(t *testing.T) {
	b := startBus(t)
	out := b.record(t, edgeEvt)
	rs, err := rules.Parse([]byte(`{"rules": [{"name": "echo", "match": "acme.hq.door_sensor.*.evt", "actions": [{"event": {"name": "echoed"}}]}]}`), scope)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	eng, err := rules.Start(ctx, rules.Config{Org: "acme", Edge: "hq", Conn: b.nc}, rs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	cancel()

	b.event(t, doorD1, "ping")
	waitFor(t, "the rule to fire after the start's context ended", func() bool { return eng.Stats().Rules["echo"].Fired == 1 })
	waitFor(t, "its event", func() bool { return slices.Equal(out.names(t), []string{"echoed"}) })
	select {
	case <-eng.Done():
		t.Fatal("the engine stopped when the start's context ended")
	default:
	}

	eng.Stop()
	select {
	case <-eng.Done():
	default:
		t.Fatal("Done not closed once Stop returned")
	}
	received := eng.Stats().Received
	b.event(t, doorD1, "ping")
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := eng.Stats().Received; got != received {
		t.Errorf("the stopped engine received %d messages more", got-received)
	}
	eng.Stop() // idempotent
}

// recordHandler is a slog.Handler that keeps the messages of its records.
type recordHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}
