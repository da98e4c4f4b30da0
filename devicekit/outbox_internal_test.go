package devicekit

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzOutboxFile checks that reading an outbox file never panics, and that
// whatever it accepts survives writing and reading again unchanged, so that
// a message re-sent from the outbox is the message as it was kept.
func FuzzOutboxFile(f *testing.F) {
	for _, m := range []*nats.Msg{
		{Subject: "acme.hq.reader.r1.evt", Header: nats.Header{"Nats-Msg-Id": {"0190f3a8-7c1e-7d2a-8b3c-4d5e6f708192"}, "Content-Type": {"application/msgpack"}}, Data: []byte{0x82, 0xa1, 'a', 1, 0x0a, '\n'}},
		{Subject: "s", Data: nil},
	} {
		b, err := encodeOutboxFile(7, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte("lintel-outbox 1 00000000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, msg, err := decodeOutboxFile(b)
		if err != nil {
			return
		}
		again, err := encodeOutboxFile(seq, msg)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", msg, err)
		}
		seq2, msg2, err := decodeOutboxFile(again)
		if err != nil || seq2 != seq || msg2.Subject != msg.Subject || !bytes.Equal(msg2.Data, msg.Data) || !reflect.DeepEqual(msg2.Header, msg.Header) {
			t.Fatalf("round trip of %q: %d %+v, %v; want %d %+v", b, seq2, msg2, err, seq, msg)
		}
	})
}
