package message_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/vmihailenco/msgpack/v5"
)

// plainEnvelope has the fields of message.Envelope and none of its methods:
// the baseline that reflection-based msgpack and encoding/json encode.
type plainEnvelope struct {
	ID            message.ID        `msgpack:"id" json:"id"`
	Time          time.Time         `msgpack:"t" json:"time"`
	Source        topic.Thing       `msgpack:"src" json:"source"`
	Type          topic.MessageType `msgpack:"mt" json:"type"`
	Name          string            `msgpack:"name" json:"name"`
	Seq           uint64            `msgpack:"seq" json:"seq"`
	BootID        message.ID        `msgpack:"boot" json:"bootid"`
	CorrelationID message.ID        `msgpack:"corr" json:"correlationid"`
	SchemaVersion message.Version   `msgpack:"v" json:"schemaversion"`
	ContentType   string            `msgpack:"ct" json:"datacontenttype"`
	Payload       []byte            `msgpack:"p" json:"data"`
}

// codecBench is one way of encoding and decoding the access event.
type codecBench struct {
	name   string
	encode func(dst []byte) ([]byte, error)
	decode func(b []byte) error
}

func codecBenches(b *testing.B) []codecBench {
	e := accessEvent(b)
	plain := plainEnvelope(*e)
	var (
		env message.Envelope
		pe  plainEnvelope
	)
	return []codecBench{
		{
			name:   "msgpack-fast",
			encode: e.AppendMsgpack,
			decode: func(b []byte) error { return env.UnmarshalMsgpack(b) },
		},
		{
			name:   "msgpack-reflect",
			encode: func([]byte) ([]byte, error) { return msgpack.Marshal(&plain) },
			decode: func(b []byte) error { return msgpack.Unmarshal(b, &pe) },
		},
		{
			name:   "encoding-json",
			encode: func([]byte) ([]byte, error) { return json.Marshal(&plain) },
			decode: func(b []byte) error { return json.Unmarshal(b, &pe) },
		},
		{
			name:   "cloudevents-json",
			encode: e.AppendCloudEvent,
			decode: func(b []byte) error { return env.UnmarshalJSON(b) },
		},
	}
}

// BenchmarkEncode encodes the access event; the fast paths append to a
// reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, c := range codecBenches(b) {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = c.encode(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf)), "bytes")
		})
	}
}

// BenchmarkDecode decodes the access event.
func BenchmarkDecode(b *testing.B) {
	for _, c := range codecBenches(b) {
		b.Run(c.name, func(b *testing.B) {
			data, err := c.encode(nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoundTrip encodes and decodes the access event.
func BenchmarkRoundTrip(b *testing.B) {
	for _, c := range codecBenches(b) {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = c.encode(buf[:0]); err != nil {
					b.Fatal(err)
				}
				if err := c.decode(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPayload encodes and decodes the access decision payload with
// reflection-based msgpack.
func BenchmarkPayload(b *testing.B) {
	d := message.AccessDecision{Granted: true, Door: "door-1", Holder: "holder-1234", CredentialSetVersion: 7}
	var e message.Envelope
	b.ReportAllocs()
	for b.Loop() {
		if err := message.SetPayload(&e, d); err != nil {
			b.Fatal(err)
		}
		if _, err := message.DecodePayload[message.AccessDecision](&e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIDGenerator(b *testing.B) {
	b.Run("New", func(b *testing.B) {
		var g message.IDGenerator
		b.ReportAllocs()
		for b.Loop() {
			_ = g.New()
		}
	})
	b.Run("NewAt", func(b *testing.B) { // without reading the clock
		var g message.IDGenerator
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			_ = g.NewAt(now)
		}
	})
	b.Run("New-parallel", func(b *testing.B) {
		var g message.IDGenerator
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = g.New()
			}
		})
	})
	b.Run("time.Now", func(b *testing.B) { // the clock alone, for comparison
		for b.Loop() {
			_ = time.Now()
		}
	})
}

func BenchmarkIDString(b *testing.B) {
	id := newTestGenerator(1).New()
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = id.AppendText(buf[:0])
		if _, err := message.ParseID(string(buf)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStamp(b *testing.B) {
	s := message.NewStamper(testThing, message.ID{1})
	var e message.Envelope
	b.ReportAllocs()
	for b.Loop() {
		s.Stamp(&e)
	}
}

func BenchmarkNATSMsg(b *testing.B) {
	e := accessEvent(b)
	var got message.Envelope
	b.ReportAllocs()
	for b.Loop() {
		m, err := e.ToMsg(nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := message.DecodeMsg(m, &got, nil); err != nil {
			b.Fatal(err)
		}
	}
}
