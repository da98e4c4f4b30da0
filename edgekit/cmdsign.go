package edgekit

import (
	"errors"
	"fmt"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ErrNoCommandKey reports a command that cannot be signed because no
// command key was configured (HubConfig.CommandKey, NodeConfig.CommandKey):
// devices refuse unsigned commands.
var ErrNoCommandKey = errors.New("edgekit: no command key: devices refuse unsigned commands")

// parseCommandKey reads a command key seed; an empty seed is no key.
func parseCommandKey(seed authz.Secret) (nkeys.KeyPair, error) {
	raw := seed.Reveal()
	if raw == "" {
		return nil, nil
	}
	kp, err := nkeys.FromSeed([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("command key: %w", err)
	}
	if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, errors.New("command key: not a user seed")
	}
	return message.SigningKey(kp)
}

// signCommand signs msg for target with kp, or fails with ErrNoCommandKey.
func signCommand(kp nkeys.KeyPair, msg *nats.Msg, target topic.Thing) error {
	if kp == nil {
		return ErrNoCommandKey
	}
	return message.SignCommand(msg, target, kp)
}

// SignCommand signs msg, a command for target whose body and Content-Type
// are final, with the edge's command key (NodeConfig.CommandKey), as
// every command the edge's own services issue must be (the access
// service's unlocks, the rules engine's commands): devices act only on
// commands signed by central or by their edge (see message.SignCommand).
// It returns [ErrNoCommandKey] when the node has no command key.
func (n *Node) SignCommand(msg *nats.Msg, target topic.Thing) error {
	return signCommand(n.cmdKey, msg, target)
}

// signCommand signs a command of central for target with the org's command
// key (HubConfig.CommandKey).
func (h *Hub) signCommand(msg *nats.Msg, target topic.Thing) error {
	return signCommand(h.cmdKey, msg, target)
}

// commandSignatureHeaders are the headers of a command's signature, which
// the edge's dispatcher hands to the device unchanged.
var commandSignatureHeaders = [...]string{message.HeaderSigner, message.HeaderSignature}
