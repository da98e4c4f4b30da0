package access_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// TestVerifyRecordAfterRotation: a record signed with an edge's audit key
// verifies against the edge's public keys, also after a rotation; one
// signed by another key, altered, moved to another subject or unsigned
// does not.
func TestVerifyRecordAfterRotation(t *testing.T) {
	ctx := context.Background()
	inv := siteInventory()
	g := &authz.Generator{Cost: bcrypt.MinCost}
	res, err := g.Generate(ctx, inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := authz.EdgeKeyID("acme", "hq")
	kp, err := nkeys.FromSeed([]byte(res.Secrets.AuditSeeds[id].Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	w := newChainWriter(t, siteR1, kp)
	msg := w.next(cenGrant("front", "c", 1), time.Now())
	keys := res.State.AuditPublicKeys("acme", "hq")
	if _, err := access.VerifyRecord(keys, msg.Subject, msg.Header, msg.Data); err != nil {
		t.Fatalf("a fresh record: %v", err)
	}
	rot, err := g.RotateAuditKeys(ctx, res.State, id)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := access.VerifyRecord(rot.State.AuditPublicKeys("acme", "hq"), msg.Subject, msg.Header, msg.Data); err != nil || pub != keys[0] {
		t.Fatalf("a record signed before the rotation: %s, %v", pub, err)
	}
	other, _ := nkeys.CreateUser()
	altered := func(f func(m *nats.Msg)) *nats.Msg {
		m := &nats.Msg{Subject: msg.Subject, Header: nats.Header{}, Data: append([]byte(nil), msg.Data...)}
		for k, v := range msg.Header {
			m.Header[k] = append([]string(nil), v...)
		}
		f(m)
		return m
	}
	for _, tc := range []struct {
		name string
		msg  *nats.Msg
		want error
	}{
		{"unsigned", altered(func(m *nats.Msg) { m.Header.Del(access.HeaderAuditSig) }), access.ErrUnsigned},
		{"another key", altered(func(m *nats.Msg) { _ = access.SignRecord(other, m.Subject, m) }), access.ErrBadSignature},
		{"another key claiming the edge's", altered(func(m *nats.Msg) {
			_ = access.SignRecord(other, m.Subject, m)
			m.Header.Set(access.HeaderAuditKey, keys[0])
		}), access.ErrBadSignature},
		{"one byte changed", altered(func(m *nats.Msg) { m.Data[len(m.Data)-1] ^= 1 }), access.ErrBadSignature},
		{"another subject", altered(func(m *nats.Msg) { m.Subject = "acme.hq._access.r2.evt" }), access.ErrBadSignature},
		{"garbage signature", altered(func(m *nats.Msg) { m.Header.Set(access.HeaderAuditSig, "!!") }), access.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := access.VerifyRecord(rot.State.AuditPublicKeys("acme", "hq"), tc.msg.Subject, tc.msg.Header, tc.msg.Data); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyRecord = %v, want %v", err, tc.want)
			}
		})
	}
}

// BenchmarkSignRecord measures the edge's signature of one decision record
// as the service makes it, beside the hash of the same bytes that the
// chain already costs (the raw baseline). BenchmarkDecision measures it
// again beside the fsync of one record, the durability floor.
func BenchmarkSignRecord(b *testing.B) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		b.Fatal(err)
	}
	msg := newChainWriter(b, siteR1, nil).next(cenGrant("front", access.EventHash([]byte("card")), 100_000), time.Now())
	run := func(b *testing.B, prefix string, f func()) {
		samples := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		for b.Loop() {
			t0 := time.Now()
			f()
			samples = append(samples, time.Since(t0))
		}
		percentiles(b, prefix, samples)
	}
	b.Run("sign", func(b *testing.B) {
		run(b, "sign", func() {
			if err := access.SignRecord(kp, msg.Subject, msg); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("raw-hash", func(b *testing.B) {
		run(b, "hash", func() { _ = access.EventHash(msg.Data) })
	})
}
