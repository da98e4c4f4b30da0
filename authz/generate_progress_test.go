package authz_test

import (
	"context"
	"slices"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"golang.org/x/crypto/bcrypt"
)

// progressCall is one call of Generator.Progress.
type progressCall struct{ done, total int }

func TestGenerateProgress(t *testing.T) {
	inv := loadExample(t)
	users, _ := inv.Identities()

	// Progress is not required to be safe for concurrent use, so this one
	// appends without a lock; the race detector checks the promise.
	var calls []progressCall
	g := &authz.Generator{Cost: bcrypt.MinCost, Workers: 4, Progress: func(done, total int) {
		calls = append(calls, progressCall{done, total})
	}}
	res, err := g.Generate(context.Background(), inv, nil)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(calls) != len(users) {
		t.Fatalf("Progress called %d times, want once per new password (%d)", len(calls), len(users))
	}
	for i, c := range calls {
		if c != (progressCall{i + 1, len(users)}) {
			t.Fatalf("call %d: Progress(%d, %d), want (%d, %d)", i, c.done, c.total, i+1, len(users))
		}
	}

	// A second run with one thing added hashes that one password only.
	calls = nil
	inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "new-env"}})
	res, err = g.Generate(context.Background(), inv, res.State)
	if err != nil {
		t.Fatalf("Generate again: %v", err)
	}
	if !slices.Equal(calls, []progressCall{{1, 1}}) {
		t.Fatalf("Progress calls after adding one thing = %v, want [{1 1}]", calls)
	}

	// Nothing new: no call at all.
	calls = nil
	if _, err := g.Generate(context.Background(), inv, res.State); err != nil {
		t.Fatalf("Generate unchanged: %v", err)
	}
	if len(calls) != 0 {
		t.Fatalf("Progress called %d times with nothing to hash, want none", len(calls))
	}

	// Rotation reports its passwords the same way.
	if _, err := g.Rotate(context.Background(), res.State, users[0]); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if !slices.Equal(calls, []progressCall{{1, 1}}) {
		t.Fatalf("Progress calls for one rotation = %v, want [{1 1}]", calls)
	}
}
