package authz_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/testing/natstest"
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
			want = append(want, authz.CentralGatewaySubject(th, mt))
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
		authz.CentralGatewaySubject(cgwUnmarked, topic.Event),
		authz.CentralGatewaySubject(cgwMarked, topic.Request),
		authz.CentralGatewaySubject(cgwMarked, topic.Command),
		authz.CentralGatewaySubject(cgwOtherOrg, topic.Event),
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

// TestCentralGatewayStream publishes on a gateway-stream subject into a
// real server's stream of that configuration: the stream stores the
// message under the device's subject, and drops a retry with the same
// Nats-Msg-Id. Another org's subject is captured by no stream.
func TestCentralGatewayStream(t *testing.T) {
	srv := natstest.Run(t, nil)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	cfg, err := authz.CentralGatewayStreamConfig("acme")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != authz.CentralGatewayStream("acme") || cfg.Storage != jetstream.FileStorage {
		t.Fatalf("config %+v", cfg)
	}
	s, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(authz.CentralGatewaySubject(cgwMarked2, topic.Telemetry))
	msg.Data = []byte("reading")
	for round := range 2 {
		ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("m1"))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Stream != cfg.Name || ack.Sequence != 1 || ack.Duplicate != (round == 1) {
			t.Fatalf("round %d: ack %+v", round, ack)
		}
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := cgwMarked2.Subject(topic.Telemetry).String(); m.Subject != want || string(m.Data) != "reading" {
		t.Fatalf("stored on %q (%q), want %q", m.Subject, m.Data, want)
	}
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: authz.CentralGatewaySubject(cgwOtherOrg, topic.Event), Data: []byte("x")})
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("another org's gateway subject: %v, want no stream", err)
	}
	if _, err := authz.CentralGatewayStreamConfig("$SYS"); err == nil {
		t.Error("a gateway stream for the system account")
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

// TestCentralGatewayOrigins: the ingest of the gateway stream believes a
// message only on the subject of a marked device of its org, of a type the
// gateway stores, and never one that claims to be sourced.
func TestCentralGatewayOrigins(t *testing.T) {
	inv := centralGatewayInventory()
	o, err := authz.NewCentralGatewayOrigins(inv, "acme")
	if err != nil {
		t.Fatal(err)
	}
	sourced := nats.Header{authz.HeaderStreamSource: {"events-acme-hq 12 acme.hq.sensor.s1.evt"}}
	cases := []struct {
		name, subject string
		h             nats.Header
		ok            bool
	}{
		{"marked device", cgwMarked.Subject(topic.Event).String(), nil, true},
		{"marked device at another edge, telemetry", cgwMarked2.Subject(topic.Telemetry).String(), nil, true},
		{"ack", cgwMarked.Subject(topic.Ack).String(), nil, true},
		{"unmarked device", cgwUnmarked.Subject(topic.Event).String(), nil, false},
		{"another org", cgwOtherOrg.Subject(topic.Event).String(), nil, false},
		{"request", cgwMarked.Subject(topic.Request).String(), nil, false},
		{"command", cgwMarked.Subject(topic.Command).String(), nil, false},
		{"sourced", cgwMarked.Subject(topic.Event).String(), sourced, false},
		{"internal subject", authz.CentralGatewaySubject(cgwMarked, topic.Event), nil, false},
		{"system thing", "acme.hq._sys.audit.evt", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.h
			if h == nil {
				h = nats.Header{}
			}
			org, err := o.Check(c.subject, h)
			if c.ok != (err == nil) {
				t.Fatalf("Check(%s): %v, want ok %v", c.subject, err, c.ok)
			}
			if org.Source != authz.CentralGatewayStream("acme") {
				t.Errorf("origin %+v", org)
			}
			var oe *authz.OriginError
			if err != nil && (!errors.Is(err, authz.ErrOrigin) || !errors.As(err, &oe) || oe.Subject != c.subject) {
				t.Errorf("error %v is not an origin error of %s", err, c.subject)
			}
		})
	}
	inv.Things[1].CentralGateway = false
	o.Update(inv)
	if _, err := o.Check(cgwMarked2.Subject(topic.Event).String(), nats.Header{}); err == nil {
		t.Error("a device unmarked by an update is still believed")
	}
	if _, err := authz.NewCentralGatewayOrigins(inv, "_bad"); err == nil {
		t.Error("origins of a reserved org")
	}
}
