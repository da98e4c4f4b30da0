package authz

import (
	"context"
	"errors"
	"fmt"
	"github.com/lintel-io/lintel/topic"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// countingGenerator returns a MinCost generator that counts bcrypt hashes.
func countingGenerator(n *atomic.Int64) *Generator {
	return &Generator{
		Cost: bcrypt.MinCost,
		Now:  func() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) },
		hash: func(pw []byte, cost int) ([]byte, error) {
			n.Add(1)
			return bcrypt.GenerateFromPassword(pw, cost)
		},
	}
}

func sensorInventory(n int) *Inventory {
	inv := &Inventory{Orgs: []Org{{Code: "acme"}}, Edges: []Edge{{Org: "acme", Code: "hq"}}}
	for i := range n {
		inv.Things = append(inv.Things, Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: fmt.Sprintf("s%d", i)}})
	}
	return inv
}

func TestGenerateHashesOnlyNewIdentities(t *testing.T) {
	var hashes atomic.Int64
	g := countingGenerator(&hashes)
	ctx := context.Background()
	inv := sensorInventory(20)

	first, err := g.Generate(ctx, inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := hashes.Load(); got != 21 { // 20 devices + the edge service
		t.Errorf("first generation: %d hashes, want 21", got)
	}

	hashes.Store(0)
	if _, err := g.Generate(ctx, inv, first.State); err != nil {
		t.Fatal(err)
	}
	if got := hashes.Load(); got != 0 {
		t.Errorf("nothing new: %d hashes, want 0", got)
	}

	hashes.Store(0)
	inv.Things = append(inv.Things, Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}})
	inv.Services = append(inv.Services, Service{Name: "ingest", Kind: ServiceCentral, Org: "acme"})
	second, err := g.Generate(ctx, inv, first.State)
	if err != nil {
		t.Fatal(err)
	}
	if got := hashes.Load(); got != 2 {
		t.Errorf("two new identities: %d hashes, want 2", got)
	}

	hashes.Store(0)
	rot, err := g.Rotate(ctx, second.State, "acme.hq.sensor.s3", "acme.hq")
	if err != nil {
		t.Fatal(err)
	}
	if got := hashes.Load(); got != 1 {
		t.Errorf("one rotated password: %d hashes, want 1", got)
	}

	hashes.Store(0)
	if _, err := g.Generate(ctx, inv, rot.State); err != nil {
		t.Fatal(err)
	}
	if got := hashes.Load(); got != 0 {
		t.Errorf("re-render after rotation: %d hashes, want 0", got)
	}
}

func TestGenerateStopsWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var hashes atomic.Int64
	g := countingGenerator(&hashes)
	g.Workers = 2
	inner := g.hash
	g.hash = func(pw []byte, cost int) ([]byte, error) {
		if hashes.Load() >= 5 {
			cancel()
		}
		return inner(pw, cost)
	}
	res, err := g.Generate(ctx, sensorInventory(200), nil)
	if res != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate = %v, %v; want nil, context.Canceled", res, err)
	}
	if got := hashes.Load(); got > 10 {
		t.Errorf("%d hashes after cancellation at 5, want at most a few more", got)
	}
}

func TestGenerateHashError(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int64
	g := &Generator{Cost: bcrypt.MinCost, hash: func([]byte, int) ([]byte, error) {
		if calls.Add(1) == 3 {
			return nil, boom
		}
		return []byte("$2a$04$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"), nil
	}}
	res, err := g.Generate(context.Background(), sensorInventory(10), nil)
	if res != nil || !errors.Is(err, boom) {
		t.Fatalf("Generate = %v, %v; want nil, boom", res, err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestGenerateRandomFailure(t *testing.T) {
	g := &Generator{Cost: bcrypt.MinCost, Rand: failingReader{}}
	res, err := g.Generate(context.Background(), sensorInventory(1), nil)
	if res != nil || err == nil {
		t.Fatalf("Generate = %v, %v; want an error", res, err)
	}
}
