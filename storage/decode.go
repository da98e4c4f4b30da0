package storage

import (
	"fmt"
	"math"
	"strings"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

// DecodeEnvelope is the default [DecodeFunc]. It decodes the message with
// [message.DecodeJetStream]: the codec is chosen by the Content-Type header
// (msgpack when absent, or CloudEvents JSON), a Lintel-Schema-Version
// header with an unknown major version is refused before decoding, and the
// subject must be the envelope's own. Commands written by central on
// [authz.CommandSubject] subjects ("_lintel.{org}.{edge}.cmd.{type}.{code}")
// are accepted when the envelope is a command of that very thing. The
// payload is converted to JSON with [PayloadJSON]; a payload with no JSON
// form is stored as NULL. The envelope column always holds the message
// data untouched, in whichever encoding it came.
//
// Errors are the [*message.DecodeError] of DecodeJetStream (wrapping, for
// example, [message.ErrSubjectMismatch] or [message.ErrUnsupportedVersion]),
// or an error for a sequence number beyond int64; the ingest dead-letters
// the message with the error as the reason.
func DecodeEnvelope(msg jetstream.Msg) (Event, error) {
	var d envelopeDecoder
	return d.decode(msg)
}

// arenaChunk is the size of the allocations an ingest's decoder hands
// payloads out of.
const arenaChunk = 64 << 10

// envelopeDecoder is DecodeEnvelope with its buffers kept from one message
// to the next, for one goroutine. With chunk set, the payloads and
// readings of the events it returns are slices of shared allocations of
// about chunk bytes instead of one allocation each; the zero value
// allocates each exactly.
type envelopeDecoder struct {
	chunk  int
	env    message.Envelope
	t      transcoder
	arena  []byte    // the free tail holds the next payloads
	values []float64 // likewise for readings
}

func (d *envelopeDecoder) decode(msg jetstream.Msg) (Event, error) {
	d.env = message.Envelope{}
	env, subject := &d.env, msg.Subject()
	var opts message.DecodeOptions
	var cmdThing topic.Thing
	if strings.HasPrefix(subject, authz.InternalPrefix+".") {
		th, err := authz.ParseCommandSubject(subject)
		if err != nil {
			return Event{}, fmt.Errorf("%w: %w", message.ErrSubjectMismatch, err)
		}
		cmdThing, opts.SkipSubjectCheck = th, true
	}
	if err := message.DecodeJetStream(msg, env, &opts); err != nil {
		return Event{}, err
	}
	if opts.SkipSubjectCheck && (env.Source != cmdThing || env.Type != topic.Command) {
		return Event{}, fmt.Errorf("%w: message on %q, envelope is a %s of %s",
			message.ErrSubjectMismatch, subject, env.Type, env.Source)
	}
	if env.Seq > math.MaxInt64 {
		return Event{}, fmt.Errorf("storage: sequence %d out of range", env.Seq)
	}
	ev := Event{
		ID:            env.ID,
		DeviceTime:    env.Time,
		Thing:         env.Source,
		MessageType:   env.Type,
		Name:          env.Name,
		BootID:        env.BootID,
		Seq:           int64(env.Seq),
		CorrelationID: env.CorrelationID,
		Envelope:      msg.Data(),
	}
	if p, v, inT, err := d.t.payloadJSON(env.ContentType, env.Payload); err == nil {
		if inT {
			p = d.keep(p)
		}
		ev.Payload = p
		if v != nil {
			ev.Value = d.keepValue(*v)
		}
	}
	return ev, nil
}

// keep returns a copy of p that outlives d's buffers.
func (d *envelopeDecoder) keep(p []byte) []byte {
	if len(p) > cap(d.arena)-len(d.arena) {
		d.arena = make([]byte, 0, max(d.chunk, len(p)))
	}
	start := len(d.arena)
	d.arena = append(d.arena, p...)
	return d.arena[start:len(d.arena):len(d.arena)]
}

func (d *envelopeDecoder) keepValue(f float64) *float64 {
	if len(d.values) == cap(d.values) {
		d.values = make([]float64, 0, max(d.chunk/64, 1))
	}
	d.values = append(d.values, f)
	return &d.values[len(d.values)-1]
}
