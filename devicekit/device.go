package devicekit

import (
	"context"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Device is the device side of Lintel: what a card reader, a lock or a sensor
// does with its edge. [*Client] implements it over NATS; [*HTTPDevice], the
// client of the HTTP-to-NATS gateway, implements it too, and both pass the conformance
// suite in package devicetest, which is the executable form of this contract.
//
// Every method is safe for concurrent use. Methods that block take a context
// first; when it has no deadline, the implementation applies a default
// timeout of its own.
type Device interface {
	// Thing returns the thing the device is.
	Thing() topic.Thing

	// BootID returns the ID of the device's current boot, which every
	// envelope it sends carries. Each connection (a device reboot) has a
	// new one, unless configured otherwise.
	BootID() message.ID

	// Publish sends e on its subject, e.Source's subject for e.Type. An
	// envelope with a zero ID is stamped first (ID, time, source, boot ID and
	// the boot's next sequence number); one with an ID is sent as it is, so
	// that publishing the same envelope again is deduplicated by the stream.
	// e.Source must be the device's own thing (or zero, when stamping) and
	// e.Type one of topic.Event, topic.State, topic.Telemetry or topic.Ack;
	// anything else fails with [ErrInvalidEnvelope] before sending.
	//
	// Publish returns nil once the edge's stream has stored the message
	// (telemetry may be configured not to wait). A message that is not
	// acknowledged is sent again, with the same ID, until ctx ends. Errors
	// are [*PublishError] values wrapping [ErrNotAcknowledged],
	// [ErrStreamFull], [ErrStreamRejected], [ErrBufferFull],
	// [ErrPermissionDenied], [ErrInvalidEnvelope] (too large) or
	// [ErrClosed]; nothing is ever dropped silently.
	Publish(ctx context.Context, e *message.Envelope) error

	// PublishEvent publishes an event (topic.Event) named name, such as
	// "door.forced_open", with payload encoded as msgpack (nil for none),
	// as Publish does, and returns the ID of the envelope. The ID is
	// stamped before sending, so it is valid even when the error says the
	// acknowledgement did not arrive (the envelope may be stored); it is
	// zero only when no envelope was made: the device is closed, or payload
	// cannot be encoded ([ErrInvalidEnvelope]).
	PublishEvent(ctx context.Context, name string, payload any) (message.ID, error)

	// PublishState publishes a state report (topic.State) named name, such
	// as "door.state", as PublishEvent does.
	PublishState(ctx context.Context, name string, payload any) (message.ID, error)

	// PublishTelemetry publishes a measurement (topic.Telemetry) named name,
	// such as "sensor.reading", as PublishEvent does.
	PublishTelemetry(ctx context.Context, name string, payload any) (message.ID, error)

	// Request sends a request (topic.Request) named name, such as
	// "access.requested", and returns the reply envelope, whose
	// CorrelationID, when set, is the request's ID. The reply comes back on
	// the device's own inbox. Requests are not stored and not retried.
	// Errors wrap [ErrNoResponders] (nobody answers requests of the
	// device), [ErrInvalidReply], [ErrInvalidEnvelope], [ErrBufferFull],
	// [ErrClosed] or the context's error.
	Request(ctx context.Context, name string, payload any) (*message.Envelope, error)

	// HandleCommands starts handling the commands sent to the device, one at
	// a time in the order they arrive, with h, and returns once the device
	// receives them; ctx bounds that start only. Each command is acked on
	// the device's ack subject (CorrelationID the command envelope's ID),
	// with automatic statuses:
	//
	//   - a command that cannot be decoded, or is not a command: rejected
	//     with the reason (when it carries an ID at all);
	//   - a command whose ID or idempotency key the device has seen
	//     recently: not run again; the recorded outcome is sent again;
	//   - a command past its deadline: expired, never run. The deadline is
	//     checked on receipt and again just before h runs;
	//   - otherwise: accepted, then h runs with a context that ends at the
	//     command's deadline, then completed, or failed with h's error
	//     text, or rejected when h's error wraps [ErrCommandRejected].
	//
	// Handling runs until Subscription.Stop or until the device closes,
	// whatever becomes of ctx. A device runs one handler at a time: a
	// second call while one runs fails with [ErrHandlerRunning]. A device
	// that may not receive its commands fails with [ErrPermissionDenied].
	HandleCommands(ctx context.Context, h Handler) (Subscription, error)

	// Close stops the device: it stops command handling, publishes a death
	// (message.NameThingDeath, reason "shutdown") and disconnects, within a
	// bounded time. Later calls of the methods that communicate fail with
	// [ErrClosed]; Close itself is idempotent. It returns an error when the
	// death could not be published; the device is closed all the same.
	Close() error
}

// Handler carries out commands. HandleCommand runs one command and returns
// nil when it completed, or an error saying why it failed; an error wrapping
// [ErrCommandRejected] means the command was refused rather than attempted.
// ctx ends at the command's deadline, or when handling stops.
type Handler interface {
	// HandleCommand runs cmd; see [Handler].
	HandleCommand(ctx context.Context, cmd Command) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, cmd Command) error

// HandleCommand calls f(ctx, cmd).
func (f HandlerFunc) HandleCommand(ctx context.Context, cmd Command) error { return f(ctx, cmd) }

// Command is a command as a [Handler] sees it: the decoded [message.Command]
// (Action, Params, Deadline, IdempotencyKey, RequestedBy) and the envelope it
// arrived in.
type Command struct {
	message.Command
	// ID is the command envelope's ID, which acks carry as CorrelationID.
	ID message.ID
	// Envelope is the command envelope as received.
	Envelope *message.Envelope
}

// Subscription is the handle of running command handling, returned by
// [Device.HandleCommands].
type Subscription interface {
	// Stop stops handling: no further command starts, the running
	// handler's context is cancelled, and Stop returns once it has returned
	// and its ack has been sent (or could not be). Stop is idempotent. A
	// Handler must not call it: Stop would wait for the Handler to return.
	Stop()
	// Done is closed when handling has stopped, for whatever reason.
	Done() <-chan struct{}
	// Err returns why handling stopped once Done is closed: nil after Stop,
	// [ErrClosed] when the device closed, or another error wrapping a
	// sentinel, such as [ErrPermissionDenied], when the transport ended it.
	// It returns nil while handling runs.
	Err() error
}
