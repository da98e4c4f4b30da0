package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// plainEnvelope has the fields of message.Envelope and none of its
// methods: what encoding/json encodes by reflection, the baseline.
type plainEnvelope struct {
	ID            message.ID        `json:"id"`
	Time          time.Time         `json:"time"`
	Source        topic.Thing       `json:"source"`
	Type          topic.MessageType `json:"type"`
	Name          string            `json:"name"`
	Seq           uint64            `json:"seq"`
	BootID        message.ID        `json:"bootid"`
	CorrelationID message.ID        `json:"correlationid"`
	SchemaVersion message.Version   `json:"schemaversion"`
	ContentType   string            `json:"datacontenttype"`
	Payload       []byte            `json:"data"`
}

// accessEnvelope returns an access decision event, as an edge sends one.
func accessEnvelope() (*message.Envelope, error) {
	ids := &message.IDGenerator{}
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: readerOf(edgeName(0), 0), Type: topic.Event,
		Name: message.NameAccessGranted, Seq: 42, BootID: ids.New(), CorrelationID: ids.New(), SchemaVersion: message.CurrentVersion}
	if err := message.SetPayload(e, message.AccessDecision{Granted: true, Door: benchDoor, Holder: "holder-1234", CredentialSetVersion: 7}); err != nil {
		return nil, fmt.Errorf("bench: payload: %w", err)
	}
	return e, nil
}

// benchResult is what testing.Benchmark measured of one function.
type benchResult struct{ nsPerOp, allocsPerOp float64 }

// measure runs f under testing.Benchmark (about a second).
func measure(f func() error) (benchResult, error) {
	var ferr error
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := f(); err != nil {
				ferr = err
				return
			}
		}
	})
	if ferr != nil {
		return benchResult{}, ferr
	}
	if res.N == 0 {
		return benchResult{}, fmt.Errorf("bench: the benchmark did not run")
	}
	return benchResult{nsPerOp: float64(res.T.Nanoseconds()) / float64(res.N), allocsPerOp: float64(res.AllocsPerOp())}, nil
}

func runCodec(ctx context.Context, r *runner, res *Result) error {
	res.Notes = append(res.Notes, "an access decision event; testing.Benchmark, about a second per function; round trip = encode into a reused buffer + decode")
	e, err := accessEnvelope()
	if err != nil {
		return err
	}
	plain := plainEnvelope(*e)
	var (
		env message.Envelope
		pe  plainEnvelope
		buf = make([]byte, 0, 1024)
	)
	cases := []struct {
		name string
		f    func() error
	}{
		{"msgpack encode", func() error { var err error; buf, err = e.AppendMsgpack(buf[:0]); return err }},
		{"msgpack round trip", func() error {
			var err error
			if buf, err = e.AppendMsgpack(buf[:0]); err != nil {
				return err
			}
			return env.UnmarshalMsgpack(buf)
		}},
		{"cloudevents round trip", func() error {
			var err error
			if buf, err = e.AppendCloudEvent(buf[:0]); err != nil {
				return err
			}
			return env.UnmarshalJSON(buf)
		}},
		{"encoding/json encode", func() error { _, err := json.Marshal(&plain); return err }},
		{"encoding/json round trip", func() error {
			b, err := json.Marshal(&plain)
			if err != nil {
				return err
			}
			return json.Unmarshal(b, &pe)
		}},
	}
	got := map[string]benchResult{}
	for i, c := range cases {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		r.progress(c.name, i, len(cases))
		m, err := measure(c.f)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		got[c.name] = m
	}
	r.progress("done", len(cases), len(cases))
	mp, js, ce := got["msgpack round trip"], got["encoding/json round trip"], got["cloudevents round trip"]
	res.Figures = append(res.Figures,
		fig("msgpack round trip", mp.nsPerOp, "ns/op", js.nsPerOp, "encoding/json round trip", valueAtMost, 1000),
		// At least 10 times as fast: a ratio of at most 0.1.
		fig("msgpack round trip, 10x goal", mp.nsPerOp, "ns/op", js.nsPerOp, "encoding/json round trip", ratioAtMost, 0.1),
		fig("msgpack encode allocs", got["msgpack encode"].allocsPerOp, "allocs/op", got["encoding/json encode"].allocsPerOp, "encoding/json encode", valueAtMost, 0),
		fig("cloudevents JSON round trip", ce.nsPerOp, "ns/op", js.nsPerOp, "encoding/json round trip", ratioAtMost, 1))
	return nil
}
