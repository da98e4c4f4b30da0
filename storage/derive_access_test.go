package storage_test

import (
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeviceCannotRecordDecision: a device may name its own event
// access.granted, but only the edge's access service records decisions,
// on the reader's "_access" thing; the device's event is stored as an
// event and makes no access decision row.
func TestDeviceCannotRecordDecision(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	now := timeNow()
	forged := event(readerR1, now)
	forged.MessageType, forged.Name = topic.Event, message.NameAccessGranted
	forged.Payload = []byte(`{"granted": true, "door": "front", "holder": "mallory", "audit_seq": 2}`)
	real := event(accessR1, now.Add(time.Second))
	real.MessageType, real.Name = topic.Event, message.NameAccessGranted
	real.Payload = []byte(`{"granted": true, "door": "front", "credential": "c1", "holder": "alice", "audit_seq": 2}`)
	res, err := s.InsertEvents(ctx, []storage.Event{forged, real})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Inserted)
	assert.Equal(t, 1, res.Derived)
	page, err := s.AccessDecisions(ctx, storage.AccessQuery{Org: "acme"})
	require.NoError(t, err)
	require.Len(t, page.Decisions, 1)
	assert.Equal(t, "alice", page.Decisions[0].Holder)
	assert.Equal(t, "r1", page.Decisions[0].Reader)
}
