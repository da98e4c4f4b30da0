package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/pgtest"
)

// secretsOf returns every secret value lintelctl render wrote under root
// (its output directory): passwords, NKey seeds and hash keys, and the API
// tokens central writes there (bootstrap_token_file), each also in the
// other encodings a careless log line might use.
func secretsOf(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		switch filepath.Ext(path) {
		case ".password", ".seed", ".key", ".token":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read secret: %v", err)
			return nil
		}
		s := strings.TrimSpace(string(b))
		if len(s) < 8 {
			return nil
		}
		out = append(out, s)
		if raw, err := hex.DecodeString(s); err == nil {
			out = append(out, base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw))
		}
		return nil
	})
	return out
}

// renderRoot returns the lintelctl render output a configuration file
// belongs to: the nearest directory above it with a devices directory, or
// "" for none.
func renderRoot(configFile string) string {
	for d := filepath.Dir(configFile); d != filepath.Dir(d); d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, "devices")); err == nil && fi.IsDir() {
			return d
		}
		if filepath.Base(d) == "deploy" {
			break
		}
	}
	return ""
}

// checkNoSecrets fails the test if the log of the process run with args
// holds a secret of the deployment its -config file belongs to. Every
// process start runs it once the process has ended.
func checkNoSecrets(t testing.TB, binary string, args []string, log string) {
	t.Helper()
	i := slices.Index(args, "-config")
	if i < 0 || i+1 >= len(args) {
		return
	}
	root := renderRoot(args[i+1])
	if root == "" {
		return
	}
	for _, s := range secretsOf(t, root) {
		if strings.Contains(log, s) {
			t.Errorf("%s logged a secret of %s (%d characters, starting %q)", filepath.Base(binary), root, len(s), s[:2])
		}
	}
}

// securityEvents returns the JSON log lines of log whose "security" key
// is event.
func securityEvents(log, event string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m[authz.LogKeySecurity] == event {
			out = append(out, m)
		}
	}
	return out
}

// TestNoSecretsInLogs runs central and an edge as processes and takes them
// through what makes logs: devices logging in, a flood of wrong passwords
// at the edge and at central, a publish outside a device's permissions, a
// command and its ack, a reload and a stop. No password, NKey seed, hash
// key or guessed password appears in any line either wrote, or in
// lintelctl's output, nor central's API token, a guessed token or a
// console session's cookie; the refused logins, the throttling and the
// permission violation are logged as security events with the user.
func TestNoSecretsInLogs(t *testing.T) {
	db := pgtest.NewDB(t)
	s := render(t, db.DSN, nil, func(leaf string) string { return "nats-leaf://" + leaf })
	// Central serves its API, with a first admin token and console
	// logins by token.
	apiAddr := freeAddr(t)
	edit(t, s.central, map[string]any{"api": map[string]any{"listen": apiAddr,
		"bootstrap_token_file": "secrets/admin.token", "token_login": true}})
	cen := start(t, filepath.Join(s.bin, "central"), "-config", s.central)
	waitFor(t, "central ready", ready(s.cadmin))
	edg := start(t, filepath.Join(s.bin, "edge"), "-config", s.edge)
	waitFor(t, "edge ready", ready(s.eadmin))
	waitFor(t, "the edge's link", func() bool {
		r, err := http.Get("http://" + s.eadmin + "/readyz")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		var body struct {
			Detail edgekit.NodeStatus `json:"detail"`
		}
		return json.NewDecoder(r.Body).Decode(&body) == nil && body.Detail.LinkUp
	})
	st, err := authz.LoadState(filepath.Join(s.dir, "edges/acme-hq/state.json"))
	if err != nil {
		t.Fatal(err)
	}

	// The lock logs in and runs a command from central.
	lk, err := devicekit.Connect(testCtx(t), devicekit.Config{Thing: lock, URLs: []string{"nats://" + s.device},
		CommandKeys: st.CommandPublicKeys("acme", "hq"), Password: devicekit.Password(s.password(t, authz.DeviceUser(lock))),
		CAFile: s.ca.CAFile, HeartbeatInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	ran := make(chan struct{}, 1)
	sub, err := lk.HandleCommands(testCtx(t), devicekit.HandlerFunc(func(context.Context, devicekit.Command) error {
		ran <- struct{}{}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	svc := authz.ServiceUser("acme", "central")
	nc, err := nats.Connect("tls://"+s.listen, nats.UserInfo(svc, s.password(t, svc)),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(svc)), nats.RootCAs(s.ca.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cmdSeed, err := config.ReadSecret(filepath.Join(s.dir, "central/secrets", config.CentralCommandSeed("acme")))
	if err != nil {
		t.Fatal(err)
	}
	hub, err := edgekit.NewHub(js, edgekit.HubConfig{Org: "acme", Inventory: s.inv, CommandKey: cmdSeed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.SendCommand(testCtx(t), lock, message.Command{Action: "unlock", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "secrets-1"}, "e2e"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-testCtx(t).Done():
		t.Fatal("the lock never ran the command")
	}

	// The API: the admin token, a wrong one, and a console session begun
	// from the token, whose cookie is a secret too.
	var guesses []string
	token, err := config.ReadSecret(filepath.Join(s.dir, "central/secrets/admin.token"))
	if err != nil {
		t.Fatalf("central's bootstrap token: %v", err)
	}
	apiGet := func(path string, set func(*http.Request)) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+apiAddr+"/api/v1"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		set(req)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	if code := apiGet("/edges", bearer(token.Reveal())); code != http.StatusOK {
		t.Fatalf("GET /edges with the admin token: %d", code)
	}
	wrongToken := "lintel-guessed-api-token-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	guesses = append(guesses, wrongToken)
	if code := apiGet("/edges", bearer(wrongToken)); code != http.StatusUnauthorized {
		t.Fatalf("GET /edges with a wrong token: %d, want 401", code)
	}
	login, err := http.Post("http://"+apiAddr+"/api/v1/auth/token", "application/json",
		strings.NewReader(`{"token": "`+token.Reveal()+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, login.Body)
	login.Body.Close()
	var session *http.Cookie
	for _, c := range login.Cookies() {
		if c.Name == "lintel_session" {
			session = c
		}
	}
	if login.StatusCode != http.StatusOK || session == nil {
		t.Fatalf("token login: %d, cookies %v", login.StatusCode, login.Cookies())
	}
	guesses = append(guesses, session.Value)
	if code := apiGet("/edges", func(r *http.Request) { r.AddCookie(session) }); code != http.StatusOK {
		t.Fatalf("GET /edges with the session: %d", code)
	}

	// Wrong passwords: the reader's at the edge until it is throttled, the
	// service's at central.
	guess := func(url, user string, opts ...nats.Option) {
		pw := "guess-" + strconv.Itoa(len(guesses)) + "-of-a-password"
		guesses = append(guesses, pw)
		c, err := nats.Connect(url, append(opts, nats.UserInfo(user, pw), nats.MaxReconnects(0), nats.Timeout(10*time.Second))...)
		if err == nil {
			c.Close()
			t.Fatalf("%s logged in with a wrong password", user)
		}
	}
	for range authz.DefaultFailureBurst + 3 {
		guess("tls://"+s.device, authz.DeviceUser(reader), nats.RootCAs(s.ca.CAFile))
	}
	for range 2 {
		guess("tls://"+s.listen, svc, nats.RootCAs(s.ca.CAFile))
	}

	// The lock publishes on the reader's event subject.
	lnc, err := nats.Connect("tls://"+s.device, nats.UserInfo(authz.DeviceUser(lock), s.password(t, authz.DeviceUser(lock))),
		nats.RootCAs(s.ca.CAFile), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer lnc.Close()
	if err := lnc.Publish("acme.hq.reader.r1.evt", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	_ = lnc.Flush()

	for _, c := range []struct {
		p           *process
		event, user string
	}{
		{edg, authz.SecurityLoginFailed, authz.DeviceUser(reader)},
		{edg, authz.SecurityLoginThrottled, authz.DeviceUser(reader)},
		{edg, authz.SecurityPermissionViolation, authz.DeviceUser(lock)},
		{cen, authz.SecurityLoginFailed, svc},
	} {
		waitFor(t, c.event+" of "+c.user+" in the log", func() bool {
			return slices.ContainsFunc(securityEvents(c.p.log(), c.event), func(m map[string]any) bool { return m["user"] == c.user })
		})
	}

	// A reload and a stop log too.
	for _, p := range []*process{cen, edg} {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both to reload", func() bool {
		return strings.Contains(cen.log(), `"msg":"reloaded"`) && strings.Contains(edg.log(), `"msg":"reloaded"`)
	})
	lnc.Close()
	nc.Close()
	_ = lk.Close()
	if code := edg.stop(t); code != 0 {
		t.Fatalf("edge exit code %d", code)
	}
	if code := cen.stop(t); code != 0 {
		t.Fatalf("central exit code %d", code)
	}

	secrets := append(secretsOf(t, s.dir), guesses...)
	if len(secrets) < 10 {
		t.Fatalf("found only %d secrets under %s", len(secrets), s.dir)
	}
	out, err := exec.Command(filepath.Join(s.bin, "lintelctl"), "render", "--inventory", s.invFile, "--out", s.dir, "--cost", "4").CombinedOutput()
	if err != nil {
		t.Fatalf("lintelctl render: %v\n%s", err, out)
	}
	for _, l := range []struct{ name, text string }{{"central", cen.log()}, {"edge", edg.log()}, {"lintelctl render", string(out)}} {
		for _, sec := range secrets {
			if strings.Contains(l.text, sec) {
				t.Errorf("%s's output holds a secret (%d characters, starting %q)", l.name, len(sec), sec[:2])
			}
		}
	}
}

// errRecorder is a testing.TB that records Errorf instead of failing.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, format)
}

// TestCheckNoSecretsFinds: the check every process start runs finds a
// password, a seed and a hash key (also re-encoded) in a log, and nothing
// in a log without them.
func TestCheckNoSecretsFinds(t *testing.T) {
	s := render(t, "", nil, func(leaf string) string { return "nats-leaf://" + leaf })
	read := func(path string) string {
		b, err := os.ReadFile(filepath.Join(s.dir, path))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	key, err := hex.DecodeString(read("edges/acme-hq/secrets/hash.key"))
	if err != nil {
		t.Fatal(err)
	}
	for name, leak := range map[string]string{
		"password":          s.password(t, authz.DeviceUser(reader)),
		"seed":              read("edges/acme-hq/secrets/leaf.seed"),
		"hash key":          read("edges/acme-hq/secrets/hash.key"),
		"hash key, base64":  base64.StdEncoding.EncodeToString(key),
		"central's command": read("central/secrets/" + config.CentralCommandSeed("acme")),
	} {
		r := &errRecorder{TB: t}
		checkNoSecrets(r, "edge", []string{"-config", s.edge}, `{"msg":"connected","x":"`+leak+`"}`+"\n")
		if len(r.errs) == 0 {
			t.Errorf("a logged %s was not found", name)
		}
	}
	r := &errRecorder{TB: t}
	checkNoSecrets(r, "edge", []string{"-config", s.edge}, `{"msg":"connected","user":"acme.hq.reader.r1"}`+"\n")
	if len(r.errs) != 0 {
		t.Errorf("a clean log reported: %q", r.errs)
	}
}
