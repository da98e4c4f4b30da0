package message_test

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// testTime is the time of the test envelopes.
var testTime = time.Date(2026, 3, 1, 8, 30, 0, 123456789, time.UTC)

var testThing = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "door-1"}

// newTestGenerator returns a generator with a fixed clock and seeded randomness.
func newTestGenerator(seed uint64) *message.IDGenerator {
	return &message.IDGenerator{
		Now:  func() time.Time { return testTime },
		Rand: rand.NewPCG(seed, seed+1),
	}
}

// mustID parses an ID or fails the test.
func mustID(t testing.TB, s string) message.ID {
	t.Helper()
	id, err := message.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// accessEvent returns a fully populated access.granted envelope.
func accessEvent(t testing.TB) *message.Envelope {
	t.Helper()
	e := &message.Envelope{
		ID:            mustID(t, "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d"),
		Time:          testTime,
		Source:        testThing,
		Type:          topic.Event,
		Name:          message.NameAccessGranted,
		Seq:           42,
		BootID:        mustID(t, "01954f00-0000-7000-8000-000000000001"),
		CorrelationID: mustID(t, "0195512a-1bd0-7000-8000-0000000000aa"),
		SchemaVersion: message.CurrentVersion,
	}
	if err := message.SetPayload(e, message.AccessDecision{
		Granted:              true,
		Door:                 "door-1",
		Holder:               "holder-1234",
		CredentialSetVersion: 7,
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

// minimalEnvelope returns an envelope with only the required fields.
func minimalEnvelope(t testing.TB) *message.Envelope {
	t.Helper()
	return &message.Envelope{
		ID:     mustID(t, "0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d"),
		Time:   testTime,
		Source: testThing,
		Type:   topic.State,
	}
}

// equalEnvelope reports whether a and b hold the same message. Times compare
// with Equal; a zero SchemaVersion equals CurrentVersion.
func equalEnvelope(a, b *message.Envelope) bool {
	va, vb := a.SchemaVersion, b.SchemaVersion
	if va == 0 {
		va = message.CurrentVersion
	}
	if vb == 0 {
		vb = message.CurrentVersion
	}
	return a.ID == b.ID && a.Time.Equal(b.Time) && a.Source == b.Source && a.Type == b.Type &&
		a.Name == b.Name && a.Seq == b.Seq && a.BootID == b.BootID &&
		a.CorrelationID == b.CorrelationID && va == vb && a.ContentType == b.ContentType &&
		bytes.Equal(a.Payload, b.Payload)
}

// checkEqual fails the test if got and want differ.
func checkEqual(t testing.TB, got, want *message.Envelope) {
	t.Helper()
	if !equalEnvelope(got, want) {
		t.Errorf("envelopes differ\n got: %+v\nwant: %+v", *got, *want)
	}
}
