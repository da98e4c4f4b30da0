package storage_test

import (
	"context"
	"testing"

	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/stretchr/testify/require"
)

// TestQueriesNotMigrated runs every query of the store on a database that
// Migrate has not run on: each says so with ErrNotMigrated, not with
// PostgreSQL's "relation does not exist".
func TestQueriesNotMigrated(t *testing.T) {
	t.Parallel()
	s := storage.New(pgtest.New(t), storage.Config{})
	ctx := context.Background()
	calls := map[string]func() error{
		"Events": func() error { _, err := s.Events(ctx, storage.EventQuery{}); return err },
		"Latest": func() error { _, err := s.Latest(ctx, storage.LatestQuery{}); return err },
		"Commands": func() error {
			_, err := s.Commands(ctx, storage.CommandQuery{})
			return err
		},
		"CommandAcks": func() error { _, err := s.CommandAcks(ctx, newID()); return err },
		"AccessDecisions": func() error {
			_, err := s.AccessDecisions(ctx, storage.AccessQuery{})
			return err
		},
		"Liveness": func() error { _, err := s.Liveness(ctx, "acme", ""); return err },
		"RecordCommand": func() error {
			return s.RecordCommand(ctx, storage.Command{ID: newID(), Thing: thingA, Action: "unlock", RequestedAt: timeNow()})
		},
		"RecordAck": func() error {
			return s.RecordAck(ctx, storage.CommandAck{ID: newID(), CommandID: newID(), Time: timeNow(), Status: storage.CommandCompleted})
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			require.ErrorIs(t, err, storage.ErrNotMigrated)
			require.ErrorContains(t, err, "does not exist")
		})
	}
}
