package message

import (
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Command is an instruction to a thing, travelling as [NameCommand] with Type
// topic.Command. The thing answers with [Ack] messages whose CorrelationID is
// the command envelope's ID.
type Command struct {
	// Action is what to do, such as "unlock".
	Action string `msgpack:"action" json:"action"`
	// Params are the action's parameters, such as {"duration": "5s"}.
	Params map[string]string `msgpack:"params,omitempty" json:"params,omitempty"`
	// Deadline is when the command expires. A thing must never carry out an
	// expired command (see [Command.Expired]) and acks it with AckExpired
	// instead. Lintel's edges always set it; zero means no deadline.
	Deadline time.Time `msgpack:"deadline,omitempty" json:"deadline,omitzero"`
	// IdempotencyKey identifies the intended effect: a thing that sees the
	// same key twice carries the command out once.
	IdempotencyKey string `msgpack:"idempotency_key,omitempty" json:"idempotency_key,omitempty"`
	// RequestedBy refers to who asked for the command, for the audit trail.
	RequestedBy string `msgpack:"requested_by,omitempty" json:"requested_by,omitempty"`
}

// Expired reports whether the command's deadline has passed at now: now is
// at or after a non-zero Deadline. An expired command must never run.
func (c *Command) Expired(now time.Time) bool {
	return !c.Deadline.IsZero() && !now.Before(c.Deadline)
}

// DecodeMsgpack decodes c from msgpack, returning Deadline in UTC (msgpack
// decodes times in the local zone). It implements [msgpack.CustomDecoder].
func (c *Command) DecodeMsgpack(dec *msgpack.Decoder) error {
	type plain Command // without methods, so no recursion
	if err := dec.Decode((*plain)(c)); err != nil {
		return err
	}
	if !c.Deadline.IsZero() {
		c.Deadline = c.Deadline.UTC()
	}
	return nil
}

// AckStatus is the state of a command reported by an [Ack]. The list is
// append-only.
type AckStatus string

// Command states.
const (
	AckAccepted  AckStatus = "accepted"  // received and valid; will be carried out
	AckCompleted AckStatus = "completed" // carried out
	AckFailed    AckStatus = "failed"    // attempted and failed; see Ack.Error
	AckRejected  AckStatus = "rejected"  // refused: invalid, unknown action or not allowed
	AckExpired   AckStatus = "expired"   // not carried out: received after its deadline
)

// Final reports whether s ends the command's life: every status but
// AckAccepted.
func (s AckStatus) Final() bool {
	switch s {
	case AckCompleted, AckFailed, AckRejected, AckExpired:
		return true
	}
	return false
}

// Ack reports the state of a [Command], travelling as [NameAck] with Type
// topic.Ack and the command envelope's ID as CorrelationID.
type Ack struct {
	// CommandID is the ID of the command envelope.
	CommandID ID `msgpack:"command_id" json:"command_id"`
	// Status is the command's state.
	Status AckStatus `msgpack:"status" json:"status"`
	// Error says what went wrong, for AckFailed and AckRejected.
	Error string `msgpack:"error,omitempty" json:"error,omitempty"`
}
