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

func TestCommandAuditTrail(t *testing.T) {
	t.Parallel()
	now := timeNow()
	s := newStore(t, storage.Config{Now: func() time.Time { return now }})
	ctx := testContext(t)
	lock := topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}

	unlock := storage.Command{ID: newID(), Thing: lock, Action: "unlock", Params: []byte(`{"seconds": 5}`),
		RequestedBy: "alice", RequestedAt: now.Add(-time.Minute), Deadline: now.Add(time.Minute)}
	// Acks arrive out of order, and the final one before the command is recorded.
	completed := storage.CommandAck{ID: newID(), CommandID: unlock.ID, Time: now.Add(-50 * time.Second), Status: storage.CommandCompleted}
	accepted := storage.CommandAck{ID: newID(), CommandID: unlock.ID, Time: now.Add(-55 * time.Second), Status: storage.CommandAccepted}
	require.NoError(t, s.RecordAck(ctx, completed))
	require.NoError(t, s.RecordCommand(ctx, unlock))
	require.NoError(t, s.RecordAck(ctx, accepted))
	require.NoError(t, s.RecordAck(ctx, accepted)) // redelivered
	require.NoError(t, s.RecordCommand(ctx, unlock))

	expired := storage.Command{ID: newID(), Thing: lock, Action: "lock", RequestedBy: "bob",
		RequestedAt: now.Add(-30 * time.Second), Deadline: now.Add(-time.Second)}
	require.NoError(t, s.RecordCommand(ctx, expired))
	failed := storage.Command{ID: newID(), Thing: lock, Action: "unlock", RequestedBy: "alice", RequestedAt: now.Add(-10 * time.Second)}
	require.NoError(t, s.RecordCommand(ctx, failed))
	require.NoError(t, s.RecordAck(ctx, storage.CommandAck{ID: newID(), CommandID: failed.ID, Time: now, Status: storage.CommandFailed, Error: "jammed"}))

	page, err := s.Commands(ctx, storage.CommandQuery{Org: "acme", ThingCode: "l1"})
	require.NoError(t, err)
	require.Len(t, page.Commands, 3)
	got := page.Commands
	assert.Equal(t, unlock.ID, got[0].ID)
	assert.Equal(t, storage.CommandCompleted, got[0].Status)
	assert.True(t, completed.Time.Equal(got[0].AckedAt))
	assert.JSONEq(t, `{"seconds": 5}`, string(got[0].Params))
	assert.Equal(t, storage.CommandExpired, got[1].Status)
	assert.Equal(t, storage.CommandFailed, got[2].Status)
	assert.Equal(t, "jammed", got[2].Error)

	byAlice, err := s.Commands(ctx, storage.CommandQuery{RequestedBy: "alice", Limit: 1, Descending: true})
	require.NoError(t, err)
	require.Len(t, byAlice.Commands, 1)
	assert.Equal(t, failed.ID, byAlice.Commands[0].ID)
	next, err := s.Commands(ctx, storage.CommandQuery{RequestedBy: "alice", Limit: 1, Descending: true, Cursor: byAlice.Next})
	require.NoError(t, err)
	require.Len(t, next.Commands, 1)
	assert.Equal(t, unlock.ID, next.Commands[0].ID)
	assert.Empty(t, next.Next)

	acks, err := s.CommandAcks(ctx, unlock.ID)
	require.NoError(t, err)
	require.Len(t, acks, 2)
	assert.Equal(t, storage.CommandAccepted, acks[0].Status)
	assert.Equal(t, storage.CommandCompleted, acks[1].Status)
}

func TestLiveness(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	now := timeNow()
	r1 := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	r2 := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r2"}
	rec := func(th topic.Thing, kind storage.LivenessKind, boot string, at time.Duration) {
		t.Helper()
		require.NoError(t, s.RecordLiveness(ctx, storage.LivenessEvent{ID: newID(), Thing: th, Kind: kind, BootID: boot, Time: now.Add(at)}))
	}
	rec(r1, storage.LivenessBirth, "b1", 0)
	rec(r1, storage.LivenessHeartbeat, "b1", time.Minute)
	rec(r1, storage.LivenessDeath, "b1", 2*time.Minute)
	rec(r1, storage.LivenessHeartbeat, "b1", 90*time.Second) // late heartbeat
	rec(r2, storage.LivenessHeartbeat, "x", 0)
	rec(r2, storage.LivenessDeath, "x", time.Minute)
	rec(r2, storage.LivenessBirth, "y", 2*time.Minute)

	got, err := s.Liveness(ctx, "acme", "")
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, r1, got[0].Thing)
	assert.False(t, got[0].Online, "r1 died last")
	assert.True(t, now.Add(2*time.Minute).Equal(got[0].DiedAt))
	assert.True(t, now.Equal(got[0].BornAt))
	assert.Equal(t, "b1", got[0].BootID)
	assert.True(t, got[1].Online, "r2 was born again")
	assert.Equal(t, "y", got[1].BootID)
	assert.Equal(t, 7, count(t, s.Pool(), "SELECT count(*) FROM lintel.liveness_events"))

	require.ErrorIs(t, s.RecordLiveness(ctx, storage.LivenessEvent{Kind: "zombie"}), storage.ErrInvalidQuery)
}

func TestAccessDecisions(t *testing.T) {
	t.Parallel()
	s := newStore(t, storage.Config{})
	ctx := testContext(t)
	now := timeNow()
	key := []byte("site key")
	alice, bob := storage.HashCredential(key, "card-1001"), storage.HashCredential(key, "card-2002")
	assert.NotEqual(t, alice, bob)
	assert.Len(t, alice, 64)
	for i := range 10 {
		d := storage.AccessDecision{ID: newID(), Time: now.Add(time.Duration(i) * time.Minute), Org: "acme", Edge: "hq",
			Door: []string{"front", "back"}[i%2], Reader: "r1", CredentialHash: []string{alice, bob}[i%3/2], Granted: i != 4,
			Holder: []string{"h-alice", "h-bob"}[i%3/2], Offline: i >= 6, Fallback: i == 9, AuditSeq: int64(i + 1)}
		require.NoError(t, s.RecordAccessDecision(ctx, d))
		require.NoError(t, s.RecordAccessDecision(ctx, d)) // redelivered
	}
	page, err := s.AccessDecisions(ctx, storage.AccessQuery{CredentialHash: bob})
	require.NoError(t, err)
	assert.Len(t, page.Decisions, 3) // i = 2, 5, 8
	denied := false
	page, err = s.AccessDecisions(ctx, storage.AccessQuery{Org: "acme", Edge: "hq", Door: "front", Granted: &denied})
	require.NoError(t, err)
	require.Len(t, page.Decisions, 1)
	assert.True(t, now.Add(4*time.Minute).Equal(page.Decisions[0].Time))
	page, err = s.AccessDecisions(ctx, storage.AccessQuery{Door: "back", From: now.Add(3 * time.Minute), To: now.Add(8 * time.Minute)})
	require.NoError(t, err)
	assert.Len(t, page.Decisions, 3) // back door (odd i) at minutes 3, 5 and 7

	offline := true
	page, err = s.AccessDecisions(ctx, storage.AccessQuery{Offline: &offline, Descending: true})
	require.NoError(t, err)
	require.Len(t, page.Decisions, 4) // i = 9, 8, 7, 6
	d := page.Decisions[0]
	assert.Equal(t, alice, d.CredentialHash)
	assert.Equal(t, "h-alice", d.Holder)
	assert.True(t, d.Offline)
	assert.True(t, d.Fallback)
	assert.Equal(t, int64(10), d.AuditSeq)
	assert.Equal(t, "h-bob", page.Decisions[1].Holder)
	assert.False(t, page.Decisions[1].Fallback)
	offline = false
	page, err = s.AccessDecisions(ctx, storage.AccessQuery{Holder: "h-alice", Offline: &offline})
	require.NoError(t, err)
	require.Len(t, page.Decisions, 4) // i = 0, 1, 3, 4
	for _, d := range page.Decisions {
		assert.Equal(t, alice, d.CredentialHash)
		assert.False(t, d.Offline)
	}
}

// TestHashCredential checks that central hashes a credential as the edge
// does, so that a credential typed into a query finds the decisions the
// edge reported.
func TestHashCredential(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		key        string
		credential string
	}{
		{"card", "site key", "card-1001"},
		{"pin", "site key", "4711"},
		{"empty credential", "site key", ""},
		{"empty key", "", "card-1001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := storage.HashCredential([]byte(tt.key), tt.credential)
			assert.Equal(t, message.Credential(tt.credential).Hash([]byte(tt.key)), got)
			assert.Len(t, got, 64)
		})
	}
	assert.NotEqual(t, storage.HashCredential([]byte("k1"), "card-1001"), storage.HashCredential([]byte("k2"), "card-1001"))
	// A known value: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
	assert.Equal(t, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
		storage.HashCredential([]byte("key"), "The quick brown fox jumps over the lazy dog"))
}
