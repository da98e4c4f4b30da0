package authz_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"golang.org/x/crypto/bcrypt"
)

func ExampleGenerator_Generate() {
	inv, err := authz.ParseInventory([]byte(`{
	  "orgs":   [{"code": "acme"}],
	  "edges":  [{"org": "acme", "code": "hq", "timezone": "Europe/Berlin"}],
	  "things": [{"org": "acme", "edge": "hq", "type": "reader", "code": "front-in"},
	             {"org": "acme", "edge": "hq", "type": "lock", "code": "front-lock"}],
	  "doors":  [{"org": "acme", "edge": "hq", "code": "front", "readers": ["front-in"], "locks": ["front-lock"]}],
	  "services": [{"name": "ingest", "kind": "central", "org": "acme"}]
	}`))
	if err != nil {
		log.Fatal(err)
	}
	g := &authz.Generator{
		Cost: bcrypt.MinCost, // for the example; leave zero for the default
		Now:  func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) },
	}
	res, err := g.Generate(context.Background(), inv, nil) // nil: no state yet
	if err != nil {
		log.Fatal(err)
	}
	// Hand res.Secrets out once (Reveal), save res.State with SaveState.
	for _, user := range res.Secrets.Users() {
		fmt.Println("password for", user, "created", res.State.Passwords[user].Created.Format(time.DateOnly))
	}
	for _, edge := range res.Secrets.Edges() {
		fmt.Println("nkey for edge", edge)
	}
	fmt.Println(res.Secrets.Passwords["acme.hq.reader.front-in"]) // secrets print redacted

	// Generating again from the new state creates nothing.
	again, err := g.Generate(context.Background(), inv, res.State)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created on the second run:", len(again.Created))
	// Output:
	// password for _edge.acme.hq created 2026-03-01
	// password for _svc.acme.ingest created 2026-03-01
	// password for acme.hq.lock.front-lock created 2026-03-01
	// password for acme.hq.reader.front-in created 2026-03-01
	// nkey for edge acme.hq
	// [REDACTED]
	// created on the second run: 0
}

func ExampleInventory_Validate() {
	inv := &authz.Inventory{
		Orgs:   []authz.Org{{Code: "acme"}},
		Edges:  []authz.Edge{{Org: "acme", Code: "hq"}},
		Things: []authz.Thing{{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "door 1"}}},
		Doors:  []authz.Door{{Org: "acme", Edge: "hq", Code: "front", Locks: []string{"l1"}}},
	}
	fmt.Println(inv.Validate())
	// Output:
	// authz: things[0] (acme.hq.reader.door 1): thing_code "door 1": space not allowed
	// authz: doors[0] (acme.hq.front): lock "l1": no thing with that code at edge "hq"
}

func ExamplePasswordCredential_Verify() {
	clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	g := &authz.Generator{Cost: bcrypt.MinCost, Overlap: time.Hour, Now: func() time.Time { return clock }}
	inv := &authz.Inventory{
		Orgs:   []authz.Org{{Code: "acme"}},
		Edges:  []authz.Edge{{Org: "acme", Code: "hq"}},
		Things: []authz.Thing{{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}}},
	}
	first, err := g.Generate(context.Background(), inv, nil)
	if err != nil {
		log.Fatal(err)
	}
	const user = "acme.hq.lock.l1"
	rot, err := g.Rotate(context.Background(), first.State, user)
	if err != nil {
		log.Fatal(err)
	}
	c := rot.State.Passwords[user]
	oldPW, newPW := first.Secrets.Passwords[user].Reveal(), rot.Secrets.Passwords[user].Reveal()
	fmt.Println("new password:", c.Verify(newPW, clock))
	fmt.Println("old password within the hour:", c.Verify(oldPW, clock.Add(59*time.Minute)))
	fmt.Println("old password after it:", c.Verify(oldPW, clock.Add(time.Hour)))
	// Output:
	// new password: true
	// old password within the hour: true
	// old password after it: false
}
