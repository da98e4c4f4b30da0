package message_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // so that TZ below names a zone on any machine

	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/vmihailenco/msgpack/v5"
)

// utcChildEnv marks the process TestPayloadTimesUTC starts.
const utcChildEnv = "LINTEL_TEST_UTC_CHILD"

// utcZone is the local zone of that process: not UTC, and an offset that is
// not a whole hour.
const utcZone = "Asia/Kolkata"

// TestPayloadTimesUTC shows that the payload types with times decode them in
// UTC in a process whose local zone is not UTC, from msgpack (which decodes
// times in the local zone), from JSON written with offsets (the local one
// and another) and after a trip through CloudEvents. The local zone is set
// at process start from TZ, so the test runs itself again in a process of
// its own with TZ set, rather than changing time.Local under the feet of
// other goroutines.
func TestPayloadTimesUTC(t *testing.T) {
	if os.Getenv(utcChildEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPayloadTimesUTC$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "TZ="+utcZone, utcChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("TestPayloadTimesUTC with TZ=%s: %v\n%s", utcZone, err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestPayloadTimesUTC") {
			t.Fatalf("TestPayloadTimesUTC with TZ=%s did not run:\n%s", utcZone, out)
		}
		return
	}

	if time.Local.String() != utcZone {
		t.Fatalf("local zone %q, want %q from TZ", time.Local, utcZone)
	}
	if _, off := time.Date(2026, 3, 1, 0, 0, 0, 0, time.Local).Zone(); off == 0 {
		t.Fatalf("local zone %s has offset 0", time.Local)
	}
	at := time.Date(2026, 3, 1, 8, 30, 5, 123456789, time.UTC)
	zones := []*time.Location{time.Local, time.FixedZone("", -3*3600)}
	for _, zone := range zones {
		t.Run("written in "+zone.String(), func(t *testing.T) {
			in := func(d time.Duration) time.Time { return at.Add(d).In(zone) }
			timesUTC(t, topic.Event, message.AccessDecision{Granted: true, Door: "door-1", SyncedAt: in(0)},
				func(v message.AccessDecision) []time.Time { return []time.Time{v.SyncedAt} })
			timesUTC(t, topic.Command, message.Command{Action: "unlock", Deadline: in(5 * time.Second)},
				func(v message.Command) []time.Time { return []time.Time{v.Deadline} })
			timesUTC(t, topic.Event, message.CommandSent{Subject: "acme.hq.lock.door-1.cmd", Time: in(0), Command: message.Command{Action: "unlock", Deadline: in(time.Second)}},
				func(v message.CommandSent) []time.Time { return []time.Time{v.Time, v.Command.Deadline} })
			timesUTC(t, topic.State, edgekit.NodeStatus{LinkUp: true, Started: in(-time.Hour)},
				func(v edgekit.NodeStatus) []time.Time { return []time.Time{v.Started} })
			timesUTC(t, topic.Event, access.RevokedGrantAlarm{Door: "door-1", DecisionTime: in(0), RevokedAt: in(-time.Minute)},
				func(v access.RevokedGrantAlarm) []time.Time { return []time.Time{v.DecisionTime, v.RevokedAt} })
			timesUTC(t, topic.Event, &struct {
				At    *time.Time           `msgpack:"at" json:"at"`
				List  []time.Time          `msgpack:"list" json:"list"`
				ByKey map[string]time.Time `msgpack:"by_key" json:"by_key"`
			}{At: new(in(0)), List: []time.Time{in(1), in(2)}, ByKey: map[string]time.Time{"a": in(3)}},
				func(v *struct {
					At    *time.Time           `msgpack:"at" json:"at"`
					List  []time.Time          `msgpack:"list" json:"list"`
					ByKey map[string]time.Time `msgpack:"by_key" json:"by_key"`
				}) []time.Time {
					return []time.Time{*v.At, v.List[0], v.List[1], v.ByKey["a"]}
				})
		})
	}

	// A generic payload, as the rules engine decodes one: msgpack
	// timestamps become time.Time values in interfaces, nested too.
	t.Run("map[string]any", func(t *testing.T) {
		e := envelopeAt(t, topic.Event, at)
		if err := message.SetPayload(e, map[string]any{"at": at.In(time.Local), "list": []any{at.In(time.Local)}, "inner": map[string]any{"at": at.In(time.Local)}}); err != nil {
			t.Fatal(err)
		}
		m, err := message.DecodePayload[map[string]any](e)
		if err != nil {
			t.Fatal(err)
		}
		// msgpack alone would give the local zone.
		var raw map[string]any
		if err := msgpack.Unmarshal(e.Payload, &raw); err != nil {
			t.Fatal(err)
		}
		if loc := raw["at"].(time.Time).Location(); loc != time.Local {
			t.Fatalf("msgpack.Unmarshal gave a time in %s, want the local zone (the premise of this test)", loc)
		}
		for name, v := range map[string]any{"at": m["at"], "list[0]": m["list"].([]any)[0], "inner.at": m["inner"].(map[string]any)["at"]} {
			if tm, ok := v.(time.Time); !ok || tm.Location() != time.UTC || !tm.Equal(at) {
				t.Errorf("%s = %#v, want %v in UTC", name, v, at)
			}
		}
	})

	// Envelope times, msgpack and CloudEvents (with an offset).
	t.Run("envelope", func(t *testing.T) {
		e := envelopeAt(t, topic.Event, at.In(time.Local))
		for _, c := range []message.Codec{message.MsgpackCodec{}, message.CloudEventsCodec{}} {
			b, err := c.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var got message.Envelope
			if err := c.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.Time.Location() != time.UTC || !got.Time.Equal(at) {
				t.Errorf("%s: Time = %v, want %v in UTC", c.ContentType(), got.Time, at)
			}
		}
		var got message.Envelope
		ce := `{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d","source":"/acme/hq/reader/door-1","type":"io.lintel.evt","time":"2026-03-01T14:00:05.123456789+05:30"}`
		if err := (message.CloudEventsCodec{}).Unmarshal([]byte(ce), &got); err != nil {
			t.Fatal(err)
		}
		if got.Time.Location() != time.UTC || !got.Time.Equal(at) {
			t.Errorf("CloudEvents time with an offset: Time = %v, want %v in UTC", got.Time, at)
		}
	})

	// Credentials, which the edge reads from JSON in its bucket.
	t.Run("access.Credential", func(t *testing.T) {
		data := `{"holder":"a","state":"active","valid_from":"2026-03-01T14:00:05.123456789+05:30","valid_until":"2026-03-02T05:30:05.123456789-03:00","changed":"2026-03-01T08:30:05.123456789Z"}`
		c, err := access.ParseCredential(strings.Repeat("ab", 32), []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		for name, tm := range map[string]time.Time{"ValidFrom": c.ValidFrom, "ValidUntil": c.ValidUntil, "Changed": c.Changed} {
			if tm.Location() != time.UTC {
				t.Errorf("%s = %v, want UTC", name, tm)
			}
		}
		if !c.ValidFrom.Equal(at) || !c.ValidUntil.Equal(at.Add(24*time.Hour)) || !c.Changed.Equal(at) {
			t.Errorf("times = %v, %v, %v; want %v, %v, %v", c.ValidFrom, c.ValidUntil, c.Changed, at, at.Add(24*time.Hour), at)
		}
	})
}

// timesUTC encodes v as the payload of an envelope in msgpack and in JSON,
// sends each through both codecs, decodes it with DecodePayload and checks
// that every time times returns is in UTC and the same instant as in v.
func timesUTC[T any](t *testing.T, mt topic.MessageType, v T, times func(T) []time.Time) {
	t.Helper()
	want := times(v)
	for _, via := range []string{"msgpack", "json", "msgpack via cloudevents", "json via cloudevents"} {
		e := envelopeAt(t, mt, want[0])
		set := message.SetPayload
		if strings.HasPrefix(via, "json") {
			set = message.SetPayloadJSON
		}
		if err := set(e, v); err != nil {
			t.Fatal(err)
		}
		codec := message.Codec(message.MsgpackCodec{})
		if strings.HasSuffix(via, "cloudevents") {
			codec = message.CloudEventsCodec{}
		}
		b, err := codec.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var got message.Envelope
		if err := codec.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		back, err := message.DecodePayload[T](&got)
		if err != nil {
			t.Fatalf("%T via %s: %v", v, via, err)
		}
		for i, tm := range times(back) {
			if tm.Location() != time.UTC || !tm.Equal(want[i]) {
				t.Errorf("%T via %s: time %d = %v, want %v in UTC", v, via, i, tm, want[i].UTC())
			}
		}
	}
}

// envelopeAt returns a valid envelope of type mt at time at.
func envelopeAt(t *testing.T, mt topic.MessageType, at time.Time) *message.Envelope {
	t.Helper()
	e := minimalEnvelope(t)
	e.Type, e.Time = mt, at
	return e
}
