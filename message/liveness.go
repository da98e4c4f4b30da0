package message

import "time"

// Birth announces that a thing has started: a new boot, whose messages carry
// BootID and number their Seq from 1. It travels as [NameThingBirth] with
// Type topic.State, and is the first message of each boot.
type Birth struct {
	// BootID identifies the new boot; it equals the envelope's BootID.
	BootID ID `msgpack:"boot_id" json:"boot_id"`
	// Model is the thing's hardware model.
	Model string `msgpack:"model,omitempty" json:"model,omitempty"`
	// Firmware is the thing's software or firmware version.
	Firmware string `msgpack:"firmware,omitempty" json:"firmware,omitempty"`
	// HeartbeatInterval is how often the thing sends a [Heartbeat]; a
	// receiver that hears nothing for a few intervals presumes it dead. In
	// JSON it is a number of nanoseconds.
	HeartbeatInterval time.Duration `msgpack:"heartbeat_interval,omitempty" json:"heartbeat_interval,omitempty"`
}

// Heartbeat says a thing is alive, travelling as [NameThingHeartbeat] with
// Type topic.State.
type Heartbeat struct {
	// BootID identifies the thing's current boot.
	BootID ID `msgpack:"boot_id" json:"boot_id"`
	// Uptime is how long the thing has been running. In JSON it is a number
	// of nanoseconds.
	Uptime time.Duration `msgpack:"uptime" json:"uptime"`
}

// Death says a thing has stopped or been lost, travelling as [NameThingDeath]
// with Type topic.State. A thing sends it when it shuts down cleanly; its edge
// sends it on the thing's behalf when the thing disappears.
type Death struct {
	// BootID identifies the boot that ended.
	BootID ID `msgpack:"boot_id" json:"boot_id"`
	// Reason says why, such as "shutdown" or "heartbeat_timeout".
	Reason string `msgpack:"reason,omitempty" json:"reason,omitempty"`
	// LastSeq is the last sequence number of the boot, when known, so that
	// a receiver can tell whether it missed the last messages.
	LastSeq uint64 `msgpack:"last_seq,omitempty" json:"last_seq,omitempty"`
}
