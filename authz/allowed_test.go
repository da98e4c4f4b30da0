package authz_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

func TestPermissionsAllowedSemantics(t *testing.T) {
	p := authz.Permissions{
		Publish:   authz.SubjectRules{Allow: []string{"a.b", "a.*.c", "d.>"}, Deny: []string{"d.x.>"}},
		Subscribe: authz.SubjectRules{Allow: []string{"a.*", "e.>"}, Deny: []string{"e.f"}},
	}
	for _, tc := range []struct {
		subject string
		op      authz.Op
		want    bool
	}{
		{"a.b", authz.Publish, true},
		{"a.b.d", authz.Publish, false},
		{"a.z.c", authz.Publish, true},
		{"d", authz.Publish, false},
		{"d.y", authz.Publish, true},
		{"d.x", authz.Publish, true},
		{"d.x.y", authz.Publish, false},
		{"a.*", authz.Subscribe, true}, // the entry's '*' matches the subject's '*'
		{"a.>", authz.Subscribe, true}, // ... and, as in nats-server's sublist, its '>'
		{"a.b.c", authz.Subscribe, false},
		{"e.f", authz.Subscribe, false},
		{"e.>", authz.Subscribe, true}, // not denied by "e.f": nats-server filters on delivery
		{"e.*", authz.Subscribe, true},
		{"a..b", authz.Publish, false},
		{"", authz.Subscribe, false},
		{"a b", authz.Subscribe, false},
		{"e.>.f", authz.Subscribe, false},
		{"a.b", authz.Op(0), false},
	} {
		if got := p.Allowed(tc.subject, tc.op); got != tc.want {
			t.Errorf("Allowed(%q, %v) = %v, want %v", tc.subject, tc.op, got, tc.want)
		}
	}
	open := authz.Permissions{}
	if !open.Allowed("anything.at.all", authz.Publish) {
		t.Error("nil allow list must allow everything")
	}
}

func TestPolicy(t *testing.T) {
	inv := natsInv()
	pol, err := authz.NewPolicy(inv)
	if err != nil {
		t.Fatal(err)
	}
	r1 := mkThing("acme", "hq", "reader", "r1")
	if !pol.Allowed(authz.DeviceUser(r1), "acme.hq.reader.r1.evt", authz.Publish) {
		t.Error("device may not publish its event")
	}
	if pol.Allowed(authz.DeviceUser(r1), "acme.hq.reader.r2.evt", authz.Publish) {
		t.Error("device may publish another's event")
	}
	if pol.Allowed("acme.hq.reader.nobody", "acme.hq.reader.nobody.evt", authz.Publish) {
		t.Error("unknown identity allowed")
	}
	ids := pol.Identities()
	users, _ := identitiesOf(inv)
	slices.Sort(users)
	if !slices.Equal(ids, users) {
		t.Errorf("identities %v, want %v", ids, users)
	}
	if _, err := authz.NewPolicy(&authz.Inventory{Orgs: []authz.Org{{Code: "acme"}},
		Services: []authz.Service{{Name: "x", Kind: "wizard", Org: "acme"}}}); !errors.Is(err, authz.ErrInvalid) {
		t.Errorf("unknown kind: %v", err)
	}
}

// TestAllowedAgreesWithServer compares Policy.Allowed with what real
// servers, started from the generated options, permit: for every identity
// of the test inventory and many subjects (its own, other things', wildcards,
// inboxes, JetStream, KV, system and internal subjects, and random ones), a
// publish or subscription is denied by the server exactly when Allowed says
// so. A denial is read from the connection's last error after a round trip:
// nats-server sends its permission violation before answering the PING.
func TestAllowedAgreesWithServer(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central := startCentral(t, inv, c)
	hq := startEdge(t, inv, c, "hq", central, edgeSetup{})
	waitLeaf(t, hq) // the JetStream domain mappings exist while the leaf is up
	pol, err := authz.NewPolicy(inv)
	if err != nil {
		t.Fatal(err)
	}
	r1, r2, r9 := mkThing("acme", "hq", "reader", "r1"), mkThing("acme", "hq", "reader", "r2"), mkThing("acme", "wh", "reader", "r9")
	cases := []struct {
		user string
		srv  *natstest.Server
	}{
		{authz.DeviceUser(r1), hq.Server},
		{authz.DeviceUser(mkThing("acme", "hq", "lock", "l1")), hq.Server},
		{authz.EdgeServiceUser("acme", "hq"), hq.Server},
		{authz.ServiceUser("acme", "gw-hq"), hq.Server},
		{authz.ServiceUser("acme", "ingest"), central},
		{authz.ServiceUser("acme", "ops"), central},
		{authz.ServiceUser("acme", "gw"), central},
	}
	fixed := []string{
		">", "*", "*.>", "acme.>", "acme.*", "acme.hq.>", "acme.wh.>", "acme.*.reader.r1.evt",
		"acme.hq.*.*.cmd", "acme.hq.reader.*.cmd", "acme.hq.reader.r1.*", "acme.hq.reader.r1.>",
		"acme.hq.reader.r1", "acme.hq.reader.r1.evt.x", "acme.hq._edge.hq.state", "acme.hq._sys.audit.evt",
		"other.hq.reader.r1.evt",
		"_INBOX.>", "_INBOX.x", r1.InboxPrefix() + ".x", r1.InboxPrefix() + ".*", r1.InboxPrefix(),
		r2.InboxPrefix() + ".x", "_INBOX._edge.acme.hq.x", "_INBOX._svc.acme.ingest.x", "_INBOX._svc.acme.gw.>",
		"$JS.API.>", "$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.hq.API.INFO", "$JS.hq.API.>", "$JS.hub.API.INFO",
		"$JS.wh.API.INFO", "$JS.*.API.INFO", "$JS.ACK.x.y.1.1.1.1.1", "$JS.FC.x.y.z", "$JS.>",
		"$KV.>", "$KV.creds-acme-hq.x", "$SYS.>", "$SYS.ACCOUNT.acme.CONNECT", "$SYS.ACCOUNT.acme.DISCONNECT",
		"$SYS.ACCOUNT.acme.>", "$SYS.REQ.SERVER.PING",
		"_lintel.acme.hq.cmd.reader.r1", "_lintel.acme.*.cmd.*.*", "_lintel.acme.>", "_lintel.acme.hq.fwd.evt",
	}
	for _, th := range []interface{ String() string }{r1, r2, r9} {
		for _, mt := range []string{"evt", "tlm", "state", "ack", "req", "cmd", "cfg"} {
			fixed = append(fixed, th.String()+"."+mt)
		}
	}
	pool := []string{"acme", "hq", "wh", "reader", "lock", "r1", "r2", "l1", "evt", "cmd", "cfg", "req",
		"*", ">", "_INBOX", "$JS", "API", "$SYS", "_lintel", "x"}
	rng := rand.New(rand.NewPCG(1, 2))
	var random []string
	for range 200 {
		toks := make([]string, 1+rng.IntN(6))
		for i := range toks {
			toks[i] = pool[rng.IntN(len(pool))]
		}
		random = append(random, strings.Join(toks, "."))
	}

	for _, tc := range cases {
		t.Run(tc.user, func(t *testing.T) {
			perms, _ := pol.Permissions(tc.user)
			subjects := append(append(slices.Clone(fixed), random...), instances(perms)...)
			nc := connectAs(t, tc.srv, c, tc.user)
			compared, permitted := 0, 0
			last := nc.LastError()
			for _, s := range subjects {
				if !wellFormed(s) {
					// Allowed refuses malformed subjects outright, where a
					// (non-pedantic) server would take a publish on "a.>.b"
					// as a literal subject; not a comparison.
					if pol.Allowed(tc.user, s, authz.Publish) || pol.Allowed(tc.user, s, authz.Subscribe) {
						t.Errorf("malformed %q allowed", s)
					}
					continue
				}
				for _, op := range []authz.Op{authz.Publish, authz.Subscribe} {
					var err error
					var sub *nats.Subscription
					if op == authz.Publish {
						err = nc.Publish(s, nil)
					} else {
						sub, err = nc.SubscribeSync(s)
					}
					if err != nil {
						continue // rejected by the client library: not a permission question
					}
					if err := nc.Flush(); err != nil {
						t.Fatal(err)
					}
					if sub != nil {
						_ = sub.Unsubscribe()
					}
					now := nc.LastError()
					serverAllowed := now == last
					if !serverAllowed && !errors.Is(now, nats.ErrPermissionViolation) {
						t.Fatalf("%v %q: unexpected error %v", op, s, now)
					}
					last = now
					if got := pol.Allowed(tc.user, s, op); got != serverAllowed {
						t.Errorf("%v %q: Allowed = %v, server allowed = %v", op, s, got, serverAllowed)
					}
					compared++
					if serverAllowed {
						permitted++
					}
				}
			}
			if compared < 300 || permitted < 5 || compared-permitted < 100 {
				t.Fatalf("%d comparisons, %d permitted: too few of either to mean much", compared, permitted)
			}
			t.Logf("%d comparisons, %d permitted", compared, permitted)
		})
	}
}

// wellFormed reports whether s is a subject nats-server accepts for a
// subscription: '>' only as the last token.
func wellFormed(s string) bool {
	i := strings.Index(s, ">")
	return i < 0 || i == len(s)-1
}

// instances returns, for each entry of p's lists, the entry itself and a
// literal subject it matches.
func instances(p authz.Permissions) []string {
	var out []string
	for _, list := range [][]string{p.Publish.Allow, p.Publish.Deny, p.Subscribe.Allow, p.Subscribe.Deny} {
		for _, f := range list {
			out = append(out, f, strings.NewReplacer("*", "x", ">", "x.y").Replace(f))
		}
	}
	return out
}
