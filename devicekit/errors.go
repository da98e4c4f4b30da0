package devicekit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lintel-io/lintel/message"
)

// Sentinel errors returned by the package, alone or wrapped by a
// [*PublishError]; compare with [errors.Is]. Every implementation of [Device]
// returns them for the same conditions, so callers need not know the
// transport.
var (
	// ErrInvalidConfig reports a [Config] that cannot be used, such as one
	// without a thing or a server URL.
	ErrInvalidConfig = errors.New("devicekit: invalid config")
	// ErrAuth reports a server that refused the device's credentials: a
	// wrong or empty password, or a user the edge does not know (a thing
	// missing from the inventory, or removed from it). [Connect] returns it
	// at once, without trying again.
	ErrAuth = errors.New("devicekit: authentication failed")
	// ErrClosed reports a call on a device that has been closed, or a
	// publish cut short because the device closed.
	ErrClosed = errors.New("devicekit: device closed")
	// ErrInvalidEnvelope reports an envelope a device may not publish: not
	// valid, from another thing, or of a message type devices do not send.
	ErrInvalidEnvelope = errors.New("devicekit: invalid envelope")
	// ErrNotAcknowledged reports a publish that the edge's stream did not
	// acknowledge before the context ended. Every attempt carried the same
	// envelope ID, so retrying with the same envelope cannot store it twice
	// (within the stream's duplicate window).
	ErrNotAcknowledged = errors.New("devicekit: not acknowledged")
	// ErrStreamFull reports a publish that the edge's stream refused because
	// it is full (maximum messages or bytes reached, with the discard-new
	// policy), or because the edge's JetStream storage is used up ("insufficient
	// resources"). Nothing already stored is lost; the new message is not
	// stored.
	ErrStreamFull = errors.New("devicekit: stream full")
	// ErrStreamRejected reports a publish that the edge's stream refused for
	// another reason, given in [PublishError.Description].
	ErrStreamRejected = errors.New("devicekit: rejected by stream")
	// ErrBufferFull reports a publish made while the device is disconnected
	// and its reconnect buffer ([Config.ReconnectBufferSize]) is full. The
	// message was not sent; nothing already buffered is lost.
	ErrBufferFull = errors.New("devicekit: reconnect buffer full")
	// ErrPermissionDenied reports a publish or subscription that the server
	// refused because the device's user may not use the subject: the
	// device's permissions do not match its thing.
	ErrPermissionDenied = errors.New("devicekit: permission denied")
	// ErrNoResponders reports a request that nobody is listening for.
	ErrNoResponders = errors.New("devicekit: no responders")
	// ErrInvalidReply reports a reply to a request that is not a valid
	// envelope, or that answers another request.
	ErrInvalidReply = errors.New("devicekit: invalid reply")
	// ErrHandlerRunning reports a call to HandleCommands while a handler
	// started earlier is still running: a device runs one command handler at
	// a time, so that no command can run twice.
	ErrHandlerRunning = errors.New("devicekit: a command handler is already running")
	// ErrCommandRejected is returned, wrapped, by a [Handler] that refuses a
	// command (an unknown action, bad parameters): the command is acked
	// [message.AckRejected] instead of [message.AckFailed].
	ErrCommandRejected = errors.New("devicekit: command rejected")
	// ErrOutboxLocked reports a [Config.Outbox] directory that another
	// client, in this process or another, is using: an outbox serves one
	// client at a time. [Connect] returns it at once.
	ErrOutboxLocked = errors.New("devicekit: outbox in use by another client")
)

// PublishError reports a publish that failed: which subject, which envelope,
// after how many attempts, and why. Err is one of [ErrNotAcknowledged],
// [ErrStreamFull], [ErrStreamRejected], [ErrBufferFull], [ErrPermissionDenied],
// [ErrInvalidEnvelope] (larger than the server accepts) or [ErrClosed]; Cause, when set, is the underlying error, such as the last
// attempt's error or the context's. Both are reachable with [errors.Is]:
//
//	devicekit: publish acme.hq.reader.r1.evt (id 0190f3a8-…): stream full: stream "events-acme-hq": maximum messages exceeded (err_code 10077)
type PublishError struct {
	Subject  string     // the subject published to
	MsgID    message.ID // the envelope ID every attempt carried
	Attempts int        // how many times the message was sent

	// Stream, Code and Description are the stream's answer when it refused
	// the message: the stream name, the JetStream error code (err_code) and
	// the server's text, such as "maximum messages exceeded".
	Stream      string
	Code        int    // see Stream
	Description string // see Stream

	Err   error // sentinel
	Cause error // underlying error, or nil
}

// Error describes the failure, naming the subject and the envelope ID.
func (e *PublishError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "devicekit: publish %s (id %s): %s", e.Subject, e.MsgID, strings.TrimPrefix(e.Err.Error(), "devicekit: "))
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Description != "" || e.Code != 0 {
		b.WriteString(": ")
		if e.Stream != "" {
			fmt.Fprintf(&b, "stream %q: ", e.Stream)
		}
		fmt.Fprintf(&b, "%s (err_code %d)", e.Description, e.Code)
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	return b.String()
}

// Unwrap returns the sentinel error and the cause, if any.
func (e *PublishError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}
