package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/devicekit/simulator"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// testWait bounds every wait of the live tests: generous, for a loaded
// 2-core machine under the race detector. Nothing is timed against it.
const testWait = 2 * time.Minute

// syncBuffer is a bytes.Buffer that the demo may write while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// liveRun is the demo's live mode running in a goroutine.
type liveRun struct {
	t              *testing.T
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan error // run's result
	tmp            string     // $TMPDIR of the run
}

// startLive runs the demo with args in a goroutine, with $TMPDIR a
// directory of the test's, and stops it in cleanup if the test did not.
func startLive(t *testing.T, args ...string) *liveRun {
	t.Helper()
	r := &liveRun{t: t, done: make(chan error, 1), tmp: t.TempDir()}
	t.Setenv("TMPDIR", r.tmp)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- run(ctx, args, &r.stdout, &r.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(testWait):
			t.Errorf("run did not return within %s of its context's end", testWait)
		}
	})
	return r
}

// waitOutput waits until the output holds want, and returns the line that
// holds it.
func (r *liveRun) waitOutput(want string) string {
	r.t.Helper()
	deadline := time.Now().Add(testWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		out := r.stdout.String()
		if _, rest, ok := strings.Cut(out, want); ok {
			line, _, _ := strings.Cut(rest, "\n")
			return want + line
		}
		select {
		case err := <-r.done:
			r.done <- err
			r.t.Fatalf("run returned %v before printing %q\nstdout:\n%s\nstderr:\n%s", err, want, out, r.stderr.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q in the output after %s:\n%s\nstderr:\n%s", want, testWait, out, r.stderr.String())
		}
	}
}

// stop cancels the run and checks that it returns nil and leaves nothing
// in its temporary directory.
func (r *liveRun) stop() {
	r.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			r.t.Fatalf("run after its context ended: %v\nstderr:\n%s", err, r.stderr.String())
		}
	case <-time.After(testWait):
		r.t.Fatalf("run did not return within %s of its context's end", testWait)
	}
	if r.stderr.String() != "" {
		r.t.Logf("stderr:\n%s", r.stderr.String())
	}
	noneLeft(r.t, r.tmp)
}

// contextPath waits until the demo is up and returns the path of the
// lintelctl context it printed.
func (r *liveRun) contextPath() string {
	r.t.Helper()
	const export = "export LINTEL_CONTEXT="
	return strings.TrimPrefix(r.waitOutput(export), export)
}

// connectOperator loads the context at path and connects to central as
// its operator.
func connectOperator(t *testing.T, path string) (*config.Context, *nats.Conn) {
	t.Helper()
	c, err := config.LoadContext(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Org != org || c.User != authz.ServiceUser(org, operatorName) {
		t.Errorf("context for org %q, user %q; want %q, %q", c.Org, c.User, org, authz.ServiceUser(org, operatorName))
	}
	if _, err := c.CommandKey(); err != nil {
		t.Errorf("context's command key: %v", err)
	}
	if k, err := c.HashKey(); err != nil || len(k) != access.HashKeySize {
		t.Errorf("context's hash key: %d bytes, %v", len(k), err)
	}
	if inv, err := c.Inventory(); err != nil || !slices.ContainsFunc(inv.Things, func(th authz.Thing) bool { return th.Code == roofSensor.Code && th.MQTT }) {
		t.Errorf("context's inventory: %v, or without the MQTT sensor", err)
	}
	pw, err := c.Password()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(strings.Join(c.Servers, ","), nats.UserInfo(c.User, pw.Reveal()),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(c.User)))
	if err != nil {
		t.Fatalf("connect to central with the context: %v", err)
	}
	t.Cleanup(nc.Close)
	return c, nc
}

// TestLive runs the live mode without a database, fast, with short
// incidents; an operator connects with the context it printed and sees
// live traffic of each kind of device, and the transcript shows
// decisions, the rule's command and ack, and an outage caught up.
func TestLive(t *testing.T) {
	r := startLive(t, "-database", "none", "-speed", "20", "-cycle", "2s", "-outage", "1s")
	path := r.contextPath()
	if out := r.stdout.String(); !strings.Contains(out, "history: JetStream only") {
		t.Errorf("the banner does not say history is in JetStream only:\n%s", out)
	}
	c, nc := connectOperator(t, path)
	if c.DatabaseURL != "" {
		t.Errorf("context names database %q without one", c.DatabaseURL)
	}
	// The nats CLI line, printed after the context's, has the operator's
	// password.
	pw, _ := c.Password()
	if line := r.waitOutput("nats --server "); !strings.HasSuffix(line, "--user "+c.User+" --password "+pw.Reveal()+" sub '"+org+".>'") {
		t.Errorf("nats CLI line %q: not the operator's", line)
	}

	token := checkAPI(t, r)
	// The context names the API, with a copy of the token (mode 0600,
	// which APIToken checks): lintelctl goes through it.
	if tok, err := c.APIToken(); err != nil || tok.Reveal() != token || !strings.HasPrefix(c.APIURL, "http://127.0.0.1:") {
		t.Errorf("context's API %q, token: %v (the printed one: %v)", c.APIURL, err, tok.Reveal() == token)
	}

	msgs := make(chan *nats.Msg, 4096)
	sub, err := nc.ChanSubscribe(org+".>", msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	simulated := simulator.Things(simConfig(1))
	want := map[string]func(topic.Thing) bool{
		"a simulated device":       func(th topic.Thing) bool { return slices.Contains(simulated, th) },
		"the kiosk (HTTP gateway)": func(th topic.Thing) bool { return th == kiosk },
		"the roof sensor (MQTT)":   func(th topic.Thing) bool { return th == roofSensor },
	}
	deadline := time.After(testWait)
	for len(want) > 0 {
		select {
		case m := <-msgs:
			e, err := message.FromMsg(m)
			if err != nil {
				continue // not an envelope
			}
			for what, from := range want {
				if from(e.Source) {
					t.Logf("%s: %s %s on %s", what, e.Type, e.Name, m.Subject)
					delete(want, what)
				}
			}
		case <-deadline:
			t.Fatalf("no live message at central after %s from %v\nstdout:\n%s", testWait, mapKeys(want), r.stdout.String())
		}
	}

	for _, line := range []string{
		" granted (",
		" denied: ",
		"sounder s1: command sound (pattern alarm), for the rule door-forced",
		"sounder s1: sound completed",
		": unlock completed",
		"incident: link back; central received the ",
	} {
		t.Log(r.waitOutput(line))
	}
	r.stop()
	if out := r.stdout.String(); strings.Contains(out, aliceCard) || strings.Contains(out, unknownCard) {
		t.Errorf("the transcript shows a card number:\n%s", out)
	}
	// The banner prints the operator's password and the API token for the
	// user; the log (stderr) has neither, nor a card number.
	for what, secret := range map[string]string{"the operator's password": pw.Reveal(), "the API token": token,
		"a card number": aliceCard, "an unknown card's number": unknownCard} {
		if strings.Contains(r.stderr.String(), secret) {
			t.Errorf("the demo logged %s", what)
		}
	}
}

// TestLiveHistory runs the live mode with the database of
// $LINTEL_DATABASE_URL and sees the simulator's messages and decisions
// stored there. It is skipped without PostgreSQL, unless
// LINTEL_REQUIRE_DB=1.
func TestLiveHistory(t *testing.T) {
	db := pgtest.NewDB(t)
	t.Setenv(envDatabaseURL, db.DSN)
	r := startLive(t, "-speed", "20", "-cycle", "0")
	path := r.contextPath()
	if want := "history: PostgreSQL " + redact(db.DSN); !strings.Contains(r.stdout.String(), want) {
		t.Errorf("the banner lacks %q:\n%s", want, r.stdout.String())
	}
	c, _ := connectOperator(t, path)
	if c.DatabaseURL != db.DSN {
		t.Errorf("context's database %q, want %q", c.DatabaseURL, db.DSN)
	}

	sim := simulatedThings()
	var codes []string
	for _, things := range sim {
		for _, th := range things {
			codes = append(codes, th.Code)
		}
	}
	// Each kind of simulated device's messages, and the decisions on
	// their requests, reach the database.
	want := map[[2]string]bool{
		{string(simulator.EnvSensor), string(topic.Telemetry)}: true,
		{string(simulator.DoorSensor), string(topic.State)}:    true,
		{string(simulator.Lock), string(topic.State)}:          true,
		{string(simulator.Reader), string(topic.State)}:        true, // births
	}
	deadline := time.Now().Add(testWait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for decisions := 0; len(want) > 0 || decisions == 0; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("after %s, no %v of the simulated devices in lintel.events, and %d decisions in lintel.access_decisions\nstdout:\n%s\nstderr:\n%s",
				testWait, mapKeys(want), decisions, r.stdout.String(), r.stderr.String())
		}
		rows, err := db.Pool.Query(context.Background(),
			`SELECT DISTINCT thing_type, message_type FROM lintel.events WHERE org = $1 AND edge = $2 AND thing_code = ANY($3)`, org, edge, codes)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k [2]string
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				t.Fatal(err)
			}
			delete(want, k)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if err := db.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM lintel.access_decisions WHERE org = $1 AND edge = $2 AND reader LIKE 'reader-%'`, org, edge).Scan(&decisions); err != nil {
			t.Fatal(err)
		}
	}
	r.stop()
}

// checkAPI reads the API's URL and token from the banner and sees the
// API answer with edge hq (401 without the token), and the console served.
func checkAPI(t *testing.T, r *liveRun) (token string) {
	t.Helper()
	const consoleLine, tokenLine = "  console    ", "  token      "
	console := strings.TrimPrefix(r.waitOutput(consoleLine), consoleLine)
	token = strings.TrimPrefix(r.waitOutput(tokenLine), tokenLine)
	base, ok := strings.CutSuffix(console, api.ConsolePath)
	if !ok {
		t.Fatalf("console URL %q does not end in %s", console, api.ConsolePath)
	}
	get := func(url, token string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, _ := get(base+"/api/v1/edges", ""); code != http.StatusUnauthorized {
		t.Errorf("the API without a token: %d, want 401", code)
	}
	code, body := get(base+"/api/v1/edges", token)
	var edges []struct {
		Edge string `json:"edge"`
	}
	if err := json.Unmarshal(body, &edges); code != http.StatusOK || err != nil || len(edges) != 1 || edges[0].Edge != edge {
		t.Errorf("GET /api/v1/edges with the printed token: %d %s (%v), want edge %s", code, body, err, edge)
	}
	if code, body := get(console, ""); code != http.StatusOK || !strings.Contains(string(body), "<html") {
		t.Errorf("console: %d, %.200s", code, body)
	}
	return token
}

func mapKeys[K comparable, V any](m map[K]V) []K {
	var ks []K
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
