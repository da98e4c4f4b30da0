package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/edgekit/access"
)

// liveAPI is central's API served on the live site, and a context that
// names it with an admin token.
type liveAPI struct {
	*liveSite
	url, token string
	context    string // the context file with api_url and api_token_file
	dir        string

	handler http.Handler // the API's handler, recording what it receives

	mu     sync.Mutex
	bodies []string // "METHOD PATH BODY" of every request the API received
}

// received returns the requests the API received so far, as "METHOD PATH
// BODY".
func (a *liveAPI) received() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.bodies)
}

// startAPI serves central's API on the live site's central for the test
// and writes a context naming it (and the site's NATS settings, unused).
func startAPI(t *testing.T) *liveAPI {
	t.Helper()
	s := startLive(t)
	ctx, cancel := context.WithTimeout(context.Background(), liveWait)
	defer cancel()
	tokenFile := filepath.Join(s.dir, "api-admin.token")
	srv, err := api.Start(ctx, api.Config{Central: s.central, BootstrapTokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	a := &liveAPI{liveSite: s, dir: t.TempDir()}
	h := srv.Handler()
	// Every request's body is recorded on its way in, as sent.
	a.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.bodies = append(a.bodies, r.Method+" "+r.URL.Path+" "+string(body))
		a.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
	hs := httptest.NewServer(a.handler)
	t.Cleanup(hs.Close)
	t.Cleanup(func() { _ = srv.Close() }) // first: it ends the live streams
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	a.url, a.token = hs.URL, strings.TrimSpace(string(token))
	a.context = a.writeContext(t, "api.context.json", a.token)
	return a
}

// writeContext writes a context with the API and token, beside the token
// file, and returns its path.
func (a *liveAPI) writeContext(t *testing.T, name, token string) string {
	t.Helper()
	cx, err := config.LoadContext(a.liveSite.context)
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string { return filepath.Join(a.liveSite.dir, p) }
	cx.PasswordFile, cx.CommandSeedFile, cx.HashKeyFile, cx.InventoryFile = abs(cx.PasswordFile), abs(cx.CommandSeedFile), abs(cx.HashKeyFile), abs(cx.InventoryFile)
	cx.APIURL, cx.APITokenFile = a.url, strings.TrimSuffix(name, ".json")+".token"
	if err := os.WriteFile(filepath.Join(a.dir, cx.APITokenFile), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(a.dir, name)
	if err := config.WriteContext(path, cx); err != nil {
		t.Fatal(err)
	}
	return path
}

// api runs lintelctl with the API's context.
func (a *liveAPI) api(t *testing.T, args ...string) result {
	t.Helper()
	return lintelctl(t, append(args, "--context", a.context)...)
}

// apiJSON runs lintelctl through the API with --output json and decodes
// its output into v.
func (a *liveAPI) apiJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	r := a.api(t, append(args, "--output", "json")...)
	if r.err != nil {
		t.Fatalf("lintelctl (API) %s: exit %d: %v\n%s", strings.Join(args, " "), r.code, r.err, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("lintelctl (API) %s -o json: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
}

// sameKeys fails unless both JSON documents have the same keys at the
// top level (of their first element, for arrays): the same shape.
func sameKeys(t *testing.T, what string, viaNATS, viaAPI string) {
	t.Helper()
	keys := func(doc string) []string {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, doc)
		}
		if l, ok := v.([]any); ok && len(l) > 0 {
			v = l[0]
		}
		if p, ok := v.(map[string]any); ok {
			if items, ok := p["items"].([]any); ok && len(items) > 0 {
				return append(slices.Sorted(maps.Keys(p)), sameKeysOf(items[0])...)
			}
			return slices.Sorted(maps.Keys(p))
		}
		return nil
	}
	if n, a := keys(viaNATS), keys(viaAPI); !slices.Equal(n, a) {
		t.Errorf("%s: over NATS the keys are %v, through the API %v", what, n, a)
	}
}

func sameKeysOf(v any) []string {
	m, _ := v.(map[string]any)
	return slices.Sorted(maps.Keys(m))
}

// TestLiveAPI runs the live commands through central's API (a context
// with api_url) and checks that they print what they print over NATS for
// the same data, with the same exit codes.
func TestLiveAPI(t *testing.T) {
	a := startAPI(t)

	t.Run("Status", func(t *testing.T) {
		eventually(t, "the same status both ways", func() error {
			n, p := a.ctl(t, "status", "-o", "json"), a.api(t, "status", "-o", "json")
			if n.err != nil || p.err != nil {
				return fmt.Errorf("NATS %v, API %v: %s", n.err, p.err, p.stderr)
			}
			var sn, sp []central.EdgeStatus
			if err := json.Unmarshal([]byte(n.stdout), &sn); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(p.stdout), &sp); err != nil {
				return err
			}
			if len(sn) != 1 || len(sp) != 1 || sn[0].Edge != sp[0].Edge || sp[0].Link != "up" || sn[0].Link != "up" ||
				sn[0].CredentialVersion != sp[0].CredentialVersion || sp[0].Status == nil || sn[0].Status == nil {
				return fmt.Errorf("NATS %+v, API %+v", sn, sp)
			}
			sameKeys(t, "status", n.stdout, p.stdout)
			return nil
		})
		if r := a.api(t, "status", "hq"); r.err != nil || !strings.Contains(r.stdout, "EDGE") || !strings.Contains(r.stdout, "hq") {
			t.Fatalf("status (API): %v\n%s%s", r.err, r.stdout, r.stderr)
		}
		if r := a.api(t, "status", "lab"); r.code != exitError || !strings.Contains(r.stderr, `edge "lab"`) {
			t.Fatalf("status (API) of an unknown edge: exit %d %s", r.code, r.stderr)
		}
		if r := a.api(t, "status", "-o", "yaml"); r.code != exitUsage {
			t.Fatalf("status (API) -o yaml: exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("Credentials", func(t *testing.T) {
		card := fmt.Sprintf("%010d", (time.Now().UnixNano()+7)%1e10)
		var added credRow
		a.apiJSON(t, &added, "cred", "add", "hq", "--holder", "erin", "--card", card, "--door", "front")
		if added.ID == "" || added.State != "active" || added.Revision == 0 || added.Holder != "erin" || added.Kind != "card" {
			t.Fatalf("cred add (API) printed %+v", added)
		}
		// The number never reached the API: only its hash, made here.
		sent := 0
		for _, r := range a.received() {
			if strings.Contains(r, card) {
				t.Fatalf("the API received the card number: %s", r)
			}
			if strings.HasPrefix(r, "POST /api/v1/edges/hq/credentials ") && strings.Contains(r, added.ID) && strings.Contains(r, `"kind":"card"`) {
				sent++
			}
		}
		if sent != 1 {
			t.Fatalf("%d requests created credential %s by its id: %q", sent, added.ID, a.received())
		}
		// Central hashed it as lintelctl does over NATS: the same id.
		var sus stateReport
		a.mustJSON(t, &sus, "cred", "suspend", "--card", card, "--reason", "lost")
		if sus.ID != added.ID {
			t.Fatalf("the API's id %s, NATS's %s", added.ID, sus.ID)
		}
		n, p := a.ctl(t, "cred", "list", "hq", "-o", "json"), a.api(t, "cred", "list", "hq", "-o", "json")
		if n.err != nil || p.err != nil {
			t.Fatalf("cred list: NATS %v, API %v %s", n.err, p.err, p.stderr)
		}
		var ln, lp []credRow
		if json.Unmarshal([]byte(n.stdout), &ln) != nil || json.Unmarshal([]byte(p.stdout), &lp) != nil || len(ln) != len(lp) {
			t.Fatalf("cred list: NATS\n%s\nAPI\n%s", n.stdout, p.stdout)
		}
		for i := range ln {
			if !ln[i].Changed.Equal(lp[i].Changed) || ln[i].ID != lp[i].ID || ln[i].State != lp[i].State || ln[i].Revision != lp[i].Revision {
				t.Fatalf("cred list row %d: NATS %+v, API %+v", i, ln[i], lp[i])
			}
		}
		if strings.Contains(p.stdout, card) {
			t.Fatal("the card number is in the API's list")
		}
		// Reinstate by id, suspend by card (hashed here), revoke.
		var rep stateReport
		a.apiJSON(t, &rep, "cred", "reinstate", added.ID)
		if rep.ID != added.ID || rep.State != "active" || rep.Revisions["hq"] <= sus.Revisions["hq"] {
			t.Fatalf("cred reinstate (API) printed %+v", rep)
		}
		eventually(t, "the edge to grant erin", func() error {
			if d := a.present(t, card); !d.Granted {
				return fmt.Errorf("decision %+v", d)
			}
			return nil
		})
		a.apiJSON(t, &rep, "cred", "suspend", "--card", card, "--reason", "lost again")
		if rep.ID != added.ID || rep.State != "suspended" {
			t.Fatalf("cred suspend --card (API) printed %+v", rep)
		}
		if c := a.listed(t, added.ID); c.State != "suspended" || c.Reason != "lost again" {
			t.Fatalf("after suspend (API): %+v", c)
		}
		// Added again: updated in place.
		var again credRow
		a.apiJSON(t, &again, "cred", "add", "hq", "--holder", "erin b.", "--card", card, "--door", "front")
		if again.ID != added.ID || again.Holder != "erin b." {
			t.Fatalf("cred add (API) of a held card printed %+v", again)
		}
		for _, r := range a.received() {
			if strings.Contains(r, card) {
				t.Fatalf("the API received the card number: %s", r)
			}
		}
		// Without the hash key, cred add refuses instead of sending the
		// number.
		cx, err := config.LoadContext(a.context)
		if err != nil {
			t.Fatal(err)
		}
		cx.HashKeyFile = ""
		noKey := filepath.Join(a.dir, "nokey.json")
		if err := config.WriteContext(noKey, cx); err != nil {
			t.Fatal(err)
		}
		before := len(a.received())
		if r := lintelctl(t, "cred", "add", "hq", "--holder", "erin", "--card", card, "--door", "front", "--context", noKey); r.code != exitError || !strings.Contains(r.stderr, "hash_key_file") {
			t.Fatalf("cred add (API) without hash_key_file: exit %d %s", r.code, r.stderr)
		}
		if got := a.received(); len(got) != before {
			t.Fatalf("cred add (API) without hash_key_file sent %q", got[before:])
		}
		if r := a.api(t, "cred", "revoke", added.ID, "--reason", "left"); r.err != nil || !strings.Contains(r.stdout, "revoked at hq") {
			t.Fatalf("cred revoke (API): %v\n%s%s", r.err, r.stdout, r.stderr)
		}
		// As over NATS: exit 1 naming why, exit 2 for the command line.
		for _, tc := range []struct {
			args []string
			code int
			want []string
		}{
			{[]string{"cred", "reinstate", added.ID}, exitError, []string{"revoked", "409", "field state"}},
			{[]string{"cred", "add", "hq", "--holder", "x", "--card", "1", "--door", "back"}, exitError, []string{"back", "400", "(field doors"}},
			{[]string{"cred", "add", "nowhere", "--holder", "x", "--card", "1"}, exitError, []string{"nowhere", "404", "field edge"}},
			{[]string{"cred", "add", "hq", "--card", "1"}, exitUsage, []string{"--holder is required"}},
			{[]string{"cred", "suspend", "abc", "--reason", "r"}, exitUsage, []string{`credential ID "abc"`}},
			{[]string{"cred", "revoke", added.ID}, exitUsage, []string{`"reason" not set`}},
			{[]string{"cred", "list", "nowhere"}, exitError, []string{"nowhere", "field edge"}},
		} {
			r := a.api(t, tc.args...)
			for _, w := range tc.want {
				if r.code != tc.code || !strings.Contains(r.stderr, w) {
					t.Errorf("lintelctl (API) %s: exit %d, want %d; stderr %q does not name %q", strings.Join(tc.args, " "), r.code, tc.code, r.stderr, w)
				}
			}
		}
	})

	t.Run("GroupsSchedulesRules", func(t *testing.T) {
		n, p := a.ctl(t, "cred", "group", "put", "hq", "night", "--door", "front", "-o", "json"),
			a.api(t, "cred", "group", "put", "hq", "night", "--door", "front", "-o", "json")
		if n.err != nil || p.err != nil {
			t.Fatalf("group put: NATS %v, API %v %s", n.err, p.err, p.stderr)
		}
		sameKeys(t, "group put", n.stdout, p.stdout)
		sched := filepath.Join(a.dir, "night.json")
		if err := os.WriteFile(sched, []byte(`{"intervals": [{"days": ["sat","sun"], "from": "00:00", "until": "06:00"}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := a.api(t, "cred", "schedule", "put", "hq", "night", sched); r.err != nil || !strings.Contains(r.stdout, "stored schedule night at hq") {
			t.Fatalf("schedule put (API): %v %s%s", r.err, r.stdout, r.stderr)
		}
		if err := os.WriteFile(sched, []byte(`{"intervals": [{"days": ["someday"], "from": "07:00", "until": "19:00"}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := a.api(t, "cred", "schedule", "put", "hq", "night", sched); r.code != exitError || !strings.Contains(r.stderr, "someday") {
			t.Fatalf("schedule put (API) of a bad schedule: exit %d %s", r.code, r.stderr)
		}

		good := filepath.Join(a.dir, "rules.json")
		doc := `{"rules": [{"name": "held-open-api", "match": "acme.hq.reader.*.evt", "when": "name == 'door.held'",
  "actions": [{"command": {"target": "lock.l1", "action": "unlock", "ttl": "30s"}}]}]}`
		bad := filepath.Join(a.dir, "bad.json")
		for f, body := range map[string]string{good: doc, bad: `{"rules": [{"name": "x", "match": "acme.hq.>", "when": "name ==", "actions": []}]}`} {
			if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		n, p = a.ctl(t, "rules", "validate", "hq", good), a.api(t, "rules", "validate", "hq", good)
		if p.err != nil || p.stdout != n.stdout {
			t.Fatalf("rules validate: NATS %q, API %q (%v %s)", n.stdout, p.stdout, p.err, p.stderr)
		}
		if r := a.api(t, "rules", "put", "hq", bad); r.code != exitError || !strings.Contains(r.stderr, "bad.json") || !strings.Contains(r.stderr, "field rules[x]") {
			t.Fatalf("rules put (API) of a bad document: exit %d %s", r.code, r.stderr)
		}
		var rep ruleReport
		a.apiJSON(t, &rep, "rules", "put", "hq", good)
		if rep.Rules != 1 || rep.Revision == 0 || rep.Edge != "hq" {
			t.Fatalf("rules put (API) printed %+v", rep)
		}
		n, p = a.ctl(t, "rules", "get", "hq"), a.api(t, "rules", "get", "hq")
		if p.err != nil || p.stdout != doc || n.stdout != doc {
			t.Fatalf("rules get: NATS %q, API %q (%v)", n.stdout, p.stdout, p.err)
		}
		if r := a.api(t, "rules", "put", "lab", good); r.code != exitError || !strings.Contains(r.stderr, `edge "lab"`) || !strings.Contains(r.stderr, "field edge") {
			t.Fatalf("rules put (API) at an unknown edge: exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("GroupsSchedulesGetListRemove", func(t *testing.T) {
		sched := filepath.Join(a.dir, "weekend.json")
		if err := os.WriteFile(sched, []byte(`{"intervals": [{"days": ["sat","sun"], "from": "08:00", "until": "12:00"}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"cred", "group", "put", "hq", "lobby", "--door", "front"}, {"cred", "schedule", "put", "hq", "weekend", sched}} {
			if r := a.ctl(t, args...); r.err != nil {
				t.Fatalf("%s: %v %s", strings.Join(args, " "), r.err, r.stderr)
			}
		}
		// The same answers both ways.
		both := func(args ...string) string {
			t.Helper()
			n, p := a.ctl(t, args...), a.api(t, args...)
			if n.err != nil || p.err != nil || n.stdout != p.stdout {
				t.Fatalf("%s: NATS %v %q %s, API %v %q %s", strings.Join(args, " "), n.err, n.stdout, n.stderr, p.err, p.stdout, p.stderr)
			}
			return n.stdout
		}
		var g groupRow
		if err := json.Unmarshal([]byte(both("cred", "group", "get", "hq", "lobby", "-o", "json")), &g); err != nil || g.Name != "lobby" || !slices.Equal(g.Doors, []string{"front"}) {
			t.Fatalf("group get: %+v %v", g, err)
		}
		var gs []groupRow
		if err := json.Unmarshal([]byte(both("cred", "group", "list", "hq", "-o", "json")), &gs); err != nil || !slices.ContainsFunc(gs, func(r groupRow) bool { return r.Name == "lobby" }) {
			t.Fatalf("group list: %+v %v", gs, err)
		}
		var sc scheduleRow
		if err := json.Unmarshal([]byte(both("cred", "schedule", "get", "hq", "weekend", "-o", "json")), &sc); err != nil || sc.Name != "weekend" ||
			len(sc.Intervals) != 1 || sc.Intervals[0].From != "08:00" || !slices.Equal(sc.Intervals[0].Days, []string{"sat", "sun"}) {
			t.Fatalf("schedule get: %+v %v", sc, err)
		}
		if out := both("cred", "schedule", "list", "hq"); !strings.Contains(out, "NAME") || !strings.Contains(out, "weekend  sat,sun 08:00-12:00") {
			t.Fatalf("schedule list:\n%s", out)
		}
		// Named by a credential: refused both ways, naming it.
		card := fmt.Sprintf("%010d", (time.Now().UnixNano()+11)%1e10)
		var gus credRow
		a.mustJSON(t, &gus, "cred", "add", "hq", "--holder", "gus", "--card", card, "--group", "lobby", "--schedule", "weekend")
		for _, args := range [][]string{{"cred", "group", "remove", "hq", "lobby"}, {"cred", "schedule", "remove", "hq", "weekend"}} {
			n, p := a.ctl(t, args...), a.api(t, args...)
			if n.code != exitError || p.code != exitError || !strings.Contains(n.stderr, gus.ID) || !strings.Contains(p.stderr, gus.ID) || !strings.Contains(p.stderr, "409") {
				t.Fatalf("%s while a credential names it: NATS exit %d %s; API exit %d %s", strings.Join(args, " "), n.code, n.stderr, p.code, p.stderr)
			}
		}
		// Revoked, it never grants again: no longer in the way.
		if r := a.ctl(t, "cred", "revoke", gus.ID, "--reason", "left"); r.err != nil {
			t.Fatalf("cred revoke: %v %s", r.err, r.stderr)
		}
		if r := a.api(t, "cred", "group", "remove", "hq", "lobby"); r.err != nil || !strings.Contains(r.stdout, "removed group lobby at hq: credential set version") {
			t.Fatalf("group remove (API): exit %d %s%s", r.code, r.stdout, r.stderr)
		}
		var rm struct {
			Edge, Schedule string
			Revision       uint64
		}
		a.mustJSON(t, &rm, "cred", "schedule", "remove", "hq", "weekend")
		if rm.Edge != "hq" || rm.Schedule != "weekend" || rm.Revision == 0 {
			t.Fatalf("schedule remove printed %+v", rm)
		}
		for _, args := range [][]string{{"cred", "group", "get", "hq", "lobby"}, {"cred", "schedule", "get", "hq", "weekend"}, {"cred", "group", "remove", "hq", "lobby"}} {
			n, p := a.ctl(t, args...), a.api(t, args...)
			if n.code != exitError || p.code != exitError || !strings.Contains(p.stderr, "404") {
				t.Fatalf("%s once removed: NATS exit %d %s; API exit %d %s", strings.Join(args, " "), n.code, n.stderr, p.code, p.stderr)
			}
		}
		if out := both("cred", "group", "list", "hq", "-o", "json"); strings.Contains(out, `"lobby"`) {
			t.Fatalf("group list after the removal: %s", out)
		}
	})

	t.Run("Command", func(t *testing.T) {
		var rep commandReport
		a.apiJSON(t, &rep, "command", "send", "hq.lock.l1", "unlock", "--param", "duration=5s", "--wait", "--timeout", "60s")
		if rep.Status != "completed" || rep.Thing != liveLock.String() || rep.DoneAfter == "" || rep.Params["duration"] != "5s" || rep.Deadline.IsZero() {
			t.Fatalf("command send (API) printed %+v", rep)
		}
		if c, ok := a.lockReceived(rep.ID); !ok || c.Action != "unlock" || c.Params["duration"] != "5s" {
			t.Fatalf("the lock completed command %s, having received %+v (%v)", rep.ID, c, ok)
		}
		n := a.ctl(t, "command", "send", "hq.lock.l1", "unlock", "--param", "duration=5s", "--wait", "-o", "json", "--timeout", "60s")
		sameKeys(t, "command send --wait", n.stdout, mustMarshal(t, rep))
		r := a.api(t, "command", "send", "acme.hq.relay.x1", "pulse", "--wait", "--timeout", "60s")
		if r.code != exitError || !strings.Contains(r.stdout, "sent") || !strings.Contains(r.stdout, "failed") || !strings.Contains(r.stderr, "jammed") {
			t.Fatalf("a failing command (API): exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		r = a.api(t, "command", "send", "hq.lock.l2", "unlock", "--deadline", "1s", "--wait", "--timeout", "60s")
		if r.code != exitError || !strings.Contains(r.stdout, "expired") || !strings.Contains(r.stderr, "expired") {
			t.Fatalf("a command that expires (API): exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		a.apiJSON(t, &rep, "command", "send", "hq.lock.l1", "unlock")
		if rep.Status != "pending" || rep.ID == "" {
			t.Fatalf("command send (API) without --wait printed %+v", rep)
		}
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"command", "send", "lock.l1", "unlock"}, exitUsage, "want EDGE.TYPE.CODE"},
			{[]string{"command", "send", "hq.lock.l9", "unlock"}, exitError, "field thing"},
			{[]string{"command", "send", "hq.lock.l1", "unlock", "--param", "x"}, exitUsage, `--param "x"`},
		} {
			if r := a.api(t, tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("lintelctl (API) %s: exit %d, want %d; stderr %q does not name %q", strings.Join(tc.args, " "), r.code, tc.code, r.stderr, tc.want)
			}
		}
	})

	t.Run("Query", func(t *testing.T) {
		var ids []string
		for i := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), liveWait)
			id, err := a.reader.PublishEvent(ctx, "api.query.test", map[string]float64{"n": float64(i), "value": float64(i) + 0.25})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id.String())
		}
		args := []string{"query", "events", "--thing", "hq.reader.r1", "--type", "evt", "--name", "api.query.test", "--since", "1h", "--limit", "1000"}
		var pn, pp queryPage[eventRow]
		eventually(t, "the events in the database", func() error {
			a.mustJSON(t, &pn, args...)
			n := 0
			for _, e := range pn.Items {
				if contains(ids, e.ID) {
					n++
				}
			}
			if n != len(ids) {
				return fmt.Errorf("%d of %d events", n, len(ids))
			}
			return nil
		})
		a.apiJSON(t, &pp, args...)
		if len(pp.Items) != len(pn.Items) || pp.Next != pn.Next {
			t.Fatalf("query events: NATS %d items next %q, API %d items next %q", len(pn.Items), pn.Next, len(pp.Items), pp.Next)
		}
		for i := range pn.Items {
			n, p := pn.Items[i], pp.Items[i]
			if n.ID != p.ID || n.Subject != p.Subject || n.Name != p.Name || !n.Time.Equal(p.Time) || !n.DeviceTime.Equal(p.DeviceTime) || !bytes.Equal(n.Payload, p.Payload) ||
				n.ReceivedAt.IsZero() || !n.ReceivedAt.Equal(p.ReceivedAt) || n.Replayed != p.Replayed || n.Value == nil || p.Value == nil || *n.Value != *p.Value {
				t.Fatalf("event %d: NATS %+v, API %+v", i, n, p)
			}
		}
		// Paging through the API: the NATS path's cursors, none twice.
		var seen []string
		for cursor := ""; ; {
			pa := append(slices.Clone(args[:len(args)-2]), "--limit", "1")
			if cursor != "" {
				pa = append(pa, "--cursor", cursor)
			}
			var p queryPage[eventRow]
			a.apiJSON(t, &p, pa...)
			for _, e := range p.Items {
				if contains(seen, e.ID) {
					t.Fatalf("event %s on two pages", e.ID)
				}
				seen = append(seen, e.ID)
			}
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if len(seen) != len(pn.Items) {
			t.Fatalf("paging (API) returned %d events, one page %d", len(seen), len(pn.Items))
		}

		a.present(t, "98989898")
		var rep commandReport
		a.apiJSON(t, &rep, "command", "send", "hq.lock.l1", "unlock", "--wait", "--timeout", "60s")
		eventually(t, "the same decisions and commands both ways", func() error {
			var dn, dp queryPage[decisionRow]
			a.mustJSON(t, &dn, "query", "decisions", "--edge", "hq", "--door", "front", "--desc", "--limit", "5")
			a.apiJSON(t, &dp, "query", "decisions", "--edge", "hq", "--door", "front", "--desc", "--limit", "5")
			if len(dn.Items) == 0 || !slices.Equal(dn.Items, dp.Items) {
				return fmt.Errorf("decisions: NATS %+v, API %+v", dn.Items, dp.Items)
			}
			var cn, cp queryPage[commandRow]
			a.mustJSON(t, &cn, "query", "commands", "--thing", "hq.lock.l1", "--desc", "--limit", "5")
			a.apiJSON(t, &cp, "query", "commands", "--thing", "hq.lock.l1", "--desc", "--limit", "5")
			if len(cp.Items) == 0 || cp.Items[0].ID != rep.ID || cp.Items[0].Status != "completed" || len(cn.Items) != len(cp.Items) {
				return fmt.Errorf("commands: NATS %+v, API %+v", cn.Items, cp.Items)
			}
			for i := range cn.Items {
				if cn.Items[i].ID != cp.Items[i].ID || cn.Items[i].Status != cp.Items[i].Status || cn.Items[i].Thing != cp.Items[i].Thing {
					return fmt.Errorf("command %d: NATS %+v, API %+v", i, cn.Items[i], cp.Items[i])
				}
			}
			return nil
		})
		if r := a.api(t, "query", "events", "--thing", "hq.reader.r1", "--limit", "1"); r.err != nil || !strings.Contains(r.stderr, "more: --cursor ") || !strings.Contains(r.stdout, "SUBJECT") {
			t.Fatalf("query events (API, table): %v\n%s\n%s", r.err, r.stdout, r.stderr)
		}
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"query", "events", "--cursor", "garbage"}, exitUsage, "cursor"},
			{[]string{"query", "events", "--from", "yesterday"}, exitUsage, `--from "yesterday"`},
			{[]string{"query", "events", "--limit", "0"}, exitUsage, "--limit 0"},
			{[]string{"query", "events", "--type", "e v t"}, exitError, "field type"},
			{[]string{"query", "decisions", "--door", "no door"}, exitError, "field door"},
		} {
			if r := a.api(t, tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("lintelctl (API) %s: exit %d, want %d; stderr %q does not name %q", strings.Join(tc.args, " "), r.code, tc.code, r.stderr, tc.want)
			}
		}
	})

	t.Run("Audit", func(t *testing.T) {
		a.present(t, "31313131")
		eventually(t, "the same audit report both ways", func() error {
			n, p := a.ctl(t, "audit", "verify", "hq", "-o", "json"), a.api(t, "audit", "verify", "hq", "-o", "json")
			var rn, rp access.AuditReport
			if err := json.Unmarshal([]byte(n.stdout), &rn); err != nil {
				return fmt.Errorf("NATS: %v %s", err, n.stderr)
			}
			if err := json.Unmarshal([]byte(p.stdout), &rp); err != nil {
				return fmt.Errorf("API: %v %s", err, p.stderr)
			}
			if n.code != p.code || rn.Head != rp.Head || len(rn.Breaks) != len(rp.Breaks) || rp.Head.Seq == 0 {
				return fmt.Errorf("NATS exit %d %+v, API exit %d %+v", n.code, rn, p.code, rp)
			}
			sameKeys(t, "audit verify", n.stdout, p.stdout)
			return nil
		})
		if r := a.api(t, "audit", "verify", "lab"); r.code != exitError || !strings.Contains(r.stderr, `edge "lab"`) {
			t.Fatalf("audit verify (API) of an unknown edge: exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("Tail", func(t *testing.T) {
		for _, asJSON := range []bool{false, true} {
			args := []string{"tail", "hq.reader.r1.evt", "--count", "1"}
			if asJSON {
				args = append(args, "-o", "json")
			}
			r, ids := tailWhilePublishing(t, a.reader, func() result { return a.api(t, args...) })
			if r.err != nil {
				t.Fatalf("tail (API): %v\n%s", r.err, r.stderr)
			}
			if asJSON {
				var ce struct {
					ID, Type, Source string
					Data             map[string]any
				}
				if err := json.Unmarshal([]byte(r.stdout), &ce); err != nil {
					t.Fatalf("tail (API) -o json: %v\n%s", err, r.stdout)
				}
				if !contains(ids, ce.ID) || ce.Data["seconds"] != float64(42) || ce.Type != "io.lintel.evt.door.held" || ce.Source != "/acme/hq/reader/r1" {
					t.Fatalf("tail (API) -o json printed %+v, published %v", ce, ids)
				}
			} else if !strings.Contains(r.stdout, "acme.hq.reader.r1.evt  door.held") || !strings.Contains(r.stdout, `"seconds":42`) {
				t.Fatalf("tail (API) printed %q", r.stdout)
			}
		}
		if r := a.api(t, "tail", "hq..evt", "--count", "1"); r.code != exitUsage || !strings.Contains(r.stderr, `filter "acme.hq..evt"`) {
			t.Fatalf("a bad filter (API): exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("Tokens", func(t *testing.T) {
		wrong := a.writeContext(t, "wrong.json", "lintel_nosuch_0000000000000000")
		if r := lintelctl(t, "status", "--context", wrong); r.code != exitError || !strings.Contains(r.stderr, "401") {
			t.Fatalf("a wrong token: exit %d %s", r.code, r.stderr)
		}
		// A viewer token, revoked: refused from then on.
		var tok struct{ ID, Token string }
		a.call(t, "POST", "/tokens", `{"name": "lintelctl-test", "role": "viewer"}`, &tok)
		viewer := a.writeContext(t, "viewer.json", tok.Token)
		if r := lintelctl(t, "cred", "list", "hq", "--context", viewer); r.err != nil {
			t.Fatalf("a viewer token: exit %d %s", r.code, r.stderr)
		}
		if r := lintelctl(t, "command", "send", "hq.lock.l1", "unlock", "--context", viewer); r.code != exitError || !strings.Contains(r.stderr, "403") {
			t.Fatalf("a viewer sending a command: exit %d %s", r.code, r.stderr)
		}
		a.call(t, "DELETE", "/tokens/"+tok.ID, "", nil)
		if r := lintelctl(t, "cred", "list", "hq", "--context", viewer); r.code != exitError || !strings.Contains(r.stderr, "401") {
			t.Fatalf("a revoked token: exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("TLS", func(t *testing.T) {
		// The API over https with a certificate of a CA the system does
		// not trust: api_ca_file names it.
		ts := httptest.NewTLSServer(a.handler)
		t.Cleanup(ts.Close)
		ca := filepath.Join(a.dir, "api-ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		cx, err := config.LoadContext(a.context)
		if err != nil {
			t.Fatal(err)
		}
		cx.APIURL = ts.URL
		tlsContext := filepath.Join(a.dir, "tls.json")
		if err := config.WriteContext(tlsContext, cx); err != nil {
			t.Fatal(err)
		}
		if r := lintelctl(t, "status", "--context", tlsContext); r.code != exitError || !strings.Contains(r.stderr, "certificate") {
			t.Fatalf("https without api_ca_file: exit %d %s", r.code, r.stderr)
		}
		cx.APICAFile = "api-ca.pem" // relative to the context file
		if err := config.WriteContext(tlsContext, cx); err != nil {
			t.Fatal(err)
		}
		before := len(a.received())
		if r := lintelctl(t, "status", "--context", tlsContext); r.err != nil || !strings.Contains(r.stdout, "hq") {
			t.Fatalf("https with api_ca_file: exit %d %s%s", r.code, r.stdout, r.stderr)
		}
		if got := a.received()[before:]; !slices.ContainsFunc(got, func(r string) bool { return strings.HasPrefix(r, "GET /api/v1/edges ") }) {
			t.Fatalf("status over https reached the API with %q", got)
		}
		// A file that holds no certificate is refused, naming it.
		if err := os.WriteFile(ca, []byte("not a certificate\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := lintelctl(t, "status", "--context", tlsContext); r.code != exitError || !strings.Contains(r.stderr, "api_ca_file") {
			t.Fatalf("an api_ca_file without a certificate: exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("Context", func(t *testing.T) {
		for name, tc := range map[string]struct {
			cx   config.Context
			want string
		}{
			"PlainHTTP":  {config.Context{Org: "acme", APIURL: "http://lintel.example.com", APITokenFile: "api.context.token"}, "use https"},
			"NoToken":    {config.Context{Org: "acme", APIURL: a.url}, "api_token_file: required"},
			"NotAURL":    {config.Context{Org: "acme", APIURL: "lintel.example.com", APITokenFile: "api.context.token"}, "api_url"},
			"TokenNoURL": {config.Context{Org: "acme", Servers: []string{"nats://127.0.0.1:4222"}, User: "u", PasswordFile: "api.context.token", APITokenFile: "api.context.token"}, "set without api_url"},
			"CANoURL":    {config.Context{Org: "acme", Servers: []string{"nats://127.0.0.1:4222"}, User: "u", PasswordFile: "api.context.token", APICAFile: "api.context.token"}, "api_ca_file: set without api_url"},
			"NoCAFile":   {config.Context{Org: "acme", APIURL: a.url, APITokenFile: "api.context.token", APICAFile: "nosuch.pem"}, "api_ca_file"},
		} {
			path := filepath.Join(a.dir, name+".json")
			if err := config.WriteContext(path, &tc.cx); err != nil {
				t.Fatal(err)
			}
			if r := lintelctl(t, "status", "--context", path); r.code != exitError || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%s: exit %d %s", name, r.code, r.stderr)
			}
		}
		// The token file is a secret: mode 0600.
		loose := a.writeContext(t, "loose.json", a.token)
		if err := os.Chmod(filepath.Join(a.dir, "loose.token"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := lintelctl(t, "status", "--context", loose); r.code != exitError || !strings.Contains(r.stderr, "want 0600") {
			t.Fatalf("a token file others can read: exit %d %s", r.code, r.stderr)
		}
	})
}

// call sends one request to the API as its admin and decodes the answer.
func (a *liveAPI) call(t *testing.T, method, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, a.url+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
