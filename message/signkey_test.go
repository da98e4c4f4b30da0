package message_test

import (
	"bytes"
	"testing"

	"github.com/lintel-io/lintel/message"
	"github.com/nats-io/nkeys"
)

func TestSigningKey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	sk, err := message.SigningKey(kp)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := kp.PublicKey()
	if got, _ := sk.PublicKey(); got != want {
		t.Fatalf("PublicKey = %s, want %s", got, want)
	}
	data := []byte("lintel")
	sig, err := sk.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := kp.Sign(data)
	if !bytes.Equal(sig, ref) {
		t.Fatal("signature differs from the nkeys key pair's")
	}
	pub, _ := nkeys.FromPublicKey(want)
	if err := pub.Verify(data, sig); err != nil {
		t.Fatalf("nkeys rejects the signature: %v", err)
	}
	if err := sk.Verify([]byte("other"), sig); err == nil {
		t.Fatal("Verify accepted a signature of other bytes")
	}
	if _, err := message.SigningKey(pub); err == nil {
		t.Fatal("SigningKey accepted a public key alone")
	}
	curve, _ := nkeys.CreateCurveKeys()
	if _, err := message.SigningKey(curve); err == nil {
		t.Fatal("SigningKey accepted a curve key")
	}
}

func BenchmarkSigningKey(b *testing.B) {
	kp, _ := nkeys.CreateUser()
	sk, _ := message.SigningKey(kp)
	data := make([]byte, 600)
	b.Run("nkeys", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = kp.Sign(data)
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = sk.Sign(data)
		}
	})
}
