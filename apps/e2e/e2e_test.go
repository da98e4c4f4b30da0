package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/internal/freeaddr"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

const wait = 60 * time.Second

var (
	reader = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	lock   = topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
)

// bin holds the binaries built once for the package's tests.
var bin struct {
	once sync.Once
	dir  string
	err  error
}

func build(t testing.TB) string {
	t.Helper()
	bin.once.Do(func() {
		bin.dir, bin.err = os.MkdirTemp("", "lintel-e2e-bin")
		if bin.err != nil {
			return
		}
		for _, app := range []string{"central", "edge", "lintelctl"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(bin.dir, app), "github.com/lintel-io/lintel/apps/"+app)
			if out, err := cmd.CombinedOutput(); err != nil {
				bin.err = fmt.Errorf("go build %s: %v\n%s", app, err, out)
				return
			}
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		_ = os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t testing.TB) string {
	t.Helper()
	return freeaddr.Loopback(t)
}

// site is a deployment rendered by lintelctl: the files central and the
// edge read, with the addresses and TLS files of the test.
type site struct {
	dir     string // lintelctl render's output
	bin     string // the binaries
	invFile string // the inventory render reads
	ca      *natstest.CA
	central string // central's configuration file
	edge    string // the edge's
	listen  string // central's client listener
	leaf    string // central's leaf listener
	device  string // the edge's device listener
	cadmin  string // admin listeners
	eadmin  string
	inv     *authz.Inventory
}

// centralJS connects to central over TLS as the org's central service and
// returns its JetStream; the connection closes when the test ends.
func (s *site) centralJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	user := authz.ServiceUser("acme", "central")
	nc, err := nats.Connect("tls://"+s.listen, nats.UserInfo(user, s.password(t, user)),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(user)), nats.RootCAs(s.ca.CAFile))
	if err != nil {
		t.Fatalf("connect to central over TLS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// password reads user's password as render wrote it.
func (s *site) password(t testing.TB, user string) string {
	t.Helper()
	devices, _ := filepath.Glob(filepath.Join(s.dir, "devices", "*", user+".password"))
	for _, p := range append(devices,
		filepath.Join(s.dir, "central", "secrets", config.CentralPasswordFile(user)),
		filepath.Join(s.dir, "services", user+".password"),
	) {
		if sec, err := config.ReadSecret(p); err == nil {
			return sec.Reveal()
		}
	}
	t.Fatalf("no password file for %s", user)
	return ""
}

// faultDevice connects th, a device of the site, to the edge listening on
// addr, as the fault suites' devices do: TLS pinned to the site's CA,
// commands checked against st's keys, an outbox when outbox is set, and
// quick reconnection. The device is closed when t ends.
func (s *site) faultDevice(t *testing.T, st *authz.State, addr string, th topic.Thing, outbox string) *devicekit.Client {
	t.Helper()
	d, err := devicekit.Connect(testCtx(t), devicekit.Config{Thing: th, URLs: []string{"nats://" + addr},
		CommandKeys: st.CommandPublicKeys(th.Org, th.Edge), Password: devicekit.Password(s.password(t, authz.DeviceUser(th))),
		CAFile: s.ca.CAFile, HeartbeatInterval: -1, ReconnectWait: 100 * time.Millisecond, Outbox: outbox,
		Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("device %s: %v", th, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// lintelctl runs lintelctl with args and fails the test on an error.
func (s *site) lintelctl(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(s.bin, "lintelctl"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("lintelctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// writeInventory writes inv where render reads it.
func (s *site) writeInventory(t testing.TB, inv *authz.Inventory) {
	t.Helper()
	s.inv = inv
	writeJSON(t, s.invFile, inv)
}

// edit sets keys of the configuration file at path, as an operator would.
func edit(t testing.TB, path string, set map[string]any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(config.StripComments(b), &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	writeJSON(t, path, m)
}

// render renders inv (nil: inventory(0)) with lintelctl into a new
// directory, then points the configuration files at the test's addresses,
// store directories, TLS files and database (none when dsn is empty).
func render(t testing.TB, dsn string, inv *authz.Inventory, hubURL func(leaf string) string) *site {
	t.Helper()
	if inv == nil {
		inv = inventory(0)
	}
	root := t.TempDir()
	s := &site{dir: filepath.Join(root, "deploy"), bin: build(t), invFile: filepath.Join(root, "inventory.json"), ca: natstest.TempCA(t)}
	s.writeInventory(t, inv)
	s.lintelctl(t, "render", "--inventory", s.invFile, "--out", s.dir, "--cost", "4")

	s.listen, s.leaf, s.device, s.cadmin, s.eadmin = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	tls := map[string]string{"cert_file": s.ca.ServerCertFile, "key_file": s.ca.ServerKeyFile}
	var database any
	if dsn != "" {
		writeSecret(t, filepath.Join(s.dir, "central/secrets/database.url"), dsn)
		database = map[string]any{"url_file": "secrets/database.url"}
	}
	s.central = filepath.Join(s.dir, "central/central.json")
	edit(t, s.central, map[string]any{
		"store_dir": filepath.Join(root, "central-store"), "listen": s.listen, "leaf_listen": s.leaf,
		"tls": tls, "leaf_tls": tls, "admin_listen": s.cadmin, "database": database,
	})
	s.edge = filepath.Join(s.dir, "edges/acme-hq/edge.json")
	edit(t, s.edge, map[string]any{
		"store_dir": filepath.Join(root, "edge-store"), "listen": s.device,
		"hub_urls": []string{hubURL(s.leaf)}, "tls": tls, "hub_tls": map[string]string{"ca_file": s.ca.CAFile},
		"admin_listen": s.eadmin,
	})
	return s
}

// inventory returns org acme with edge hq, reader r1, lock l1 and extra
// sensors s1..s{extra}, and central's service.
func inventory(extra int) *authz.Inventory {
	inv := &authz.Inventory{
		Orgs:     []authz.Org{{Code: "acme"}},
		Edges:    []authz.Edge{{Org: "acme", Code: "hq"}},
		Services: []authz.Service{{Name: "central", Kind: authz.ServiceCentral, Org: "acme"}},
		Things: []authz.Thing{{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}},
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}}},
	}
	for i := range extra {
		inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s" + strconv.Itoa(i+1)}})
	}
	return inv
}

// process is a running binary whose stderr is kept.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
}

func start(t testing.TB, binary string, args ...string) *process {
	t.Helper()
	return startEnv(t, nil, binary, args...)
}

// startEnv is start with the environment env (nil: this process's).
func startEnv(t testing.TB, env []string, binary string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Env = env
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			if t.Failed() { // a goroutine dump, in the log below
				_ = p.cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-p.done:
				case <-time.After(5 * time.Second):
				}
			}
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", filepath.Base(binary), p.log())
		}
		checkNoSecrets(t, binary, args, p.log())
		checkLogKeys(t, binary, p.log())
	})
	return p
}

// checkLogKeys fails t for a JSON log line of binary that names a
// top-level key twice (a logger tagged twice with the same attribute).
func checkLogKeys(t testing.TB, binary, log string) {
	t.Helper()
	for line := range strings.Lines(log) {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		keys, err := topLevelKeys(line)
		if err != nil {
			continue // not a JSON record (a goroutine dump, say)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("%s logged key %q twice: %s", filepath.Base(binary), k, line)
				return
			}
			seen[k] = true
		}
	}
}

// topLevelKeys returns the keys of the JSON object line, in order.
func topLevelKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v", err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		keys = append(keys, k)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends SIGTERM and returns the exit code.
func (p *process) stop(t testing.TB) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(wait):
		t.Fatal("no exit within a minute of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

func ready(addr string) func() bool {
	return func() bool {
		r, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	}
}

// TestBinaries: central and an edge, each its own process, rendered with
// TLS on every listener and the link pinned to central's CA. A device logs
// in over TLS and publishes; its events reach PostgreSQL. A command from
// central reaches the lock and its ack is recorded. With the link cut the
// edge keeps what devices publish and forwards it once the link is back.
// SIGTERM stops both with exit code 0, and every event is stored once.
func TestBinaries(t *testing.T) {
	dir := build(t)
	db := pgtest.NewDB(t)

	var proxy *natstest.Proxy
	s := render(t, db.DSN, nil, func(leaf string) string {
		var err error
		if proxy, err = natstest.NewProxy(leaf); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proxy.Close)
		// The certificate is for 127.0.0.1, the proxy's address too.
		return "nats-leaf://" + proxy.Addr()
	})
	cen := start(t, filepath.Join(dir, "central"), "-config", s.central)
	waitFor(t, "central ready", ready(s.cadmin))
	edg := start(t, filepath.Join(dir, "edge"), "-config", s.edge)
	waitFor(t, "edge ready", ready(s.eadmin))
	linked := func() bool {
		r, err := http.Get("http://" + s.eadmin + "/readyz")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		var body struct {
			Detail edgekit.NodeStatus `json:"detail"`
		}
		return json.NewDecoder(r.Body).Decode(&body) == nil && body.Detail.LinkUp
	}
	waitFor(t, "the edge's link to central", linked)

	st, err := authz.LoadState(filepath.Join(s.dir, "edges/acme-hq/state.json"))
	if err != nil {
		t.Fatal(err)
	}
	connect := func(th topic.Thing) *devicekit.Client {
		d, err := devicekit.Connect(testCtx(t), devicekit.Config{Thing: th, URLs: []string{"nats://" + s.device},
			CommandKeys: st.CommandPublicKeys("acme", "hq"),
			Password:    devicekit.Password(s.password(t, authz.DeviceUser(th))), CAFile: s.ca.CAFile,
			HeartbeatInterval: -1, ReconnectWait: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("device %s over TLS: %v", th, err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	dev := connect(reader)
	var ids []message.ID
	publish := func(n int) {
		t.Helper()
		for range n {
			id, err := dev.PublishEvent(testCtx(t), "door.opened", map[string]string{"door": "front"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	storedOnce := func() bool {
		for _, id := range ids {
			var n int
			if err := db.Pool.QueryRow(testCtx(t), "SELECT count(*) FROM lintel.events WHERE id = $1", id.String()).Scan(&n); err != nil || n != 1 {
				return false
			}
		}
		return true
	}
	publish(20)
	waitFor(t, "the events in PostgreSQL", storedOnce)

	// A command from central: the lock runs it, its ack is recorded.
	lk := connect(lock)
	ran := make(chan struct{}, 1)
	sub, err := lk.HandleCommands(testCtx(t), devicekit.HandlerFunc(func(context.Context, devicekit.Command) error {
		ran <- struct{}{}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	js := s.centralJS(t)
	cmdSeed, err := config.ReadSecret(filepath.Join(s.dir, "central/secrets", config.CentralCommandSeed("acme")))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := config.LoadInventory(filepath.Join(s.dir, "central/inventory.json"))
	if err != nil {
		t.Fatal(err)
	}
	hub, err := edgekit.NewHub(js, edgekit.HubConfig{Org: "acme", Inventory: inv, CommandKey: cmdSeed})
	if err != nil {
		t.Fatal(err)
	}
	res, err := hub.SendCommand(testCtx(t), lock, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "e2e-1"}, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-testCtx(t).Done():
		t.Fatal("the lock never ran the command")
	}
	waitFor(t, "the command's completed ack in PostgreSQL", func() bool {
		var n int
		err := db.Pool.QueryRow(testCtx(t), "SELECT count(*) FROM lintel.command_acks WHERE command_id = $1 AND status = 'completed'", res.ID().String()).Scan(&n)
		return err == nil && n == 1
	})

	// The metrics say so too.
	for _, m := range []struct{ addr, want string }{
		{s.cadmin, `lintel_command_acks_total{org="acme",status="completed"} 1`},
		{s.cadmin, `lintel_ingest_messages_total{org="acme",type="evt"}`},
		{s.cadmin, `lintel_central_edges_linked 1`},
		{s.cadmin, `lintel_ingest_mean_batch_size{org="acme"}`},
		{s.cadmin, `lintel_org_leader{org="acme"} 1`},
		// central maintains its database itself by default: one pass at
		// its start, recorded in the database, none failed.
		{s.cadmin, `lintel_storage_maintenance_runs_total 1`},
		{s.cadmin, `lintel_storage_maintenance_failed 0`},
		{s.eadmin, `lintel_edge_repairs_total 0`},
		{s.eadmin, `lintel_edge_messages_total{type="evt"}`},
		{s.eadmin, `lintel_edge_link_up 1`},
		{s.eadmin, `lintel_edge_commands_delivered_total 1`},
	} {
		waitFor(t, m.want+" in the metrics", func() bool {
			r, err := http.Get("http://" + m.addr + "/metrics")
			if err != nil {
				return false
			}
			defer r.Body.Close()
			b, err := io.ReadAll(r.Body)
			return err == nil && strings.Contains(string(b), m.want)
		})
	}

	// The link cut: the edge keeps what the device publishes.
	proxy.Cut()
	waitFor(t, "the link to drop", func() bool { return !linked() })
	publish(30)
	proxy.Restore()
	waitFor(t, "the backlog in PostgreSQL", storedOnce)

	// A device added to the inventory: render again, SIGHUP both, and it
	// logs in without a restart; the link stays up.
	added := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r2"}
	inv2 := *s.inv
	inv2.Things = append(append([]authz.Thing(nil), s.inv.Things...), authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r2"}})
	s.writeInventory(t, &inv2)
	s.lintelctl(t, "render", "--inventory", s.invFile, "--out", s.dir, "--cost", "4")
	for _, p := range []*process{cen, edg} {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both to reload", func() bool {
		return strings.Contains(cen.log(), `"msg":"reloaded"`) && strings.Contains(edg.log(), `"msg":"reloaded"`)
	})
	dev = connect(added)
	publish(5)
	waitFor(t, "the added device's events in PostgreSQL", storedOnce)
	if !linked() {
		t.Fatal("the link is down after the reload")
	}

	if code := edg.stop(t); code != 0 {
		t.Fatalf("edge exit code %d after SIGTERM", code)
	}
	if code := cen.stop(t); code != 0 {
		t.Fatalf("central exit code %d after SIGTERM", code)
	}
	if !storedOnce() {
		t.Fatal("events missing or duplicated after the stop")
	}
	for _, p := range []*process{cen, edg} {
		if !strings.Contains(p.log(), `"msg":"stopping"`) {
			t.Fatalf("no JSON log of the stop:\n%s", p.log())
		}
	}
}

// TestCheckNamesTheField: -check exits 0 for a good configuration, and 2
// for a broken one with the file and the field named.
func TestCheckNamesTheField(t *testing.T) {
	dir := build(t)
	s := render(t, "postgres://nobody@127.0.0.1:1/none", nil, func(leaf string) string { return "nats-leaf://" + leaf })
	for _, c := range []struct{ app, file string }{{"central", s.central}, {"edge", s.edge}} {
		out, err := exec.Command(filepath.Join(dir, c.app), "-config", c.file, "-check").CombinedOutput()
		if err != nil {
			t.Fatalf("%s -check of a good file: %v\n%s", c.app, err, out)
		}
	}
	cases := []struct {
		app, file, key, value, want string
	}{
		{"central", s.central, "listen", `"nowhere"`, "listen: want host:port"},
		{"central", s.central, "surprise", `1`, `unknown field "surprise"`},
		{"central", s.central, "store_dir", `7`, "store_dir: want string"},
		{"edge", s.edge, "hub_urls", `["http://x"]`, "hub_urls[0]"},
		{"edge", s.edge, "tls", `null`, "tls: required unless plaintext is true"},
		{"edge", s.edge, "log", `{"level": "loud"}`, "log.level"},
		{"edge", s.edge, "secrets_dir", `"/nonexistent"`, "secrets_dir"},
	}
	for _, c := range cases {
		t.Run(c.app+" "+c.key, func(t *testing.T) {
			b, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			m[c.key] = json.RawMessage(c.value)
			broken := filepath.Join(filepath.Dir(c.file), "broken.json")
			writeJSON(t, broken, m)
			cmd := exec.Command(filepath.Join(dir, c.app), "-config", broken, "-check")
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Fatalf("exit code %d, want 2:\n%s", code, out)
			}
			if !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "broken.json") {
				t.Fatalf("output does not name %q and the file:\n%s", c.want, out)
			}
		})
	}
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeSecret(t testing.TB, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEdgeWithoutCentral: the edge starts, serves its devices and stores
// their events with central never reachable, and stops cleanly.
func TestEdgeWithoutCentral(t *testing.T) {
	s := render(t, "", nil, func(string) string { return "nats-leaf://" + freeAddr(t) })
	edg := start(t, filepath.Join(s.bin, "edge"), "-config", s.edge)
	waitFor(t, "edge ready without central", ready(s.eadmin))
	st, err := authz.LoadState(filepath.Join(s.dir, "edges/acme-hq/state.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := devicekit.Connect(testCtx(t), devicekit.Config{Thing: reader, URLs: []string{"nats://" + s.device},
		CommandKeys: st.CommandPublicKeys("acme", "hq"), Password: devicekit.Password(s.password(t, authz.DeviceUser(reader))),
		CAFile: s.ca.CAFile, HeartbeatInterval: -1})
	if err != nil {
		t.Fatalf("device: %v", err)
	}
	defer d.Close()
	if _, err := d.PublishEvent(testCtx(t), "door.opened", map[string]string{"door": "front"}); err != nil {
		t.Fatalf("publish with central unreachable: %v", err)
	}
	if code := edg.stop(t); code != 0 {
		t.Fatalf("edge exit code %d after SIGTERM", code)
	}
}
