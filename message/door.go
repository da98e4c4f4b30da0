package message

// DoorState is a door's state. It travels as [NameDoorState] with Type
// topic.State whenever the state changes, and as a snapshot inside the
// [NameDoorForcedOpen] and [NameDoorHeldOpen] events.
type DoorState struct {
	// Door is the code of the door.
	Door string `msgpack:"door" json:"door"`
	// Open reports whether the door is open (its contact is open).
	Open bool `msgpack:"open" json:"open"`
	// Locked reports whether the lock is engaged.
	Locked bool `msgpack:"locked" json:"locked"`
	// Forced reports whether the door opened without a grant or exit request.
	Forced bool `msgpack:"forced,omitempty" json:"forced,omitempty"`
	// HeldOpen reports whether the door has stayed open longer than allowed.
	HeldOpen bool `msgpack:"held_open,omitempty" json:"held_open,omitempty"`
}
