package authz_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
)

func ExampleDevicePermissions() {
	p := authz.DevicePermissions(topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "front-in"})
	fmt.Println("publish:  ", strings.Join(p.Publish.Allow, " "))
	fmt.Println("subscribe:", strings.Join(p.Subscribe.Allow, " "))
	fmt.Println(p.Allowed("acme.hq.reader.front-in.evt", authz.Publish))
	fmt.Println(p.Allowed("acme.hq.reader.front-out.evt", authz.Publish))
	fmt.Println(p.Allowed("_INBOX.acme.hq.reader.front-in.*", authz.Subscribe))
	fmt.Println(p.Allowed("_INBOX.>", authz.Subscribe))
	// Output:
	// publish:   acme.hq.reader.front-in.evt acme.hq.reader.front-in.tlm acme.hq.reader.front-in.state acme.hq.reader.front-in.ack acme.hq.reader.front-in.req
	// subscribe: acme.hq.reader.front-in.cmd acme.hq.reader.front-in.cfg _INBOX.acme.hq.reader.front-in.>
	// true
	// false
	// true
	// false
}

// randomInventory returns an inventory of random orgs, edges and things,
// with names drawn so that they often share prefixes ("a", "a-b", "a_b").
func randomInventory(rng *rand.Rand) *authz.Inventory {
	alphabet := []byte("ab-_1")
	name := func(leading bool) string {
		b := make([]byte, 1+rng.IntN(4))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
			for i == 0 && (b[0] == '_' || (!leading && b[0] == '-')) {
				b[0] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		return string(b)
	}
	inv := &authz.Inventory{}
	seen := map[string]bool{}
	uniq := func(s string) bool {
		if seen[s] {
			return false
		}
		seen[s] = true
		return true
	}
	for range 1 + rng.IntN(3) {
		if o := name(true); uniq("o:"+o) && o != authz.SystemAccount {
			inv.Orgs = append(inv.Orgs, authz.Org{Code: o})
		}
	}
	for _, o := range inv.Orgs {
		for range 1 + rng.IntN(3) {
			if e := name(true); uniq("e:"+e) && e != authz.HubDomain {
				inv.Edges = append(inv.Edges, authz.Edge{Org: o.Code, Code: e})
			}
		}
	}
	for _, e := range inv.Edges {
		for range rng.IntN(8) {
			th := authz.Thing{Thing: topic.Thing{Org: e.Org, Edge: e.Code, Type: name(false), Code: name(false)}}
			if uniq("t:" + th.Org + "." + th.Edge + "." + th.Code) {
				inv.Things = append(inv.Things, th)
			}
		}
		if rng.IntN(2) == 0 {
			inv.Services = append(inv.Services, authz.Service{Name: "gw-" + e.Code, Kind: authz.ServiceGateway, Org: e.Org, Edge: e.Code})
		}
	}
	for _, o := range inv.Orgs {
		inv.Services = append(inv.Services, authz.Service{Name: "gw", Kind: authz.ServiceGateway, Org: o.Code})
	}
	return inv
}

func asThing(th authz.Thing) topic.Thing {
	return th.Thing
}

// TestDevicePermissionsProperty checks, over random inventories, that every
// device permission lies within the device's own subjects and its own
// inbox: each entry is a filter its thing's filter covers (or exactly its
// inbox prefix + ".>"), without wildcards, and no entry reaches "$JS",
// "$KV", "$SYS" or another thing's subject or inbox.
func TestDevicePermissionsProperty(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 0x11e7e1))
		inv := randomInventory(rng)
		for _, th := range inv.Things {
			tt := asThing(th)
			p := authz.DevicePermissions(tt)
			own, err := tt.Filter()
			if err != nil {
				t.Fatal(err)
			}
			for _, dir := range []struct {
				name  string
				rules authz.SubjectRules
				types []topic.MessageType
			}{
				{"publish", p.Publish, []topic.MessageType{topic.Event, topic.Telemetry, topic.State, topic.Ack, topic.Request}},
				{"subscribe", p.Subscribe, []topic.MessageType{topic.Command, topic.Config}},
			} {
				if len(dir.rules.Deny) > 0 || len(dir.rules.Allow) == 0 {
					t.Fatalf("seed %d %s: %s rules %+v", seed, tt, dir.name, dir.rules)
				}
				for _, entry := range dir.rules.Allow {
					if strings.HasPrefix(entry, "$") || entry == ">" {
						t.Fatalf("seed %d %s: %s entry %q", seed, tt, dir.name, entry)
					}
					if dir.name == "subscribe" && entry == tt.InboxPrefix()+".>" {
						continue
					}
					f, err := topic.ParseFilter(entry)
					if err != nil {
						t.Fatalf("seed %d %s: %s entry %q: %v", seed, tt, dir.name, entry, err)
					}
					if !own.Covers(f) || strings.ContainsAny(entry, "*>") {
						t.Fatalf("seed %d %s: %s entry %q reaches beyond the device", seed, tt, dir.name, entry)
					}
					s, err := topic.Parse(entry)
					if err != nil || !slices.Contains(dir.types, s.MessageType) {
						t.Fatalf("seed %d %s: %s entry %q has the wrong message type", seed, tt, dir.name, entry)
					}
				}
			}
			// No entry reaches another thing: its subjects, its filter or its inbox.
			for _, other := range inv.Things {
				ot := asThing(other)
				if ot == tt {
					continue
				}
				for _, mt := range topic.MessageTypes() {
					for _, op := range []authz.Op{authz.Publish, authz.Subscribe} {
						for _, subj := range []string{ot.Subject(mt).String(), ot.String() + ".*", ot.InboxPrefix() + ".x", ot.InboxPrefix() + ".>"} {
							if p.Allowed(subj, op) {
								t.Fatalf("seed %d: %s may %v %q", seed, tt, op, subj)
							}
						}
					}
				}
			}
			for _, subj := range []string{">", "$JS.API.>", "$JS." + th.Edge + ".API.INFO", "$KV.x.y", "$SYS.>", "_INBOX.>",
				th.Org + ".>", th.Org + "." + th.Edge + ".>", tt.String() + ".>", tt.String() + ".*"} {
				if p.Allowed(subj, authz.Publish) || p.Allowed(subj, authz.Subscribe) {
					t.Fatalf("seed %d: %s may use %q", seed, tt, subj)
				}
			}
		}
	}
}

// TestScopedPermissionsProperty checks, over random inventories, that a
// gateway's permissions are the union of its devices' (plus its inbox),
// and that an edge's service and leaf permissions reach nothing of another
// edge.
func TestScopedPermissionsProperty(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 0x5c0fe))
		inv := randomInventory(rng)
		for _, s := range inv.Services {
			p := authz.GatewayPermissions(inv, s)
			var pub, sub []string
			for _, th := range inv.Things {
				if th.Org == s.Org && (s.Edge == "" || th.Edge == s.Edge) {
					d := authz.DevicePermissions(asThing(th))
					pub = append(pub, d.Publish.Allow...)
					sub = append(sub, d.Subscribe.Allow[:len(d.Subscribe.Allow)-1]...) // not the device's inbox
				}
			}
			sub = append(sub, authz.UserInboxPrefix(authz.ServiceUser(s.Org, s.Name))+".>")
			if len(pub) == 0 {
				if !slices.Equal(p.Publish.Deny, []string{">"}) {
					t.Fatalf("seed %d: gateway without devices may publish: %+v", seed, p.Publish)
				}
			} else if !sameSet(p.Publish.Allow, pub) {
				t.Fatalf("seed %d: gateway %s publish %v, want %v", seed, s.Name, p.Publish.Allow, pub)
			}
			if !sameSet(p.Subscribe.Allow, sub) {
				t.Fatalf("seed %d: gateway %s subscribe %v, want %v", seed, s.Name, p.Subscribe.Allow, sub)
			}
		}
		for _, e := range inv.Edges {
			svc := authz.EdgeServicePermissions(e.Org, e.Code)
			leaf, err := authz.LeafPermissions(e.Org, e.Code)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range inv.Edges {
				if o == e {
					continue
				}
				n, _ := authz.NamesFor(o.Org, o.Code)
				others := []string{o.Org + "." + o.Code + ".r.c.evt", o.Org + "." + o.Code + ".r.c.cmd", authz.DeliversOf(n).Event, authz.DeliversOf(n).Credential,
					authz.DeliversOf(n).Command, "_INBOX." + o.Org + "." + o.Code + ".r.c.x", "_INBOX._edge." + o.Org + "." + o.Code + ".x",
					"$JSC.R.hub.h." + n.CredentialStream + "." + n.CredentialConsumer + ".x",
					"$JS.hub.API.CONSUMER.RESET." + n.CentralCommandStream + "." + n.CommandConsumer,
					"$JS." + o.Code + ".API.CONSUMER.RESET." + n.EventStream + "." + n.EventConsumer,
					"$JS.FC." + n.EventStream + "." + n.EventConsumer + ".x",
					authz.DeliversOf(n).Telemetry,
					"$JSC.R." + o.Code + ".h." + n.TelemetryStream + "." + n.TelemetryConsumer + ".x",
					"$JS." + o.Code + ".API.CONSUMER.RESET." + n.TelemetryStream + "." + n.TelemetryConsumer,
					"$JS.FC." + n.TelemetryStream + "." + n.TelemetryConsumer + ".x",
					"$JS.FC." + o.Code + ".h." + n.TelemetryStream + "." + n.TelemetryConsumer + ".x"}
				for _, subj := range others {
					for _, op := range []authz.Op{authz.Publish, authz.Subscribe} {
						if leaf.Allowed(subj, op) {
							t.Fatalf("seed %d: leaf of %s.%s may %v %q", seed, e.Org, e.Code, op, subj)
						}
						if !strings.HasPrefix(subj, "$J") && svc.Allowed(subj, op) {
							t.Fatalf("seed %d: edge service of %s.%s may %v %q", seed, e.Org, e.Code, op, subj)
						}
					}
				}
			}
			for _, list := range [][]string{leaf.Publish.Allow, leaf.Subscribe.Allow} {
				for _, entry := range list {
					if entry == ">" || strings.HasPrefix(entry, "$JS.API") || strings.HasPrefix(entry, "$KV") ||
						strings.HasPrefix(entry, "$SYS") || entry == "$JS.>" || strings.HasSuffix(entry, ".API.>") {
						t.Fatalf("seed %d: leaf entry %q", seed, entry)
					}
				}
			}
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestPermissionsServer(t *testing.T) {
	p := authz.DevicePermissions(topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"})
	sp := p.Server()
	if !slices.Equal(sp.Publish.Allow, p.Publish.Allow) || !slices.Equal(sp.Subscribe.Allow, p.Subscribe.Allow) || sp.Response != nil {
		t.Fatalf("%+v", sp)
	}
	sp.Publish.Allow[0] = "changed"
	if p.Publish.Allow[0] == "changed" {
		t.Fatal("Server shares its slices with the permissions")
	}
	if got := authz.Publish.String() + " " + authz.Subscribe.String() + " " + authz.Op(9).String(); got != "publish subscribe Op(9)" {
		t.Fatal(got)
	}
}

func TestCentralServicePermissions(t *testing.T) {
	p := authz.CentralServicePermissions("acme", "ingest")
	r1 := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	for subj, want := range map[string]bool{
		"acme.hq.reader.r1.evt":   true,
		"acme.hq.reader.r1.cmd":   false, // only edge services publish device commands
		authz.CommandSubject(r1):  true,
		"$JS.hub.API.STREAM.INFO": true,
		"$JS.hq.API.STREAM.INFO":  false,
		"other.hq.reader.r1.evt":  false,
	} {
		if got := p.Allowed(subj, authz.Publish); got != want {
			t.Errorf("publish %q = %v, want %v", subj, got, want)
		}
	}
	op := authz.OperatorPermissions("acme", "ops")
	if !op.Allowed("_lintel.acme.hq.fwd.evt", authz.Subscribe) || p.Allowed("_lintel.acme.hq.fwd.evt", authz.Subscribe) {
		t.Error("only operators watch the forwarding subjects")
	}
	if _, err := authz.ServicePermissions(nil, authz.Service{Name: "x", Kind: "wizard", Org: "acme"}); err == nil {
		t.Error("unknown kind accepted")
	}
}
