package authz_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// TestAuditKeyRotationKeepsOldRecords: every edge gets an audit key whose
// seed is handed out once; a rotation keeps the old public key (never
// pruned), so that what the old key signed still verifies, and a
// regeneration keeps every audit key as it was.
func TestAuditKeyRotationKeepsOldRecords(t *testing.T) {
	ctx := context.Background()
	inv := &authz.Inventory{
		Orgs:  []authz.Org{{Code: "acme"}},
		Edges: []authz.Edge{{Org: "acme", Code: "hq"}, {Org: "acme", Code: "lab"}},
	}
	g := &authz.Generator{Cost: bcrypt.MinCost}
	res, err := g.Generate(ctx, inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := authz.EdgeKeyID("acme", "hq")
	seed, ok := res.Secrets.AuditSeeds[id]
	if !ok || len(res.State.AuditKeys) != 2 {
		t.Fatalf("audit keys %v, seeds %v: want one per edge", res.State.AuditKeys, res.Secrets.AuditSeeds)
	}
	old, err := nkeys.FromSeed([]byte(seed.Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	oldPub, _ := old.PublicKey()
	if got := res.State.AuditPublicKeys("acme", "hq"); !slices.Equal(got, []string{oldPub}) {
		t.Fatalf("public keys %v, want [%s]", got, oldPub)
	}
	if res.State.AuditKeys[id].PublicKey == res.State.EdgeKeys[id].PublicKey {
		t.Fatal("the audit key is the leaf key")
	}
	sig, err := old.Sign([]byte("record"))
	if err != nil {
		t.Fatal(err)
	}

	rot, err := g.RotateAuditKeys(ctx, res.State, id)
	if err != nil {
		t.Fatal(err)
	}
	newSeed, ok := rot.Secrets.AuditSeeds[id]
	if !ok || len(rot.Secrets.AuditSeeds) != 1 {
		t.Fatalf("rotation seeds %v", rot.Secrets.AuditSeeds)
	}
	nk, _ := nkeys.FromSeed([]byte(newSeed.Reveal()))
	newPub, _ := nk.PublicKey()
	keys := rot.State.AuditPublicKeys("acme", "hq")
	if !slices.Equal(keys, []string{newPub, oldPub}) {
		t.Fatalf("after rotation %v, want [%s %s]", keys, newPub, oldPub)
	}
	if !slices.Equal(res.State.AuditPublicKeys("acme", "hq"), []string{oldPub}) {
		t.Fatal("the rotation changed the state it was given")
	}
	// Pruning and regenerating keep the retired key; the old signature
	// still verifies with it.
	again, err := g.Generate(ctx, inv, rot.State.Prune(rot.State.AuditKeys[id].Rotated.AddDate(10, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Secrets.AuditSeeds) != 0 || !slices.Equal(again.State.AuditPublicKeys("acme", "hq"), keys) {
		t.Fatalf("regenerated: seeds %v, keys %v", again.Secrets.AuditSeeds, again.State.AuditPublicKeys("acme", "hq"))
	}
	kp, err := nkeys.FromPublicKey(again.State.AuditPublicKeys("acme", "hq")[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Verify([]byte("record"), sig); err != nil {
		t.Fatalf("a record signed before the rotation: %v", err)
	}
	data, err := authz.MarshalState(again.State)
	if err != nil {
		t.Fatal(err)
	}
	back, err := authz.ParseState(data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.AuditPublicKeys("acme", "hq"), keys) {
		t.Fatalf("state file round trip: %v", back.AuditPublicKeys("acme", "hq"))
	}

	if _, err := g.RotateAuditKeys(ctx, res.State, "acme.nowhere"); !errors.Is(err, authz.ErrUnknownIdentity) {
		t.Fatalf("rotating an unknown edge: %v", err)
	}
	bad := rot.State.Clone()
	k := bad.AuditKeys[id]
	k.Retired[0].PublicKey = "not a key"
	bad.AuditKeys[id] = k
	if err := bad.Validate(); !errors.Is(err, authz.ErrInvalidState) {
		t.Fatalf("a state with a bad retired key: %v", err)
	}
	if rot.State.AuditKeys[id].Retired[0].PublicKey != oldPub {
		t.Fatal("Clone shares the retired keys")
	}
}
