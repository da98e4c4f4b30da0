package authz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"golang.org/x/crypto/bcrypt"
)

// benchInventory returns one org with the given number of edges and devices
// spread over them, with a door per four devices.
func benchInventory(devices, edges int) *authz.Inventory {
	inv := &authz.Inventory{Orgs: []authz.Org{{Code: "acme"}}}
	for e := range edges {
		inv.Edges = append(inv.Edges, authz.Edge{Org: "acme", Code: fmt.Sprintf("site%03d", e), TimeZone: "Europe/Berlin"})
	}
	types := []string{"reader", "lock", "door_sensor", "sensor"}
	for d := range devices {
		edge := inv.Edges[d*edges/devices].Code // in blocks, so a door's devices share its edge
		inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: edge, Type: types[d%4], Code: fmt.Sprintf("d%05d", d)}})
		if d%4 == 3 {
			inv.Doors = append(inv.Doors, authz.Door{Org: "acme", Edge: edge, Code: fmt.Sprintf("door%05d", d),
				Readers: []string{fmt.Sprintf("d%05d", d-3)}, Locks: []string{fmt.Sprintf("d%05d", d-2)}})
		}
	}
	inv.Services = []authz.Service{{Name: "ingest", Kind: authz.ServiceCentral, Org: "acme"}}
	return inv
}

// benchDevice returns the user name of one device of inv.
func benchDevice(inv *authz.Inventory) string {
	th := inv.Things[len(inv.Things)/2]
	return authz.DeviceUser(th.Thing)
}

func benchClock() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) }

// BenchmarkGenerateFirst measures a first generation, which hashes one
// bcrypt password per device, service and edge. The 10,000-device case runs
// at bcrypt.MinCost; at the default cost it takes many minutes on two cores,
// so it runs only with LINTEL_BENCH_FULL=1. A 200-device sample at the
// default cost (or at LINTEL_BENCH_COST) gives the per-hash figure and an
// extrapolation to 10,000 devices over 100 edges (10,101 hashes).
func BenchmarkGenerateFirst(b *testing.B) {
	sampleCost := authz.DefaultCost
	if s := os.Getenv("LINTEL_BENCH_COST"); s != "" {
		c, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("LINTEL_BENCH_COST: %v", err)
		}
		sampleCost = c
	}
	cases := []struct{ devices, edges, cost int }{
		{10000, 100, bcrypt.MinCost},
		{200, 2, sampleCost},
	}
	if os.Getenv("LINTEL_BENCH_FULL") == "1" {
		cases = append(cases, struct{ devices, edges, cost int }{10000, 100, authz.DefaultCost})
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("devices=%d/edges=%d/cost=%d", c.devices, c.edges, c.cost), func(b *testing.B) {
			inv := benchInventory(c.devices, c.edges)
			g := &authz.Generator{Cost: c.cost, Now: benchClock}
			hashes := c.devices + c.edges + len(inv.Services)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Generate(context.Background(), inv, nil); err != nil {
					b.Fatal(err)
				}
			}
			perHash := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(hashes)
			b.ReportMetric(perHash, "ns/identity")
			b.ReportMetric(perHash*10101/1e9, "s/10k-devices-100-edges")
		})
	}
}

// BenchmarkGenerateAfterRotation measures re-rendering the state of 10,000
// devices over 100 edges after one rotation: nothing is new, so no bcrypt
// runs, and it should take milliseconds.
func BenchmarkGenerateAfterRotation(b *testing.B) {
	inv := benchInventory(10000, 100)
	g := &authz.Generator{Cost: bcrypt.MinCost, Now: benchClock}
	ctx := context.Background()
	first, err := g.Generate(ctx, inv, nil)
	if err != nil {
		b.Fatal(err)
	}
	rot, err := g.Rotate(ctx, first.State, benchDevice(inv))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := g.Generate(ctx, inv, rot.State)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Created) != 0 {
			b.Fatalf("created %d", len(res.Created))
		}
	}
}

// BenchmarkRotateOne measures rotating one device's password among 10,000
// at the default cost: one bcrypt hash plus copying the state.
func BenchmarkRotateOne(b *testing.B) {
	inv := benchInventory(10000, 100)
	ctx := context.Background()
	first, err := (&authz.Generator{Cost: bcrypt.MinCost, Now: benchClock}).Generate(ctx, inv, nil)
	if err != nil {
		b.Fatal(err)
	}
	g := &authz.Generator{Now: benchClock}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Rotate(ctx, first.State, benchDevice(inv)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseInventory measures strict decoding and validation of an
// inventory of 10,000 devices over 100 edges.
func BenchmarkParseInventory(b *testing.B) {
	data, err := json.Marshal(benchInventory(10000, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := authz.ParseInventory(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate measures validation alone, for the same inventory.
func BenchmarkValidate(b *testing.B) {
	inv := benchInventory(10000, 100)
	b.ReportAllocs()
	for b.Loop() {
		if err := inv.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures one password check, which a custom auth hook
// pays per connection: the bcrypt cost dominates.
func BenchmarkVerify(b *testing.B) {
	for _, cost := range []int{bcrypt.MinCost, authz.DefaultCost} {
		b.Run(fmt.Sprintf("cost=%d", cost), func(b *testing.B) {
			h, err := bcrypt.GenerateFromPassword([]byte("correct-horse"), cost)
			if err != nil {
				b.Fatal(err)
			}
			c := authz.PasswordCredential{Hash: string(h)}
			now := benchClock()
			for b.Loop() {
				if !c.Verify("correct-horse", now) {
					b.Fatal("no match")
				}
			}
		})
	}
}
