package storage_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	lockL1   = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	readerR1 = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	readerR2 = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r2"}
	// accessR1 and accessR2 are the edge's access service recording the
	// decisions on r1's and r2's requests.
	accessR1 = topic.Thing{Org: "acme", Edge: "hq", Type: topic.ThingTypeAccess, Code: "r1"}
	accessR2 = topic.Thing{Org: "acme", Edge: "hq", Type: topic.ThingTypeAccess, Code: "r2"}
)

// lintelMsg builds the NATS message of an envelope of th with the given
// type, name, time, correlation id and payload, encoded with codec (nil
// for msgpack).
func lintelMsg(t testing.TB, codec message.Codec, th topic.Thing, mt topic.MessageType, name string,
	at time.Time, corr message.ID, boot message.ID, payload any) (*nats.Msg, message.ID) {
	t.Helper()
	var ids message.IDGenerator
	e := message.Envelope{ID: ids.NewAt(at), Time: at, Source: th, Type: mt, Name: name, CorrelationID: corr, BootID: boot, Seq: 1}
	if payload != nil {
		require.NoError(t, message.SetPayload(&e, payload))
	}
	m, err := e.ToMsg(codec)
	require.NoError(t, err)
	return m, e.ID
}

// publishMsg publishes m, and again without its deduplication id when
// twice is set, as an edge re-forwarding after JetStream's duplicate
// window would.
func (n *natsEnv) publishMsg(t testing.TB, m *nats.Msg, twice bool) {
	t.Helper()
	_, err := n.js.PublishMsg(testContext(t), m)
	require.NoError(t, err)
	if twice {
		again := nats.NewMsg(m.Subject)
		again.Data = m.Data
		for k, v := range m.Header {
			if k != nats.MsgIdHdr {
				again.Header[k] = v
			}
		}
		_, err := n.js.PublishMsg(testContext(t), again)
		require.NoError(t, err)
	}
}

// derivedCounts returns the row counts of the derived tables.
func derivedCounts(t testing.TB, s *storage.Store) [5]int {
	t.Helper()
	var out [5]int
	for i, tbl := range []string{"commands", "command_acks", "liveness", "liveness_events", "access_decisions"} {
		out[i] = count(t, s.Pool(), "SELECT count(*) FROM lintel."+tbl)
	}
	return out
}

// TestIngestDerived ingests commands, acks, liveness and access decisions
// (in msgpack and CloudEvents JSON), each published twice, then all of
// them again through a new consumer: the derived tables hold each once,
// with the outcome the messages describe.
func TestIngestDerived(t *testing.T) {
	t.Parallel()
	now := timeNow()
	s := newStore(t, storage.Config{Now: func() time.Time { return now }})
	n := newNATS(t)
	ctx := testContext(t)

	// A command central recorded when it sent it, acked accepted then completed.
	var ids message.IDGenerator
	unlock := storage.Command{ID: ids.New(), Thing: lockL1, Action: "unlock", RequestedBy: "alice",
		RequestedAt: now.Add(-time.Minute), Deadline: now.Add(time.Minute)}
	require.NoError(t, s.RecordCommand(ctx, unlock))
	boot := ids.New()
	for i, st := range []message.AckStatus{message.AckAccepted, message.AckCompleted} {
		m, _ := lintelMsg(t, nil, lockL1, topic.Ack, message.NameAck, now.Add(time.Duration(i-50)*time.Second),
			unlock.ID, boot, message.Ack{CommandID: unlock.ID, Status: st})
		n.publishMsg(t, m, true)
	}
	// A command seen in the stream, whose ack (failed) comes first, and an
	// ack of a command nobody recorded.
	cmdMsg, cmdID := lintelMsg(t, nil, lockL1, topic.Command, message.NameCommand, now.Add(-40*time.Second), message.ID{}, message.ID{},
		message.Command{Action: "lock", Params: map[string]string{"mode": "deadbolt"}, RequestedBy: "bob", Deadline: now.Add(time.Hour)})
	ackMsg, _ := lintelMsg(t, nil, lockL1, topic.Ack, message.NameAck, now.Add(-30*time.Second), cmdID, boot,
		message.Ack{Status: message.AckFailed, Error: "jammed"})
	n.publishMsg(t, ackMsg, true) // the ack first
	n.publishMsg(t, cmdMsg, true)
	orphan, _ := lintelMsg(t, nil, lockL1, topic.Ack, message.NameAck, now, ids.New(), boot, message.Ack{Status: message.AckCompleted})
	n.publishMsg(t, orphan, false)

	// r1 is born and beats; r2 is born, then dies (its edge says so).
	b1, b2 := ids.New(), ids.New()
	for _, l := range []struct {
		th   topic.Thing
		name string
		at   time.Duration
		p    any
	}{
		{readerR1, message.NameThingBirth, -3 * time.Minute, message.Birth{BootID: b1, Firmware: "1.2"}},
		{readerR1, message.NameThingHeartbeat, -2 * time.Minute, message.Heartbeat{BootID: b1, Uptime: time.Minute}},
		{readerR2, message.NameThingBirth, -3 * time.Minute, message.Birth{BootID: b2}},
		{readerR2, message.NameThingDeath, -time.Minute, message.Death{BootID: b2, Reason: "heartbeat_timeout"}},
	} {
		m, _ := lintelMsg(t, nil, l.th, topic.State, l.name, now.Add(l.at), message.ID{}, message.ID{}, l.p)
		n.publishMsg(t, m, true)
	}

	// Access decisions at r1 and r2, some as CloudEvents JSON. The first
	// two come from an older edge, which put the credential's hash in
	// Holder and knew nothing of Credential, Offline, Fallback or AuditSeq;
	// the others from a current edge, which reports the hash in Credential
	// and the holder in Holder, and decided 3 and 5 offline, 5 by its
	// fallback mode.
	alice, bob := storage.HashCredential([]byte("k"), "card-1"), storage.HashCredential([]byte("k"), "card-2")
	for i := range 6 {
		d := message.AccessDecision{Granted: i != 3, Door: []string{"front", "back"}[i%2],
			Holder: []string{alice, bob}[i%3/2], CredentialSetVersion: 7}
		if i >= 2 {
			d.Credential, d.Holder = d.Holder, []string{"h-alice", "h-bob"}[i%3/2]
			d.Offline, d.Fallback, d.AuditSeq = i%2 == 1, i == 5, uint64(i+1)
			d.SyncedAt, d.AuditPrev = now.Add(-time.Hour), fmt.Sprintf("%064x", i)
		}
		if !d.Granted {
			d.Reason = message.DenyOutsideSchedule
		}
		var codec message.Codec
		if i%2 == 1 {
			codec = message.CloudEventsCodec{}
		}
		m, _ := lintelMsg(t, codec, []topic.Thing{accessR1, accessR2}[i%2], topic.Event, d.MessageName(),
			now.Add(time.Duration(i-10)*time.Minute), message.ID{}, message.ID{}, d)
		n.publishMsg(t, m, true)
	}
	// A door reading, which makes no derived row.
	m, _ := lintelMsg(t, nil, readerR1, topic.Telemetry, message.NameSensorReading, now, message.ID{}, message.ID{},
		message.SensorReading{Metric: "temperature", Value: 21})
	n.publishMsg(t, m, false)

	const events = 2 + 2 + 1 + 4 + 6 + 1
	in := runIngest(t, s, n, storage.IngestConfig{BatchSize: 7})
	waitAcked(t, n)
	waitEvents(t, s.Pool(), events)
	st := in.Stats()
	assert.Equal(t, uint64(events), st.Ingested)
	assert.Equal(t, uint64(events-2), st.Duplicates)
	assert.Equal(t, uint64(2+2+1+4+6), st.Derived)
	// Counted as read, duplicates included: the first three acks were
	// delivered twice, the orphan once.
	assert.Equal(t, map[storage.CommandStatus]uint64{storage.CommandAccepted: 2, storage.CommandCompleted: 3, storage.CommandFailed: 2}, st.Acks)
	assert.Equal(t, uint64(7), st.ByType[topic.Ack])
	assert.Equal(t, uint64(1), st.ByType[topic.Telemetry])
	assert.Zero(t, st.DerivedSkipped)
	assert.Zero(t, st.DeadLettered)
	check := func() {
		t.Helper()
		page, err := s.Commands(ctx, storage.CommandQuery{ThingCode: "l1"})
		require.NoError(t, err)
		require.Len(t, page.Commands, 2)
		got := page.Commands[0]
		assert.Equal(t, unlock.ID, got.ID)
		assert.Equal(t, storage.CommandCompleted, got.Status)
		assert.True(t, now.Add(-49*time.Second).Equal(got.AckedAt), got.AckedAt)
		acks, err := s.CommandAcks(ctx, unlock.ID)
		require.NoError(t, err)
		require.Len(t, acks, 2)
		assert.Equal(t, storage.CommandAccepted, acks[0].Status)
		assert.Equal(t, storage.CommandCompleted, acks[1].Status)

		got = page.Commands[1]
		assert.Equal(t, cmdID, got.ID)
		assert.Equal(t, lockL1, got.Thing)
		assert.Equal(t, "lock", got.Action)
		assert.Equal(t, "bob", got.RequestedBy)
		assert.JSONEq(t, `{"mode": "deadbolt"}`, string(got.Params))
		assert.True(t, now.Add(time.Hour).Equal(got.Deadline))
		assert.Equal(t, storage.CommandFailed, got.Status)
		assert.Equal(t, "jammed", got.Error)

		live, err := s.Liveness(ctx, "acme", "hq")
		require.NoError(t, err)
		require.Len(t, live, 2)
		assert.Equal(t, readerR1, live[0].Thing)
		assert.True(t, live[0].Online)
		assert.Equal(t, b1.String(), live[0].BootID)
		assert.True(t, now.Add(-3*time.Minute).Equal(live[0].BornAt))
		assert.True(t, now.Add(-2*time.Minute).Equal(live[0].LastSeenAt))
		assert.Equal(t, readerR2, live[1].Thing)
		assert.False(t, live[1].Online)
		assert.True(t, now.Add(-time.Minute).Equal(live[1].DiedAt))

		page2, err := s.AccessDecisions(ctx, storage.AccessQuery{CredentialHash: bob})
		require.NoError(t, err)
		require.Len(t, page2.Decisions, 2) // i = 2 and 5
		d := page2.Decisions[1]
		assert.Equal(t, "back", d.Door)
		assert.Equal(t, "r2", d.Reader)
		assert.True(t, d.Granted)
		assert.Equal(t, int64(7), d.CredentialSetVersion)
		assert.True(t, now.Add(-5*time.Minute).Equal(d.Time))
		assert.Equal(t, "h-bob", d.Holder)
		assert.True(t, d.Offline)
		assert.True(t, d.Fallback)
		assert.Equal(t, int64(6), d.AuditSeq)
		d = page2.Decisions[0] // i = 2, msgpack
		assert.Equal(t, "h-bob", d.Holder)
		assert.False(t, d.Offline)
		assert.False(t, d.Fallback)
		assert.Equal(t, int64(3), d.AuditSeq)
		denied := false
		page2, err = s.AccessDecisions(ctx, storage.AccessQuery{Org: "acme", Edge: "hq", Door: "back", Granted: &denied})
		require.NoError(t, err)
		require.Len(t, page2.Decisions, 1) // i = 3, as CloudEvents
		d = page2.Decisions[0]
		assert.Equal(t, string(message.DenyOutsideSchedule), d.Reason)
		assert.Equal(t, alice, d.CredentialHash)
		assert.Equal(t, "h-alice", d.Holder)
		assert.True(t, d.Offline)
		assert.False(t, d.Fallback)
		assert.Equal(t, int64(4), d.AuditSeq)
		page2, err = s.AccessDecisions(ctx, storage.AccessQuery{Door: "front", From: now.Add(-9 * time.Minute), To: now.Add(-6 * time.Minute)})
		require.NoError(t, err)
		assert.Len(t, page2.Decisions, 1) // i = 2 (minutes -10, -8, -6 are front)

		// The older edge's decisions: credential_hash from Holder, which
		// referred to the credential there, so no holder.
		page2, err = s.AccessDecisions(ctx, storage.AccessQuery{CredentialHash: alice, To: now.Add(-8 * time.Minute)})
		require.NoError(t, err)
		require.Len(t, page2.Decisions, 2) // i = 0 and 1
		for _, d := range page2.Decisions {
			assert.Equal(t, alice, d.CredentialHash)
			assert.Empty(t, d.Holder)
			assert.False(t, d.Offline)
			assert.False(t, d.Fallback)
			assert.Zero(t, d.AuditSeq)
			assert.Equal(t, int64(7), d.CredentialSetVersion)
		}

		offline, online := true, false
		page2, err = s.AccessDecisions(ctx, storage.AccessQuery{Org: "acme", Offline: &offline})
		require.NoError(t, err)
		require.Len(t, page2.Decisions, 2) // i = 3 and 5
		assert.Equal(t, int64(4), page2.Decisions[0].AuditSeq)
		assert.Equal(t, int64(6), page2.Decisions[1].AuditSeq)
		page2, err = s.AccessDecisions(ctx, storage.AccessQuery{Offline: &online})
		require.NoError(t, err)
		assert.Len(t, page2.Decisions, 4) // i = 0, 1, 2 and 4
		page2, err = s.AccessDecisions(ctx, storage.AccessQuery{Holder: "h-alice", Offline: &online})
		require.NoError(t, err)
		require.Len(t, page2.Decisions, 1) // i = 4
		assert.Equal(t, int64(5), page2.Decisions[0].AuditSeq)
	}
	check()
	before := derivedCounts(t, s)
	assert.Equal(t, [5]int{2, 4, 2, 4, 6}, before)

	// Everything again, through a second consumer.
	in2 := runIngest(t, s, n, storage.IngestConfig{BatchSize: 5, Durable: "again"})
	eventually(t, "stream ingested again", func() error {
		if st := in2.Stats(); st.Duplicates != 2*events-2 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	assert.Zero(t, in2.Stats().Ingested)
	assert.Zero(t, in2.Stats().Derived)
	assert.Equal(t, before, derivedCounts(t, s))
	check()
}

// TestIngestDerivedSkipped checks that an event whose derived row cannot
// be made is stored all the same, counted and not dead-lettered.
func TestIngestDerivedSkipped(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	now := timeNow()
	var ids message.IDGenerator
	bad := []*nats.Msg{}
	for _, c := range []struct {
		mt      topic.MessageType
		name    string
		corr    message.ID
		payload any
	}{
		{topic.Ack, message.NameAck, ids.New(), message.Ack{Status: "exploded"}},                                 // unknown status
		{topic.Ack, message.NameAck, message.ID{}, message.Ack{Status: message.AckCompleted}},                    // no command id
		{topic.Ack, message.NameAck, ids.New(), message.Ack{CommandID: ids.New(), Status: message.AckCompleted}}, // ids disagree
		{topic.Ack, message.NameAck, ids.New(), nil},                                                             // no payload
		{topic.Event, message.NameAccessGranted, message.ID{}, message.AccessDecision{Granted: false, Door: "front"}},
		{topic.Event, message.NameAccessDenied, message.ID{}, map[string]any{"granted": "no"}},
		{topic.Event, message.NameAccessGranted, message.ID{}, message.AccessDecision{Granted: true, Door: "front", AuditSeq: math.MaxInt64 + 1}},
		{topic.Command, message.NameCommand, message.ID{}, message.Command{}}, // no action
	} {
		th := readerR1
		if c.mt == topic.Event {
			th = accessR1
		}
		m, _ := lintelMsg(t, nil, th, c.mt, c.name, now, c.corr, message.ID{}, c.payload)
		bad = append(bad, m)
		n.publishMsg(t, m, false)
	}
	// A birth without a payload still makes a liveness row, with the
	// envelope's boot.
	boot := ids.New()
	m, _ := lintelMsg(t, nil, readerR1, topic.State, message.NameThingBirth, now, message.ID{}, boot, nil)
	n.publishMsg(t, m, false)

	in := runIngest(t, s, n, storage.IngestConfig{})
	waitAcked(t, n)
	waitEvents(t, s.Pool(), len(bad)+1)
	st := in.Stats()
	assert.Equal(t, uint64(len(bad)), st.DerivedSkipped)
	assert.Equal(t, uint64(1), st.Derived)
	assert.Zero(t, st.DeadLettered)
	assert.Equal(t, [5]int{0, 0, 1, 1, 0}, derivedCounts(t, s))
	live, err := s.Liveness(testContext(t), "acme", "")
	require.NoError(t, err)
	require.Len(t, live, 1)
	assert.Equal(t, boot.String(), live[0].BootID)
	assert.True(t, live[0].Online)
}

// TestInsertEventsDerivedRefused checks the fallback when the database
// refuses a derived row although the event is fine: the event is stored,
// the row skipped, and the rest of the batch unaffected.
func TestInsertEventsDerivedRefused(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	// A constraint the derived row breaks but the event does not.
	_, err := s.Pool().Exec(ctx, "ALTER TABLE lintel.access_decisions ADD CONSTRAINT no_side_door CHECK (door <> 'side')")
	require.NoError(t, err)
	now := timeNow()
	var evs []storage.Event
	for i, door := range []string{"front", "side", "back", "front"} {
		e := event(accessR1, now.Add(time.Duration(i)*time.Second))
		e.MessageType, e.Name = topic.Event, message.NameAccessGranted
		e.Payload = []byte(`{"granted": true, "door": "` + door + `", "holder": "h1"}`)
		evs = append(evs, e)
	}
	res, err := s.InsertEvents(ctx, evs)
	require.NoError(t, err)
	assert.Equal(t, 4, res.Inserted)
	assert.Equal(t, 3, res.Derived)
	assert.Empty(t, res.Rejected)
	require.Len(t, res.Skipped, 1)
	assert.Equal(t, 1, res.Skipped[0].Index)
	assert.ErrorContains(t, res.Skipped[0].Err, "no_side_door")
	page, err := s.AccessDecisions(ctx, storage.AccessQuery{CredentialHash: "h1"})
	require.NoError(t, err)
	assert.Len(t, page.Decisions, 3)

	// Again: all duplicates, nothing new, the refused row still refused.
	res, err = s.InsertEvents(ctx, evs)
	require.NoError(t, err)
	assert.Equal(t, 4, res.Duplicates)
	assert.Zero(t, res.Derived)
	assert.Len(t, res.Skipped, 1)
}

// fakeMsg is a JetStream message with only a subject, headers and data.
type fakeMsg struct {
	jetstream.Msg
	m *nats.Msg
}

func (f fakeMsg) Subject() string      { return f.m.Subject }
func (f fakeMsg) Headers() nats.Header { return f.m.Header }
func (f fakeMsg) Data() []byte         { return f.m.Data }

func TestDecodeEnvelope(t *testing.T) {
	t.Parallel()
	now := timeNow()
	var ids message.IDGenerator
	cmd := func() *nats.Msg {
		m, _ := lintelMsg(t, nil, lockL1, topic.Command, message.NameCommand, now, message.ID{}, message.ID{}, message.Command{Action: "unlock"})
		return m
	}
	ack, ackID := lintelMsg(t, message.CloudEventsCodec{}, lockL1, topic.Ack, message.NameAck, now, ids.New(), message.ID{},
		message.Ack{Status: message.AckCompleted})
	tests := []struct {
		name    string
		msg     func() *nats.Msg
		wantErr error
	}{
		{"msgpack", cmd, nil},
		{"cloudevents", func() *nats.Msg { return ack }, nil},
		{"central command subject", func() *nats.Msg { m := cmd(); m.Subject = "_lintel.acme.hq.cmd.lock.l1"; return m }, nil},
		{"command subject of another thing", func() *nats.Msg { m := cmd(); m.Subject = "_lintel.acme.hq.cmd.lock.l2"; return m }, message.ErrSubjectMismatch},
		{"bad internal subject", func() *nats.Msg { m := cmd(); m.Subject = "_lintel.acme.hq.fwd.evt"; return m }, message.ErrSubjectMismatch},
		{"subject mismatch", func() *nats.Msg { m := cmd(); m.Subject = "acme.hq.lock.l2.cmd"; return m }, message.ErrSubjectMismatch},
		{"unknown major version", func() *nats.Msg {
			m := cmd()
			m.Header.Set(message.HeaderSchemaVersion, "2.0")
			return m
		}, message.ErrUnsupportedVersion},
		{"unknown content type", func() *nats.Msg {
			m := cmd()
			m.Header.Set(message.HeaderContentType, "text/xml")
			return m
		}, message.ErrUnsupportedContentType},
		{"cloudevents content type, msgpack data", func() *nats.Msg {
			m := cmd()
			m.Header.Set(message.HeaderContentType, message.ContentTypeCloudEventsJSON)
			return m
		}, message.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.msg()
			ev, err := storage.DecodeEnvelope(fakeMsg{m: m})
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, m.Data, ev.Envelope)
			assert.Equal(t, lockL1, ev.Thing)
			assert.True(t, now.Equal(ev.DeviceTime))
			assert.NotNil(t, ev.Payload)
		})
	}
	ev, err := storage.DecodeEnvelope(fakeMsg{m: ack})
	require.NoError(t, err)
	assert.Equal(t, ackID, ev.ID)
	assert.JSONEq(t, `{"command_id": "00000000-0000-0000-0000-000000000000", "status": "completed"}`, string(ev.Payload))
}

// TestIngestDeadLettersUnsupportedVersion checks that a message of an
// unknown schema major version is dead-lettered with the reason.
func TestIngestDeadLettersUnsupportedVersion(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	n := newNATS(t)
	m, _ := lintelMsg(t, nil, readerR1, topic.Event, "x", timeNow(), message.ID{}, message.ID{}, nil)
	m.Header.Set(message.HeaderSchemaVersion, "2.0")
	n.publishMsg(t, m, false)
	in := runIngest(t, s, n, storage.IngestConfig{})
	waitAcked(t, n)
	dls := n.deadLetters(t)
	require.Len(t, dls, 1)
	assert.Contains(t, dls[0].Headers().Get(storage.HeaderDeadLetterReason), "unsupported version")
	assert.Equal(t, "2.0", dls[0].Headers().Get(message.HeaderSchemaVersion))
	assert.Equal(t, uint64(1), in.Stats().DeadLettered)
	assert.Zero(t, count(t, s.Pool(), "SELECT count(*) FROM lintel.events"))
}
