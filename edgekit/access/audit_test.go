package access_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/nats-io/nats.go"
)

// chainEvent is one decision event as the verifier sees it.
type chainEvent struct {
	name string // for failure messages: "3", "3*" (modified), "3'" (fork)
	id   message.ID
	data []byte
	d    message.AccessDecision
}

// toChainEvent decodes msg as a decision event.
func toChainEvent(tb testing.TB, name string, msg *nats.Msg) chainEvent {
	tb.Helper()
	e, err := message.FromMsg(msg)
	if err != nil {
		tb.Fatalf("event %s: %v", name, err)
	}
	d, err := message.DecodePayload[message.AccessDecision](e)
	if err != nil {
		tb.Fatalf("event %s: %v", name, err)
	}
	return chainEvent{name: name, id: e.ID, data: msg.Data, d: d}
}

// modified returns ev with one byte of its payload changed (the door "front"
// becomes "fronT"), as an edit at rest or in transit would, still decodable.
func modified(tb testing.TB, ev chainEvent) chainEvent {
	tb.Helper()
	i := bytes.Index(ev.data, []byte("front"))
	if i < 0 {
		tb.Fatalf("event %s has no door to modify", ev.name)
	}
	data := bytes.Clone(ev.data)
	data[i+4] = 'T'
	out := toChainEvent(tb, ev.name+"*", &nats.Msg{Subject: access.DecisionThing("acme", "hq", siteR1.Code).Subject("evt").String(), Data: data})
	if out.d.Door != "fronT" {
		tb.Fatalf("modified door %q", out.d.Door)
	}
	return out
}

// chainFixture is a chain of six events of reader r1, plus forks: "3'" and
// "4'" continue from event 2 (the edge lost its head after 2), "1'" starts
// a new chain (the edge lost its store).
type chainFixture struct {
	ev    map[string]chainEvent
	heads map[string]access.ChainHead // head after each main event
}

func newChainFixture(tb testing.TB) chainFixture {
	tb.Helper()
	f := chainFixture{ev: map[string]chainEvent{}, heads: map[string]access.ChainHead{}}
	w := newChainWriter(tb, siteR1, nil)
	at := time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)
	names := []string{"1", "2", "3", "4", "5", "6"}
	for i, n := range names {
		d := cenGrant("front", "c", 7)
		if i%2 == 1 {
			d = cenDeny("front", "c", 7)
		}
		f.ev[n] = toChainEvent(tb, n, w.next(d, at.Add(time.Duration(i)*time.Second)))
		f.heads[n] = w.head
	}
	f.ev["3*"] = modified(tb, f.ev["3"])
	fw := w.fork(f.heads["2"])
	f.ev["3'"] = toChainEvent(tb, "3'", fw.next(cenGrant("front", "other", 8), at.Add(time.Hour)))
	f.ev["4'"] = toChainEvent(tb, "4'", fw.next(cenGrant("front", "other", 8), at.Add(time.Hour+time.Second)))
	nw := w.fork(access.ChainHead{})
	f.ev["1'"] = toChainEvent(tb, "1'", nw.next(cenGrant("front", "fresh", 1), at.Add(2*time.Hour)))
	f.ev["2'"] = toChainEvent(tb, "2'", nw.next(cenGrant("front", "fresh", 1), at.Add(2*time.Hour+time.Second)))
	return f
}

func TestChainVerifier(t *testing.T) {
	f := newChainFixture(t)
	h := func(n string) string { return f.heads[n].Hash }
	type step struct {
		event string
		kind  access.BreakKind // "" for no break
		dup   bool             // not new
		// For a break: what was expected and what the event carried.
		expSeq, gotSeq uint64
		expPrev        string
	}
	ok := func(ev string) step { return step{event: ev} }
	tests := []struct {
		name  string
		head  string // the head the verifier starts from: "" for an empty chain
		steps []step
		final access.ChainHead
	}{
		{name: "intact", steps: []step{ok("1"), ok("2"), ok("3"), ok("4"), ok("5"), ok("6")}, final: f.heads["6"]},
		{name: "deleted event is a gap", steps: []step{ok("1"), ok("2"),
			{event: "4", kind: access.BreakGap, expSeq: 3, gotSeq: 4}, ok("5"), ok("6")}, final: f.heads["6"]},
		{name: "two deleted events are one gap", steps: []step{ok("1"),
			{event: "4", kind: access.BreakGap, expSeq: 2, gotSeq: 4}, ok("5")}, final: f.heads["5"]},
		{name: "modified event found by its successor", steps: []step{ok("1"), ok("2"), ok("3*"),
			{event: "4", kind: access.BreakModified, expSeq: 4, gotSeq: 4}, ok("5")}, final: f.heads["5"]},
		{name: "reordered", steps: []step{ok("1"), ok("2"),
			{event: "4", kind: access.BreakGap, expSeq: 3, gotSeq: 4},
			{event: "3", kind: access.BreakReordered, expSeq: 5, gotSeq: 3, expPrev: h("4")},
			ok("5"), ok("6")}, final: f.heads["6"]},
		{name: "exact duplicate of the head", steps: []step{ok("1"), ok("2"), {event: "2", dup: true}, ok("3")}, final: f.heads["3"]},
		{name: "duplicate of an earlier event", steps: []step{ok("1"), ok("2"), ok("3"), {event: "1", dup: true}, ok("4")}, final: f.heads["4"]},
		{name: "duplicate of a late event", steps: []step{ok("1"),
			{event: "3", kind: access.BreakGap, expSeq: 2, gotSeq: 3},
			{event: "2", kind: access.BreakReordered, expSeq: 4, gotSeq: 2},
			{event: "2", dup: true}, ok("4")}, final: f.heads["4"]},
		{name: "fork at the head", steps: []step{ok("1"), ok("2"), ok("3"),
			{event: "3'", kind: access.BreakFork, expSeq: 4, gotSeq: 3, expPrev: h("3")}, ok("4'")}},
		{name: "fork behind the head", steps: []step{ok("1"), ok("2"), ok("3"), ok("4"), ok("5"),
			{event: "3'", kind: access.BreakFork, expSeq: 6, gotSeq: 3}, ok("4'")}},
		{name: "new chain after the edge lost its store", steps: []step{ok("1"), ok("2"), ok("3"),
			{event: "1'", kind: access.BreakFork, expSeq: 4, gotSeq: 1}, ok("2'")}},
		{name: "first event not 1", steps: []step{{event: "3", kind: access.BreakGap, expSeq: 1, gotSeq: 3, expPrev: ""}, ok("4")}, final: f.heads["4"]},
		{name: "verifier anchored on a persisted head", head: "2", steps: []step{ok("3"), ok("4")}, final: f.heads["4"]},
		{name: "anchored verifier and a gap", head: "2", steps: []step{{event: "5", kind: access.BreakGap, expSeq: 3, gotSeq: 5}, ok("6")}, final: f.heads["6"]},
		{name: "anchored verifier, duplicate of its head", head: "2", steps: []step{{event: "2", dup: true}, ok("3")}, final: f.heads["3"]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := access.NewChainVerifier("hq", f.heads[tt.head])
			for i, s := range tt.steps {
				ev := f.ev[s.event]
				brk, isNew := v.Verify(ev.id, ev.data, &ev.d)
				if isNew == s.dup {
					t.Fatalf("step %d (event %s): new = %v, want %v", i, s.event, isNew, !s.dup)
				}
				if s.kind == "" {
					if brk != nil {
						t.Fatalf("step %d (event %s): unexpected break %s", i, s.event, brk)
					}
					continue
				}
				if brk == nil {
					t.Fatalf("step %d (event %s): no break, want %s", i, s.event, s.kind)
				}
				if brk.Kind != s.kind || brk.ExpectedSeq != s.expSeq || brk.GotSeq != s.gotSeq {
					t.Fatalf("step %d (event %s): %s, want %s expected seq %d got %d", i, s.event, brk, s.kind, s.expSeq, s.gotSeq)
				}
				if brk.Edge != "hq" || brk.EventID != ev.id || brk.GotPrev != ev.d.AuditPrev {
					t.Fatalf("step %d (event %s): break %+v does not describe the event", i, s.event, brk)
				}
				if s.expPrev != "" && brk.ExpectedPrev != s.expPrev {
					t.Fatalf("step %d (event %s): expected prev %s, want %s", i, s.event, brk.ExpectedPrev, s.expPrev)
				}
				if s.kind == access.BreakModified && brk.ExpectedPrev != access.EventHash(f.ev["3*"].data) {
					t.Fatalf("modified: expected prev %s is not the hash of the modified event", brk.ExpectedPrev)
				}
			}
			if tt.final != (access.ChainHead{}) && v.Head() != tt.final {
				t.Fatalf("head %+v, want %+v", v.Head(), tt.final)
			}
		})
	}
}

func TestChainVerifierIgnoresUnchained(t *testing.T) {
	f := newChainFixture(t)
	v := access.NewChainVerifier("hq", access.ChainHead{})
	ev := f.ev["1"]
	d := ev.d
	d.AuditSeq, d.AuditPrev = 0, ""
	if brk, isNew := v.Verify(ev.id, ev.data, &d); brk != nil || isNew {
		t.Fatalf("unchained event: %v, new %v", brk, isNew)
	}
	if v.Head() != (access.ChainHead{}) {
		t.Fatalf("head moved to %+v", v.Head())
	}
}

func TestChainHeadNext(t *testing.T) {
	seq, prev := access.ChainHead{}.Next()
	if seq != 1 || prev != "" {
		t.Fatalf("empty head: next %d %q", seq, prev)
	}
	h := access.ChainHead{Seq: 41, Hash: access.EventHash([]byte("x"))}
	if seq, prev := h.Next(); seq != 42 || prev != h.Hash {
		t.Fatalf("next %d %q", seq, prev)
	}
	if got := access.EventHash(nil); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("EventHash(nil) = %s", got)
	}
}

func BenchmarkChainVerify(b *testing.B) {
	w := newChainWriter(b, siteR1, nil)
	const n = 1024
	events := make([]chainEvent, n)
	at := time.Now()
	for i := range events {
		events[i] = toChainEvent(b, "", w.next(cenGrant("front", "c", 7), at))
	}
	b.ReportAllocs()
	b.ResetTimer()
	var v *access.ChainVerifier
	for i := range b.N {
		if i%n == 0 {
			v = access.NewChainVerifier("hq", access.ChainHead{})
		}
		ev := &events[i%n]
		if brk, _ := v.Verify(ev.id, ev.data, &ev.d); brk != nil {
			b.Fatal(brk)
		}
	}
}
