package message_test

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// payloadCase round-trips one payload value of type T.
func payloadCase[T any](name string, mt topic.MessageType, v T) struct {
	name string
	run  func(t *testing.T)
} {
	return struct {
		name string
		run  func(t *testing.T)
	}{name, func(t *testing.T) {
		for _, via := range []string{"msgpack", "json", "msgpack via cloudevents", "json via cloudevents"} {
			t.Run(via, func(t *testing.T) {
				e := minimalEnvelope(t)
				e.Type, e.Name = mt, name
				set := message.SetPayload
				if strings.HasPrefix(via, "json") {
					set = message.SetPayloadJSON
				}
				if err := set(e, v); err != nil {
					t.Fatal(err)
				}
				codec := message.Codec(message.MsgpackCodec{})
				if strings.HasSuffix(via, "cloudevents") {
					codec = message.CloudEventsCodec{}
				}
				b, err := codec.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				var got message.Envelope
				if err := codec.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				back, err := message.DecodePayload[T](&got)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(back, v) {
					t.Errorf("payload came back as\n%#v\nwant\n%#v", back, v)
				}
			})
		}
	}}
}

func TestPayloadRoundTrip(t *testing.T) {
	id := mustID(t, "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d")
	deadline := time.Date(2026, 3, 1, 8, 30, 5, 250_000_000, time.UTC)
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		payloadCase(message.NameAccessRequested, topic.Request, message.AccessRequest{Reader: "r1", Door: "door-1", Kind: message.CredentialCard, Credential: "04A2B3C4D5"}),
		payloadCase(message.NameAccessGranted, topic.Event, message.AccessDecision{Granted: true, Door: "door-1", Holder: "h-1", CredentialSetVersion: 7}),
		payloadCase(message.NameAccessDenied, topic.Event, message.AccessDecision{Reason: message.DenyOutsideSchedule, Door: "door-1", CredentialSetVersion: 1 << 40}),
		payloadCase(message.NameDoorState, topic.State, message.DoorState{Door: "door-1", Open: true}),
		payloadCase(message.NameDoorForcedOpen, topic.Event, message.DoorState{Door: "door-1", Open: true, Locked: true, Forced: true}),
		payloadCase(message.NameDoorHeldOpen, topic.Event, message.DoorState{Door: "door-1", Open: true, HeldOpen: true}),
		payloadCase(message.NameSensorReading, topic.Telemetry, message.SensorReading{Metric: "temperature", Value: 21.5, Unit: "Cel"}),
		payloadCase(message.NameSensorReading, topic.Telemetry, message.SensorReading{Metric: "count", Value: 3}),
		payloadCase(message.NameCommand, topic.Command, message.Command{Action: "unlock", Params: map[string]string{"duration": "5s"}, Deadline: deadline, IdempotencyKey: "k-1", RequestedBy: "user:42"}),
		payloadCase(message.NameCommand, topic.Command, message.Command{Action: "lock"}),
		payloadCase(message.NameAck, topic.Ack, message.Ack{CommandID: id, Status: message.AckFailed, Error: "jammed"}),
		payloadCase(message.NameThingBirth, topic.State, message.Birth{BootID: id, Model: "R-100", Firmware: "2.3.1", HeartbeatInterval: 30 * time.Second}),
		payloadCase(message.NameThingHeartbeat, topic.State, message.Heartbeat{BootID: id, Uptime: 90 * time.Minute}),
		payloadCase(message.NameThingDeath, topic.State, message.Death{BootID: id, Reason: "shutdown", LastSeq: 1234}),
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	tests := []struct {
		name     string
		ct       string
		payload  string
		sentinel error
	}{
		{"no payload", message.ContentTypeMsgpack, "", message.ErrMissingField},
		{"unsupported", "text/plain", "hi", message.ErrUnsupportedContentType},
		{"bad json", message.ContentTypeJSON, "{", message.ErrMalformed},
		{"json of the wrong shape", message.ContentTypeJSON, `{"granted":"yes"}`, message.ErrInvalidValue},
		{"msgpack of the wrong shape", message.ContentTypeMsgpack, "\x81\xa7granted\xa3yes", message.ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &message.Envelope{ContentType: tt.ct, Payload: []byte(tt.payload)}
			_, err := message.DecodePayload[message.AccessDecision](e)
			var de *message.DecodeError
			if !errors.As(err, &de) || de.Field != message.FieldPayload || !errors.Is(err, tt.sentinel) {
				t.Errorf("DecodePayload = %v, want a payload *DecodeError wrapping %v", err, tt.sentinel)
			}
		})
	}
	e := minimalEnvelope(t)
	if err := message.SetPayload(e, make(chan int)); !errors.Is(err, message.ErrInvalidValue) || e.Payload != nil {
		t.Errorf("SetPayload(chan) = %v, payload %q", err, e.Payload)
	}
	if err := message.SetPayloadJSON(e, make(chan int)); !errors.Is(err, message.ErrInvalidValue) || e.Payload != nil {
		t.Errorf("SetPayloadJSON(chan) = %v, payload %q", err, e.Payload)
	}
}

func TestPayloadUnknownFieldsIgnored(t *testing.T) {
	e := minimalEnvelope(t)
	if err := message.SetPayload(e, map[string]any{"door": "d", "open": true, "future_field": []int{1}}); err != nil {
		t.Fatal(err)
	}
	got, err := message.DecodePayload[message.DoorState](e)
	if err != nil || got != (message.DoorState{Door: "d", Open: true}) {
		t.Errorf("DecodePayload = %+v, %v", got, err)
	}
}

func TestCommandExpired(t *testing.T) {
	deadline := time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)
	tests := []struct {
		name     string
		deadline time.Time
		now      time.Time
		want     bool
	}{
		{"before", deadline, deadline.Add(-time.Nanosecond), false},
		{"at", deadline, deadline, true},
		{"after", deadline, deadline.Add(time.Hour), true},
		{"other zone", deadline, deadline.In(time.FixedZone("X", -5*3600)), true},
		{"no deadline", time.Time{}, deadline, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := message.Command{Action: "unlock", Deadline: tt.deadline}
			if got := c.Expired(tt.now); got != tt.want {
				t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}
}

func TestAccessDecisionName(t *testing.T) {
	if got := (message.AccessDecision{Granted: true}).MessageName(); got != message.NameAccessGranted {
		t.Errorf("granted: %s", got)
	}
	if got := (message.AccessDecision{Reason: message.DenyRevoked}).MessageName(); got != message.NameAccessDenied {
		t.Errorf("denied: %s", got)
	}
}

func TestEnumsKnown(t *testing.T) {
	for _, r := range []message.DenyReason{message.DenyUnknown, message.DenyRevoked, message.DenySuspended, message.DenyExpired,
		message.DenyNotYetValid, message.DenyOutsideSchedule, message.DenyDoorNotAllowed, message.DenyStale} {
		if !r.Known() {
			t.Errorf("%q not Known", r)
		}
	}
	if message.DenyReason("bored").Known() || message.DenyReason("").Known() {
		t.Error("unknown reasons reported Known")
	}
	for s, final := range map[message.AckStatus]bool{message.AckAccepted: false, message.AckCompleted: true,
		message.AckFailed: true, message.AckRejected: true, message.AckExpired: true, "later": false} {
		if s.Final() != final {
			t.Errorf("%q.Final() = %v", s, !final)
		}
	}
}

func TestCredentialRedacted(t *testing.T) {
	req := message.AccessRequest{Door: "d", Credential: "04A2B3C4D5"}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("request", "cred", req.Credential, "req", req)
	for _, s := range []string{
		fmt.Sprint(req.Credential), fmt.Sprintf("%v %+v %#v %s %q %x", req, req, req, req.Credential, req.Credential, req.Credential),
		logged.String(),
	} {
		if strings.Contains(s, "04A2B3C4D5") || strings.Contains(s, "3034") {
			t.Errorf("credential leaked: %s", s)
		}
	}
	if string(req.Credential) != "04A2B3C4D5" {
		t.Error("string conversion must give the value")
	}
}
