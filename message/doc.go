// Package message defines the envelope every Lintel message carries, its
// msgpack and CloudEvents JSON encodings, the typed payloads of the common
// messages, and the mapping to NATS messages.
//
// # Envelope
//
// An [Envelope] says who sent a message ([topic.Thing] Source), what it is
// ([topic.MessageType] Type, and a Name such as "access.granted"), when (Time),
// its identity (an [ID], a UUIDv7 that doubles as the JetStream
// deduplication id) and its place in the sender's stream: BootID and Seq, a
// sequence that restarts at 1 with each boot, from which a receiver can tell
// when it has missed messages, as Sparkplug B's bdSeq and seq do. A reply
// names the message it answers in CorrelationID. The payload stays encoded,
// with its ContentType; [SetPayload] and [DecodePayload] convert it to and from
// Go values such as [AccessRequest], [AccessDecision], [DoorState],
// [SensorReading], [Command], [Ack], [Birth], [Heartbeat] and [Death].
//
// Producers fill the identity fields with a [Stamper]; IDs come from an
// [IDGenerator]. Both take their clock and randomness as fields, so tests can
// make them deterministic.
//
// # Msgpack form
//
// The default encoding is a msgpack map with short string keys, written in
// this order:
//
//	key   field          msgpack value
//	v     SchemaVersion  [major, minor]; absent means 1.0
//	id    ID             bin, 16 bytes (a canonical UUID string is also read)
//	t     Time           int64 Unix nanoseconds (a timestamp extension is also read)
//	src   Source         str "org.edge.thing_type.thing_code"
//	mt    Type           str
//	name  Name           str; omitted when empty
//	seq   Seq            uint; omitted when 0
//	boot  BootID         bin, 16 bytes; omitted when zero
//	corr  CorrelationID  bin, 16 bytes; omitted when zero
//	ct    ContentType    str; omitted when empty
//	p     Payload        a msgpack payload embedded as is, so that generic
//	                     msgpack tools see its structure; any other payload
//	                     as bin; omitted when empty
//
// Decoders accept the keys in any order, skip keys they do not know (so a
// minor version can add fields) and treat a nil value as an absent field. The
// package encodes and decodes this form by hand, without reflection:
// [Envelope.AppendMsgpack] appends to a caller's buffer without allocating,
// and decoding allocates only the source string, uncommon strings and a copy
// of the payload. It is still the ordinary msgpack wire format: Envelope
// implements [msgpack.Marshaler] and [msgpack.Unmarshaler], and any msgpack
// library can read and write it.
//
// # CloudEvents form
//
// For HTTP and interoperation an envelope is also a CloudEvents 1.0 event in
// structured JSON mode, content type "application/cloudevents+json"
// ([CloudEventsCodec], [Envelope.AppendCloudEvent], and json.Marshal of an
// Envelope):
//
//	{"specversion":"1.0",
//	 "id":"0190f3a8-7c1e-7d2a-8b3c-4d5e6f708192",
//	 "source":"/acme/hq/reader/door-1",
//	 "type":"io.lintel.evt.access.granted",
//	 "time":"2026-03-01T08:30:00.123456789Z",
//	 "schemaversion":"1.0",
//	 "sequence":"00000000000000000042",
//	 "bootid":"…", "correlationid":"…",
//	 "datacontenttype":"application/json",
//	 "data":{"granted":true,"door":"door-1","credential_set_version":7}}
//
// The source is the relative URI /{org}/{edge}/{thing_type}/{thing_code}. The
// type is "io.lintel." followed by the message type and, when there is one,
// "." and the name; so the message type travels in the type rather than in an
// extension. Time is RFC 3339 in UTC; an event from another producer may
// leave it out, as CloudEvents 1.0 allows, and is then given the time it is
// decoded ([DecodeOptions].Now). The extension attributes are sequence
// (the CloudEvents sequence extension: Seq as 20 zero-padded decimal digits,
// so that it orders lexicographically; absent when 0), bootid and
// correlationid (absent when zero) and schemaversion ("major.minor").
//
// A msgpack payload is transcoded to JSON and appears in data with
// datacontenttype application/json (bin becomes base64, timestamps RFC 3339
// strings); decoding such an event yields a JSON payload, which
// [DecodePayload] decodes just as well: the payload types of this package use
// the same keys in msgpack and JSON, and carry IDs as canonical strings and
// times as msgpack timestamps for that reason ([DecodePayload] returns every
// time in UTC, whatever the local zone or the offset in the JSON). A JSON
// payload is embedded in data as is (JSON null included), a UTF-8 text/*
// payload is a JSON string in data, and any other payload is base64 in
// data_base64. JSON → Envelope →
// JSON keeps every attribute above, except that msgpack in data_base64 (which
// this package never writes) comes back as JSON data; other attributes, such
// as subject and dataschema, are ignored.
//
// # NATS
//
// [Envelope.ToMsg] makes a NATS message on the envelope's subject
// ([Envelope.Subject]) with headers [HeaderMsgID] (the envelope ID, for
// JetStream deduplication), [HeaderContentType] and [HeaderSchemaVersion].
// [FromMsg] and [DecodeMsg] choose the codec from the content type header
// (msgpack when absent) and check that the envelope belongs on the subject it
// arrived on; [FromJetStream] and [DecodeJetStream] do the same for a
// jetstream.Msg (any [JetStreamMsg]).
//
// # Versions and bad input
//
// SchemaVersion versions the envelope and payload schemas together. Decoders
// accept any minor version of [SupportedMajor] and reject any other major
// version with [ErrUnsupportedVersion], whatever else is wrong with the input.
// They never panic: truncated, oversized ([DecodeOptions].MaxSize, by default
// [DefaultMaxSize], a little under NATS's 1 MiB max_payload), too deeply
// nested, wrongly typed or incomplete input yields a [*DecodeError] that names
// the field and wraps one of the sentinel errors, such as [ErrTruncated],
// [ErrTooLarge], [ErrWrongType], [ErrMissingField] or [ErrInvalidValue].
// Encoders check the envelope with [Envelope.Validate] and return a
// [*FieldError].
package message
