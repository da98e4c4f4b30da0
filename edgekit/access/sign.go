package access

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"slices"

	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Headers of a signed audit record.
const (
	// HeaderAuditKey carries the public key ("U…", an [authz.AuditKey]) of
	// the edge audit key that signed the record.
	HeaderAuditKey = "Lintel-Audit-Key"
	// HeaderAuditSig carries the ed25519 signature of the record's
	// [RecordSigningBytes], in unpadded base64url.
	HeaderAuditSig = "Lintel-Audit-Sig"
)

// recordSigningPrefix separates the audit signature's domain from any other
// use of an ed25519 key.
const recordSigningPrefix = "lintel-audit-v1\n"

// DecisionThing returns the thing under which the edge's access service
// records the decisions on reader's requests: {org, edge,
// [topic.ThingTypeAccess], reader}, whose event subject is
// "{org}.{edge}._access.{reader}.evt". Its type is reserved: no device may
// publish on it.
func DecisionThing(org, edge, reader string) topic.Thing {
	return topic.Thing{Org: org, Edge: edge, Type: topic.ThingTypeAccess, Code: reader}
}

// RecordSigningBytes returns the exact bytes an edge signs for an audit
// record stored on subject (its thing's subject, e.g.
// "acme.hq._access.r1.evt", as central's stream holds it) whose NATS
// message data is data (the encoded envelope, whose [EventHash] the next
// record chains):
//
//	"lintel-audit-v1\n" || subject || "\n" || data
//
// The subject binds the record to its edge and reader; data carries the
// envelope (ID, time, source, name, correlation) and the decision with its
// AuditSeq and AuditPrev, so the signature covers the chain link too.
func RecordSigningBytes(subject string, data []byte) []byte {
	b := make([]byte, 0, len(recordSigningPrefix)+len(subject)+1+len(data))
	b = append(b, recordSigningPrefix...)
	b = append(b, subject...)
	b = append(b, '\n')
	return append(b, data...)
}

// SignRecord signs msg, an audit record to be stored on subject, with the
// edge's audit key kp: it sets [HeaderAuditKey] and [HeaderAuditSig]. It
// returns the nkeys error of a key that cannot sign.
func SignRecord(kp nkeys.KeyPair, subject string, msg *nats.Msg) error {
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("access: audit key: %w", err)
	}
	sig, err := kp.Sign(RecordSigningBytes(subject, msg.Data))
	if err != nil {
		return fmt.Errorf("access: sign audit record: %w", err)
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Header.Set(HeaderAuditKey, pub)
	msg.Header.Set(HeaderAuditSig, base64.RawURLEncoding.EncodeToString(sig))
	return nil
}

// VerifyRecord checks the signature of an audit record stored on subject
// with headers h and data data against keys, the edge's public audit keys
// (current and retired). It returns the key that signed it, or an error
// wrapping [ErrUnsigned] (a header missing) or [ErrBadSignature] (a key
// that is not one of keys, a malformed signature, or one that does not
// verify).
func VerifyRecord(keys []string, subject string, h nats.Header, data []byte) (string, error) {
	pub, sig := h.Get(HeaderAuditKey), h.Get(HeaderAuditSig)
	if pub == "" || sig == "" {
		return "", fmt.Errorf("%w: no %s or %s header", ErrUnsigned, HeaderAuditKey, HeaderAuditSig)
	}
	if !slices.Contains(keys, pub) {
		return "", fmt.Errorf("%w: key %s is not an audit key of the edge", ErrBadSignature, pub)
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return "", fmt.Errorf("%w: signature is not base64url: %w", ErrBadSignature, err)
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: key %s: %w", ErrBadSignature, pub, err)
	}
	if err := kp.Verify(RecordSigningBytes(subject, data), raw); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return pub, nil
}

// AuditKeys gives central the public audit keys of each edge, current and
// retired, with which the [Auditor] verifies the edges' records. An
// *authz.State is one ([authz.State.AuditPublicKeys]).
type AuditKeys interface {
	// AuditPublicKeys returns the public audit keys of edge at org; none
	// for an edge without one.
	AuditPublicKeys(org, edge string) []string
}

// ReadAuditKey reads an edge's audit key from the seed file at path (as
// authz.WriteSeedFile writes the seed of [authz.Secrets].AuditSeeds). It
// returns the os error of an unreadable file, or an error wrapping
// [ErrInvalid] for content that is not a user NKey seed.
func ReadAuditKey(path string) (nkeys.KeyPair, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	kp, err := nkeys.FromSeed(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("%w: audit key %s: %w", ErrInvalid, path, err)
	}
	if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("%w: audit key %s: not a user NKey seed", ErrInvalid, path)
	}
	return kp, nil
}
