package authz_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/topic"
)

var (
	cgwMarked   = topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}
	cgwMarked2  = topic.Thing{Org: "acme", Edge: "lab", Type: "sensor", Code: "s2"}
	cgwUnmarked = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	cgwOtherOrg = topic.Thing{Org: "globex", Edge: "plant", Type: "sensor", Code: "s1"}
)

// centralGatewayInventory has two orgs; acme marks s1 (at hq) and s2 (at
// lab) for the central gateway, and globex marks its own s1.
func centralGatewayInventory() *authz.Inventory {
	return &authz.Inventory{
		Orgs:  []authz.Org{{Code: "acme"}, {Code: "globex"}},
		Edges: []authz.Edge{{Org: "acme", Code: "hq"}, {Org: "acme", Code: "lab"}, {Org: "globex", Code: "plant"}},
		Things: []authz.Thing{
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}, CentralGateway: true},
			{Thing: topic.Thing{Org: "acme", Edge: "lab", Type: "sensor", Code: "s2"}, CentralGateway: true},
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}},
			{Thing: topic.Thing{Org: "globex", Edge: "plant", Type: "sensor", Code: "s1"}, CentralGateway: true},
		},
		Services: []authz.Service{
			{Name: "central", Kind: authz.ServiceCentral, Org: "acme"},
			{Name: "ops", Kind: authz.ServiceOperator, Org: "acme"},
			{Name: "gw", Kind: authz.ServiceGateway, Org: "acme"},
			{Name: "gw-hq", Kind: authz.ServiceGateway, Org: "acme", Edge: "hq"},
		},
	}
}

// TestCentralGatewayPermissions: only the org-scoped gateway may publish
// the gateway stream's subjects, and only those of its org's marked
// devices, for the stored message types; no other identity may publish any.
func TestCentralGatewayPermissions(t *testing.T) {
	inv := centralGatewayInventory()
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	gw := authz.GatewayPermissions(inv, inv.Services[2])
	var want []string
	for _, th := range []topic.Thing{cgwMarked, cgwMarked2} {
		for _, mt := range []topic.MessageType{topic.Event, topic.Telemetry, topic.State, topic.Ack} {
			want = append(want, topology.GatewaySubject(th, mt))
		}
	}
	var got []string
	for _, s := range gw.Publish.Allow {
		if strings.HasPrefix(s, authz.InternalPrefix+".") {
			got = append(got, s)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("central gateway publishes internal subjects %v, want %v", got, want)
	}

	forbidden := []string{
		topology.GatewaySubject(cgwUnmarked, topic.Event),
		topology.GatewaySubject(cgwMarked, topic.Request),
		topology.GatewaySubject(cgwMarked, topic.Command),
		topology.GatewaySubject(cgwOtherOrg, topic.Event),
	}
	for _, s := range forbidden {
		if gw.Allowed(s, authz.Publish) {
			t.Errorf("the central gateway may publish %s", s)
		}
	}
	leaf, err := authz.LeafPermissions("acme", "hq")
	if err != nil {
		t.Fatal(err)
	}
	others := map[string]authz.Permissions{
		"edge-scoped gateway": authz.GatewayPermissions(inv, inv.Services[3]),
		"central service":     authz.CentralServicePermissions("acme", "central"),
		"operator":            authz.OperatorPermissions("acme", "ops"),
		"edge service":        authz.EdgeServicePermissions("acme", "hq"),
		"leaf":                leaf,
		"device":              authz.DevicePermissions(cgwMarked),
	}
	for name, p := range others {
		for _, s := range append(want, forbidden...) {
			if p.Allowed(s, authz.Publish) {
				t.Errorf("%s may publish %s", name, s)
			}
		}
	}
}

// TestCentralGatewayAuthenticator: the central gateway's password check
// knows the marked devices of its org, at any edge, with their generated
// permissions, and nobody else; an update that unmarks a device refuses it.
func TestCentralGatewayAuthenticator(t *testing.T) {
	inv := centralGatewayInventory()
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(testCtx(t), inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	pw := func(u string) string { return res.Secrets.Passwords[u].Reveal() }
	a, err := authz.NewCentralGatewayAuthenticator(inv, res.State, "acme", authz.EdgeAuthConfig{DisableThrottle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, th := range []topic.Thing{cgwMarked, cgwMarked2} {
		u := authz.DeviceUser(th)
		perms, err := a.VerifyPassword(u, pw(u), nil)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if !reflect.DeepEqual(perms, authz.DevicePermissions(th)) {
			t.Errorf("%s: permissions %+v", u, perms)
		}
		if _, err := a.VerifyPassword(u, "wrong", nil); !errors.Is(err, authz.ErrLoginRefused) {
			t.Errorf("%s with a wrong password: %v", u, err)
		}
	}
	for _, u := range []string{authz.DeviceUser(cgwUnmarked), authz.DeviceUser(cgwOtherOrg), authz.ServiceUser("acme", "gw"),
		authz.ServiceUser("acme", "central"), authz.EdgeServiceUser("acme", "hq")} {
		if _, err := a.VerifyPassword(u, pw(u), nil); !errors.Is(err, authz.ErrLoginRefused) {
			t.Errorf("%s with its own password: %v, want refused", u, err)
		}
	}
	inv2 := centralGatewayInventory()
	inv2.Things[0].CentralGateway = false
	if err := a.Update(inv2, res.State); err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyPassword(authz.DeviceUser(cgwMarked), pw(authz.DeviceUser(cgwMarked)), nil); !errors.Is(err, authz.ErrLoginRefused) {
		t.Errorf("unmarked by an update: %v, want refused", err)
	}
	if _, err := a.VerifyPassword(authz.DeviceUser(cgwMarked2), pw(authz.DeviceUser(cgwMarked2)), nil); err != nil {
		t.Errorf("still marked after the update: %v", err)
	}
	if _, err := authz.NewCentralGatewayAuthenticator(inv, res.State, "$SYS", authz.EdgeAuthConfig{}); err == nil {
		t.Error("an authenticator for the system account")
	}
}
