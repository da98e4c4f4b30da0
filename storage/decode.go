package storage

import (
	"fmt"
	"math"

	"github.com/google/uuid"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

// DecodeEnvelope is the default [DecodeFunc]: it decodes the message data
// as a msgpack Lintel envelope, checks that the subject (when it is a
// Lintel subject) is the envelope's own, and converts the payload to JSON
// with [PayloadJSON]. A payload with no JSON form is stored as NULL; the
// envelope column always holds the message data untouched.
func DecodeEnvelope(msg jetstream.Msg) (Event, error) {
	var env message.Envelope
	if err := env.UnmarshalMsgpack(msg.Data()); err != nil {
		return Event{}, err
	}
	if s, err := topic.Parse(msg.Subject()); err == nil && s != env.Subject() {
		return Event{}, fmt.Errorf("%w: subject %s, envelope %s", message.ErrSubjectMismatch, msg.Subject(), env.Subject())
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
