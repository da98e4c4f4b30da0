package authz_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
)

// invFixture returns a small valid inventory: two orgs, three edges, things,
// a door and services. Tests mutate the copy they get.
func invFixture() *authz.Inventory {
	return &authz.Inventory{
		Orgs: []authz.Org{{Code: "acme", Name: "Acme"}, {Code: "beta"}},
		Edges: []authz.Edge{
			{Org: "acme", Code: "hq", TimeZone: "Europe/Berlin"},
			{Org: "acme", Code: "warehouse"},
			{Org: "beta", Code: "plant", TimeZone: "UTC"},
		},
		Things: []authz.Thing{
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}},
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}},
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "door_sensor", Code: "s1"}},
			{Thing: topic.Thing{Org: "acme", Edge: "warehouse", Type: "reader", Code: "r2"}},
			{Thing: topic.Thing{Org: "beta", Edge: "plant", Type: "reader", Code: "r1"}}, // same type+code, other org: fine
		},
		Doors: []authz.Door{
			{Org: "acme", Edge: "hq", Code: "front", Readers: []string{"r1"}, Locks: []string{"l1"}, Sensors: []string{"s1"}},
		},
		Services: []authz.Service{
			{Name: "ingest", Kind: authz.ServiceCentral, Org: "acme"},
			{Name: "gw", Kind: authz.ServiceGateway, Org: "acme", Edge: "hq"},
			{Name: "ingest", Kind: authz.ServiceCentral, Org: "beta"},
		},
	}
}

// joinedErrs splits an errors.Join result into its parts.
func joinedErrs(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func TestInventoryFixtureIsValid(t *testing.T) {
	if err := invFixture().Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(inv *authz.Inventory)
		want   string // the one error line expected
		is     []error
	}{
		{
			name:   "nothing listed",
			mutate: func(inv *authz.Inventory) { *inv = authz.Inventory{} },
			want:   `authz: orgs: no orgs listed: an inventory needs at least one`,
			is:     []error{authz.ErrInvalid},
		},
		{
			name:   "empty org code",
			mutate: func(inv *authz.Inventory) { inv.Orgs = append(inv.Orgs, authz.Org{}) },
			want:   `authz: orgs[2] (): org "": empty`,
			is:     []error{authz.ErrInvalid, topic.ErrEmpty},
		},
		{
			name:   "reserved org code",
			mutate: func(inv *authz.Inventory) { inv.Orgs = append(inv.Orgs, authz.Org{Code: "_sys"}) },
			want:   `authz: orgs[2] (_sys): org "_sys": names beginning with '_' are reserved`,
			is:     []error{authz.ErrInvalid, topic.ErrReserved},
		},
		{
			name:   "duplicate org code",
			mutate: func(inv *authz.Inventory) { inv.Orgs = append(inv.Orgs, authz.Org{Code: "acme"}) },
			want:   `authz: orgs[2] (acme): org code "acme" already used by orgs[0]`,
			is:     []error{authz.ErrDuplicate},
		},
		{
			name:   "edge code with a dot",
			mutate: func(inv *authz.Inventory) { inv.Edges = append(inv.Edges, authz.Edge{Org: "acme", Code: "b.2"}) },
			want:   `authz: edges[3] (acme.b.2): edge "b.2": '.' not allowed (it separates tokens)`,
			is:     []error{authz.ErrInvalid, topic.ErrInvalidChar},
		},
		{
			name:   "reserved edge code",
			mutate: func(inv *authz.Inventory) { inv.Edges = append(inv.Edges, authz.Edge{Org: "acme", Code: "_x"}) },
			want:   `authz: edges[3] (acme._x): edge "_x": names beginning with '_' are reserved`,
			is:     []error{authz.ErrInvalid, topic.ErrReserved},
		},
		{
			name:   "edge code reused in another org",
			mutate: func(inv *authz.Inventory) { inv.Edges = append(inv.Edges, authz.Edge{Org: "beta", Code: "hq"}) },
			want:   `authz: edges[3] (beta.hq): edge code "hq" already used by edges[0] (acme.hq): edge codes are unique across the inventory, as each names a JetStream domain`,
			is:     []error{authz.ErrDuplicate},
		},
		{
			name:   "edge on unknown org",
			mutate: func(inv *authz.Inventory) { inv.Edges = append(inv.Edges, authz.Edge{Org: "gamma", Code: "g1"}) },
			want:   `authz: edges[3] (gamma.g1): org "gamma" is not in orgs`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name: "rejected org is not reported again by its entries",
			mutate: func(inv *authz.Inventory) {
				inv.Orgs[1].Code = "be ta"
				inv.Edges[2].Org, inv.Things[4].Org, inv.Services[2].Org = "be ta", "be ta", "be ta"
			},
			want: `authz: orgs[1] (be ta): org "be ta": space not allowed`,
			is:   []error{authz.ErrInvalid, topic.ErrInvalidChar},
		},
		{
			name: "rejected edge is not reported again by its things",
			mutate: func(inv *authz.Inventory) {
				inv.Edges[1].Code = "ware/house"
				inv.Things[3].Edge = "ware/house"
			},
			want: `authz: edges[1] (acme.ware/house): edge "ware/house": character '/' not allowed, only [A-Za-z0-9_-]`,
			is:   []error{authz.ErrInvalid, topic.ErrInvalidChar},
		},
		{
			name:   "edge of an unknown org is not reported again by its things",
			mutate: func(inv *authz.Inventory) { inv.Edges[1].Org = "acne" },
			want:   `authz: edges[1] (acne.warehouse): org "acne" is not in orgs`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "rejected thing is not reported again by its door",
			mutate: func(inv *authz.Inventory) { inv.Things[1].Type = "_lock" },
			want:   `authz: things[1] (acme.hq._lock.l1): thing_type "_lock": thing types beginning with '_' are reserved for the platform`,
			is:     []error{authz.ErrInvalid, topic.ErrReserved},
		},
		{
			name:   "unknown time zone",
			mutate: func(inv *authz.Inventory) { inv.Edges[1].TimeZone = "Mars/Olympus_Mons" },
			want:   `authz: edges[1] (acme.warehouse): timezone "Mars/Olympus_Mons": unknown time zone; name an IANA zone such as Europe/Berlin`,
			is:     []error{authz.ErrInvalid},
		},
		{
			name:   "host time zone",
			mutate: func(inv *authz.Inventory) { inv.Edges[1].TimeZone = "Local" },
			want:   `authz: edges[1] (acme.warehouse): timezone "Local": the host's zone is not allowed; name an IANA zone such as Europe/Berlin`,
			is:     []error{authz.ErrInvalid},
		},
		{
			name:   "thing code with a space",
			mutate: func(inv *authz.Inventory) { inv.Things[3].Code = "door 1" },
			want:   `authz: things[3] (acme.warehouse.reader.door 1): thing_code "door 1": space not allowed`,
			is:     []error{authz.ErrInvalid, topic.ErrInvalidChar},
		},
		{
			name:   "reserved thing type",
			mutate: func(inv *authz.Inventory) { inv.Things[3].Type = topic.ThingTypeEdge },
			want:   `authz: things[3] (acme.warehouse._edge.r2): thing_type "_edge": thing types beginning with '_' are reserved for the platform`,
			is:     []error{authz.ErrInvalid, topic.ErrReserved},
		},
		{
			name:   "thing type too long",
			mutate: func(inv *authz.Inventory) { inv.Things[3].Type = strings.Repeat("t", 65) },
			want:   `authz: things[3] (acme.warehouse.` + strings.Repeat("t", 65) + `.r2): thing_type "` + strings.Repeat("t", 65) + `": 65 bytes, at most 64 allowed`,
			is:     []error{authz.ErrInvalid, topic.ErrTooLong},
		},
		{
			name:   "thing control character is quoted in the entry",
			mutate: func(inv *authz.Inventory) { inv.Things[3].Code = "r\n2" },
			want:   `authz: things[3] ("acme.warehouse.reader.r\n2"): thing_code "r\n2": whitespace not allowed`,
			is:     []error{authz.ErrInvalid, topic.ErrInvalidChar},
		},
		{
			name:   "thing on unknown org",
			mutate: func(inv *authz.Inventory) { inv.Things[3].Org = "gamma" },
			want:   `authz: things[3] (gamma.warehouse.reader.r2): org "gamma" is not in orgs`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "thing on unknown edge",
			mutate: func(inv *authz.Inventory) { inv.Things[3].Edge = "attic" },
			want:   `authz: things[3] (acme.attic.reader.r2): edge "attic" is not in edges`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "thing on another org's edge",
			mutate: func(inv *authz.Inventory) { inv.Things[3].Edge = "plant" },
			want:   `authz: things[3] (acme.plant.reader.r2): edge "plant" belongs to org "beta", not "acme"`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name: "thing code twice at one edge",
			mutate: func(inv *authz.Inventory) {
				inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "r1"}})
			},
			want: `authz: things[5] (acme.hq.sensor.r1): thing code "r1" already used at edge "hq" by things[0] (acme.hq.reader.r1): thing codes are unique within their edge`,
			is:   []error{authz.ErrDuplicate},
		},
		{
			name: "device listed under two edges",
			mutate: func(inv *authz.Inventory) {
				inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "warehouse", Type: "reader", Code: "r1"}})
			},
			want: `authz: things[5] (acme.warehouse.reader.r1): reader "r1" is also listed at edge "hq" as things[0] (acme.hq.reader.r1): a device belongs to one edge, so org, type and code together are unique`,
			is:   []error{authz.ErrDuplicate},
		},
		{
			name:   "door code with a star",
			mutate: func(inv *authz.Inventory) { inv.Doors[0].Code = "front*" },
			want:   `authz: doors[0] (acme.hq.front*): door_code "front*": wildcard '*' not allowed`,
			is:     []error{authz.ErrInvalid, topic.ErrInvalidChar},
		},
		{
			name: "duplicate door code",
			mutate: func(inv *authz.Inventory) {
				inv.Doors = append(inv.Doors, authz.Door{Org: "acme", Edge: "hq", Code: "front"})
			},
			want: `authz: doors[1] (acme.hq.front): door code "front" already used at edge "hq" by doors[0]: door codes are unique within their edge`,
			is:   []error{authz.ErrDuplicate},
		},
		{
			name: "same door code at another edge is fine, unknown edge is not",
			mutate: func(inv *authz.Inventory) {
				inv.Doors = append(inv.Doors, authz.Door{Org: "acme", Edge: "warehouse", Code: "front"},
					authz.Door{Org: "acme", Edge: "roof", Code: "front"})
			},
			want: `authz: doors[2] (acme.roof.front): edge "roof" is not in edges`,
			is:   []error{authz.ErrUnknownReference},
		},
		{
			name:   "door on unknown org",
			mutate: func(inv *authz.Inventory) { inv.Doors[0].Org = "gamma" },
			want:   `authz: doors[0] (gamma.hq.front): org "gamma" is not in orgs`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "door names an unknown reader",
			mutate: func(inv *authz.Inventory) { inv.Doors[0].Readers = append(inv.Doors[0].Readers, "r9") },
			want:   `authz: doors[0] (acme.hq.front): reader "r9": no thing with that code at edge "hq"`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "door names a reader at another edge",
			mutate: func(inv *authz.Inventory) { inv.Doors[0].Readers = []string{"r2"} },
			want:   `authz: doors[0] (acme.hq.front): reader "r2" is a thing of edge "warehouse", not of the door's edge "hq"`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "door names an unknown lock",
			mutate: func(inv *authz.Inventory) { inv.Doors[0].Locks = []string{"l9"} },
			want:   `authz: doors[0] (acme.hq.front): lock "l9": no thing with that code at edge "hq"`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "door names an unknown sensor",
			mutate: func(inv *authz.Inventory) { inv.Doors[0].Sensors = []string{"s9"} },
			want:   `authz: doors[0] (acme.hq.front): sensor "s9": no thing with that code at edge "hq"`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "door lists a lock twice",
			mutate: func(inv *authz.Inventory) { inv.Doors[0].Locks = []string{"l1", "l1"} },
			want:   `authz: doors[0] (acme.hq.front): lock "l1" listed twice`,
			is:     []error{authz.ErrDuplicate},
		},
		{
			name:   "duplicate service name",
			mutate: func(inv *authz.Inventory) { inv.Services[1].Name = "ingest"; inv.Services[1].Edge = "" },
			want:   `authz: services[1] (_svc.acme.ingest): service name "ingest" already used in org "acme" by services[0]: service names are unique within their org`,
			is:     []error{authz.ErrDuplicate},
		},
		{
			name:   "reserved service name",
			mutate: func(inv *authz.Inventory) { inv.Services[0].Name = "_root" },
			want:   `authz: services[0] (_svc.acme._root): service_name "_root": names beginning with '_' are reserved`,
			is:     []error{authz.ErrInvalid, topic.ErrReserved},
		},
		{
			name:   "unknown service kind",
			mutate: func(inv *authz.Inventory) { inv.Services[0].Kind = "admin" },
			want:   `authz: services[0] (_svc.acme.ingest): kind "admin": unknown, want one of central, gateway, operator`,
			is:     []error{authz.ErrInvalid},
		},
		{
			name:   "missing service kind",
			mutate: func(inv *authz.Inventory) { inv.Services[0].Kind = "" },
			want:   `authz: services[0] (_svc.acme.ingest): kind missing, want one of central, gateway, operator`,
			is:     []error{authz.ErrInvalid},
		},
		{
			name:   "service on unknown org",
			mutate: func(inv *authz.Inventory) { inv.Services[0].Org = "gamma" },
			want:   `authz: services[0] (_svc.gamma.ingest): org "gamma" is not in orgs`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "gateway on unknown edge",
			mutate: func(inv *authz.Inventory) { inv.Services[1].Edge = "roof" },
			want:   `authz: services[1] (_svc.acme.gw): edge "roof" is not in edges`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "gateway on another org's edge",
			mutate: func(inv *authz.Inventory) { inv.Services[1].Edge = "plant" },
			want:   `authz: services[1] (_svc.acme.gw): edge "plant" belongs to org "beta", not "acme"`,
			is:     []error{authz.ErrUnknownReference},
		},
		{
			name:   "edge on a service that is not a gateway",
			mutate: func(inv *authz.Inventory) { inv.Services[0].Edge = "hq" },
			want:   `authz: services[0] (_svc.acme.ingest): edge "hq": only a "gateway" service may be scoped to an edge`,
			is:     []error{authz.ErrInvalid},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invFixture()
			tt.mutate(inv)
			err := inv.Validate()
			errs := joinedErrs(err)
			if len(errs) != 1 {
				t.Fatalf("Validate() gave %d errors, want 1:\n%v", len(errs), err)
			}
			if got := errs[0].Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			var ie *authz.InventoryError
			if !errors.As(err, &ie) {
				t.Errorf("error %T is not an *InventoryError", errs[0])
			} else if !strings.HasPrefix(tt.want, "authz: "+ie.Entry+": ") {
				t.Errorf("Entry = %q, not the entry named in the message", ie.Entry)
			}
			for _, s := range tt.is {
				if !errors.Is(err, s) {
					t.Errorf("errors.Is(err, %v) = false", s)
				}
			}
			var te *topic.Error
			if slices.Contains(tt.is, authz.ErrInvalid) && slices.ContainsFunc(tt.is, isTopicSentinel) && !errors.As(err, &te) {
				t.Errorf("errors.As(err, *topic.Error) = false")
			}
		})
	}
}

func isTopicSentinel(err error) bool {
	return slices.Contains([]error{topic.ErrEmpty, topic.ErrTooLong, topic.ErrInvalidChar, topic.ErrReserved}, err)
}

func TestValidateCollectsAllProblems(t *testing.T) {
	inv := invFixture()
	inv.Orgs = append(inv.Orgs, authz.Org{Code: "acme"})               // duplicate
	inv.Things[0].Code = "a b"                                         // bad token: r1 is then unknown to the door
	inv.Services[0].Kind = "nope"                                      // unknown kind
	inv.Edges = append(inv.Edges, authz.Edge{Org: "beta", Code: "hq"}) // duplicate edge
	err := inv.Validate()
	want := []string{
		`authz: orgs[2] (acme): org code "acme" already used by orgs[0]`,
		`authz: edges[3] (beta.hq): edge code "hq" already used by edges[0] (acme.hq): edge codes are unique across the inventory, as each names a JetStream domain`,
		`authz: things[0] (acme.hq.reader.a b): thing_code "a b": space not allowed`,
		`authz: doors[0] (acme.hq.front): reader "r1": no thing with that code at edge "hq"`, // r1 is gone: "a b" took its place
		`authz: services[0] (_svc.acme.ingest): kind "nope": unknown, want one of central, gateway, operator`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("Validate():\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	for _, s := range []error{authz.ErrDuplicate, authz.ErrInvalid, authz.ErrUnknownReference, topic.ErrInvalidChar} {
		if !errors.Is(err, s) {
			t.Errorf("errors.Is(err, %v) = false", s)
		}
	}
}

func TestValidateNil(t *testing.T) {
	var inv *authz.Inventory
	if err := inv.Validate(); !errors.Is(err, authz.ErrInvalid) {
		t.Errorf("nil.Validate() = %v, want ErrInvalid", err)
	}
}

func TestLoadInventoryExample(t *testing.T) {
	inv, err := authz.LoadInventory(filepath.Join("testdata", "inventory.json"))
	if err != nil {
		t.Fatalf("LoadInventory: %v", err)
	}
	if len(inv.Orgs) != 1 || len(inv.Edges) != 2 || len(inv.Things) != 13 || len(inv.Doors) != 3 || len(inv.Services) != 5 {
		t.Errorf("counts: %d orgs, %d edges, %d things, %d doors, %d services",
			len(inv.Orgs), len(inv.Edges), len(inv.Things), len(inv.Doors), len(inv.Services))
	}
	types := map[string]bool{}
	for _, th := range inv.Things {
		types[th.Type] = true
	}
	for _, want := range []string{"reader", "lock", "door_sensor", "sensor"} {
		if !types[want] {
			t.Errorf("example has no %s", want)
		}
	}
	users, edgeKeys := inv.Identities()
	if len(users) != 13+5+2 {
		t.Errorf("%d users, want 20: %v", len(users), users)
	}
	if !slices.Equal(edgeKeys, []string{"acme.hq", "acme.warehouse"}) {
		t.Errorf("edge keys = %v", edgeKeys)
	}
	for _, u := range []string{"acme.hq.reader.front-in", "_svc.acme.ingest", "_edge.acme.warehouse"} {
		if !slices.Contains(users, u) {
			t.Errorf("users lack %s", u)
		}
	}
}

func TestLoadInventoryMissingFile(t *testing.T) {
	_, err := authz.LoadInventory(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
}

func TestParseInventoryStrict(t *testing.T) {
	const valid = `{
  "orgs": [{"code": "acme"}],
  "edges": [{"org": "acme", "code": "hq"}],
  "things": [{"org": "acme", "edge": "hq", "type": "reader", "code": "r1"}]
}`
	if _, err := authz.ParseInventory([]byte(valid)); err != nil {
		t.Fatalf("valid: %v", err)
	}
	tests := []struct {
		name string
		in   string
		want string
		is   error
	}{
		{
			name: "typo in a key",
			in: `{"orgs": [{"code": "acme"}], "edges": [{"org": "acme", "code": "hq"}],
"things": [{"org": "acme", "edge": "hq", "type": "reader", "cdoe": "r1"}]}`,
			want: `authz: things[0]: unknown key "cdoe" (did you mean "code"?) (line 2)`,
			is:   authz.ErrUnknownKey,
		},
		{
			name: "key in the wrong case",
			in:   `{"orgs": [{"Code": "acme"}]}`,
			want: `authz: orgs[0]: unknown key "Code" (did you mean "code"?) (line 1)`,
			is:   authz.ErrUnknownKey,
		},
		{
			name: "unknown top-level key",
			in:   "{\n\"orgs\": [],\n\"sites\": []}",
			want: `authz: inventory: unknown key "sites" (line 3)`,
			is:   authz.ErrUnknownKey,
		},
		{
			name: "unknown key, no suggestion",
			in:   `{"orgs": [{"code": "acme", "thing_code": "x"}]}`,
			want: `authz: orgs[0]: unknown key "thing_code" (line 1)`,
			is:   authz.ErrUnknownKey,
		},
		{
			name: "duplicate key",
			in:   `{"orgs": [{"code": "acme", "code": "beta"}]}`,
			want: `authz: orgs[0]: key "code" given twice (line 1)`,
			is:   authz.ErrDuplicateKey,
		},
		{
			name: "number for a string",
			in:   `{"orgs": [{"code": 7}]}`,
			want: `authz: orgs[0].code: want a string, got a number (line 1)`,
			is:   authz.ErrMalformed,
		},
		{
			name: "object for a list",
			in:   `{"orgs": {"code": "acme"}}`,
			want: `authz: orgs: want an array, got an object (line 1)`,
			is:   authz.ErrMalformed,
		},
		{
			name: "string for a list of codes",
			in:   `{"doors": [{"readers": "r1"}]}`,
			want: `authz: doors[0].readers: want an array, got a string (line 1)`,
			is:   authz.ErrMalformed,
		},
		{
			name: "syntax error",
			in:   "{\n  \"orgs\": [\n    {\"code\": \"acme\",}\n  ]\n}",
			want: `authz: orgs[0]: line 3, column 21: invalid character '}' looking for beginning of object key string`,
			is:   authz.ErrMalformed,
		},
		{
			name: "truncated",
			in:   `{"orgs": [{"code": "acme"`,
			want: `authz: orgs[0]: unexpected end of input`,
			is:   authz.ErrMalformed,
		},
		{
			name: "empty input",
			in:   ``,
			want: `authz: inventory: unexpected end of input`,
			is:   authz.ErrMalformed,
		},
		{
			name: "not an object",
			in:   `[{"code": "acme"}]`,
			want: `authz: inventory: want a JSON object, got an array (line 1)`,
			is:   authz.ErrMalformed,
		},
		{
			name: "null",
			in:   `null`,
			want: `authz: inventory: want a JSON object, got null (line 1)`,
			is:   authz.ErrMalformed,
		},
		{
			name: "trailing data",
			in:   valid + "\n{}",
			want: `authz: inventory: unexpected data after the top-level object: an object (line 6)`,
			is:   authz.ErrMalformed,
		},
		{
			name: "valid JSON, invalid inventory",
			in:   `{"orgs": [{"code": "acme"}], "edges": [{"org": "acme", "code": "h q"}]}`,
			want: `authz: edges[0] (acme.h q): edge "h q": space not allowed`,
			is:   authz.ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := authz.ParseInventory([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseInventory() = %+v, want error", inv)
			}
			if inv != nil {
				t.Errorf("ParseInventory() returned an inventory with its error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
		})
	}
}

func TestParseInventoryNullFields(t *testing.T) {
	in := `{"orgs": [{"code": "acme", "name": null}], "edges": [{"org": "acme", "code": "hq"}], "things": null, "doors": null}`
	inv, err := authz.ParseInventory([]byte(in))
	if err != nil {
		t.Fatalf("ParseInventory: %v", err)
	}
	if len(inv.Things) != 0 {
		t.Errorf("things = %v", inv.Things)
	}
}
