package storage

import (
	"fmt"
	"math"
	"strings"

	"github.com/google/uuid"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DecodeEnvelope is the default [DecodeFunc]. It decodes the message with
// [message.DecodeMsg]: the codec is chosen by the Content-Type header
// (msgpack when absent, or CloudEvents JSON), a Lintel-Schema-Version
// header with an unknown major version is refused before decoding, and the
// subject must be the envelope's own. Commands written by central on
// [authz.CommandSubject] subjects ("_lintel.{org}.{edge}.cmd.{type}.{code}")
// are accepted when the envelope is a command of that very thing. The
// payload is converted to JSON with [PayloadJSON]; a payload with no JSON
// form is stored as NULL. The envelope column always holds the message
// data untouched, in whichever encoding it came.
//
// Errors are the [*message.DecodeError] of DecodeMsg (wrapping, for
// example, [message.ErrSubjectMismatch] or [message.ErrUnsupportedVersion]),
// or an error for a sequence number beyond int64; the ingest dead-letters
// the message with the error as the reason.
func DecodeEnvelope(msg jetstream.Msg) (Event, error) {
	var env message.Envelope
	m := nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()}
	var opts message.DecodeOptions
	var cmdThing topic.Thing
	if strings.HasPrefix(m.Subject, authz.InternalPrefix+".") {
		th, err := authz.ParseCommandSubject(m.Subject)
		if err != nil {
			return Event{}, fmt.Errorf("%w: %w", message.ErrSubjectMismatch, err)
		}
		cmdThing, opts.SkipSubjectCheck = th, true
	}
	if err := message.DecodeMsg(&m, &env, &opts); err != nil {
		return Event{}, err
	}
	if opts.SkipSubjectCheck && (env.Source != cmdThing || env.Type != topic.Command) {
		return Event{}, fmt.Errorf("%w: message on %q, envelope is a %s of %s",
			message.ErrSubjectMismatch, m.Subject, env.Type, env.Source)
	}
	if env.Seq > math.MaxInt64 {
		return Event{}, fmt.Errorf("storage: sequence %d out of range", env.Seq)
	}
	ev := Event{
		ID:            uuid.UUID(env.ID),
		DeviceTime:    env.Time,
		Thing:         env.Source,
		MessageType:   env.Type,
		Name:          env.Name,
		BootID:        uuid.UUID(env.BootID),
		Seq:           int64(env.Seq),
		CorrelationID: uuid.UUID(env.CorrelationID),
		Envelope:      msg.Data(),
	}
	if p, err := PayloadJSON(env.ContentType, env.Payload); err == nil {
		ev.Payload = p
		ev.Value = PayloadValue(p)
	}
	return ev, nil
}
