package message

import (
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// NameCommandSent is central's record of a command it sent, a
// [CommandSent] with Type topic.Event, on the subject of the system thing
// "commands" of the command's edge ("{org}.{edge}._sys.commands.evt"): a
// subject that only central writes and that central's event stream
// captures, so that the command is in history beside its acks.
const NameCommandSent = "command.sent"

// CommandSent is the payload of [NameCommandSent]: which command central
// sent, to which thing, when.
type CommandSent struct {
	// CommandID is the ID of the command envelope, the CorrelationID of
	// its acks.
	CommandID ID `msgpack:"command_id" json:"command_id"`
	// Subject is the thing's cmd subject, "{org}.{edge}.{type}.{code}.cmd",
	// naming the thing the command is for.
	Subject string `msgpack:"subject" json:"subject"`
	// Time is the command envelope's time.
	Time time.Time `msgpack:"time" json:"time"`
	// Command is the command as sent.
	Command Command `msgpack:"command" json:"command"`
}

// DecodeMsgpack decodes c from msgpack, returning Time in UTC (msgpack
// decodes times in the local zone). It implements [msgpack.CustomDecoder].
func (c *CommandSent) DecodeMsgpack(dec *msgpack.Decoder) error {
	type plain CommandSent // without methods, so no recursion
	if err := dec.Decode((*plain)(c)); err != nil {
		return err
	}
	if !c.Time.IsZero() {
		c.Time = c.Time.UTC()
	}
	return nil
}
