package devicekit

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type sentAck struct {
	id     message.ID
	status message.AckStatus
	text   string
}

// procHarness runs a processor with a fake clock and records its acks; the
// ack hook runs before each ack is recorded, to move the clock.
type procHarness struct {
	clock *fakeClock
	p     *processor
	acks  []sentAck
	ran   []string
	onAck func(message.AckStatus)
	ids   message.IDGenerator
	stats counters
}

func newProcHarness(h Handler) *procHarness {
	ph := &procHarness{clock: &fakeClock{now: time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)}}
	if h == nil {
		h = HandlerFunc(func(_ context.Context, cmd Command) error {
			ph.ran = append(ph.ran, cmd.Action)
			return nil
		})
	}
	ph.p = &processor{
		now:     ph.clock.Now,
		handler: h,
		history: newHistory(16),
		log:     slog.New(slog.DiscardHandler),
		stats:   &ph.stats,
		ack: func(id message.ID, st message.AckStatus, text string) error {
			if ph.onAck != nil {
				ph.onAck(st)
			}
			ph.acks = append(ph.acks, sentAck{id, st, text})
			return nil
		},
	}
	return ph
}

var lock = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}

// command returns a command message as the edge sends it.
func (ph *procHarness) command(t *testing.T, cmd message.Command) (*nats.Msg, message.ID) {
	t.Helper()
	e := &message.Envelope{ID: ph.ids.New(), Time: ph.clock.Now(), Source: lock, Type: topic.Command, Name: message.NameCommand}
	if err := message.SetPayload(e, cmd); err != nil {
		t.Fatal(err)
	}
	m, err := e.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, e.ID
}

func (ph *procHarness) statuses(id message.ID) []message.AckStatus {
	var s []message.AckStatus
	for _, a := range ph.acks {
		if a.id == id {
			s = append(s, a.status)
		}
	}
	return s
}

// TestExpiresWhileAccepting checks the second deadline check: a command that
// expires while its accepted ack is being sent never runs.
func TestExpiresWhileAccepting(t *testing.T) {
	ph := newProcHarness(nil)
	ph.onAck = func(st message.AckStatus) {
		if st == message.AckAccepted {
			ph.clock.Advance(2 * time.Second) // the ack took long
		}
	}
	m, id := ph.command(t, message.Command{Action: "unlock", Deadline: ph.clock.Now().Add(time.Second), IdempotencyKey: "k"})
	ph.p.process(context.Background(), m)
	if want := []message.AckStatus{message.AckAccepted, message.AckExpired}; !slices.Equal(ph.statuses(id), want) {
		t.Errorf("acks %v, want %v", ph.statuses(id), want)
	}
	if len(ph.ran) != 0 {
		t.Fatalf("the command ran: %v", ph.ran)
	}
	// It never ran, so its idempotency key is free for a retry.
	ph.onAck = nil
	m2, id2 := ph.command(t, message.Command{Action: "unlock", Deadline: ph.clock.Now().Add(time.Second), IdempotencyKey: "k"})
	ph.p.process(context.Background(), m2)
	if want := []message.AckStatus{message.AckAccepted, message.AckCompleted}; !slices.Equal(ph.statuses(id2), want) {
		t.Errorf("retry acks %v, want %v", ph.statuses(id2), want)
	}
}

func TestProcessorDeadlines(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // from the fake now; 0 for none
		want     []message.AckStatus
		ran      bool
	}{
		{"no deadline", 0, []message.AckStatus{message.AckAccepted, message.AckCompleted}, true},
		{"in the future", time.Second, []message.AckStatus{message.AckAccepted, message.AckCompleted}, true},
		{"exactly now", -1, []message.AckStatus{message.AckExpired}, false},
		{"in the past", -time.Hour, []message.AckStatus{message.AckExpired}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ph := newProcHarness(nil)
			cmd := message.Command{Action: "unlock"}
			switch {
			case tt.deadline == -1:
				cmd.Deadline = ph.clock.Now()
			case tt.deadline != 0:
				cmd.Deadline = ph.clock.Now().Add(tt.deadline)
			}
			m, id := ph.command(t, cmd)
			ph.p.process(context.Background(), m)
			if !slices.Equal(ph.statuses(id), tt.want) {
				t.Errorf("acks %v, want %v", ph.statuses(id), tt.want)
			}
			if ran := len(ph.ran) > 0; ran != tt.ran {
				t.Errorf("ran %t, want %t", ran, tt.ran)
			}
		})
	}
}

func TestProcessorStoppedBeforeRun(t *testing.T) {
	ph := newProcHarness(nil)
	ctx, cancel := context.WithCancel(context.Background())
	ph.onAck = func(st message.AckStatus) {
		if st == message.AckAccepted {
			cancel() // handling stops while accepting
		}
	}
	m, id := ph.command(t, message.Command{Action: "unlock", IdempotencyKey: "k"})
	ph.p.process(ctx, m)
	if want := []message.AckStatus{message.AckAccepted, message.AckFailed}; !slices.Equal(ph.statuses(id), want) || len(ph.ran) > 0 {
		t.Fatalf("acks %v ran %v, want %v and no run", ph.statuses(id), ph.ran, want)
	}
	// Nothing recorded: the same command runs when sent again.
	ph.onAck = nil
	ph.p.process(context.Background(), m)
	if len(ph.ran) != 1 {
		t.Errorf("the command sent again ran %d times, want 1", len(ph.ran))
	}
}

func TestHistoryEvicts(t *testing.T) {
	ph := newProcHarness(nil)
	ph.p.history = newHistory(4)
	first, firstID := ph.command(t, message.Command{Action: "a"})
	ph.p.process(context.Background(), first)
	for i := range 4 {
		m, _ := ph.command(t, message.Command{Action: "b" + strconv.Itoa(i)})
		ph.p.process(context.Background(), m)
	}
	ph.p.process(context.Background(), first) // forgotten: runs again
	if n := len(ph.statuses(firstID)); n != 4 || ph.ran[len(ph.ran)-1] != "a" {
		t.Errorf("acks %v ran %v: want the forgotten command run again", ph.statuses(firstID), ph.ran)
	}
}

func TestLRU(t *testing.T) {
	l := newLRU[string, int](2)
	l.put("a", 1)
	l.put("b", 2)
	if v, ok := l.get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("get a = %d, %t", v, ok)
	}
	l.put("c", 3) // evicts b
	if _, ok := l.get("b"); ok {
		t.Error("b survived eviction")
	}
	l.put("a", 10)
	if v, _ := l.get("a"); v != 10 || l.len() != 2 {
		t.Errorf("a = %d, len %d", v, l.len())
	}
}

func TestViolatedSubject(t *testing.T) {
	tests := []struct{ in, want string }{
		{`nats: permissions violation: Permissions Violation for Publish to "acme.hq.lock.l1.cmd"`, "acme.hq.lock.l1.cmd"},
		{`nats: permissions violation: Permissions Violation for Subscription to "_INBOX.>"`, "_INBOX.>"},
		{`nats: permissions violation: Permissions Violation for Publish to acme.hq.r.r1.evt`, "acme.hq.r.r1.evt"},
		{`nats: permissions violation: Permissions Violation for Subscription to "x" using queue "q"`, "x"},
		{`something else`, ""},
	}
	for _, tt := range tests {
		if got := violatedSubject(tt.in); got != tt.want {
			t.Errorf("violatedSubject(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPubAck(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr error
	}{
		{"stored", `{"stream":"events-acme-hq","seq":7}`, nil},
		{"duplicate", `{"stream":"events-acme-hq","seq":7,"duplicate":true}`, nil},
		{"maximum messages", `{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"events-acme-hq","seq":0}`, ErrStreamFull},
		{"maximum bytes", `{"error":{"code":503,"err_code":10077,"description":"maximum bytes exceeded"},"stream":"s","seq":0}`, ErrStreamFull},
		{"per subject", `{"error":{"code":503,"err_code":10077,"description":"maximum messages per subject exceeded"},"stream":"s","seq":0}`, ErrStreamFull},
		{"too large", `{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},"stream":"s","seq":0}`, ErrStreamRejected},
		{"not JSON", `hello`, ErrNotAcknowledged},
		{"not a PubAck", `{"granted":true}`, ErrNotAcknowledged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pe := &PublishError{Subject: "acme.hq.reader.r1.evt"}
			err := pe.fromPubAck(&nats.Msg{Data: []byte(tt.data)})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("fromPubAck = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestPublishErrorMessage(t *testing.T) {
	id, _ := message.ParseID("0190f3a8-7c1e-7d2a-8b3c-4d5e6f708192")
	tests := []struct {
		name string
		err  *PublishError
		want string
	}{
		{"stream full", &PublishError{Subject: "acme.hq.reader.r1.evt", MsgID: id, Attempts: 1, Stream: "events-acme-hq", Code: 10077, Description: "maximum messages exceeded", Err: ErrStreamFull},
			`devicekit: publish acme.hq.reader.r1.evt (id 0190f3a8-7c1e-7d2a-8b3c-4d5e6f708192): stream full: stream "events-acme-hq": maximum messages exceeded (err_code 10077)`},
		{"not acknowledged", &PublishError{Subject: "acme.hq.reader.r1.evt", MsgID: id, Attempts: 3, Err: ErrNotAcknowledged, Cause: context.DeadlineExceeded},
			`devicekit: publish acme.hq.reader.r1.evt (id 0190f3a8-7c1e-7d2a-8b3c-4d5e6f708192): not acknowledged after 3 attempts: context deadline exceeded`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
			if !errors.Is(tt.err, tt.err.Err) || (tt.err.Cause != nil && !errors.Is(tt.err, tt.err.Cause)) {
				t.Error("the sentinel or the cause is not reachable with errors.Is")
			}
		})
	}
}
