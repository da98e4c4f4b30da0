// Package message defines the envelope every Lintel message carries, its
// msgpack and CloudEvents JSON encodings, the typed payloads of the common
// messages, and the mapping to NATS messages.
//
// An [Envelope] says who sent a message (Source), what it is (Type and
// Name), when (Time), its identity ([ID]) and its place in the sender's
// stream (BootID and Seq); a reply names the message it answers in
// CorrelationID. The payload stays encoded, with its ContentType;
// [SetPayload] and [DecodePayload] convert it to and from Go values such as
// [AccessRequest], [AccessDecision], [Command] and [Ack]. Producers fill the
// identity fields with a [Stamper]; IDs come from an [IDGenerator].
//
// [MsgpackCodec] encodes the default form, a msgpack map with short keys
// ([Envelope.AppendMsgpack] appends it to a caller's buffer);
// [CloudEventsCodec] a CloudEvents 1.0 event in structured JSON mode, for
// HTTP ([Envelope.AppendCloudEvent]). [Envelope.ToMsg] makes a NATS message
// on the envelope's subject ([Envelope.Subject]) with headers [HeaderMsgID]
// (the envelope ID, for JetStream deduplication), [HeaderContentType] and
// [HeaderSchemaVersion]. [FromMsg] and [DecodeMsg] choose the codec from the
// content type header (msgpack when absent) and check that the envelope
// belongs on the subject it arrived on; [FromJetStream] and
// [DecodeJetStream] do the same for a jetstream.Msg (any [JetStreamMsg]).
// The package example encodes and decodes an envelope; the examples of
// AppendCloudEvent, FromMsg and FromJetStream show the other paths.
//
// Decoders never panic: they reject a major version other than
// [SupportedMajor] with [ErrUnsupportedVersion], and other bad input with a
// [*DecodeError] that names the field and wraps a sentinel such as
// [ErrTruncated], [ErrTooLarge], [ErrWrongType], [ErrMissingField] or
// [ErrInvalidValue]. Encoders check the envelope with [Envelope.Validate]
// and return a [*FieldError].
//
// The envelope's fields, the msgpack keys, the CloudEvents attributes and
// how payloads map to them, and what decoders accept: docs/envelope.md.
package message
