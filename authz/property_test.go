package authz_test

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
)

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

// invGen builds random well-formed inventories from a seeded source.
type invGen struct {
	r    *rand.Rand
	used map[string]bool // every token handed out, so none repeats
}

// token returns a fresh valid token of 1 to 64 bytes that does not begin
// with '_' (reserved for orgs, edges, thing types and service names).
func (g *invGen) token() string {
	for {
		n := 1 + g.r.IntN(12)
		if g.r.IntN(20) == 0 {
			n = topic.MaxTokenLen
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = tokenAlphabet[g.r.IntN(len(tokenAlphabet))]
		}
		if b[0] == '_' {
			b[0] = 'x'
		}
		if s := string(b); !g.used[s] {
			g.used[s] = true
			return s
		}
	}
}

// reserved returns a fresh valid token that begins with '_'.
func (g *invGen) reserved() string {
	t := g.token()
	return "_" + t[:min(len(t), topic.MaxTokenLen-1)]
}

func (g *invGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// subset returns a random subset of codes, without repeats.
func (g *invGen) subset(codes []string) []string {
	var out []string
	for _, c := range codes {
		if g.r.IntN(4) == 0 {
			out = append(out, c)
		}
	}
	return out
}

func (g *invGen) inventory() *authz.Inventory {
	inv := &authz.Inventory{}
	types := []string{"reader", "lock", "door_sensor", "sensor", g.token()}
	// Mostly no zone: loading one reads the zone database, which would
	// dominate the test's time.
	zones := []string{"", "", "", "", "", "", "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"}
	kinds := []authz.ServiceKind{authz.ServiceCentral, authz.ServiceGateway, authz.ServiceOperator}
	for range 1 + g.r.IntN(3) {
		org := authz.Org{Code: g.token(), Name: "Org " + g.token()}
		inv.Orgs = append(inv.Orgs, org)
		var orgEdges []string
		for range 1 + g.r.IntN(3) {
			e := authz.Edge{Org: org.Code, Code: g.token(), TimeZone: g.pick(zones)}
			inv.Edges = append(inv.Edges, e)
			orgEdges = append(orgEdges, e.Code)
			var codes []string
			for range g.r.IntN(8) {
				th := authz.Thing{Thing: topic.Thing{Org: org.Code, Edge: e.Code, Type: g.pick(types), Code: g.token()}}
				inv.Things = append(inv.Things, th)
				codes = append(codes, th.Code)
			}
			for range g.r.IntN(3) {
				inv.Doors = append(inv.Doors, authz.Door{
					Org: org.Code, Edge: e.Code, Code: g.token(),
					Readers: g.subset(codes), Locks: g.subset(codes), Sensors: g.subset(codes),
				})
			}
		}
		for range g.r.IntN(4) {
			s := authz.Service{Name: g.token(), Kind: kinds[g.r.IntN(len(kinds))], Org: org.Code}
			if s.Kind == authz.ServiceGateway && g.r.IntN(2) == 0 {
				s.Edge = g.pick(orgEdges)
			}
			inv.Services = append(inv.Services, s)
		}
	}
	return inv
}

// corruption breaks a valid inventory in one way; it returns the sentinel
// that Validate must report, or nil when the inventory offers nothing to
// break that way.
type corruption struct {
	name  string
	apply func(g *invGen, inv *authz.Inventory) error
}

// badToken returns s spoiled so that it is no longer a valid token.
func (g *invGen) badToken(s string) string {
	switch g.r.IntN(7) {
	case 0:
		return ""
	case 1:
		return strings.Repeat("y", topic.MaxTokenLen+1)
	default:
		bad := []string{" ", ".", "*", ">", "\t", "é", "/", "\x00"}[g.r.IntN(8)]
		i := g.r.IntN(len(s) + 1)
		return s[:i] + bad + s[i:]
	}
}

var corruptions = []corruption{
	{"bad org code", func(g *invGen, inv *authz.Inventory) error {
		o := &inv.Orgs[g.r.IntN(len(inv.Orgs))]
		o.Code = g.badToken(o.Code)
		return authz.ErrInvalid
	}},
	{"reserved org code", func(g *invGen, inv *authz.Inventory) error {
		inv.Orgs[g.r.IntN(len(inv.Orgs))].Code = g.reserved()
		return topic.ErrReserved
	}},
	{"bad edge code", func(g *invGen, inv *authz.Inventory) error {
		e := &inv.Edges[g.r.IntN(len(inv.Edges))]
		e.Code = g.badToken(e.Code)
		return authz.ErrInvalid
	}},
	{"bad thing type", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Things) == 0 {
			return nil
		}
		th := &inv.Things[g.r.IntN(len(inv.Things))]
		th.Type = g.badToken(th.Type)
		return authz.ErrInvalid
	}},
	{"reserved thing type", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Things) == 0 {
			return nil
		}
		inv.Things[g.r.IntN(len(inv.Things))].Type = g.pick([]string{topic.ThingTypeEdge, topic.ThingTypeSystem, g.reserved()})
		return topic.ErrReserved
	}},
	{"bad thing code", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Things) == 0 {
			return nil
		}
		th := &inv.Things[g.r.IntN(len(inv.Things))]
		th.Code = g.badToken(th.Code)
		return authz.ErrInvalid
	}},
	{"bad door code", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Doors) == 0 {
			return nil
		}
		d := &inv.Doors[g.r.IntN(len(inv.Doors))]
		d.Code = g.badToken(d.Code)
		return authz.ErrInvalid
	}},
	{"bad service name", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Services) == 0 {
			return nil
		}
		s := &inv.Services[g.r.IntN(len(inv.Services))]
		s.Name = g.badToken(s.Name)
		return authz.ErrInvalid
	}},
	{"unknown time zone", func(g *invGen, inv *authz.Inventory) error {
		inv.Edges[g.r.IntN(len(inv.Edges))].TimeZone = g.pick([]string{"Local", "Mars/Base", "Europe/Berlin ", "../etc/passwd", "utc+2"})
		return authz.ErrInvalid
	}},
	{"unknown service kind", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Services) == 0 {
			return nil
		}
		inv.Services[g.r.IntN(len(inv.Services))].Kind = authz.ServiceKind(g.pick([]string{"", "admin", "Central", "gateway "}))
		return authz.ErrInvalid
	}},
	{"duplicate org", func(g *invGen, inv *authz.Inventory) error {
		inv.Orgs = append(inv.Orgs, inv.Orgs[g.r.IntN(len(inv.Orgs))])
		return authz.ErrDuplicate
	}},
	{"duplicate edge code in any org", func(g *invGen, inv *authz.Inventory) error {
		e := inv.Edges[g.r.IntN(len(inv.Edges))]
		e.Org = inv.Orgs[g.r.IntN(len(inv.Orgs))].Code
		inv.Edges = append(inv.Edges, e)
		return authz.ErrDuplicate
	}},
	{"duplicate thing code at an edge", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Things) == 0 {
			return nil
		}
		th := inv.Things[g.r.IntN(len(inv.Things))]
		th.Type = g.pick([]string{th.Type, "other"})
		inv.Things = append(inv.Things, th)
		return authz.ErrDuplicate
	}},
	{"device under two edges", func(g *invGen, inv *authz.Inventory) error {
		for _, i := range g.r.Perm(len(inv.Things)) {
			th := inv.Things[i]
			for _, e := range inv.Edges {
				if e.Org == th.Org && e.Code != th.Edge {
					th.Edge = e.Code
					inv.Things = slices.Insert(inv.Things, g.r.IntN(len(inv.Things)+1), th)
					return authz.ErrDuplicate
				}
			}
		}
		return nil
	}},
	{"duplicate door", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Doors) == 0 {
			return nil
		}
		inv.Doors = append(inv.Doors, inv.Doors[g.r.IntN(len(inv.Doors))])
		return authz.ErrDuplicate
	}},
	{"duplicate service", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Services) == 0 {
			return nil
		}
		s := inv.Services[g.r.IntN(len(inv.Services))]
		s.Kind, s.Edge = authz.ServiceOperator, ""
		inv.Services = slices.Insert(inv.Services, 0, s)
		return authz.ErrDuplicate
	}},
	{"door member listed twice", func(g *invGen, inv *authz.Inventory) error {
		for _, i := range g.r.Perm(len(inv.Doors)) {
			if d := &inv.Doors[i]; len(d.Locks) > 0 {
				d.Locks = append(d.Locks, d.Locks[g.r.IntN(len(d.Locks))])
				return authz.ErrDuplicate
			}
		}
		return nil
	}},
	{"edge on unknown org", func(g *invGen, inv *authz.Inventory) error {
		inv.Edges[g.r.IntN(len(inv.Edges))].Org = g.token()
		return authz.ErrUnknownReference
	}},
	{"thing on unknown edge", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Things) == 0 {
			return nil
		}
		inv.Things[g.r.IntN(len(inv.Things))].Edge = g.token()
		return authz.ErrUnknownReference
	}},
	{"thing on another org's edge", func(g *invGen, inv *authz.Inventory) error {
		for _, i := range g.r.Perm(len(inv.Things)) {
			th := &inv.Things[i]
			for _, e := range inv.Edges {
				if e.Org != th.Org {
					th.Edge = e.Code
					return authz.ErrUnknownReference
				}
			}
		}
		return nil
	}},
	{"door names an unknown thing", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Doors) == 0 {
			return nil
		}
		d := &inv.Doors[g.r.IntN(len(inv.Doors))]
		switch g.r.IntN(3) {
		case 0:
			d.Readers = append(d.Readers, g.token())
		case 1:
			d.Locks = append(d.Locks, g.token())
		default:
			d.Sensors = append(d.Sensors, g.token())
		}
		return authz.ErrUnknownReference
	}},
	{"door names a thing of another edge", func(g *invGen, inv *authz.Inventory) error {
		for _, i := range g.r.Perm(len(inv.Doors)) {
			d := &inv.Doors[i]
			for _, th := range inv.Things {
				if th.Org == d.Org && th.Edge != d.Edge {
					d.Sensors = append(d.Sensors, th.Code)
					return authz.ErrUnknownReference
				}
			}
		}
		return nil
	}},
	{"service on unknown org", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Services) == 0 {
			return nil
		}
		inv.Services[g.r.IntN(len(inv.Services))].Org = g.token()
		return authz.ErrUnknownReference
	}},
	{"gateway on unknown edge", func(g *invGen, inv *authz.Inventory) error {
		if len(inv.Services) == 0 {
			return nil
		}
		s := &inv.Services[g.r.IntN(len(inv.Services))]
		s.Kind, s.Edge = authz.ServiceGateway, g.token()
		return authz.ErrUnknownReference
	}},
}

// TestValidateProperties checks, over many random inventories, that Validate
// accepts every well-formed one and rejects every corruption of one with the
// right sentinel and an entry-naming error.
func TestValidateProperties(t *testing.T) {
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	applied := make(map[string]int)
	for seed := range uint64(iterations) {
		g := &invGen{r: rand.New(rand.NewPCG(seed, 0x11e7e1)), used: make(map[string]bool)}
		inv := g.inventory()
		if err := inv.Validate(); err != nil {
			t.Fatalf("seed %d: well-formed inventory rejected: %v", seed, err)
		}
		for _, c := range corruptions {
			bad := cloneInventory(inv)
			want := c.apply(g, bad)
			if want == nil {
				continue
			}
			applied[c.name]++
			err := bad.Validate()
			if err == nil {
				t.Fatalf("seed %d: %s: accepted", seed, c.name)
			}
			if !errors.Is(err, want) {
				t.Fatalf("seed %d: %s: error does not wrap %v:\n%v", seed, c.name, want, err)
			}
			for _, e := range joinedErrs(err) {
				var ie *authz.InventoryError
				if !errors.As(e, &ie) || ie.Entry == "" || !strings.HasPrefix(e.Error(), "authz: "+ie.Entry+": ") {
					t.Fatalf("seed %d: %s: error names no entry: %v", seed, c.name, e)
				}
			}
		}
	}
	for _, c := range corruptions {
		if applied[c.name] < iterations/10 {
			t.Errorf("corruption %q applied only %d times", c.name, applied[c.name])
		}
	}
}

// TestGenerateProperties checks over random inventories that generation
// gives every identity exactly one credential and a password that verifies,
// and that dropping random entries revokes exactly their identities.
func TestGenerateProperties(t *testing.T) {
	ctx := context.Background()
	clock := newCredClock()
	gen := credGenerator(clock)
	for seed := range uint64(25) {
		g := &invGen{r: rand.New(rand.NewPCG(seed, 0xc0ffee)), used: make(map[string]bool)}
		inv := g.inventory()
		res, err := gen.Generate(ctx, inv, nil)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		users, edgeKeys := inv.Identities()
		if got := slices.Sorted(maps.Keys(res.State.Passwords)); !slices.Equal(got, users) {
			t.Fatalf("seed %d: users %v, want %v", seed, got, users)
		}
		if got := slices.Sorted(maps.Keys(res.State.EdgeKeys)); !slices.Equal(got, edgeKeys) {
			t.Fatalf("seed %d: edge keys %v, want %v", seed, got, edgeKeys)
		}
		u := g.pick(users)
		if !res.State.Passwords[u].Verify(res.Secrets.Passwords[u].Reveal(), clock.Now()) {
			t.Fatalf("seed %d: %s does not verify", seed, u)
		}

		// Drop the services and the things no door uses.
		smaller := cloneInventory(inv)
		smaller.Services = nil
		used := make(map[string]bool)
		for _, d := range smaller.Doors {
			for _, c := range slices.Concat(d.Readers, d.Locks, d.Sensors) {
				used[d.Edge+"/"+c] = true
			}
		}
		smaller.Things = slices.DeleteFunc(smaller.Things, func(th authz.Thing) bool { return !used[th.Edge+"/"+th.Code] })
		after, err := gen.Generate(ctx, smaller, res.State)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		keptUsers, _ := smaller.Identities()
		var removed []string
		for _, u := range users {
			if !slices.Contains(keptUsers, u) {
				removed = append(removed, u)
			}
		}
		if !slices.Equal(after.Removed, removed) || len(after.Created) != 0 {
			t.Fatalf("seed %d: removed %v, want %v; created %v", seed, after.Removed, removed, after.Created)
		}
	}
}

func cloneInventory(inv *authz.Inventory) *authz.Inventory {
	c := &authz.Inventory{
		Orgs:     slices.Clone(inv.Orgs),
		Edges:    slices.Clone(inv.Edges),
		Things:   slices.Clone(inv.Things),
		Doors:    slices.Clone(inv.Doors),
		Services: slices.Clone(inv.Services),
	}
	for i, d := range c.Doors {
		c.Doors[i].Readers = slices.Clone(d.Readers)
		c.Doors[i].Locks = slices.Clone(d.Locks)
		c.Doors[i].Sensors = slices.Clone(d.Sensors)
	}
	return c
}
