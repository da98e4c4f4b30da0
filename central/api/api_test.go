package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/oidctest"
)

// pathFor fills a route's path parameters with values that reach the
// handler: a known edge, well-formed ids.
func pathFor(p string) string {
	r := strings.NewReplacer("{edge}", "hq", "{name}", "staff")
	p = r.Replace(p)
	switch {
	case strings.HasPrefix(p, "/tokens/"):
		p = strings.Replace(p, "{id}", "0000000000000000", 1)
	case strings.HasPrefix(p, "/commands/"):
		p = strings.Replace(p, "{id}", "0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b", 1)
	default:
		p = strings.Replace(p, "{id}", strings.Repeat("0", 64), 1)
	}
	return api.PathPrefix + p
}

// TestAPI runs the API's tests on one central with edge hq linked.
func TestAPI(t *testing.T) {
	f := newFixture(t, fixtureOptions{edge: true})
	t.Run("RolesPerRoute", func(t *testing.T) { testRolesPerRoute(t, f) })
	t.Run("OpenAPIMatchesRoutes", func(t *testing.T) { testOpenAPI(t, f) })
	t.Run("BearerAttacks", func(t *testing.T) { testBearerAttacks(t, f) })
	t.Run("RoleClaim", func(t *testing.T) { testRoleClaim(t, f) })
	t.Run("SecurityEvents", func(t *testing.T) { testSecurityEvents(t, f) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, f) })
	t.Run("Credentials", func(t *testing.T) { testCredentials(t, f) })
	t.Run("GroupsSchedulesRules", func(t *testing.T) { testGroupsSchedulesRules(t, f) })
	t.Run("Commands", func(t *testing.T) { testCommands(t, f) })
	t.Run("EdgesThingsAudit", func(t *testing.T) { testEdgesThingsAudit(t, f) })
	t.Run("EventsFromJetStream", func(t *testing.T) { testEvents(t, f, false) })
	t.Run("EventFilters", func(t *testing.T) { testEventFilters(t, f) })
	t.Run("EventsScanBudget", func(t *testing.T) { testScanBudget(t, f) })
	t.Run("LiveEventsAndDoors", func(t *testing.T) { testLiveAndDoors(t, f) })
	t.Run("Decisions", func(t *testing.T) { testDecisions(t, f) })
	t.Run("AuditLogPaging", func(t *testing.T) { testAuditLogPaging(t, f) })
	t.Run("TokenLogin", func(t *testing.T) { testTokenLogin(t, f) })
	t.Run("Login", func(t *testing.T) { testLogin(t, f) })
	t.Run("Bootstrap", func(t *testing.T) { testBootstrap(t, f) })
}

// testRolesPerRoute: every route of the table, without credentials, gets
// 401 (public routes excepted), and with a token of each role 403 below
// the route's role and the handler's answer at or above it; for each
// role, both an OIDC JWT and an API token are tried.
func testRolesPerRoute(t *testing.T, f *fixture) {
	roles := []string{"viewer", "operator", "admin"}
	tokens := map[string][]string{}
	for _, r := range roles {
		_, tok := f.token(t, "table-"+r, r)
		tokens[r] = []string{f.prov.Token(t, "user-"+r, r), tok}
	}
	// A JWT without a Lintel role authenticates but may do nothing.
	noRole := f.prov.Token(t, "nobody", "guest")
	for _, rt := range f.srv.Routes() {
		path := pathFor(rt.Path)
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			res := f.do(t, rt.Method, path, "", nil)
			if rt.Role == api.RolePublic {
				// The handler answers (a login without a login in progress
				// fails as such), not the authentication.
				if res.status >= 400 && (res.problem(t).Slug() == "unauthorized" || res.problem(t).Slug() == "forbidden") {
					t.Fatalf("public route without credentials: %d %s", res.status, res.body)
				}
				return
			}
			if res.status != http.StatusUnauthorized || res.problem(t).Slug() != "unauthorized" {
				t.Fatalf("no credentials: status %d, want 401: %s", res.status, res.body)
			}
			if res.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if res := f.do(t, rt.Method, path, noRole, nil); res.status != http.StatusForbidden {
				t.Fatalf("a JWT without a role: status %d, want 403: %s", res.status, res.body)
			}
			for _, role := range roles {
				r, _ := api.ParseRole(role)
				for i, tok := range tokens[role] {
					kind := [2]string{"jwt", "api token"}[i]
					res := f.do(t, rt.Method, path, tok, nil)
					if r < rt.Role {
						if res.status != http.StatusForbidden || res.problem(t).Slug() != "forbidden" {
							t.Errorf("%s %s: status %d, want 403: %s", role, kind, res.status, res.body)
						}
						continue
					}
					if res.status == http.StatusUnauthorized || res.status == http.StatusForbidden || res.status == http.StatusMethodNotAllowed {
						t.Errorf("%s %s: status %d, want the handler's answer: %s", role, kind, res.status, res.body)
					}
					if res.status >= 400 && res.problem(t).Slug() == "no-such-route" {
						t.Errorf("%s %s: the route did not reach its handler", role, kind)
					}
				}
			}
		})
	}
}

// testOpenAPI: the served document lists exactly the table's routes with
// their roles, and a request to every documented operation reaches a
// handler.
func testOpenAPI(t *testing.T, f *fixture) {
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	f.do(t, "GET", api.PathPrefix+"/openapi.json", "", nil).decode(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	table := map[string]api.Route{}
	for _, rt := range f.srv.Routes() {
		table[strings.ToLower(rt.Method)+" "+api.PathPrefix+rt.Path] = rt
	}
	documented := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented++
			rt, ok := table[method+" "+path]
			if !ok {
				t.Errorf("documented %s %s is not a route", method, path)
				continue
			}
			if op["x-lintel-role"] != rt.Role.String() || op["operationId"] != rt.ID {
				t.Errorf("%s %s documented as %v/%v, route says %s/%s", method, path, op["operationId"], op["x-lintel-role"], rt.ID, rt.Role)
			}
			res := f.do(t, strings.ToUpper(method), pathFor(strings.TrimPrefix(path, api.PathPrefix)), f.admin, nil)
			if res.status == http.StatusMethodNotAllowed || (res.status == http.StatusNotFound && res.problem(t).Slug() == "no-such-route") {
				t.Errorf("documented %s %s does not reach a handler: %d %s", method, path, res.status, res.body)
			}
		}
	}
	if documented != len(table) {
		t.Errorf("%d operations documented, %d routes", documented, len(table))
	}
	// Another method on a documented path is a problem naming the
	// allowed ones.
	res405 := f.do(t, "DELETE", api.PathPrefix+"/edges", f.admin, nil)
	if res405.status != http.StatusMethodNotAllowed || res405.problem(t).Slug() != "method-not-allowed" || res405.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("DELETE /edges: %d %v %s", res405.status, res405.header, res405.body)
	}
	// And what is not documented is not served.
	res := f.do(t, "GET", api.PathPrefix+"/nothing-here", f.admin, nil)
	if res.status != http.StatusNotFound || res.problem(t).Slug() != "no-such-route" {
		t.Fatalf("unknown route: %d %s", res.status, res.body)
	}
}

// testBearerAttacks: tokens that must not authenticate get 401 on a
// viewer route, each with a problem.
func testBearerAttacks(t *testing.T, f *fixture) {
	claims := func(edit func(map[string]any)) map[string]any {
		c := f.prov.Claims("mallory", "admin")
		edit(c)
		return c
	}
	other := oidctest.New(t, oidctest.Config{ClientID: f.prov.ClientID()})
	_, tok := f.token(t, "to-tamper", "admin")
	cases := map[string]func() (string, error){
		"forged signature": func() (string, error) { return f.prov.Forge(f.prov.Claims("mallory", "admin")) },
		"expired": func() (string, error) {
			return f.prov.Sign(claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }))
		},
		"wrong audience": func() (string, error) {
			return f.prov.Sign(claims(func(c map[string]any) { c["aud"] = "some-other-app" }))
		},
		"wrong issuer": func() (string, error) {
			return f.prov.Sign(claims(func(c map[string]any) { c["iss"] = other.Issuer() }))
		},
		"other provider's key": func() (string, error) { return other.Sign(claims(func(map[string]any) {})) },
		"unsigned": func() (string, error) {
			s, err := f.prov.Sign(f.prov.Claims("mallory", "admin"))
			parts := strings.Split(s, ".")
			return `eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.` + parts[1] + ".", err
		},
		"API token with another secret": func() (string, error) { return tok[:len(tok)-4] + "AAAA", nil },
		"API token unknown":             func() (string, error) { return "lintel_0123456789abcdef_" + strings.Repeat("A", 43), nil },
		"malformed API token":           func() (string, error) { return "lintel_nonsense", nil },
		"garbage":                       func() (string, error) { return "not-a-token", nil },
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			res := f.do(t, "GET", api.PathPrefix+"/me", s, nil)
			if res.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", res.status, res.body)
			}
			res.problem(t)
		})
	}
	// Another scheme is refused, not ignored.
	res := f.doWith(t, noRedirect, "GET", api.PathPrefix+"/me", nil, func(r *http.Request) { r.SetBasicAuth("admin", f.admin) })
	if res.status != http.StatusUnauthorized || res.problem(t).Field != "Authorization" {
		t.Fatalf("basic auth: %d %s", res.status, res.body)
	}
	// The genuine tokens work, and say who they are.
	var me api.Principal
	f.do(t, "GET", api.PathPrefix+"/me", f.prov.Token(t, "alice", "operator", "viewer"), nil).decode(t, &me)
	if me.Subject != "alice" || me.Role != api.RoleOperator || me.Via != "oidc" {
		t.Fatalf("me: %+v", me)
	}
}

// testRoleClaim: an API configured with a role claim and a mapping of
// its own reads a JWT's role from that claim only, through that mapping:
// an operator group there may use an operator route (and no admin one),
// while the role in the default roles claim, or a value the mapping does
// not name, gives no role (403).
func testRoleClaim(t *testing.T, f *fixture) {
	srv, err := api.Start(ctx(t), api.Config{Central: f.c, OIDC: &api.OIDCConfig{Issuer: f.prov.Issuer(), ClientID: f.prov.ClientID(),
		RoleClaim: "groups", Roles: map[string]api.Role{"lintel-admins": api.RoleAdmin, "lintel-operators": api.RoleOperator, "staff": api.RoleViewer}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	do := func(t *testing.T, method, path, token string, body []byte) response {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(ctx(t), method, api.PathPrefix+path, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		srv.Handler().ServeHTTP(rec, req)
		return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}
	rules := []byte(`{"rules": [{"name": "door-held", "match": "acme.hq.door_sensor.*.state", "when": "payload.open", "for": "30s",
	  "actions": [{"event": {"name": "alarm.door_held_open"}}]}]}`)
	for _, c := range []struct {
		name   string
		claims map[string]any // added to the provider's claims, whose roles claim is empty
		role   api.Role
	}{
		{"operator group", map[string]any{"groups": []string{"staff", "lintel-operators"}}, api.RoleOperator},
		{"groups as one string", map[string]any{"groups": "staff lintel-operators"}, api.RoleOperator},
		{"viewer group", map[string]any{"groups": []string{"staff"}}, api.RoleViewer},
		{"role in the default claim only", map[string]any{"roles": []string{"operator", "lintel-operators"}}, api.RolePublic},
		{"default role names in the claim", map[string]any{"groups": []string{"operator", "admin"}}, api.RolePublic},
	} {
		t.Run(c.name, func(t *testing.T) {
			claims := f.prov.Claims("gina")
			for k, v := range c.claims {
				claims[k] = v
			}
			tok, err := f.prov.Sign(claims)
			if err != nil {
				t.Fatal(err)
			}
			me := do(t, "GET", "/me", tok, nil)
			if c.role == api.RolePublic {
				if me.status != http.StatusForbidden || me.problem(t).Slug() != "forbidden" {
					t.Fatalf("me without a role: %d %s, want 403", me.status, me.body)
				}
			} else {
				var p api.Principal
				me.decode(t, &p)
				if p.Subject != "gina" || p.Via != "oidc" || p.Role != c.role {
					t.Fatalf("me: %+v, want role %s", p, c.role)
				}
			}
			res := do(t, "POST", "/edges/hq/rules/validate", tok, rules)
			if c.role >= api.RoleOperator {
				var rep struct{ Valid bool }
				if res.decode(t, &rep); res.status != http.StatusOK || !rep.Valid {
					t.Fatalf("operator route: %d %s", res.status, res.body)
				}
			} else if res.status != http.StatusForbidden || res.problem(t).Slug() != "forbidden" {
				t.Fatalf("operator route as %s: %d %s, want 403", c.role, res.status, res.body)
			}
			if res := do(t, "GET", "/tokens", tok, nil); res.status != http.StatusForbidden || res.problem(t).Slug() != "forbidden" {
				t.Fatalf("admin route as %s: %d %s, want 403", c.role, res.status, res.body)
			}
		})
	}
}

// testTokens: an API token is shown once, listed without its secret or
// hash, and refused once revoked; token routes are in the audit log.
func testTokens(t *testing.T, f *fixture) {
	id, tok := f.token(t, "machine", "viewer")
	if res := f.do(t, "GET", api.PathPrefix+"/edges", tok, nil); res.status != http.StatusOK {
		t.Fatalf("viewer token: %d %s", res.status, res.body)
	}
	list := f.do(t, "GET", api.PathPrefix+"/tokens", f.admin, nil)
	secret := tok[len("lintel_")+17:] // lintel_{16 hex}_{secret}
	if strings.Contains(string(list.body), secret) {
		t.Fatal("the token list holds a token's secret")
	}
	var toks []api.Token
	list.decode(t, &toks)
	i := slices.IndexFunc(toks, func(x api.Token) bool { return x.ID == id })
	if i < 0 || toks[i].Name != "machine" || toks[i].Role != api.RoleViewer || toks[i].LastUsed.IsZero() {
		t.Fatalf("token %s in the list: %+v", id, toks)
	}
	// The stored value holds the hash, not the token.
	kv, err := f.c.JetStream("acme").KeyValue(ctx(t), api.TokenBucket("acme"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Value()), secret) || !strings.Contains(string(e.Value()), `"hash"`) {
		t.Fatalf("stored token: %s", e.Value())
	}
	bad := []struct {
		body  any
		field string
	}{
		{map[string]string{"name": "x", "role": "root"}, "role"},
		{map[string]string{"name": "", "role": "viewer"}, "name"},
		{map[string]any{"name": "x", "role": "viewer", "expires": 1}, "expires"},
		{[]byte(`{"name": 5, "role": "viewer"}`), "name"},
	}
	for _, b := range bad {
		res := f.do(t, "POST", api.PathPrefix+"/tokens", f.admin, b.body)
		if res.status != http.StatusBadRequest || res.problem(t).Field != b.field {
			t.Errorf("create token %v: %d %s, want 400 naming %s", b.body, res.status, res.body, b.field)
		}
	}
	if res := f.do(t, "DELETE", api.PathPrefix+"/tokens/"+id, f.admin, nil); res.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	if res := f.do(t, "GET", api.PathPrefix+"/edges", tok, nil); res.status != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d, want 401", res.status)
	}
	log := f.auditLog(t)
	if len(log) < 2 || log[0].Action != "revokeToken" || log[0].Object != "API token "+id || !strings.HasPrefix(log[0].Who, "token:") {
		t.Fatalf("audit log head: %+v", log[:min(2, len(log))])
	}
	if strings.Contains(string(f.do(t, "GET", api.PathPrefix+"/audit-log", f.admin, nil).body), secret) {
		t.Fatal("the audit log holds a token's secret")
	}
}

// testCredentials: a credential created with a card number is stored and
// shown by its hash; the number appears in no response, in no stored
// value and in no audit record; state changes apply, and bad input is
// refused naming the field.
func testCredentials(t *testing.T, f *fixture) {
	const card = "0099887766554433"
	op := f.prov.Token(t, "olivia", "operator")
	base := api.PathPrefix + "/edges/hq/credentials"
	res := f.do(t, "POST", base, op, map[string]any{"card": card, "holder": "alice", "doors": []string{"front"}})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	var cr api.CredentialItem
	res.decode(t, &cr)
	if cr.Holder != "alice" || cr.State != "active" || len(cr.ID) != 64 || cr.Revision == 0 {
		t.Fatalf("created: %+v", cr)
	}
	again := f.do(t, "POST", base, op, map[string]any{"card": card, "holder": "mallory"})
	if again.status != http.StatusConflict {
		t.Fatalf("create twice: %d %s", again.status, again.body)
	}
	bad := []struct {
		body  any
		field string
	}{
		{map[string]any{"holder": "bob"}, "card"},
		{map[string]any{"card": "1", "pin": "2", "holder": "bob"}, "pin"},
		{map[string]any{"card": "  ", "holder": "bob"}, "card"},
		{map[string]any{"card": "1234", "holder": ""}, "holder"},
		{map[string]any{"card": "1234", "holder": "bob", "doors": []string{"back"}}, "doors[0]"},
		{map[string]any{"card": "1234", "holder": "bob", "groups": []string{"nope"}}, "groups[0]"},
		{map[string]any{"card": "1234", "holder": "bob", "colour": "red"}, "colour"},
		{map[string]any{"card": "1234", "holder": "bob", "valid_from": "2027-01-02T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z"}, "valid_until"},
		{[]byte(`{"card": "1234", "holder": "bob", "valid_until": "tomorrow"}`), "valid_until"},
		{[]byte(`{"card": "1234", "holder": "bob", "doors": "front"}`), "doors"},
		{[]byte(`{"card": "1234", "holder": "bob"} {}`), ""},
		{[]byte(`not json`), ""},
		{map[string]any{"id": "ABC", "kind": "card", "holder": "bob"}, "id"},
		{map[string]any{"id": strings.Repeat("a", 64), "holder": "bob"}, "kind"},
		{map[string]any{"id": strings.Repeat("a", 64), "kind": "mobile", "holder": "bob"}, "kind"},
		{map[string]any{"card": "1234", "kind": "card", "holder": "bob"}, "kind"},
		{map[string]any{"card": "1234", "id": strings.Repeat("a", 64), "kind": "card", "holder": "bob"}, "id"},
	}
	for _, b := range bad {
		res := f.do(t, "POST", base, op, b.body)
		p := res.problem(t)
		if res.status != http.StatusBadRequest || p.Field != b.field {
			t.Errorf("create %v: %d field %q (%s), want 400 naming %q", b.body, res.status, p.Field, p.Detail, b.field)
		}
	}
	if res := f.do(t, "POST", api.PathPrefix+"/edges/nowhere/credentials", op, map[string]any{"card": "1", "holder": "x"}); res.status != http.StatusNotFound || res.problem(t).Field != "edge" {
		t.Errorf("unknown edge: %d %s", res.status, res.body)
	}
	// A credential given by its hash, made on the operator's machine with
	// the org's hash key: stored under it, and the same credential as the
	// PIN central hashes.
	pinID := message.Credential("5566").Hash(f.hashKey)
	byID := f.do(t, "POST", base, op, map[string]any{"id": pinID, "kind": "pin", "holder": "bob", "doors": []string{"front"}})
	var bi api.CredentialItem
	byID.decode(t, &bi)
	if byID.status != http.StatusCreated || bi.ID != pinID || bi.Kind != "pin" || bi.State != "active" {
		t.Fatalf("create by id: %d %+v", byID.status, bi)
	}
	if res := f.do(t, "POST", base, op, map[string]any{"pin": "5566", "holder": "bob"}); res.status != http.StatusConflict || !strings.Contains(res.problem(t).Detail, pinID) {
		t.Fatalf("create the PIN created by id: %d %s", res.status, res.body)
	}
	if res := f.do(t, "PUT", base+"/"+pinID, op, map[string]any{"holder": "bob", "kind": "card"}); res.status != http.StatusBadRequest {
		t.Errorf("update with a kind: %d", res.status)
	}
	upd := f.do(t, "PUT", base+"/"+cr.ID, op, map[string]any{"holder": "alice b.", "doors": []string{"front"}})
	var up api.CredentialItem
	upd.decode(t, &up)
	if up.Holder != "alice b." || up.Revision <= cr.Revision || up.State != "active" {
		t.Fatalf("updated: %+v", up)
	}
	if res := f.do(t, "PUT", base+"/"+cr.ID, op, map[string]any{"holder": "x", "card": "1"}); res.status != http.StatusBadRequest {
		t.Errorf("update with a card: %d", res.status)
	}
	for _, step := range []struct{ action, body, state string }{
		{"suspend", `{"reason": "reported lost"}`, "suspended"},
		{"reinstate", ``, "active"},
		{"revoke", `{"reason": "left"}`, "revoked"},
	} {
		res := f.do(t, "POST", api.PathPrefix+"/credentials/"+cr.ID+"/"+step.action, op, []byte(step.body))
		var sc struct {
			State     string            `json:"state"`
			Revisions map[string]uint64 `json:"revisions"`
		}
		res.decode(t, &sc)
		if sc.State != step.state || sc.Revisions["hq"] == 0 {
			t.Fatalf("%s: %s", step.action, res.body)
		}
		var got api.CredentialItem
		f.do(t, "GET", base+"/"+cr.ID, op, nil).decode(t, &got)
		if got.State != step.state {
			t.Fatalf("after %s: state %s", step.action, got.State)
		}
	}
	if res := f.do(t, "POST", api.PathPrefix+"/credentials/"+cr.ID+"/reinstate", op, nil); res.status != http.StatusConflict {
		t.Errorf("reinstate a revoked credential: %d %s", res.status, res.body)
	}
	if res := f.do(t, "POST", api.PathPrefix+"/credentials/"+cr.ID+"/suspend", op, map[string]string{}); res.status != http.StatusBadRequest || res.problem(t).Field != "reason" {
		t.Errorf("suspend without reason: %d %s", res.status, res.body)
	}
	if res := f.do(t, "POST", api.PathPrefix+"/credentials/NOT-HEX/revoke", op, map[string]string{"reason": "x"}); res.status != http.StatusBadRequest || res.problem(t).Field != "id" {
		t.Errorf("bad id: %d %s", res.status, res.body)
	}
	// The card number is nowhere: responses, the edge's bucket, the log.
	list := f.do(t, "GET", base, op, nil)
	for name, b := range map[string][]byte{"create": res.body, "list": list.body, "update": upd.body,
		"audit log": f.do(t, "GET", api.PathPrefix+"/audit-log?limit=1000", f.admin, nil).body} {
		if strings.Contains(string(b), card) {
			t.Errorf("the %s response holds the card number", name)
		}
	}
	n, err := authz.NamesFor("acme", "hq")
	if err != nil {
		t.Fatal(err)
	}
	str, err := f.c.JetStream("acme").Stream(ctx(t), "KV_"+n.CredentialBucket)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= str.CachedInfo().State.LastSeq; seq++ {
		m, err := str.GetMsg(ctx(t), seq)
		if err == nil && strings.Contains(string(m.Data)+m.Subject, card) {
			t.Fatalf("the credential bucket holds the card number at %d", seq)
		}
	}
	// The log has who, what, before and after.
	log := f.auditLog(t)
	i := slices.IndexFunc(log, func(e api.AuditEntry) bool { return e.Action == "updateCredential" })
	if i < 0 || log[i].Who != "olivia" || log[i].Role != api.RoleOperator || !strings.Contains(string(log[i].Before), `"holder":"alice"`) ||
		!strings.Contains(string(log[i].After), `"holder":"alice b."`) || log[i].Time.IsZero() {
		t.Fatalf("audit of the update: %+v", log)
	}
	for _, a := range []string{"createCredential", "suspendCredential", "reinstateCredential", "revokeCredential"} {
		if !slices.ContainsFunc(log, func(e api.AuditEntry) bool { return e.Action == a && strings.Contains(e.Object, cr.ID) }) {
			t.Errorf("no audit record of %s", a)
		}
	}
}

// testGroupsSchedulesRules: groups, schedules and rules are validated,
// stored, listed and logged.
func testGroupsSchedulesRules(t *testing.T, f *fixture) {
	op := f.prov.Token(t, "olivia", "operator")
	adm := f.prov.Token(t, "ada", "admin")
	p := api.PathPrefix + "/edges/hq"
	if res := f.do(t, "PUT", p+"/groups/staff", op, map[string]any{"doors": []string{"front"}}); res.status != http.StatusOK {
		t.Fatalf("put group: %d %s", res.status, res.body)
	}
	if res := f.do(t, "PUT", p+"/groups/staff", op, map[string]any{"doors": []string{"vault"}}); res.status != http.StatusBadRequest || res.problem(t).Field != "doors[0]" {
		t.Fatalf("group with an unknown door: %d %s", res.status, res.body)
	}
	var groups []api.GroupItem
	f.do(t, "GET", p+"/groups", op, nil).decode(t, &groups)
	if len(groups) != 1 || groups[0].Name != "staff" || !slices.Equal(groups[0].Doors, []string{"front"}) {
		t.Fatalf("groups: %+v", groups)
	}
	sched := []byte(`{"intervals": [{"days": ["mon","tue"], "from": "07:00", "until": "19:00"}]}`)
	if res := f.do(t, "PUT", p+"/schedules/office", op, sched); res.status != http.StatusOK {
		t.Fatalf("put schedule: %d %s", res.status, res.body)
	}
	res := f.do(t, "PUT", p+"/schedules/office", op, []byte(`{"intervals": [{"days": ["mon"], "from": "25:00", "until": "19:00"}]}`))
	if res.status != http.StatusBadRequest || res.problem(t).Field != "intervals[0].from" {
		t.Fatalf("bad schedule: %d %s", res.status, res.body)
	}
	var scheds []api.ScheduleItem
	f.do(t, "GET", p+"/schedules", op, nil).decode(t, &scheds)
	if len(scheds) != 1 || scheds[0].Name != "office" || len(scheds[0].Intervals) != 1 {
		t.Fatalf("schedules: %+v", scheds)
	}
	// A credential may now name the group and schedule.
	res = f.do(t, "POST", p+"/credentials", op, map[string]any{"pin": "4711", "holder": "bob", "groups": []string{"staff"}, "schedules": []string{"office"}})
	if res.status != http.StatusCreated {
		t.Fatalf("credential with group and schedule: %d %s", res.status, res.body)
	}
	var bob api.CredentialItem
	res.decode(t, &bob)
	// One at a time; removed only once no credential names them.
	var g api.GroupItem
	f.do(t, "GET", p+"/groups/staff", f.prov.Token(t, "vera", "viewer"), nil).decode(t, &g)
	if g.Name != "staff" || !slices.Equal(g.Doors, []string{"front"}) {
		t.Fatalf("get group: %+v", g)
	}
	var sc api.ScheduleItem
	f.do(t, "GET", p+"/schedules/office", op, nil).decode(t, &sc)
	if sc.Name != "office" || len(sc.Intervals) != 1 || !slices.Equal(sc.Intervals[0].Days, []string{"mon", "tue"}) {
		t.Fatalf("get schedule: %+v", sc)
	}
	for _, path := range []string{p + "/groups/staff", p + "/schedules/office"} {
		res := f.do(t, "DELETE", path, op, nil)
		if res.status != http.StatusConflict || !strings.Contains(res.problem(t).Detail, bob.ID) {
			t.Fatalf("DELETE %s named by a credential: %d %s", path, res.status, res.body)
		}
	}
	for _, path := range []string{p + "/groups/nosuch", p + "/schedules/nosuch"} {
		for _, method := range []string{"GET", "DELETE"} {
			if res := f.do(t, method, path, op, nil); res.status != http.StatusNotFound {
				t.Errorf("%s %s: %d %s", method, path, res.status, res.body)
			}
		}
	}
	if res := f.do(t, "GET", p+"/groups/no%20such", op, nil); res.status != http.StatusBadRequest || res.problem(t).Field != "name" {
		t.Errorf("a bad group name: %d %s", res.status, res.body)
	}
	if res := f.do(t, "PUT", p+"/groups/spare", op, map[string]any{"doors": []string{"front"}}); res.status != http.StatusOK {
		t.Fatalf("put group spare: %d %s", res.status, res.body)
	}
	var removed struct {
		Revision uint64 `json:"revision"`
	}
	f.do(t, "DELETE", p+"/groups/spare", op, nil).decode(t, &removed)
	if removed.Revision == 0 {
		t.Fatalf("remove group: %+v", removed)
	}
	if res := f.do(t, "GET", p+"/groups/spare", op, nil); res.status != http.StatusNotFound {
		t.Fatalf("a removed group: %d %s", res.status, res.body)
	}
	f.do(t, "GET", p+"/groups", op, nil).decode(t, &groups)
	if len(groups) != 1 || groups[0].Name != "staff" {
		t.Fatalf("groups after a removal: %+v", groups)
	}
	good := []byte(`{"rules": [{"name": "door-held", "match": "acme.hq.door_sensor.*.state", "when": "payload.open", "for": "30s",
	  "actions": [{"event": {"name": "alarm.door_held_open"}}]}]}`)
	badRules := []byte(`{"rules": [{"name": "too-hot", "match": "acme.hq.sensor.*.tlm", "when": "paylod.value > 28",
	  "actions": [{"event": {"name": "x"}}]}]}`)
	if res := f.do(t, "POST", p+"/rules/validate", op, badRules); res.status != http.StatusBadRequest || !strings.Contains(res.problem(t).Field, "when") {
		t.Fatalf("validate bad rules: %d %s", res.status, res.body)
	}
	if res := f.do(t, "GET", p+"/rules", op, nil); res.status != http.StatusNotFound {
		t.Fatalf("rules before any: %d %s", res.status, res.body)
	}
	var rep struct {
		Rules    int    `json:"rules"`
		Valid    bool   `json:"valid"`
		Revision uint64 `json:"revision"`
	}
	f.do(t, "POST", p+"/rules/validate", op, good).decode(t, &rep)
	if !rep.Valid || rep.Rules != 1 || rep.Revision != 0 {
		t.Fatalf("validate: %+v", rep)
	}
	if res := f.do(t, "PUT", p+"/rules", adm, badRules); res.status != http.StatusBadRequest {
		t.Fatalf("put bad rules: %d", res.status)
	}
	f.do(t, "PUT", p+"/rules", adm, good).decode(t, &rep)
	if rep.Revision == 0 {
		t.Fatalf("put rules: %+v", rep)
	}
	if got := f.do(t, "GET", p+"/rules", op, nil); got.status != http.StatusOK || string(got.body) != string(good) {
		t.Fatalf("get rules: %d %s", got.status, got.body)
	}
	log := f.auditLog(t)
	for _, a := range []string{"putGroup", "putSchedule", "putRules", "removeGroup"} {
		if !slices.ContainsFunc(log, func(e api.AuditEntry) bool { return e.Action == a }) {
			t.Errorf("no audit record of %s", a)
		}
	}
	if slices.ContainsFunc(log, func(e api.AuditEntry) bool { return e.Action == "validateRules" }) {
		t.Error("a validation, which changes nothing, was logged as a change")
	}
}

// testCommands: a command sent through the API reaches the device through
// the edge, its acks come back, and the outcome is reported with each ack
// (with or without a database), waited for and logged; a thing outside
// the inventory is refused.
func testCommands(t *testing.T, f *fixture) {
	dev := f.device(t, lock)
	sub, err := dev.HandleCommands(ctx(t), devicekit.HandlerFunc(func(_ context.Context, cmd devicekit.Command) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	op := f.prov.Token(t, "olivia", "operator")
	var rep api.CommandReport
	f.do(t, "POST", api.PathPrefix+"/commands?wait=20s", op, map[string]any{"thing": "hq.lock.l1", "action": "unlock",
		"params": map[string]string{"duration": "5s"}}).decode(t, &rep)
	if rep.Status != string(message.AckCompleted) || !rep.Final || rep.AckCount < 1 || rep.Waited != "final" {
		t.Fatalf("send and wait: %+v", rep)
	}
	status := func() (st api.CommandReport) {
		f.do(t, "GET", api.PathPrefix+"/commands/"+rep.ID+"?thing=hq.lock.l1", op, nil).decode(t, &st)
		return st
	}
	if f.c.Store() != nil {
		// The database lists the acks once the ingest has stored them.
		waitFor(t, "the command's acks in the database", func() bool { st := status(); return len(st.Acks) == st.AckCount })
	}
	st := status()
	if st.Status != "completed" || !st.Final || st.AckCount != rep.AckCount || len(st.Acks) != st.AckCount {
		t.Fatalf("status: %+v", st)
	}
	// The device accepted the command, then completed it (a redelivered
	// command is acked again with the outcome it recorded), oldest first.
	var statuses, ackIDs []string
	for i, a := range st.Acks {
		if _, err := message.ParseID(a.ID); err != nil || slices.Contains(ackIDs, a.ID) || a.Error != "" || a.Time.IsZero() ||
			a.ReceivedAt.IsZero() || (i > 0 && a.Time.Before(st.Acks[i-1].Time)) {
			t.Fatalf("ack %d of %+v", i, st.Acks)
		}
		statuses, ackIDs = append(statuses, a.Status), append(ackIDs, a.ID)
	}
	if len(statuses) < 2 || statuses[0] != "accepted" || slices.ContainsFunc(statuses[1:], func(s string) bool { return s != "completed" }) {
		t.Fatalf("ack statuses %v, want accepted, then completed", statuses)
	}
	// They are the thing's acks of the command, as the events list them.
	var acks struct {
		Items []api.EventItem `json:"items"`
	}
	f.do(t, "GET", api.PathPrefix+"/events?thing=hq.lock.l1&type=ack&since=1h&limit=1000", op, nil).decode(t, &acks)
	var want []string
	for _, e := range acks.Items {
		if e.Correlates == rep.ID {
			want = append(want, e.ID)
		}
	}
	if !slices.Equal(ackIDs, want) {
		t.Fatalf("acks %v, the command's ack events %v", ackIDs, want)
	}
	var list struct {
		Items []api.CommandItem `json:"items"`
	}
	waitFor(t, "the command listed as completed", func() bool {
		f.do(t, "GET", api.PathPrefix+"/commands?thing=hq.lock.l1", op, nil).decode(t, &list)
		return slices.ContainsFunc(list.Items, func(c api.CommandItem) bool { return c.ID == rep.ID && c.Status == "completed" })
	})
	if i := slices.IndexFunc(list.Items, func(c api.CommandItem) bool { return c.ID == rep.ID }); i < 0 ||
		list.Items[i].Status != "completed" || list.Items[i].RequestedBy != "olivia" || list.Items[i].Action != "unlock" {
		t.Fatalf("command list: %+v", list.Items)
	}
	for _, b := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"thing": "hq.lock.nope", "action": "unlock"}, "thing"},
		{map[string]any{"thing": "other.hq.lock.l1", "action": "unlock"}, "thing"},
		{map[string]any{"thing": "hq._edge.hq", "action": "unlock"}, "thing"},
		{map[string]any{"thing": "hq._sys.commands", "action": "unlock"}, "thing"},
		{map[string]any{"thing": "hq.lock.>", "action": "unlock"}, "thing"},
		{map[string]any{"thing": "hq.lock.l1", "action": "un lock"}, "action"},
		{map[string]any{"thing": "hq.lock.l1", "action": "unlock", "deadline": "-1s"}, "deadline"},
		{map[string]any{"thing": "hq.lock.l1", "action": "unlock", "reply_to": "acme.hq.lock.l1.cmd"}, "reply_to"},
	} {
		res := f.do(t, "POST", api.PathPrefix+"/commands", op, b.body)
		if res.status != http.StatusBadRequest || res.problem(t).Field != b.field {
			t.Errorf("send %v: %d %s, want 400 naming %s", b.body, res.status, res.body, b.field)
		}
	}
	if res := f.do(t, "GET", api.PathPrefix+"/commands/"+rep.ID+"?thing=lab.reader.r2", op, nil); res.status != http.StatusNotFound {
		t.Errorf("status under a thing of another edge: %d %s", res.status, res.body)
	}
	log := f.auditLog(t)
	if !slices.ContainsFunc(log, func(e api.AuditEntry) bool {
		return e.Action == "sendCommand" && strings.Contains(e.Object, rep.ID) && e.Who == "olivia"
	}) {
		t.Fatal("no audit record of the command")
	}
}

// testEdgesThingsAudit: the edge's link and credential sync, the things'
// liveness and the edge's audit chain.
func testEdgesThingsAudit(t *testing.T, f *fixture) {
	v := f.prov.Token(t, "vera", "viewer")
	var edges []api.EdgeStatus
	waitFor(t, "hq's link and status reported up", func() bool {
		f.do(t, "GET", api.PathPrefix+"/edges", v, nil).decode(t, &edges)
		return len(edges) == 2 && edges[0].Link == "up" && edges[0].Backlog != nil
	})
	if edges[0].Edge != "hq" || edges[1].Edge != "lab" || edges[1].Link != "down" {
		t.Fatalf("edges: %+v", edges)
	}
	// hq mirrors its credentials: what it received catches up with central.
	waitFor(t, "hq's credential sync", func() bool {
		var e api.EdgeStatus
		f.do(t, "GET", api.PathPrefix+"/edges/hq", v, nil).decode(t, &e)
		return e.CredentialVersion > 0 && e.CredentialsReceived == e.CredentialVersion && e.SyncAgeSeconds != nil
	})
	if res := f.do(t, "GET", api.PathPrefix+"/edges/mars", v, nil); res.status != http.StatusNotFound || res.problem(t).Field != "edge" {
		t.Fatalf("unknown edge: %d %s", res.status, res.body)
	}
	if res := f.do(t, "GET", api.PathPrefix+"/edges/a.b", v, nil); res.status != http.StatusBadRequest {
		t.Fatalf("bad edge code: %d %s", res.status, res.body)
	}
	f.device(t, reader) // a birth
	var things []api.ThingStatus
	waitFor(t, "the reader online", func() bool {
		f.do(t, "GET", api.PathPrefix+"/things?edge=hq", v, nil).decode(t, &things)
		i := slices.IndexFunc(things, func(x api.ThingStatus) bool { return x.Thing == "hq.reader.r1" })
		return i >= 0 && things[i].State == "online" && !things[i].LastSeen.IsZero()
	})
	if len(things) != 2 {
		t.Fatalf("things at hq: %+v", things)
	}
	// With a stale-after shorter than any silence, the online reader is
	// stale.
	strict, err := api.Start(ctx(t), api.Config{Central: f.c, StaleAfter: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	_, tok := f.token(t, "strict", "viewer")
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(ctx(t), "GET", api.PathPrefix+"/things?edge=hq", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	strict.Handler().ServeHTTP(rec, req)
	var strictThings []api.ThingStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &strictThings); err != nil {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if i := slices.IndexFunc(strictThings, func(x api.ThingStatus) bool { return x.Thing == "hq.reader.r1" }); i < 0 || strictThings[i].State != "stale" {
		t.Fatalf("with stale-after 1ns: %+v", strictThings)
	}
	var all []api.ThingStatus
	f.do(t, "GET", api.PathPrefix+"/things", v, nil).decode(t, &all)
	if i := slices.IndexFunc(all, func(x api.ThingStatus) bool { return x.Thing == "lab.reader.r2" }); i < 0 || all[i].State != "unknown" {
		t.Fatalf("lab's reader: %+v", all)
	}
	var audit struct {
		Intact bool `json:"intact"`
	}
	f.do(t, "GET", api.PathPrefix+"/edges/hq/audit", v, nil).decode(t, &audit)
	if !audit.Intact {
		t.Fatal("hq's audit chain reported broken")
	}
}

// testEvents: history without a database comes from central's event
// stream, filtered, paged without gaps or repeats both ways.
func testEvents(t *testing.T, f *fixture, _ bool) {
	dev := f.device(t, reader)
	var ids []string
	for i := range 5 {
		id, err := dev.PublishEvent(ctx(t), "test.event", map[string]float64{"n": float64(i), "value": float64(i) + 0.5})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	v := f.prov.Token(t, "vera", "viewer")
	q := api.PathPrefix + "/events?thing=hq.reader.r1&name=test.event&since=1h"
	pages := func(desc bool) []string {
		items, _ := f.eventPages(t, v, q, 2, desc)
		for _, e := range items {
			if e.Name != "test.event" || e.Thing != "hq.reader.r1" || e.Type != "evt" || len(e.Payload) == 0 {
				t.Fatalf("event: %+v", e)
			}
			// Received when central's stream stored it; the reading of
			// its payload; not late.
			var n struct{ N float64 }
			if err := json.Unmarshal(e.Payload, &n); err != nil || e.Value == nil || *e.Value != n.N+0.5 || e.Replayed ||
				e.ReceivedAt.IsZero() || !e.ReceivedAt.Equal(e.Time) {
				t.Fatalf("event %s: value %v, replayed %v, received %v, stored %v (%s)", e.ID, e.Value, e.Replayed, e.ReceivedAt, e.Time, e.Payload)
			}
		}
		return eventIDs(items)
	}
	waitFor(t, "the events at central", func() bool { return len(pages(false)) == len(ids) })
	if got := pages(false); !slices.Equal(got, ids) {
		t.Fatalf("ascending pages: %v, want %v", got, ids)
	}
	rev := slices.Clone(ids)
	slices.Reverse(rev)
	if got := pages(true); !slices.Equal(got, rev) {
		t.Fatalf("descending pages: %v, want %v", got, rev)
	}
	for _, b := range []struct{ query, field string }{
		{"from=yesterday", "from"}, {"since=-1h", "since"}, {"limit=0", "limit"}, {"limit=5000", "limit"},
		{"cursor=abc", "cursor"}, {"thing=hq.reader", "thing"}, {"edge=mars", "edge"}, {"desc=maybe", "desc"},
		{"type=a.b", "type"}, {"since=1h&from=2026-01-01T00:00:00Z", "since"},
	} {
		res := f.do(t, "GET", api.PathPrefix+"/events?"+b.query, v, nil)
		if res.status >= 500 || res.status < 400 || res.problem(t).Field != b.field {
			t.Errorf("events?%s: %d %s, want a problem naming %s", b.query, res.status, res.body, b.field)
		}
	}
	// A window in the past holds none of them.
	var old struct {
		Items []api.EventItem `json:"items"`
	}
	f.do(t, "GET", api.PathPrefix+"/events?thing=hq.reader.r1&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", v, nil).decode(t, &old)
	if len(old.Items) != 0 {
		t.Fatalf("events of 2020: %+v", old.Items)
	}
}

// testEventFilters: the events filtered by message type, by edge, or by
// both, are exactly those of that type or edge, among events of other
// types and of another edge (with or without a database).
func testEventFilters(t *testing.T, f *fixture) {
	lab := f.startEdge(t, "lab")
	waitFor(t, "lab's link", lab.LinkUp)
	hq, lb := f.device(t, reader), f.deviceAt(t, lab, labReader)
	name := "filter.t" + strconv.FormatInt(time.Now().UnixNano(), 36)
	publish := func(id message.ID, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id.String()
	}
	hqEvt := publish(hq.PublishEvent(ctx(t), name, map[string]int{"n": 1}))
	hqState := publish(hq.PublishState(ctx(t), name, map[string]bool{"open": true}))
	hqTlm := publish(hq.PublishTelemetry(ctx(t), name, map[string]float64{"value": 21.5}))
	labEvt := publish(lb.PublishEvent(ctx(t), name, map[string]int{"n": 2}))
	labTlm := publish(lb.PublishTelemetry(ctx(t), name, map[string]float64{"value": 19}))
	hqEvt2 := publish(hq.PublishEvent(ctx(t), name, map[string]int{"n": 3}))
	v := f.prov.Token(t, "vera", "viewer")
	// ids returns the ids of the events the filters select, all pages,
	// sorted.
	ids := func(filters string) []string {
		items, _ := f.eventPages(t, v, api.PathPrefix+"/events?since=1h&name="+name+filters, 2, false)
		got := eventIDs(items)
		slices.Sort(got)
		return got
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	all := sorted(hqEvt, hqState, hqTlm, labEvt, labTlm, hqEvt2)
	waitFor(t, "the events of both edges at central", func() bool { return slices.Equal(ids(""), all) })
	for _, c := range []struct {
		name, filters string
		want          []string
	}{
		{"events", "&type=evt", sorted(hqEvt, labEvt, hqEvt2)},
		{"telemetry", "&type=tlm", sorted(hqTlm, labTlm)},
		{"state", "&type=state", sorted(hqState)},
		{"acks", "&type=ack", nil},
		{"hq", "&edge=hq", sorted(hqEvt, hqState, hqTlm, hqEvt2)},
		{"lab", "&edge=lab", sorted(labEvt, labTlm)},
		{"lab's telemetry", "&edge=lab&type=tlm", sorted(labTlm)},
		{"hq's events, newest first", "&edge=hq&type=evt&desc=true", sorted(hqEvt, hqEvt2)},
	} {
		if got := ids(c.filters); !slices.Equal(got, c.want) {
			t.Errorf("%s (%s): %v, want %v", c.name, c.filters, got, c.want)
		}
	}
}

// testLogin: the console's authorization-code login against the provider
// sets a session cookie; a cookie-authenticated change needs the CSRF
// token; a login with a wrong state fails, and repeated failures are
// throttled.
func testLogin(t *testing.T, f *fixture) {
	f.prov.SetUser(oidctest.User{Subject: "carol", Email: "carol@example.com", Roles: []string{"admin"}})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == "/" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	res := f.doWith(t, client, "GET", api.PathPrefix+"/auth/login", nil, nil)
	if res.status != http.StatusFound || res.header.Get("Location") != "/" {
		t.Fatalf("login: %d %s %v", res.status, res.body, res.header)
	}
	var me api.Principal
	f.doWith(t, client, "GET", api.PathPrefix+"/me", nil, nil).decode(t, &me)
	if me.Subject != "carol" || me.Name != "carol@example.com" || me.Role != api.RoleAdmin || me.Via != "session" {
		t.Fatalf("me: %+v", me)
	}
	u, _ := url.Parse(f.web.URL)
	var csrf string
	for _, c := range jar.Cookies(u) {
		if c.Name == "lintel_csrf" {
			csrf = c.Value
		}
	}
	body := map[string]string{"name": "from-console", "role": "viewer"}
	if res := f.doWith(t, client, "POST", api.PathPrefix+"/tokens", body, nil); res.status != http.StatusForbidden || res.problem(t).Slug() != "csrf-token-mismatch" {
		t.Fatalf("POST without CSRF token: %d %s", res.status, res.body)
	}
	if res := f.doWith(t, client, "POST", api.PathPrefix+"/tokens", body, func(r *http.Request) { r.Header.Set("X-CSRF-Token", "guess") }); res.status != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token: %d", res.status)
	}
	if res := f.doWith(t, client, "POST", api.PathPrefix+"/tokens", body, func(r *http.Request) { r.Header.Set("X-CSRF-Token", csrf) }); res.status != http.StatusCreated {
		t.Fatalf("POST with the CSRF token: %d %s", res.status, res.body)
	}
	// A forged session cookie is refused.
	forged := f.doWith(t, noRedirect, "GET", api.PathPrefix+"/me", nil, func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: "lintel_session", Value: "eyJzdWIiOiJtYWxsb3J5Iiwicm9sZSI6ImFkbWluIn0.AAAA"})
	})
	if forged.status != http.StatusUnauthorized {
		t.Fatalf("forged session: %d %s", forged.status, forged.body)
	}
	// After logout the session is gone from the client.
	if res := f.doWith(t, client, "POST", api.PathPrefix+"/auth/logout", nil, nil); res.status != http.StatusNoContent {
		t.Fatalf("logout: %d", res.status)
	}
	if res := f.doWith(t, client, "GET", api.PathPrefix+"/me", nil, nil); res.status != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", res.status)
	}
	// A callback with a state the login did not issue fails, and the
	// address is throttled after a few failures.
	statuses := []int{}
	for range 7 {
		res := f.doWith(t, client, "GET", api.PathPrefix+"/auth/callback?code=x&state=forged", nil, nil)
		statuses = append(statuses, res.status)
		res.problem(t)
	}
	if statuses[0] != http.StatusUnauthorized || statuses[len(statuses)-1] != http.StatusTooManyRequests {
		t.Fatalf("failed logins: %v, want 401s then 429", statuses)
	}
	// A user without a Lintel role gets no session.
	f.prov.SetUser(oidctest.User{Subject: "guest", Roles: []string{"guest"}})
	if res := f.doWith(t, &http.Client{Jar: jar}, "GET", api.PathPrefix+"/auth/login", nil, nil); res.status != http.StatusForbidden && res.status != http.StatusTooManyRequests {
		t.Fatalf("login without a role: %d %s", res.status, res.body)
	}
}

// testBootstrap: the bootstrap token file made at start holds an admin
// token; a restart of the API with the file keeps it; revoked, it makes
// the start fail.
func testBootstrap(t *testing.T, f *fixture) {
	info, err := os.Stat(f.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", info.Mode().Perm())
	}
	var me api.Principal
	f.do(t, "GET", api.PathPrefix+"/me", f.admin, nil).decode(t, &me)
	if me.Role != api.RoleAdmin || me.Via != "token" {
		t.Fatalf("bootstrap token: %+v", me)
	}
	second := f.startAPI(t)
	if second.Org() != "acme" {
		t.Fatal(second.Org())
	}
	id := strings.Split(f.admin, "_")[1]
	if res := f.do(t, "DELETE", api.PathPrefix+"/tokens/"+id, f.admin, nil); res.status != http.StatusOK {
		t.Fatalf("revoke the bootstrap token: %d %s", res.status, res.body)
	}
	if res := f.do(t, "GET", api.PathPrefix+"/me", f.admin, nil); res.status != http.StatusUnauthorized {
		t.Fatalf("revoked bootstrap token: %d", res.status)
	}
	_, err = api.Start(ctx(t), api.Config{Central: f.c, BootstrapTokenFile: f.tokenFile})
	if err == nil {
		t.Fatal("start with a revoked bootstrap token")
	}
	if !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("error: %v", err)
	}
}

// TestStartRefusesBadConfig: configurations that cannot work are refused
// with an error naming the problem.
func TestStartRefusesBadConfig(t *testing.T) {
	if _, err := api.Start(context.Background(), api.Config{}); err == nil || !strings.Contains(err.Error(), "Central") {
		t.Fatalf("no central: %v", err)
	}
	raw, _ := json.Marshal(api.RoleOperator)
	if string(raw) != `"operator"` {
		t.Fatalf("role JSON %s", raw)
	}
}

// testLiveAndDoors: the live stream delivers a device's event as it
// happens, filtered to the thing asked for; a door shows the state its
// lock reported.
func testLiveAndDoors(t *testing.T, f *fixture) {
	v := f.prov.Token(t, "vera", "viewer")
	sctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, "GET", f.web.URL+api.PathPrefix+"/events/stream?thing=hq.lock.l1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+v)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	if l := <-lines; !strings.HasPrefix(l, ":") {
		t.Fatalf("first line %q", l)
	}
	// The stream is open: what is published now comes through it.
	f.device(t, reader).PublishEvent(ctx(t), "not.this.thing", nil)
	lk := f.device(t, lock)
	id, err := lk.PublishState(ctx(t), message.NameDoorState, message.DoorState{Door: "front", Locked: true})
	if err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		data, ok := strings.CutPrefix(l, "data: ")
		if !ok {
			continue
		}
		var e api.EventItem
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatal(err)
		}
		if e.Thing != "hq.lock.l1" {
			t.Fatalf("an event of %s on the stream of hq.lock.l1", e.Thing)
		}
		if e.ID == id.String() {
			if e.Name != message.NameDoorState {
				t.Fatalf("event: %+v", e)
			}
			break
		}
	}
	var doors []api.DoorItem
	waitFor(t, "the door's state", func() bool {
		f.do(t, "GET", api.PathPrefix+"/doors", v, nil).decode(t, &doors)
		return len(doors) == 1 && doors[0].State != nil && doors[0].State.Locked
	})
	if d := doors[0]; d.Code != "front" || !slices.Equal(d.Locks, []string{"hq.lock.l1"}) || !slices.Equal(d.Readers, []string{"hq.reader.r1"}) {
		t.Fatalf("door: %+v", d)
	}
}

// testTokenLogin: where enabled, an API token starts a console session
// (JSON only, throttled on failures); where not, the route is absent.
func testTokenLogin(t *testing.T, f *fixture) {
	_, tok := f.token(t, "console-machine", "operator")
	if res := f.do(t, "POST", api.PathPrefix+"/auth/token", "", map[string]string{"token": tok}); res.status != http.StatusNotFound {
		t.Fatalf("token login where not enabled: %d %s", res.status, res.body)
	}
	srv, err := api.Start(ctx(t), api.Config{Central: f.c, TokenLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(srv.Handler())
	defer web.Close()
	other := &fixture{web: web}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar}
	form := other.doWith(t, client, "POST", api.PathPrefix+"/auth/token", []byte("token="+tok), func(r *http.Request) {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	})
	if form.status != http.StatusUnsupportedMediaType {
		t.Fatalf("a form post: %d %s", form.status, form.body)
	}
	if res := other.doWith(t, client, "GET", api.PathPrefix+"/me", nil, nil); res.status != http.StatusUnauthorized {
		t.Fatalf("before login: %d", res.status)
	}
	if res := other.doWith(t, client, "POST", api.PathPrefix+"/auth/token", map[string]string{"token": tok}, nil); res.status != http.StatusOK {
		t.Fatalf("token login: %d %s", res.status, res.body)
	}
	var me api.Principal
	other.doWith(t, client, "GET", api.PathPrefix+"/me", nil, nil).decode(t, &me)
	if me.Via != "session" || me.Role != api.RoleOperator || me.Name != "console-machine" {
		t.Fatalf("me: %+v", me)
	}
	page := other.doWith(t, &http.Client{}, "GET", api.ConsolePath, nil, nil)
	if !strings.Contains(string(page.body), `id="token-login"`) {
		t.Fatal("the console offers no token login")
	}
	var statuses []int
	for range 7 {
		res := other.doWith(t, &http.Client{}, "POST", api.PathPrefix+"/auth/token", map[string]string{"token": "lintel_0123456789abcdef_" + strings.Repeat("B", 43)}, nil)
		statuses = append(statuses, res.status)
	}
	if statuses[0] != http.StatusUnauthorized || statuses[6] != http.StatusTooManyRequests {
		t.Fatalf("failed token logins: %v, want 401s then 429", statuses)
	}
}

// testAuditLogPaging: the operator audit log pages newest first without
// gaps or repeats, and refuses a bad cursor.
func testAuditLogPaging(t *testing.T, f *fixture) {
	for i := range 5 {
		f.token(t, "paging-"+strconv.Itoa(i), "viewer")
	}
	all := f.auditLog(t)
	if len(all) < 5 {
		t.Fatalf("only %d entries", len(all))
	}
	var got []uint64
	cursor := ""
	for range len(all) + 1 {
		u := api.PathPrefix + "/audit-log?limit=2"
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		var p struct {
			Items []api.AuditEntry `json:"items"`
			Next  string           `json:"next"`
		}
		f.do(t, "GET", u, f.admin, nil).decode(t, &p)
		for _, e := range p.Items {
			got = append(got, e.Seq)
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	want := make([]uint64, len(all))
	for i, e := range all {
		want[i] = e.Seq
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
	for i := 1; i < len(got); i++ {
		if got[i] >= got[i-1] {
			t.Fatalf("not newest first without repeats: %v", got)
		}
	}
	if res := f.do(t, "GET", api.PathPrefix+"/audit-log?cursor=-3", f.admin, nil); res.status != http.StatusBadRequest || res.problem(t).Field != "cursor" {
		t.Fatalf("bad cursor: %d %s", res.status, res.body)
	}
}
