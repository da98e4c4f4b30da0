package message_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

var (
	sigLock   = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	sigReader = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
)

func signedCommand(t testing.TB, kp nkeys.KeyPair, target topic.Thing) *nats.Msg {
	t.Helper()
	var ids message.IDGenerator
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: target, Type: topic.Command, Name: message.NameCommand}
	if err := message.SetPayload(e, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	m, err := e.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	if kp != nil {
		if err := message.SignCommand(m, target, kp); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestCommandSigningBytes(t *testing.T) {
	got := message.CommandSigningBytes(sigLock, "UABC", "application/msgpack", []byte{1, 2})
	want := append([]byte("lintel-command-v1\nacme.hq.lock.l1\nUABC\napplication/msgpack\n"), 1, 2)
	if !bytes.Equal(got, want) {
		t.Fatalf("signing bytes %q, want %q", got, want)
	}
}

func TestVerifyCommand(t *testing.T) {
	central, _ := nkeys.CreateUser()
	edge, _ := nkeys.CreateUser()
	stranger, _ := nkeys.CreateUser()
	cpub, _ := central.PublicKey()
	epub, _ := edge.PublicKey()
	trusted := []string{cpub, epub}

	tests := []struct {
		name   string
		msg    func() *nats.Msg
		want   error
		signer string
	}{
		{"central", func() *nats.Msg { return signedCommand(t, central, sigLock) }, nil, cpub},
		{"edge", func() *nats.Msg { return signedCommand(t, edge, sigLock) }, nil, epub},
		{"unsigned", func() *nats.Msg { return signedCommand(t, nil, sigLock) }, message.ErrUnsigned, ""},
		{"publish-ack", func() *nats.Msg { return &nats.Msg{Data: []byte(`{"stream":"s","seq":1}`)} }, message.ErrUnsigned, ""},
		{"untrusted key", func() *nats.Msg { return signedCommand(t, stranger, sigLock) }, message.ErrUntrustedSigner, ""},
		{"signed for another thing", func() *nats.Msg { return signedCommand(t, central, sigReader) }, message.ErrBadSignature, ""},
		{"body changed", func() *nats.Msg {
			m := signedCommand(t, central, sigLock)
			m.Data[len(m.Data)-1] ^= 1
			return m
		}, message.ErrBadSignature, ""},
		{"content type changed", func() *nats.Msg {
			m := signedCommand(t, central, sigLock)
			m.Header.Set(message.HeaderContentType, "application/json")
			return m
		}, message.ErrBadSignature, ""},
		{"signer swapped", func() *nats.Msg {
			m := signedCommand(t, central, sigLock)
			m.Header.Set(message.HeaderSigner, epub)
			return m
		}, message.ErrBadSignature, ""},
		{"signature not base64", func() *nats.Msg {
			m := signedCommand(t, central, sigLock)
			m.Header.Set(message.HeaderSignature, "!!")
			return m
		}, message.ErrBadSignature, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			signer, err := message.VerifyCommand(tc.msg(), sigLock, trusted)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("VerifyCommand: %v, want %v", err, tc.want)
			}
			if tc.want == nil && signer != tc.signer {
				t.Fatalf("signer %s, want %s", signer, tc.signer)
			}
		})
	}
}

// BenchmarkVerifyCommand measures what a device spends on a command's
// signature, beside a bare ed25519 verification of the same bytes.
func BenchmarkVerifyCommand(b *testing.B) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	m := signedCommand(b, kp, sigLock)
	b.Run("ed25519", func(b *testing.B) {
		seed, _ := kp.Seed()
		_, raw, _ := nkeys.DecodeSeed(seed)
		priv := ed25519.NewKeyFromSeed(raw)
		data := message.CommandSigningBytes(sigLock, pub, m.Header.Get(message.HeaderContentType), m.Data)
		sig := ed25519.Sign(priv, data)
		pk := priv.Public().(ed25519.PublicKey)
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pk, data, sig) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("verify-command", func(b *testing.B) {
		trusted := []string{pub}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := message.VerifyCommand(m, sigLock, trusted); err != nil {
				b.Fatal(err)
			}
		}
	})
}
