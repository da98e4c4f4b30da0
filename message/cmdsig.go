package message

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Headers of a signed command (see [SignCommand]).
const (
	// HeaderSigner is the public key ("U…") that signed a command.
	HeaderSigner = "Lintel-Signer"
	// HeaderSignature is a command's ed25519 signature, unpadded
	// base64url.
	HeaderSignature = "Lintel-Signature"
)

// commandSigContext opens the signed bytes of every command: it keeps a
// command signature from being valid as anything else, and anything else
// signed with the key from being valid as a command.
const commandSigContext = "lintel-command-v1"

// Errors of [VerifyCommand]; compare with [errors.Is].
var (
	// ErrUnsigned reports a command without a signature.
	ErrUnsigned = errors.New("message: command not signed")
	// ErrUntrustedSigner reports a command signed by a key the receiver
	// does not trust.
	ErrUntrustedSigner = errors.New("message: command signed by an untrusted key")
	// ErrBadSignature reports a signature that does not verify: the
	// command, its target or its content type differ from what was signed.
	ErrBadSignature = errors.New("message: bad command signature")
)

// CommandSigningBytes returns the exact bytes a command signature covers:
//
//	"lintel-command-v1" LF
//	target thing, "{org}.{edge}.{type}.{code}" LF
//	signer's public key, "U…" LF
//	value of the Content-Type header ("" when absent) LF
//	the message body, byte for byte (the encoded envelope)
//
// The target binds the command to the one thing it was sent to, so that it
// cannot be replayed to another; the body holds the envelope with its ID,
// deadline and idempotency key, by which the receiver refuses a command
// replayed to the same thing (seen before, or expired).
func CommandSigningBytes(target topic.Thing, signer, contentType string, body []byte) []byte {
	t := target.String()
	b := make([]byte, 0, len(commandSigContext)+len(t)+len(signer)+len(contentType)+len(body)+4)
	b = append(b, commandSigContext...)
	b = append(b, '\n')
	b = append(b, t...)
	b = append(b, '\n')
	b = append(b, signer...)
	b = append(b, '\n')
	b = append(b, contentType...)
	b = append(b, '\n')
	return append(b, body...)
}

// SignCommand signs msg, a command for target, with kp: it sets the
// [HeaderSigner] and [HeaderSignature] headers over
// [CommandSigningBytes]. Sign after the body and the Content-Type header
// are final. It returns an error when kp cannot sign.
func SignCommand(msg *nats.Msg, target topic.Thing, kp nkeys.KeyPair) error {
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("message: command key: %w", err)
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	sig, err := kp.Sign(CommandSigningBytes(target, pub, msg.Header.Get(HeaderContentType), msg.Data))
	if err != nil {
		return fmt.Errorf("message: sign command for %s: %w", target, err)
	}
	msg.Header.Set(HeaderSigner, pub)
	msg.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
	return nil
}

// VerifyCommand checks that msg is a command for target signed by one of
// the trusted public keys, and returns the signer. It returns an error
// wrapping [ErrUnsigned], [ErrUntrustedSigner] or [ErrBadSignature].
func VerifyCommand(msg *nats.Msg, target topic.Thing, trusted []string) (string, error) {
	signer, sig := msg.Header.Get(HeaderSigner), msg.Header.Get(HeaderSignature)
	if signer == "" || sig == "" {
		return "", fmt.Errorf("%w: for %s", ErrUnsigned, target)
	}
	if !slices.Contains(trusted, signer) {
		return signer, fmt.Errorf("%w: %s, for %s", ErrUntrustedSigner, signer, target)
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return signer, fmt.Errorf("%w: for %s: signature not base64url", ErrBadSignature, target)
	}
	kp, err := nkeys.FromPublicKey(signer)
	if err != nil {
		return signer, fmt.Errorf("%w: %s: %v", ErrUntrustedSigner, signer, err)
	}
	data := CommandSigningBytes(target, signer, msg.Header.Get(HeaderContentType), msg.Data)
	if kp.Verify(data, raw) != nil {
		return signer, fmt.Errorf("%w: for %s", ErrBadSignature, target)
	}
	return signer, nil
}

// ValidCommandKeys reports the first of keys that is not a public user
// NKey ("U…"), or "" when all are.
func ValidCommandKeys(keys []string) string {
	for _, k := range keys {
		if !nkeys.IsValidPublicUserKey(k) {
			return k
		}
	}
	return ""
}
