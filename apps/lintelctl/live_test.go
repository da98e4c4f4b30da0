package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/simulator"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/internal/tcpproxy"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// liveWait bounds the waits of the live tests: generous, for a loaded
// machine.
const liveWait = 60 * time.Second

// Things of the live tests' edge hq: reader r1 and lock l1 of door front,
// relay x1, whose commands always fail, and lock l2, which never
// connects, so its commands expire.
var (
	liveReader = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	liveLock   = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	liveRelay  = topic.Thing{Org: "acme", Edge: "hq", Type: "relay", Code: "x1"}
	liveIdle   = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l2"}
)

// liveSite is a running central with history in PostgreSQL, edge hq
// linked to it with its access service, reader r1 and lock l1 (which
// completes every command), and a context file for operator "ops".
type liveSite struct {
	dir     string // the site's files: devices/ (the simulated devices' passwords), state.json
	context string // the context file
	central *central.Central
	node    *edgekit.Node
	link    *tcpproxy.Proxy // hq's leaf link to central, to cut
	reader  *devicekit.Client
	pool    *pgxpool.Pool

	mu       sync.Mutex
	received map[string]devicekit.Command // what lock l1 received, by command id
}

// lockReceived returns the command lock l1 received with id, if any.
func (s *liveSite) lockReceived(id string) (devicekit.Command, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.received[id]
	return c, ok
}

var (
	liveOnce sync.Once
	live     *liveSite
	liveErr  error
	liveStop func()
)

// errNoDatabase is the live site's error when pgtest found no database
// (and skipped, as LINTEL_REQUIRE_DB allows).
var errNoDatabase = errors.New("no PostgreSQL for the live site (see testing/pgtest)")

// TestMain stops the shared live site after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if liveStop != nil {
		liveStop()
	}
	os.Exit(code)
}

// startLive returns the package's live site, starting it on first use.
// The site is shared by the live tests, which run one after another.
func startLive(t *testing.T) *liveSite {
	t.Helper()
	liveOnce.Do(func() {
		liveErr = errNoDatabase              // unless pgtest returns: it skips the test without one
		pool := pgtest.New(&sharedTB{TB: t}) // the database lives as long as the site
		live, liveErr = newLiveSite(pool)
	})
	if errors.Is(liveErr, errNoDatabase) {
		t.Skip(liveErr)
	}
	if liveErr != nil {
		t.Fatal(liveErr)
	}
	return live
}

// sharedTB lets the shared site's database outlive the test that made it:
// its cleanups run when the package's tests end, not the test's.
type sharedTB struct{ testing.TB }

func (s *sharedTB) Cleanup(f func()) {
	prev := liveStop
	liveStop = func() {
		f()
		if prev != nil {
			prev()
		}
	}
}

func newLiveSite(pool *pgxpool.Pool) (*liveSite, error) {
	ctx, cancel := context.WithTimeout(context.Background(), liveWait)
	defer cancel()
	dir, err := os.MkdirTemp("", "lintelctl-live-")
	if err != nil {
		return nil, err
	}
	var closers []func()
	onStop := func(f func()) { closers = append(closers, f) }
	stopAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		_ = os.RemoveAll(dir)
	}
	prev := liveStop
	liveStop = func() {
		stopAll()
		if prev != nil {
			prev()
		}
	}

	inv := &authz.Inventory{
		Orgs:  []authz.Org{{Code: "acme", Name: "Acme"}},
		Edges: []authz.Edge{{Org: "acme", Code: "hq", Name: "Headquarters"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"},
			{Name: "ops", Kind: authz.ServiceOperator, Org: "acme"}},
		Doors: []authz.Door{{Org: "acme", Edge: "hq", Code: "front", Readers: []string{"r1"}, Locks: []string{"l1"}},
			{Org: "acme", Edge: "hq", Code: "door-reader-1", Readers: []string{"reader-1"}, Locks: []string{"lock-1"}}},
	}
	sims := simulator.Things(simulator.Config{Org: "acme", Edge: "hq", Readers: 1, Locks: 1, DoorSensors: 1, EnvSensors: 1})
	for _, th := range append([]topic.Thing{liveReader, liveLock, liveRelay, liveIdle}, sims...) {
		inv.Things = append(inv.Things, authz.Thing{Thing: th})
	}
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(ctx, inv, nil)
	if err != nil {
		return nil, err
	}
	st, sec := res.State, res.Secrets
	hashKey, err := access.GenerateHashKey()
	if err != nil {
		return nil, err
	}
	ops := authz.ServiceUser("acme", "ops")
	invJSON, err := json.Marshal(inv)
	if err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{
		"ops.password":      []byte(sec.Passwords[ops].Reveal() + "\n"),
		"command-acme.seed": []byte(sec.CommandSeeds["acme"].Reveal() + "\n"),
		"inventory.json":    invJSON,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	if err := access.WriteHashKey(filepath.Join(dir, "hash-acme.key"), hashKey); err != nil {
		return nil, err
	}
	// The simulated devices' passwords and the state, as render writes
	// them, for sim.
	if err := os.Mkdir(filepath.Join(dir, "devices"), 0o700); err != nil {
		return nil, err
	}
	for _, th := range sims {
		user := authz.DeviceUser(th)
		if err := os.WriteFile(filepath.Join(dir, "devices", user+".password"), []byte(sec.Passwords[user].Reveal()+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	if err := authz.SaveState(filepath.Join(dir, "state.json"), st); err != nil {
		return nil, err
	}
	if err := authz.WriteSeedFile(filepath.Join(dir, "leaf.seed"), sec.EdgeSeeds[authz.EdgeKeyID("acme", "hq")]); err != nil {
		return nil, err
	}

	s := &liveSite{dir: dir, pool: pool, received: map[string]devicekit.Command{}}
	centralUser := authz.ServiceUser("acme", "central")
	if s.central, err = central.Start(ctx, central.Config{
		Inventory: inv, State: st, Database: pool,
		Orgs: map[string]central.OrgSecrets{"acme": {Service: "central", Password: sec.Passwords[centralUser],
			CommandKey: sec.CommandSeeds["acme"], HashKey: hashKey}},
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
			StoreDir: filepath.Join(dir, "central"), MaxMemoryStore: 64 << 20, MaxFileStore: 1 << 30, PingInterval: time.Second},
	}); err != nil {
		return nil, err
	}
	onStop(s.central.Stop)
	if s.link, err = tcpproxy.New(s.central.LeafAddr()); err != nil {
		return nil, err
	}
	onStop(s.link.Close)
	if s.node, err = edgekit.Start(ctx, edgekit.NodeConfig{
		Org: "acme", Edge: "hq", Inventory: inv, State: st,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, StoreDir: filepath.Join(dir, "edge"), MaxFileStore: 1 << 30,
			PingInterval: time.Second, HubURLs: []string{"nats-leaf://" + s.link.Addr()}, ConfigDir: dir, SeedFile: "leaf.seed"},
		LeafReconnectInterval: 100 * time.Millisecond,
		CommandKey:            sec.CommandSeeds[authz.EdgeKeyID("acme", "hq")],
		StatusInterval:        time.Second,
	}); err != nil {
		return nil, err
	}
	onStop(s.node.Stop)
	if err := authz.WriteSeedFile(filepath.Join(dir, "audit.seed"), sec.AuditSeeds[authz.EdgeKeyID("acme", "hq")]); err != nil {
		return nil, err
	}
	auditKey, err := access.ReadAuditKey(filepath.Join(dir, "audit.seed"))
	if err != nil {
		return nil, err
	}
	svc, err := access.StartService(ctx, s.node, access.ServiceConfig{HashKey: hashKey, AuditKey: auditKey, Inventory: inv, SyncInterval: 200 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	onStop(svc.Stop)

	connect := func(th topic.Thing) (*devicekit.Client, error) {
		d, err := devicekit.Connect(ctx, devicekit.Config{Thing: th, URLs: []string{s.node.ClientURL()},
			Password: devicekit.Password(sec.Passwords[authz.DeviceUser(th)].Reveal()), CommandKeys: st.CommandPublicKeys("acme", "hq")})
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", th, err)
		}
		onStop(func() { _ = d.Close() })
		return d, nil
	}
	if s.reader, err = connect(liveReader); err != nil {
		return nil, err
	}
	for th, h := range map[topic.Thing]devicekit.HandlerFunc{
		liveLock: func(ctx context.Context, c devicekit.Command) error {
			s.mu.Lock()
			s.received[c.ID.String()] = c
			s.mu.Unlock()
			return nil
		},
		liveRelay: func(context.Context, devicekit.Command) error { return errors.New("relay x1 is jammed") },
	} {
		d, err := connect(th)
		if err != nil {
			return nil, err
		}
		if _, err := d.HandleCommands(context.Background(), h); err != nil {
			return nil, err
		}
	}

	s.context = filepath.Join(dir, "ops.context.json")
	if err := config.WriteContext(s.context, &config.Context{
		Servers: []string{s.central.ClientURL()}, Org: "acme", User: ops, PasswordFile: "ops.password",
		CommandSeedFile: "command-acme.seed", HashKeyFile: "hash-acme.key", InventoryFile: "inventory.json",
		DatabaseURL: pool.Config().ConnString(),
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// ctl runs lintelctl with the site's context.
func (s *liveSite) ctl(t *testing.T, args ...string) result {
	t.Helper()
	return lintelctl(t, append(args, "--context", s.context)...)
}

// mustJSON runs lintelctl with --output json and decodes its output into v.
func (s *liveSite) mustJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	r := s.ctl(t, append(args, "--output", "json")...)
	if r.err != nil {
		t.Fatalf("lintelctl %s: exit %d: %v\n%s", strings.Join(args, " "), r.code, r.err, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("lintelctl %s -o json: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
}

// eventually calls f until it returns nil, failing with its last error
// after liveWait.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(liveWait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// present has reader r1 present card at door front and returns the edge's
// decision.
func (s *liveSite) present(t *testing.T, card string) message.AccessDecision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), liveWait)
	defer cancel()
	e, err := s.reader.Request(ctx, message.NameAccessRequested,
		message.AccessRequest{Door: "front", Kind: message.CredentialCard, Credential: message.Credential(card)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := message.DecodePayload[message.AccessDecision](e)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// listed returns credential id as "cred list hq -o json" prints it.
func (s *liveSite) listed(t *testing.T, id string) credRow {
	t.Helper()
	var list []credRow
	s.mustJSON(t, &list, "cred", "list", "hq")
	for _, c := range list {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("cred list: no %s in %+v", id, list)
	return credRow{}
}

// TestLiveCredentials: cred add hashes the card number on the operator's
// machine; the edge decides by what lintelctl stored; list, suspend,
// reinstate and revoke act at the edge, with exit codes and JSON a script
// can rely on.
func TestLiveCredentials(t *testing.T) {
	s := startLive(t)
	// The site is shared (and -count runs the test again on it): a card
	// of its own.
	card := fmt.Sprintf("%010d", time.Now().UnixNano()%1e10)
	var added credRow
	s.mustJSON(t, &added, "cred", "add", "hq", "--holder", "alice", "--card", card, "--door", "front")
	if added.ID == "" || strings.Contains(added.ID, card) || added.State != "active" || added.Revision == 0 {
		t.Fatalf("cred add printed %+v", added)
	}
	// What central holds is the hash, never the number.
	for _, r := range []result{s.ctl(t, "cred", "list", "hq", "-o", "json"), s.ctl(t, "cred", "list", "hq")} {
		if r.err != nil || strings.Contains(r.stdout, card) || !strings.Contains(r.stdout, "alice") {
			t.Fatalf("cred list: %v\n%s", r.err, r.stdout)
		}
	}
	eventually(t, "the edge to grant alice", func() error {
		if d := s.present(t, card); !d.Granted {
			return fmt.Errorf("decision %+v", d)
		}
		return nil
	})

	// By card (hashed here) or by ID, the same credential.
	var sus stateReport
	s.mustJSON(t, &sus, "cred", "suspend", "--card", card, "--reason", "reported lost")
	if sus.ID != added.ID || sus.State != "suspended" || sus.Revisions["hq"] <= added.Revision {
		t.Fatalf("cred suspend printed %+v", sus)
	}
	if c := s.listed(t, added.ID); c.State != "suspended" || c.Reason != "reported lost" {
		t.Fatalf("cred list after suspend: %+v", c)
	}
	eventually(t, "the edge to deny the suspended card", func() error {
		if d := s.present(t, card); d.Granted || d.Reason != message.DenySuspended {
			return fmt.Errorf("decision %+v", d)
		}
		return nil
	})
	if r := s.ctl(t, "cred", "reinstate", added.ID); r.err != nil || !strings.Contains(r.stdout, "active at hq") {
		t.Fatalf("cred reinstate: exit %d %v\n%s", r.code, r.err, r.stdout)
	}
	if r := s.ctl(t, "cred", "revoke", added.ID, "--reason", "left"); r.err != nil {
		t.Fatalf("cred revoke: %v\n%s", r.err, r.stderr)
	}
	// A revoked credential stays revoked: an error, exit 1, naming why.
	if r := s.ctl(t, "cred", "reinstate", added.ID); r.code != exitError || !strings.Contains(r.stderr, "revoked") {
		t.Fatalf("reinstate of a revoked credential: exit %d\n%s", r.code, r.stderr)
	}
	if c := s.listed(t, added.ID); c.State != "revoked" {
		t.Fatalf("cred list after revoke: %+v", c)
	}

	// Bad input: named, and exit 2 for the command line, 1 for the rest.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cred", "add", "hq", "--card", "1"}, exitUsage, "--holder is required"},
		{[]string{"cred", "add", "hq", "--holder", "x"}, exitUsage, "--card NUMBER or --pin PIN"},
		{[]string{"cred", "add", "hq", "--holder", "x", "--card", "1", "--valid-until", "tomorrow"}, exitUsage, `--valid-until "tomorrow"`},
		{[]string{"cred", "add", "hq", "--holder", "x", "--card", "1", "--door", "back"}, exitError, "back"},
		{[]string{"cred", "add", "nowhere", "--holder", "x", "--card", "1"}, exitError, "nowhere"},
		{[]string{"cred", "suspend", "abc", "--reason", "r"}, exitUsage, `credential ID "abc"`},
		{[]string{"cred", "suspend", "--reason", "r"}, exitUsage, "by its ID or by --card"},
		{[]string{"cred", "revoke", added.ID}, exitUsage, `"reason" not set`},
		{[]string{"cred", "list", "hq", "-o", "yaml"}, exitUsage, `--output "yaml"`},
	} {
		r := s.ctl(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("lintelctl %s: exit %d, want %d; stderr %q does not name %q", strings.Join(tc.args, " "), r.code, tc.code, r.stderr, tc.want)
		}
	}
}

// TestLiveCommand: command send --wait follows a command to its outcome
// through the edge and the device's acks: exit 0 when it completed, 1 when
// the device failed it, each step (sent, accepted, the outcome) printed
// with its timing.
func TestLiveCommand(t *testing.T) {
	s := startLive(t)
	var rep commandReport
	s.mustJSON(t, &rep, "command", "send", "hq.lock.l1", "unlock", "--param", "duration=5s", "--wait", "--timeout", "60s")
	if rep.Status != "completed" || rep.Thing != liveLock.String() || rep.AcceptedAfter == "" || rep.DoneAfter == "" || rep.Params["duration"] != "5s" {
		t.Fatalf("command send printed %+v", rep)
	}
	if c, ok := s.lockReceived(rep.ID); !ok || c.Action != "unlock" || c.Params["duration"] != "5s" {
		t.Fatalf("the lock completed command %s, having received %+v (%v)", rep.ID, c, ok)
	}

	r := s.ctl(t, "command", "send", "acme.hq.relay.x1", "pulse", "--wait", "--timeout", "60s")
	if r.code != exitError || !strings.Contains(r.stdout, "sent") || !strings.Contains(r.stdout, "accepted  after") || !strings.Contains(r.stdout, "failed") ||
		!strings.Contains(r.stderr, "jammed") {
		t.Fatalf("a failing command: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// To a lock that never connects: expired once its deadline passed,
	// exit 1.
	r = s.ctl(t, "command", "send", "hq.lock.l2", "unlock", "--deadline", "1s", "--wait", "--timeout", "60s", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != exitError || rep.Status != "expired" || rep.DoneAfter == "" ||
		!strings.Contains(r.stderr, "expired") {
		t.Fatalf("a command that expires: exit %d %+v (%v)\n%s", r.code, rep, err, r.stderr)
	}
	// Without --wait: sent, pending, exit 0.
	s.mustJSON(t, &rep, "command", "send", "hq.lock.l1", "unlock")
	if rep.Status != "pending" || rep.ID == "" {
		t.Fatalf("command send without --wait printed %+v", rep)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"command", "send", "lock.l1", "unlock"}, exitUsage, "want EDGE.TYPE.CODE"},
		{[]string{"command", "send", "other.hq.lock.l1", "unlock"}, exitUsage, "of org other"},
		{[]string{"command", "send", "hq.lock.L 1", "unlock"}, exitUsage, `thing "hq.lock.L 1"`},
		{[]string{"command", "send", "hq.lock.l9", "unlock"}, exitError, "l9"},
		{[]string{"command", "send", "hq.lock.l1", "unlock", "--param", "x"}, exitUsage, `--param "x"`},
		{[]string{"command", "send", "hq.lock.l1"}, exitUsage, "accepts 2 arg(s)"},
	} {
		r := s.ctl(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("lintelctl %s: exit %d, want %d; stderr %q does not name %q", strings.Join(tc.args, " "), r.code, tc.code, r.stderr, tc.want)
		}
	}
}

// tailWhilePublishing runs tail, a command that returns after printing one
// message, while reader publishes a door.held event every 200 ms (tail may
// not have subscribed yet), and returns its result and the ids published.
func tailWhilePublishing(t *testing.T, reader *devicekit.Client, tail func() result) (result, []string) {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- tail() }()
	var ids []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), liveWait)
		id, err := reader.PublishEvent(ctx, "door.held", map[string]any{"door": "front", "seconds": 42})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
		select {
		case r := <-done:
			return r, ids
		case <-time.After(200 * time.Millisecond):
		}
		if len(ids) > int(liveWait/(200*time.Millisecond)) {
			t.Fatal("tail printed nothing")
		}
	}
}

// TestLiveTail: tail prints what devices publish as it reaches central,
// decoded, as a human line or CloudEvents JSON, and stops after --count.
func TestLiveTail(t *testing.T) {
	s := startLive(t)
	for _, asJSON := range []bool{false, true} {
		args := []string{"tail", "hq.reader.r1.evt", "--count", "1"}
		if asJSON {
			args = append(args, "-o", "json")
		}
		r, ids := tailWhilePublishing(t, s.reader, func() result { return s.ctl(t, args...) })
		if r.err != nil {
			t.Fatalf("tail: %v\n%s", r.err, r.stderr)
		}
		if asJSON {
			var ce struct {
				ID, Type, Subject string
				Data              map[string]any
			}
			if err := json.Unmarshal([]byte(r.stdout), &ce); err != nil {
				t.Fatalf("tail -o json: %v\n%s", err, r.stdout)
			}
			if !contains(ids, ce.ID) || ce.Data["seconds"] != float64(42) {
				t.Fatalf("tail -o json printed %+v, published %v", ce, ids)
			}
		} else if !strings.Contains(r.stdout, "acme.hq.reader.r1.evt  door.held") || !strings.Contains(r.stdout, `"seconds":42`) {
			t.Fatalf("tail printed %q", r.stdout)
		}
	}
	if r := s.ctl(t, "tail", "hq..evt", "--count", "1"); r.code != exitUsage || !strings.Contains(r.stderr, `filter "acme.hq..evt"`) {
		t.Fatalf("a bad filter: exit %d %s", r.code, r.stderr)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestLiveStatus: status reports the edge's link, its last status report,
// and the credential version the edge confirmed against central's.
func TestLiveStatus(t *testing.T) {
	s := startLive(t)
	var added credRow
	s.mustJSON(t, &added, "cred", "add", "hq", "--holder", "carol", "--pin", "4711")
	eventually(t, "status to show hq up, reporting, and in sync", func() error {
		var st []central.EdgeStatus
		r := s.ctl(t, "status", "-o", "json")
		if r.err != nil {
			return r.err
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			return err
		}
		if len(st) != 1 || st[0].Edge != "hq" || st[0].Link != "up" || st[0].Status == nil || !st[0].Status.LinkUp ||
			st[0].Status.DevicesOnline < 3 || st[0].CredentialVersion < added.Revision ||
			st[0].CredentialsReceived != st[0].CredentialVersion || st[0].CredentialsSyncedAt.IsZero() || len(st[0].Errors) > 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	r := s.ctl(t, "status", "hq")
	if r.err != nil || !strings.Contains(r.stdout, "EDGE") || !strings.Contains(r.stdout, "hq") || !strings.Contains(r.stdout, "up") {
		t.Fatalf("status: %v\n%s", r.err, r.stdout)
	}
	if r := s.ctl(t, "status", "lab"); r.code != exitError || !strings.Contains(r.stderr, `edge "lab"`) {
		t.Fatalf("status of an unknown edge: exit %d %s", r.code, r.stderr)
	}
}

// TestLiveQuery: query reads central's history in PostgreSQL: events by
// thing and type, paged by cursor without overlap; decisions; commands
// with their outcome.
func TestLiveQuery(t *testing.T) {
	s := startLive(t)
	var ids []string
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), liveWait)
		id, err := s.reader.PublishEvent(ctx, "query.test", map[string]int{"n": i})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	var page queryPage[eventRow]
	eventually(t, "the events in the database", func() error {
		s.mustJSON(t, &page, "query", "events", "--thing", "hq.reader.r1", "--type", "evt", "--limit", "100")
		n := 0
		for _, e := range page.Items {
			if contains(ids, e.ID) {
				n++
			}
		}
		if n != len(ids) {
			return fmt.Errorf("%d of %d events", n, len(ids))
		}
		return nil
	})
	// Paging: one at a time, every page after the previous, none twice.
	var seen []string
	cursor := ""
	for {
		args := []string{"query", "events", "--thing", "hq.reader.r1", "--type", "evt", "--limit", "1"}
		if cursor != "" {
			args = append(args, "--cursor", cursor)
		}
		var p queryPage[eventRow]
		s.mustJSON(t, &p, args...)
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
	if len(seen) != len(page.Items) {
		t.Fatalf("paging returned %d events, one page %d", len(seen), len(page.Items))
	}
	r := s.ctl(t, "query", "events", "--thing", "hq.reader.r1", "--limit", "1")
	if r.err != nil || !strings.Contains(r.stderr, "more: --cursor ") || !strings.Contains(r.stdout, "SUBJECT") {
		t.Fatalf("query events (table): %v\n%s\n%s", r.err, r.stdout, r.stderr)
	}

	// A decision and a command, then their history.
	s.present(t, "99999999")
	var rep commandReport
	s.mustJSON(t, &rep, "command", "send", "hq.lock.l1", "unlock", "--wait", "--timeout", "60s")
	eventually(t, "the decision and the command in the database", func() error {
		var d queryPage[decisionRow]
		s.mustJSON(t, &d, "query", "decisions", "--edge", "hq", "--door", "front", "--desc")
		if len(d.Items) == 0 || d.Items[0].Granted || d.Items[0].Reason != string(message.DenyUnknown) {
			return fmt.Errorf("decisions %+v", d.Items)
		}
		var c queryPage[commandRow]
		s.mustJSON(t, &c, "query", "commands", "--thing", "hq.lock.l1", "--desc")
		if len(c.Items) == 0 || c.Items[0].ID != rep.ID || c.Items[0].Status != "completed" || c.Items[0].RequestedBy != authz.ServiceUser("acme", "ops") {
			return fmt.Errorf("commands %+v", c.Items)
		}
		return nil
	})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"query", "events", "--cursor", "garbage"}, "cursor"},
		{[]string{"query", "events", "--from", "yesterday"}, `--from "yesterday"`},
		{[]string{"query", "events", "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"}, "is not after"},
		{[]string{"query", "events", "--limit", "0"}, "--limit 0"},
		{[]string{"query", "events", "--since", "1h", "--from", "2026-01-01T00:00:00Z"}, "none of the others can be"},
	} {
		if r := s.ctl(t, tc.args...); r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("lintelctl %s: exit %d, stderr %q does not name %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
}

// TestLiveContextErrors: a missing or broken context is named, with the
// field at fault.
func TestLiveContextErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envContext, "")
	if r := lintelctl(t, "status"); r.code != exitUsage || !strings.Contains(r.stderr, "no context") {
		t.Fatalf("no context: exit %d %s", r.code, r.stderr)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"servers": ["127.0.0.1:4222"], "org": "acme"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := lintelctl(t, "tail", "--context", bad)
	if r.code != exitError || !strings.Contains(r.stderr, "servers[0]") || !strings.Contains(r.stderr, "user") || !strings.Contains(r.stderr, "password_file") {
		t.Fatalf("a broken context: exit %d %s", r.code, r.stderr)
	}
	t.Setenv(envContext, filepath.Join(dir, "missing.json"))
	if r := lintelctl(t, "status"); r.code != exitError || !strings.Contains(r.stderr, "missing.json") {
		t.Fatalf("a missing context: exit %d %s", r.code, r.stderr)
	}
	// A context without the inventory: commands that need it say so.
	s := startLive(t)
	cx, err := config.LoadContext(s.context)
	if err != nil {
		t.Fatal(err)
	}
	noInv := *cx
	noInv.InventoryFile = ""
	base := filepath.Dir(s.context)
	noInv.PasswordFile = filepath.Join(base, cx.PasswordFile)
	noInv.CommandSeedFile = filepath.Join(base, cx.CommandSeedFile)
	noInv.HashKeyFile = filepath.Join(base, cx.HashKeyFile)
	path := filepath.Join(dir, "noinv.json")
	if err := config.WriteContext(path, &noInv); err != nil {
		t.Fatal(err)
	}
	if r := lintelctl(t, "status", "--context", path); r.code != exitError || !strings.Contains(r.stderr, "inventory_file is not set") {
		t.Fatalf("status without inventory: exit %d %s", r.code, r.stderr)
	}
	// A wrong password is refused by central, and said so.
	pw := filepath.Join(dir, "wrong.password")
	if err := os.WriteFile(pw, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noInv.PasswordFile = pw
	if err := config.WriteContext(path, &noInv); err != nil {
		t.Fatal(err)
	}
	if r := lintelctl(t, "tail", "--context", path, "--count", "1"); r.code != exitError || !strings.Contains(strings.ToLower(r.stderr), "authorization") {
		t.Fatalf("a wrong password: exit %d %s", r.code, r.stderr)
	}
}

// TestLiveRulesGroupsSchedules: a rules document is validated before it is
// stored, and stored as given; groups and schedules are stored for
// credentials to name.
func TestLiveRulesGroupsSchedules(t *testing.T) {
	s := startLive(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "rules.json")
	doc := `{"rules": [{"name": "held-open", "match": "acme.hq.reader.*.evt", "when": "name == 'door.held'",
  "actions": [{"command": {"target": "lock.l1", "action": "unlock", "ttl": "30s"}}]}]}`
	bad := filepath.Join(dir, "bad.json")
	for f, body := range map[string]string{good: doc, bad: `{"rules": [{"name": "x", "match": "acme.hq.>", "when": "name ==", "actions": []}]}`} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r := s.ctl(t, "rules", "validate", "hq", good); r.err != nil || !strings.Contains(r.stdout, "1 rules, valid for hq") {
		t.Fatalf("rules validate: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	r := s.ctl(t, "rules", "put", "hq", bad)
	if r.code != exitError || !strings.Contains(r.stderr, "bad.json") || !strings.Contains(r.stderr, `"x"`) {
		t.Fatalf("rules put of a bad document: exit %d %s", r.code, r.stderr)
	}
	var rep ruleReport
	s.mustJSON(t, &rep, "rules", "put", "hq", good)
	if rep.Rules != 1 || rep.Revision == 0 {
		t.Fatalf("rules put printed %+v", rep)
	}
	if r := s.ctl(t, "rules", "get", "hq"); r.err != nil || r.stdout != doc {
		t.Fatalf("rules get: %v\n%q, stored %q", r.err, r.stdout, doc)
	}
	if r := s.ctl(t, "rules", "put", "lab", good); r.code != exitError || !strings.Contains(r.stderr, `edge "lab"`) {
		t.Fatalf("rules put at an unknown edge: exit %d %s", r.code, r.stderr)
	}

	if r := s.ctl(t, "cred", "group", "put", "hq", "staff", "--door", "front"); r.err != nil || !strings.Contains(r.stdout, "stored group staff at hq") {
		t.Fatalf("group put: %v %s%s", r.err, r.stdout, r.stderr)
	}
	if r := s.ctl(t, "cred", "group", "put", "hq", "bad group", "--door", "front"); r.code != exitUsage || !strings.Contains(r.stderr, "bad group") {
		t.Fatalf("group put with a bad name: exit %d %s", r.code, r.stderr)
	}
	sched := filepath.Join(dir, "office.json")
	if err := os.WriteFile(sched, []byte(`{"intervals": [{"days": ["mon","tue"], "from": "07:00", "until": "19:00"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := s.ctl(t, "cred", "schedule", "put", "hq", "office", sched); r.err != nil {
		t.Fatalf("schedule put: %v %s", r.err, r.stderr)
	}
	if err := os.WriteFile(sched, []byte(`{"intervals": [{"days": ["someday"], "from": "07:00", "until": "19:00"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := s.ctl(t, "cred", "schedule", "put", "hq", "office", sched); r.code != exitError || !strings.Contains(r.stderr, "someday") {
		t.Fatalf("schedule put of a bad schedule: exit %d %s", r.code, r.stderr)
	}
	var c credRow
	s.mustJSON(t, &c, "cred", "add", "hq", "--holder", "dora", "--card", "4242", "--group", "staff", "--schedule", "office")
	if len(c.Groups) != 1 || len(c.Schedules) != 1 {
		t.Fatalf("cred add with group and schedule: %+v", c)
	}
	if r := s.ctl(t, "cred", "add", "hq", "--holder", "dora", "--card", "4242", "--group", "nobody"); r.code != exitError || !strings.Contains(r.stderr, "nobody") {
		t.Fatalf("cred add with an unknown group: exit %d %s", r.code, r.stderr)
	}
}

// TestLiveAudit: audit verify reports the edge's chain as central's
// auditor verified it; a decision record forged at central (not from the
// edge, not signed by it) breaks it, and verify then exits 1 naming it.
// TestLiveAuditRevokedGrant: a card revoked at central while hq's link
// is down is still granted by hq, offline; once the link is back, audit
// verify reports the grant of a revoked credential, which is no break of
// the chain: it exits 0 unless the chain has breaks (TestLiveAudit forges
// one, so a repeated run sees it).
func TestLiveAuditRevokedGrant(t *testing.T) {
	s := startLive(t)
	card := fmt.Sprintf("%010d", (time.Now().UnixNano()+13)%1e10)
	var c credRow
	s.mustJSON(t, &c, "cred", "add", "hq", "--holder", "ivan", "--card", card, "--door", "front")
	eventually(t, "hq to grant ivan", func() error {
		if d := s.present(t, card); !d.Granted {
			return fmt.Errorf("decision %+v", d)
		}
		return nil
	})
	s.link.Cut()
	t.Cleanup(func() {
		s.link.Restore()
		eventually(t, "hq's link back", func() error {
			if !s.node.LinkUp() {
				return errors.New("link down")
			}
			return nil
		})
	})
	eventually(t, "hq's link down", func() error {
		if s.node.LinkUp() {
			return errors.New("link up")
		}
		return nil
	})
	if r := s.ctl(t, "cred", "revoke", c.ID, "--reason", "stolen"); r.err != nil || !strings.Contains(r.stdout, "revoked at hq") {
		t.Fatalf("cred revoke: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if d := s.present(t, card); !d.Granted {
		t.Fatalf("hq, offline, decided %+v; it holds the credential active", d)
	}
	s.link.Restore()
	eventually(t, "the revoked grant reported", func() error {
		r := s.ctl(t, "audit", "verify", "hq", "-o", "json")
		var rep access.AuditReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			return fmt.Errorf("%v: %s", err, r.stderr)
		}
		if (r.code == exitOK) != (len(rep.Breaks) == 0) || !slices.ContainsFunc(rep.RevokedGrants, func(g access.AuditAlarm[access.RevokedGrantAlarm]) bool {
			return g.Alarm.Credential == c.ID && g.Alarm.Door == "front" && g.Alarm.Reason == "stolen" && g.Alarm.Offline
		}) {
			return fmt.Errorf("exit %d with %d breaks, revoked grants %+v", r.code, len(rep.Breaks), rep.RevokedGrants)
		}
		return nil
	})
	if r := s.ctl(t, "audit", "verify", "hq"); !strings.Contains(r.stdout, "REVOKED GRANT AT") || !strings.Contains(r.stdout, "ivan") ||
		!strings.Contains(r.stdout, "stolen") {
		t.Fatalf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestLiveAudit(t *testing.T) {
	s := startLive(t)
	s.present(t, "13131313") // at least one decision in the chain
	var before access.AuditReport
	eventually(t, "the decision verified", func() error {
		r := s.ctl(t, "audit", "verify", "hq", "-o", "json")
		if err := json.Unmarshal([]byte(r.stdout), &before); err != nil {
			return fmt.Errorf("%v: %s", err, r.stderr)
		}
		if want := exitCode(r.err); (len(before.Breaks) == 0) != (want == exitOK) {
			return fmt.Errorf("exit %d with %d breaks", want, len(before.Breaks))
		}
		if before.Head.Seq == 0 {
			return fmt.Errorf("report %+v", before)
		}
		return nil
	})

	// A forged record: unsigned, published on the edge (as a compromised
	// edge process might) rather than recorded by its access service.
	var ids message.IDGenerator
	forged := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: access.DecisionThing("acme", "hq", "r1"),
		Type: topic.Event, Name: message.NameAccessGranted}
	if err := message.SetPayload(forged, message.AccessDecision{Door: "front", Granted: true}); err != nil {
		t.Fatal(err)
	}
	msg, err := forged.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.node.Conn().PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the forged record reported", func() error {
		r := s.ctl(t, "audit", "verify", "hq")
		if r.code != exitError || !strings.Contains(r.stdout, "BROKEN") || !strings.Contains(r.stdout, string(access.BreakForged)) ||
			!strings.Contains(r.stderr, "is broken") {
			return fmt.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		return nil
	})
	if r := s.ctl(t, "audit", "verify", "lab"); r.code != exitError || !strings.Contains(r.stderr, `edge "lab"`) {
		t.Fatalf("audit verify of an unknown edge: exit %d %s", r.code, r.stderr)
	}
}

// TestLiveSim: sim runs the simulated devices of the inventory against the
// edge, as themselves; what they send is stored at central.
func TestLiveSim(t *testing.T) {
	s := startLive(t)
	var plan struct{ Things []authz.Thing }
	r := lintelctl(t, "sim", "--plan", "--org", "acme", "--edge", "hq", "--readers", "1", "--locks", "1", "--door-sensors", "1", "--env-sensors", "1")
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || len(plan.Things) != 4 || plan.Things[0].Code != "reader-1" {
		t.Fatalf("sim --plan: %v %v\n%s", r.err, err, r.stdout)
	}
	// A card enrolled for the simulated reader's door, which it presents
	// (--cards) among unknown ones.
	card := fmt.Sprintf("%010d", (time.Now().UnixNano()+17)%1e10)
	var c credRow
	s.mustJSON(t, &c, "cred", "add", "hq", "--holder", "sim", "--card", card, "--door", "door-reader-1")
	cards := filepath.Join(t.TempDir(), "cards.txt")
	if err := os.WriteFile(cards, []byte("# enrolled\n"+card+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hq to hold the card", func() error {
		if d := s.present(t, card); d.Reason != message.DenyDoorNotAllowed {
			return fmt.Errorf("decision at front %+v, want denied as not allowed there", d)
		}
		return nil
	})
	args := []string{"sim", "--url", s.node.ClientURL(), "--org", "acme", "--edge", "hq",
		"--passwords", filepath.Join(s.dir, "devices"), "--state", filepath.Join(s.dir, "state.json"),
		"--readers", "1", "--locks", "1", "--door-sensors", "1", "--env-sensors", "1", "--cards", cards,
		"--reader-interval", "50ms", "--door-interval", "50ms", "--telemetry-interval", "50ms", "--duration", "2s", "-o", "json"}
	r = lintelctl(t, args...)
	var rep simReport
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &rep) != nil || rep.Devices != 4 || rep.Acked == 0 || rep.Errors != 0 {
		t.Fatalf("sim: exit %d %v\n%s\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	eventually(t, "the simulated reader's events in the database", func() error {
		var p queryPage[eventRow]
		s.mustJSON(t, &p, "query", "events", "--thing", "hq.reader.reader-1")
		if len(p.Items) == 0 {
			return errors.New("none")
		}
		return nil
	})
	eventually(t, "the simulated reader's card granted and others denied", func() error {
		var p queryPage[decisionRow]
		s.mustJSON(t, &p, "query", "decisions", "--door", "door-reader-1", "--limit", "1000")
		granted, denied := 0, 0
		for _, d := range p.Items {
			switch {
			case d.Granted && d.Credential == c.ID && d.Holder == "sim":
				granted++
			case !d.Granted:
				denied++
			}
		}
		if granted == 0 || denied == 0 {
			return fmt.Errorf("%d granted, %d denied", granted, denied)
		}
		return nil
	})
	if r := lintelctl(t, append(slices.Clone(args[:len(args)-2]), "--cards", filepath.Join(t.TempDir(), "none.txt"))...); r.code != exitError || !strings.Contains(r.stderr, "--cards") {
		t.Fatalf("sim --cards of a missing file: exit %d %s", r.code, r.stderr)
	}
	// Ten readers, of which the inventory has one: the second is named.
	bad := append(slices.Clone(args[:len(args)-2]), "--readers", "10")
	if r := lintelctl(t, bad...); r.code != exitError || !strings.Contains(r.stderr, "reader-2") {
		t.Fatalf("sim with devices not in the inventory: exit %d %s", r.code, r.stderr)
	}
	if r := lintelctl(t, "sim", "--org", "acme", "--edge", "hq"); r.code != exitUsage || !strings.Contains(r.stderr, "--url is required") {
		t.Fatalf("sim without --url: exit %d %s", r.code, r.stderr)
	}
}
