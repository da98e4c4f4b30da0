package devicekit_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// withOutbox configures the outbox dir.
func withOutbox(dir string) func(*devicekit.Config) {
	return func(cfg *devicekit.Config) { cfg.Outbox = dir }
}

// outboxFiles returns the names of the files in the outbox dir, sorted.
func outboxFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// unacknowledged publishes an event with a context too short for the link
// state (cut or stalled): it must fail with ErrNotAcknowledged, and return
// the ID of the envelope the error names.
func unacknowledged(t *testing.T, c *devicekit.Client, name string, i int) message.ID {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), 250*time.Millisecond)
	defer cancel()
	id, err := c.PublishEvent(ctx, name, map[string]int{"i": i})
	var pe *devicekit.PublishError
	if !errors.Is(err, devicekit.ErrNotAcknowledged) || !errors.As(err, &pe) || id.IsZero() || pe.MsgID != id {
		t.Fatalf("PublishEvent without a link = %s, %v; want its ID and a *PublishError for it wrapping ErrNotAcknowledged", id, err)
	}
	return id
}

// TestOutboxCrash kills a device (devicekit.Crash) with events it never saw
// acknowledged, some that timed out and one in flight, then starts it again
// with the same outbox: every event is stored exactly once, in the order it
// was published, unchanged (the dead boot's ID and sequence), before the
// new boot's birth, and the outbox ends empty. Through a stalled link the
// edge stores the first of them without the device hearing of it (the
// later ones wait behind it in the outbox), so that only deduplication on
// the envelope ID keeps the re-sent one from being stored twice; through a
// cut link they never reach the edge, and only the re-sending delivers
// them.
func TestOutboxCrash(t *testing.T) {
	tests := []struct {
		name         string
		stall        bool // stall the link, rather than cut it
		storedBefore bool // the edge stored the events before the restart
	}{
		{"stored, never acknowledged", true, true},
		{"never sent", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
			thing := edge.Things[0]
			evtSubj := thing.Subject(topic.Event).String()
			dir := t.TempDir()
			p, viaP := viaProxy(t, edge)
			a := connect(t, edge, thing, and(viaP, withOutbox(dir)))
			ctx := testCtx(t)

			var ids []message.ID
			for i := range 2 {
				id, err := a.PublishEvent(ctx, "test.acknowledged", map[string]int{"i": i})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			if s := a.Stats(); s.OutboxPending != 0 {
				t.Fatalf("Stats %+v: want nothing pending once acknowledged", s)
			}
			if tt.stall {
				p.Stall()
			} else {
				p.Cut()
				waitFor(t, "the device to notice the cut", disconnected(a))
			}
			var lost []message.ID // handed to the device, never acknowledged to it
			for i := range 4 {
				lost = append(lost, unacknowledged(t, a, "test.timed_out", i))
			}
			type result struct {
				id  message.ID
				err error
			}
			inFlight := make(chan result, 1)
			go func() {
				id, err := a.PublishEvent(ctx, "test.in_flight", nil)
				inFlight <- result{id, err}
			}()
			waitFor(t, "the event in flight to be in the outbox", func() bool { return a.Stats().OutboxPending == 5 })
			devicekit.Crash(a)
			r := <-inFlight
			if !errors.Is(r.err, devicekit.ErrClosed) || r.id.IsZero() {
				t.Fatalf("the publish in flight at the crash = %s, %v; want its ID and ErrClosed", r.id, r.err)
			}
			lost = append(lost, r.id)
			ids = append(ids, lost...)
			if got := outboxFiles(t, dir); len(got) != len(lost)+1 {
				t.Fatalf("outbox after the crash holds %v, want the %d lost events and the lock", got, len(lost))
			}
			p.Restore()

			if tt.storedBefore {
				// What the stalled link held, the first lost event, reaches
				// the edge now; the acks go nowhere.
				waitFor(t, "the edge to store the first lost event", func() bool {
					return count(storedIDs(t, edge, evtSubj), lost[0]) == 1
				})
			} else if got := storedIDs(t, edge, evtSubj); !slices.Equal(got, ids[:2]) {
				t.Fatalf("before the restart the edge stores %v, want only the acknowledged %v", got, ids[:2])
			}

			b := connect(t, edge, thing, withOutbox(dir))
			if s := b.Stats(); s.OutboxResent != uint64(len(lost)) || s.OutboxPending != 0 {
				t.Errorf("Stats %+v: want %d re-sent, nothing pending", s, len(lost))
			}
			if got := outboxFiles(t, dir); !slices.Equal(got, []string{"lock"}) {
				t.Errorf("outbox after the restart holds %v, want only the lock", got)
			}

			all := stored(t, edge, ">")
			var events []message.ID
			var birth uint64
			for _, m := range all {
				switch e := m.Envelope; {
				case e.Type == topic.Event:
					events = append(events, e.ID)
					if e.BootID != a.BootID() {
						t.Errorf("event %s stored with boot %s, want the crashed boot %s: re-sent changed", e.ID, e.BootID, a.BootID())
					}
				case e.Name == message.NameThingBirth && e.BootID == b.BootID():
					birth = m.Seq
				}
			}
			if !slices.Equal(events, ids) {
				t.Fatalf("stored events %v,\nwant each published one once, in order: %v", events, ids)
			}
			for _, m := range all {
				if m.Envelope.Type == topic.Event && m.Seq > birth {
					t.Errorf("event %s stored at %d, after the new boot's birth at %d", m.Envelope.ID, m.Seq, birth)
				}
			}
		})
	}
}

// logRecord is a record of a JSON log, with the fields the tests read.
type logRecord struct {
	Level, Msg, File, MovedTo string
	Reason                    string
}

func logRecords(t *testing.T, logs string) []logRecord {
	t.Helper()
	var recs []logRecord
	for line := range strings.Lines(logs) {
		var r struct {
			Level   string `json:"level"`
			Msg     string `json:"msg"`
			File    string `json:"file"`
			MovedTo string `json:"moved_to"`
			Reason  string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, logRecord(r))
	}
	return recs
}

// TestOutboxCorrupt damages an outbox a crash left behind: a truncated
// envelope, a file that is no envelope, one whose name is not its ID, an
// envelope of another device and a half-written temporary file. Connect
// logs an error naming each one, renames it with a .bad suffix and sends the
// good envelopes again; the next Connect leaves the .bad files alone.
func TestOutboxCorrupt(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing, other := edge.Things[0], edge.Things[1]
	evtSubj := thing.Subject(topic.Event).String()
	dir, otherDir := t.TempDir(), t.TempDir()
	p, viaP := viaProxy(t, edge)
	a := connect(t, edge, thing, and(viaP, withOutbox(dir)))
	o := connect(t, edge, other, and(viaP, withOutbox(otherDir)))
	p.Cut()
	waitFor(t, "the devices to notice the cut", func() bool { return disconnected(a)() && disconnected(o)() })
	var ids []message.ID
	for i := range 4 {
		ids = append(ids, unacknowledged(t, a, "test.lost", i))
	}
	otherID := unacknowledged(t, o, "test.other", 0)
	devicekit.Crash(a)
	devicekit.Crash(o)
	p.Restore()

	file := func(id message.ID) string { return filepath.Join(dir, id.String()+".msg") }
	truncated, renamed := file(ids[1]), file(ids[3])
	b, err := os.ReadFile(truncated)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	misnamed := file(message.ID{0x01, 0x90, 6: 0x70, 8: 0x80, 15: 1})
	if err := os.Rename(renamed, misnamed); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "0190f3a8-7c1e-7d2a-8b3c-4d5e6f708192.msg")
	foreign := filepath.Join(dir, otherID.String()+".msg")
	halfWritten := filepath.Join(dir, "0190f3a8-7c1e-7d2a-8b3c-4d5e6f708193.123456.tmp")
	for name, content := range map[string]string{garbage: "hello", halfWritten: "lintel-outbox 1 00"} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(otherDir, otherID.String()+".msg"), foreign); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	c := connect(t, edge, thing, and(withOutbox(dir), func(cfg *devicekit.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	}))
	if s := c.Stats(); s.OutboxResent != 2 || s.OutboxPending != 0 {
		t.Errorf("Stats %+v: want the 2 good envelopes re-sent, nothing pending", s)
	}
	if got, want := storedIDs(t, edge, evtSubj), []message.ID{ids[0], ids[2]}; !slices.Equal(got, want) {
		t.Errorf("stored events %v, want the good ones %v", got, want)
	}
	bad := []string{truncated, misnamed, garbage, foreign, halfWritten}
	reported := map[string]logRecord{}
	for _, r := range logRecords(t, logs.String()) {
		if r.File != "" {
			reported[r.File] = r
		}
	}
	for _, f := range bad {
		r, ok := reported[f]
		if !ok || r.Level != "ERROR" || r.MovedTo != f+".bad" || r.Reason == "" {
			t.Errorf("%s: logged %+v, want an error saying why and where it was moved", filepath.Base(f), r)
			continue
		}
		t.Logf("%s: %s", filepath.Base(f), r.Reason)
		if _, err := os.Stat(f + ".bad"); err != nil {
			t.Errorf("%s not set aside: %v", filepath.Base(f), err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// The files set aside stay, and stop nothing.
	again := connect(t, edge, thing, withOutbox(dir))
	if s := again.Stats(); s.OutboxResent != 0 || s.OutboxPending != 0 {
		t.Errorf("Stats %+v after a second restart: want nothing re-sent or pending", s)
	}
	if got := outboxFiles(t, dir); len(got) != len(bad)+1 {
		t.Errorf("outbox holds %v, want the lock and the %d files set aside", got, len(bad))
	}
}

// TestOutboxLocked checks that one outbox serves one client at a time.
func TestOutboxLocked(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[0]
	dir := t.TempDir()
	a := connect(t, edge, thing, withOutbox(dir))

	for _, other := range []topic.Thing{thing, edge.Things[1]} {
		cfg := edge.Config(other)
		cfg.Outbox = dir
		c, err := devicekit.Connect(testCtx(t), cfg)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, devicekit.ErrOutboxLocked) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("Connect(%s) on an outbox in use = %v, want ErrOutboxLocked naming it", other, err)
		}
		t.Logf("error: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	connect(t, edge, thing, withOutbox(dir)) // free again

	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := edge.Config(thing)
	cfg.Outbox = notDir
	if c, err := devicekit.Connect(testCtx(t), cfg); err == nil || errors.Is(err, devicekit.ErrOutboxLocked) || !strings.Contains(err.Error(), notDir) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("Connect with a file as outbox = %v, want an error naming it", err)
	}
}

// TestOutboxPublish checks the outbox during a device's life: each kind of
// acknowledged publish goes through it and leaves it once stored, under
// the ID the call returns; unacknowledged telemetry does not; an event whose
// acknowledgement is lost stays there until the device, reconnected, sends
// it again without storing it twice.
func TestOutboxPublish(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	thing := edge.Things[4]
	dir := t.TempDir()
	p, viaP := viaProxy(t, edge)
	c := connect(t, edge, thing, and(viaP, withOutbox(dir)))
	ctx := testCtx(t)

	for _, tc := range []struct {
		mt      topic.MessageType
		publish func(context.Context, string, any) (message.ID, error)
	}{
		{topic.Event, c.PublishEvent},
		{topic.State, c.PublishState},
		{topic.Telemetry, c.PublishTelemetry},
	} {
		id, err := tc.publish(ctx, "test.kept", map[string]string{"k": "v"})
		if err != nil {
			t.Fatalf("%s: %v", tc.mt, err)
		}
		if n := count(storedIDs(t, edge, thing.Subject(tc.mt).String()), id); n != 1 {
			t.Errorf("%s %s stored %d times, want once", tc.mt, id, n)
		}
		if got := outboxFiles(t, dir); !slices.Equal(got, []string{"lock"}) || c.Stats().OutboxPending != 0 {
			t.Errorf("%s: outbox holds %v once acknowledged, want only the lock", tc.mt, got)
		}
	}

	p.Cut()
	waitFor(t, "the device to notice the cut", disconnected(c))
	id := unacknowledged(t, c, "test.unacknowledged", 0)
	if got := outboxFiles(t, dir); !slices.Contains(got, id.String()+".msg") || c.Stats().OutboxPending != 1 {
		t.Fatalf("outbox holds %v, want %s kept", got, id)
	}
	p.Restore()
	// The reconnect buffer delivers it; the device, which gave up waiting,
	// does not know.
	waitFor(t, "the buffered event to be stored", func() bool {
		return count(storedIDs(t, edge, thing.Subject(topic.Event).String()), id) == 1
	})
	waitFor(t, "the device to send the kept event again", func() bool {
		s := c.Stats()
		return s.OutboxResent == 1 && s.OutboxPending == 0
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	again := connect(t, edge, thing, and(withOutbox(dir), func(cfg *devicekit.Config) { cfg.TelemetryUnacknowledged = true }))
	if s := again.Stats(); s.OutboxResent != 0 || s.OutboxPending != 0 {
		t.Errorf("Stats %+v: want nothing left to re-send", s)
	}
	if n := count(storedIDs(t, edge, thing.Subject(topic.Event).String()), id); n != 1 {
		t.Errorf("the re-sent event is stored %d times, want once", n)
	}
	tlm, err := again.PublishTelemetry(ctx, "test.unacknowledged", nil)
	if err != nil || tlm.IsZero() {
		t.Fatalf("unacknowledged PublishTelemetry = %s, %v", tlm, err)
	}
	if s := again.Stats(); s.OutboxPending != 0 {
		t.Errorf("Stats %+v: unacknowledged telemetry went to the outbox", s)
	}
	waitFor(t, "the telemetry to be stored", func() bool {
		return count(storedIDs(t, edge, thing.Subject(topic.Telemetry).String()), tlm) == 1
	})
}
