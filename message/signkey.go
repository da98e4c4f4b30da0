package message

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/nats-io/nkeys"
)

// SigningKey returns kp with its ed25519 keys derived once. An nkeys key
// pair keeps only its seed and derives the keys again at every Sign,
// Verify and PublicKey call, which costs about twice the signature itself;
// the edge signs every decision record and every command it issues, so
// the services hold their keys through SigningKey. It returns an error
// when kp holds no seed of a signing key (a public key alone, or a curve
// key).
func SigningKey(kp nkeys.KeyPair) (nkeys.KeyPair, error) {
	if _, ok := kp.(*signingKey); ok {
		return kp, nil
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("message: signing key: %w", err)
	}
	prefix, raw, err := nkeys.DecodeSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("message: signing key: %w", err)
	}
	if prefix == nkeys.PrefixByteCurve {
		return nil, errors.New("message: signing key: a curve key cannot sign")
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("message: signing key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(raw)
	return &signingKey{KeyPair: kp, pub: pub, priv: priv}, nil
}

// signingKey is an nkeys.KeyPair with its public key and ed25519 private
// key derived once.
type signingKey struct {
	nkeys.KeyPair
	pub  string
	priv ed25519.PrivateKey
}

func (k *signingKey) PublicKey() (string, error) { return k.pub, nil }

func (k *signingKey) Sign(input []byte) ([]byte, error) { return ed25519.Sign(k.priv, input), nil }

func (k *signingKey) Verify(input, sig []byte) error {
	if !ed25519.Verify(k.priv.Public().(ed25519.PublicKey), input, sig) {
		return nkeys.ErrInvalidSignature
	}
	return nil
}

func (k *signingKey) Wipe() {
	clear(k.priv)
	k.KeyPair.Wipe()
}
