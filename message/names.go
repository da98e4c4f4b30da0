package message

// Names of the messages this package defines payloads for. An envelope's Name
// says what happened or what is asked; its Type says which kind of message it
// is, and so which subject it travels on.
const (
	// NameAccessRequested is an [AccessRequest] from a reader to its edge,
	// with Type topic.Request.
	NameAccessRequested = "access.requested"
	// NameAccessGranted is an [AccessDecision] that lets the holder in, with
	// Type topic.Event (or the reply to an access request).
	NameAccessGranted = "access.granted"
	// NameAccessDenied is an [AccessDecision] that keeps the holder out, with
	// Type topic.Event (or the reply to an access request).
	NameAccessDenied = "access.denied"
	// NameDoorState is a [DoorState] report, with Type topic.State.
	NameDoorState = "door.state"
	// NameDoorForcedOpen is a [DoorState] snapshot when a door opened
	// without a grant while locked, with Type topic.Event.
	NameDoorForcedOpen = "door.forced_open"
	// NameDoorHeldOpen is a [DoorState] snapshot when a door stayed open
	// longer than allowed, with Type topic.Event.
	NameDoorHeldOpen = "door.held_open"
	// NameSensorReading is a [SensorReading], with Type topic.Telemetry.
	NameSensorReading = "sensor.reading"
	// NameCommand is a [Command] to a thing, with Type topic.Command.
	NameCommand = "command"
	// NameAck is an [Ack] of a command, with Type topic.Ack and the
	// command's ID as CorrelationID.
	NameAck = "command.ack"
	// NameThingBirth is a [Birth]: a thing has (re)started, with Type
	// topic.State.
	NameThingBirth = "thing.birth"
	// NameThingHeartbeat is a [Heartbeat]: a thing is alive, with Type
	// topic.State.
	NameThingHeartbeat = "thing.heartbeat"
	// NameThingDeath is a [Death]: a thing has stopped or been lost, with
	// Type topic.State.
	NameThingDeath = "thing.death"
)

// internName returns the name constant spelled b without allocating, or "".
func internName(b []byte) string {
	switch string(b) {
	case NameAccessRequested:
		return NameAccessRequested
	case NameAccessGranted:
		return NameAccessGranted
	case NameAccessDenied:
		return NameAccessDenied
	case NameDoorState:
		return NameDoorState
	case NameDoorForcedOpen:
		return NameDoorForcedOpen
	case NameDoorHeldOpen:
		return NameDoorHeldOpen
	case NameSensorReading:
		return NameSensorReading
	case NameCommand:
		return NameCommand
	case NameAck:
		return NameAck
	case NameThingBirth:
		return NameThingBirth
	case NameThingHeartbeat:
		return NameThingHeartbeat
	case NameThingDeath:
		return NameThingDeath
	}
	return ""
}
