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

// TestIngestCommandSent ingests central's records of the commands it sent
// (message.NameCommandSent on "{org}.{edge}._sys.commands.evt"), each
// published twice, with the command's acks: the commands table holds the
// command once, with the outcome its acks tell. A record naming a thing of another edge makes no row.
func TestIngestCommandSent(t *testing.T) {
	t.Parallel()
	now := timeNow()
	s := newStore(t, storage.Config{Now: func() time.Time { return now }})
	n := newNATS(t)
	ctx := testContext(t)
	records := topic.Thing{Org: "acme", Edge: "hq", Type: topic.ThingTypeSystem, Code: "commands"}

	var ids message.IDGenerator
	cmdID := ids.NewAt(now.Add(-time.Minute))
	cmd := message.Command{Action: "unlock", Params: map[string]string{"for": "5s"}, IdempotencyKey: "k1",
		RequestedBy: "operator:alice", Deadline: now.Add(time.Minute)}
	rec, _ := lintelMsg(t, nil, records, topic.Event, message.NameCommandSent, now.Add(-time.Minute), message.ID{}, message.ID{},
		message.CommandSent{CommandID: cmdID, Subject: lockL1.Subject(topic.Command).String(), Time: now.Add(-time.Minute), Command: cmd})
	n.publishMsg(t, rec, true)
	boot := ids.New()
	for i, st := range []message.AckStatus{message.AckAccepted, message.AckCompleted} {
		m, _ := lintelMsg(t, nil, lockL1, topic.Ack, message.NameAck, now.Add(time.Duration(i-50)*time.Second),
			cmdID, boot, message.Ack{CommandID: cmdID, Status: st})
		n.publishMsg(t, m, false)
	}
	// A record on hq's subject naming a thing of edge wh.
	other := topic.Thing{Org: "acme", Edge: "wh", Type: "lock", Code: "l9"}
	bad, _ := lintelMsg(t, nil, records, topic.Event, message.NameCommandSent, now, message.ID{}, message.ID{},
		message.CommandSent{CommandID: ids.New(), Subject: other.Subject(topic.Command).String(), Time: now, Command: cmd})
	n.publishMsg(t, bad, false)

	const events = 1 + 2 + 1
	in := runIngest(t, s, n, storage.IngestConfig{BatchSize: 2})
	waitAcked(t, n)
	waitEvents(t, s.Pool(), events)
	st := in.Stats()
	assert.Equal(t, uint64(1), st.DerivedSkipped, "the record naming another edge's thing")
	assert.Zero(t, st.DeadLettered)

	page, err := s.Commands(ctx, storage.CommandQuery{})
	require.NoError(t, err)
	require.Len(t, page.Commands, 1)
	got := page.Commands[0]
	assert.Equal(t, cmdID, got.ID)
	assert.Equal(t, lockL1, got.Thing)
	assert.Equal(t, "unlock", got.Action)
	assert.Equal(t, "operator:alice", got.RequestedBy)
	assert.JSONEq(t, `{"for": "5s"}`, string(got.Params))
	assert.True(t, now.Add(time.Minute).Equal(got.Deadline), got.Deadline)
	assert.True(t, now.Add(-time.Minute).Equal(got.RequestedAt), got.RequestedAt)
	assert.Equal(t, storage.CommandCompleted, got.Status)
	acks, err := s.CommandAcks(ctx, got.ID)
	require.NoError(t, err)
	require.Len(t, acks, 2)
}
