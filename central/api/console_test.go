package api_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lintel-io/lintel/central/api"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/oidctest"
)

// chromium returns the path of a Chromium to drive, skipping the test
// where there is none (outside CI: CI must have one).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("LINTEL_REQUIRE_TOOLS") != "" || os.Getenv("CI") != "" {
		t.Fatal("no Chromium on the PATH: the console's browser test needs one (apt-get install chromium)")
	}
	t.Skip("no Chromium on the PATH (apt-get install chromium; LINTEL_REQUIRE_TOOLS=1 makes this a failure)")
	return ""
}

// envArtifacts names the directory where tests leave artifacts worth
// keeping, such as the console's screenshots; without it they go to the
// test's temporary directory.
const envArtifacts = "LINTEL_ARTIFACTS"

// artifactDir returns the directory for t's artifacts: $LINTEL_ARTIFACTS,
// created if need be, else a temporary directory of t.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(envArtifacts)
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsoleInBrowser drives the console in headless Chromium: the OIDC
// login, the edges, a door unlocked with its ack shown, a live event and
// the event-rate chart, a credential added without its card number
// reaching the page, the card granted at hq's reader, revoked in the
// console and denied at the next presentation, both decisions in the
// access log, hq's signed audit chain verified intact, and no script
// error or CSP violation throughout. A fetch without the CSRF token is
// refused in the browser too. It saves a full-page PNG screenshot of each
// state into $LINTEL_ARTIFACTS (else a temporary directory) and logs their
// paths.
func TestConsoleInBrowser(t *testing.T) {
	exe := chromium(t)
	f := newFixture(t, fixtureOptions{edge: true, linkProxy: true})
	f.prov.SetUser(oidctest.User{Subject: "carol", Email: "carol@example.com", Roles: []string{"operator"}})
	dir := artifactDir(t)
	// hq decides access itself, from its copy of the credentials, and
	// signs its audit trail.
	f.startAccess(t)

	lk := f.device(t, lock)
	sub, err := lk.HandleCommands(ctx(t), devicekit.HandlerFunc(func(ctx context.Context, cmd devicekit.Command) error {
		_, err := lk.PublishState(ctx, message.NameDoorState, message.DoorState{Door: "front", Locked: cmd.Action != "unlock"})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	rd := f.device(t, reader)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
	defer cancelT()

	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if (m.IsException() || m.Type == "error") && !strings.Contains(m.Text, "status of 403") {
				mu.Lock()
				problems = append(problems, m.String()+" at "+m.URL)
				mu.Unlock()
			}
		}
	}()
	poll := func(what, expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(wait))(ctx, tg); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
			return nil
		})
	}
	// present has reader r1 present card at door front until hq's
	// decision satisfies want.
	present := func(card string, want func(message.AccessDecision) bool, what string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			deadline := time.Now().Add(wait)
			for {
				e, err := rd.Request(ctx, message.NameAccessRequested,
					message.AccessRequest{Door: "front", Kind: message.CredentialCard, Credential: message.Credential(card)})
				if err != nil {
					return fmt.Errorf("present for %s: %w", what, err)
				}
				d, err := message.DecodePayload[message.AccessDecision](e)
				if err != nil {
					return err
				}
				if want(d) {
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("waiting for %s: last decision %+v", what, d)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	// shot saves a screenshot of the console as it is now: of the
	// section the state is about (a CSS selector), or of the full page
	// when section is empty. No two are the same picture.
	shots := 0
	seen := map[[32]byte]string{}
	shot := func(name, section string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			var png []byte
			var err error
			if section == "" {
				png, err = chromedp.FullScreenshot(100)(ctx, tg)
			} else {
				png, err = chromedp.Screenshot(chromedp.CSS(section))(ctx, tg)
			}
			if err != nil {
				return fmt.Errorf("screenshot %s: %w", name, err)
			}
			sum := sha256.Sum256(png)
			if prev, ok := seen[sum]; ok {
				return fmt.Errorf("screenshot %s is the same picture as %s", name, prev)
			}
			seen[sum] = name
			shots++
			path := filepath.Join(dir, fmt.Sprintf("console-%02d-%s.png", shots, name))
			if err := os.WriteFile(path, png, 0o644); err != nil {
				return err
			}
			t.Logf("screenshot: %s", path)
			return nil
		})
	}
	const card = "5550001112223334"
	const erinCard = "5550009998887776"
	var erinID string
	err = chromedp.Do(bctx,
		chromedp.Navigate(f.web.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login-link")),
		shot("login", ""),
		chromedp.Click(chromedp.CSS("#login-link")),
		chromedp.WaitVisible(chromedp.CSS("#whoami")),
		poll("hq up in the edges table", `(() => { const r = document.querySelector('#edges tr[data-edge="hq"]'); return !!r && r.children[1].textContent === "up"; })()`),
		poll("the unlock button", `!!document.querySelector('#doors tr[data-door="hq.front"] button[data-action="unlock"]')`),
		chromedp.Click(chromedp.CSS(`#doors tr[data-door="hq.front"] button[data-action="unlock"]`)),
		poll("the unlock's ack", `document.querySelector('#doors tr[data-door="hq.front"]').lastChild.textContent === "unlock: completed"`),
		poll("the door unlocked", `document.querySelector('#doors tr[data-door="hq.front"]').children[2].textContent.startsWith("unlocked")`),
		poll("hq's audit chain", `(() => { const r = document.querySelector('#edges tr[data-edge="hq"]'); return !!r && r.children[6].textContent !== "-"; })()`),
		shot("edges-doors-unlocked", ""),
		poll("the live stream open", `document.getElementById("live-status").textContent === "live"`),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := rd.PublishEvent(ctx, "console.check", map[string]int{"n": 1})
			return err
		}),
		poll("the live event", `document.querySelector("#live tbody").textContent.includes("console.check")`),
		// The event-rate chart counts the live stream: a bar for this
		// second, and the status says how many.
		poll("the event-rate chart", `document.querySelectorAll("#rate-chart rect").length > 0 && /^[1-9][0-9]* events in the last/.test(document.getElementById("rate-status").textContent)`),
		shot("live-event", ""),
		poll("the credential edge list", `document.getElementById("cred-edge-select").options.length === 2`),
		chromedp.SetValue(chromedp.CSS(`#cred-add input[name="holder"]`), "dave"),
		chromedp.SetValue(chromedp.CSS(`#cred-add input[name="card"]`), card),
		chromedp.SetValue(chromedp.CSS(`#cred-add input[name="doors"]`), "front"),
		chromedp.Click(chromedp.CSS(`#cred-add button[type="submit"]`)),
		poll("dave's credential listed", `[...document.querySelectorAll("#credentials tbody tr")].some(r => r.children[0].textContent === "dave" && r.children[2].textContent === "active")`),
		// The reader presents dave's card: granted once hq has the new
		// credential set.
		present(card, func(d message.AccessDecision) bool { return d.Granted }, "dave's card granted"),
		chromedp.Click(chromedp.CSS(`#credentials tbody tr button[data-action="revoke"]`)),
		poll("dave's credential revoked", `[...document.querySelectorAll("#credentials tbody tr")].some(r => r.children[0].textContent === "dave" && r.children[2].textContent.startsWith("revoked"))`),
		shot("credentials", ""),
		// The next presentation is denied, as revoked, once the
		// revocation has reached hq.
		present(card, func(d message.AccessDecision) bool { return !d.Granted && d.Reason == message.DenyRevoked }, "dave's card denied as revoked"),
		poll("the access log loaded", `document.getElementById("access-status").textContent.endsWith("decisions")`),
		// The decisions reach central through hq's link: ask again until
		// the log shows both.
		poll("dave granted and denied in the access log", `(() => {
			const rows = [...document.querySelectorAll("#access tbody tr")].map(r => r.children[3].textContent + " " + r.children[4].textContent);
			const ok = rows.includes("dave granted") && rows.some(r => r.startsWith("dave denied"));
			if (!ok) document.querySelector('#access-filter button[type="submit"]').click();
			return ok;
		})()`),
		shot("access-log", "#access-section"),
		// Central's auditor verified hq's signed trail: the edges table
		// shows the chain intact, with hq's backlog once its status
		// report is in and the credential set version dave's credential
		// moved.
		poll("hq's audit chain intact", `(() => {
			const r = document.querySelector('#edges tr[data-edge="hq"]');
			return !!r && r.children[6].textContent === "intact" && r.children[2].textContent !== "-" && r.children[3].textContent !== "0";
		})()`),
		poll("no audit alarm", `document.getElementById("audit-alarms").hidden`),
		shot("edges-audit", "#edges-section"),
		// A revoked grant: with hq's link cut, erin's card is revoked at
		// central and still granted by hq, which cannot know; once the link
		// is back, central's auditor raises the alarm and the console
		// shows it.
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			var cred struct {
				ID string `json:"id"`
			}
			f.do(t, "POST", api.PathPrefix+"/edges/hq/credentials", f.admin,
				map[string]any{"holder": "erin", "card": erinCard, "doors": []string{"front"}}).decode(t, &cred)
			erinID = cred.ID
			return nil
		}),
		present(erinCard, func(d message.AccessDecision) bool { return d.Granted }, "erin's card granted"),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			f.proxy.Cut()
			waitFor(t, "hq's link down", func() bool { return !f.node.LinkUp() })
			if res := f.do(t, "POST", api.PathPrefix+"/credentials/"+erinID+"/revoke", f.admin, map[string]string{"reason": "lost"}); res.status != http.StatusOK {
				return fmt.Errorf("revoke erin's card: %d %s", res.status, res.body)
			}
			return nil
		}),
		present(erinCard, func(d message.AccessDecision) bool { return d.Granted && d.Offline }, "erin's card granted offline"),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			f.proxy.Restore()
			waitFor(t, "hq's link up", f.node.LinkUp)
			return nil
		}),
		poll("the revoked-grant alarm shown", `(() => {
			const box = document.getElementById("audit-alarms");
			const r = document.querySelector('#edges tr[data-edge="hq"]');
			const cell = r && r.children[6].firstChild;
			return !box.hidden && box.offsetHeight > 0 &&
				[...box.querySelectorAll("li.alarm-grant")].some(li => li.dataset.edge === "hq" && li.textContent.includes("revoked credential granted: erin at door front") && li.textContent.includes("offline") && li.textContent.endsWith(": lost")) &&
				!!cell && cell.className === "alarm" && cell.textContent === "intact · 1 revoked grant" &&
				getComputedStyle(box).backgroundColor !== "rgba(0, 0, 0, 0)";
		})()`),
		shot("audit-alarm", "#edges-section"),
	)
	if err != nil {
		t.Fatal(err)
	}
	who, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#whoami")))
	if err != nil {
		t.Fatal(err)
	}
	html, err := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	csrfStatus, err := chromedp.Run(bctx, chromedp.Evaluate[int](`fetch("/api/v1/edges/hq/groups/x", {method: "PUT", credentials: "same-origin", body: '{"doors": []}'}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(who, "carol@example.com") || !strings.Contains(who, "operator") {
		t.Fatalf("whoami %q", who)
	}
	if strings.Contains(html, card) {
		t.Fatal("the page holds the card number")
	}
	if csrfStatus != http.StatusForbidden {
		t.Fatalf("a cookie-authenticated PUT without the CSRF token: %d, want 403", csrfStatus)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the browser reported problems: %q", problems)
	}
	// The actions went through the API as carol, and are in the log.
	log := f.auditLog(t)
	for _, a := range []string{"sendCommand", "createCredential", "revokeCredential"} {
		found := false
		for _, e := range log {
			found = found || (e.Action == a && e.Via == "session" && strings.HasPrefix(e.Who, "carol"))
		}
		if !found {
			t.Errorf("no audit record of %s by carol's session", a)
		}
	}
}

// TestConsolePageHeaders: the console is served with a strict CSP and no
// inline script; without a session it offers the login only.
func TestConsolePageHeaders(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	res := f.do(t, "GET", api.ConsolePath, "", nil)
	csp := res.header.Get("Content-Security-Policy")
	if res.status != http.StatusOK || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") ||
		!strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("console: %d CSP %q", res.status, csp)
	}
	body := string(res.body)
	if strings.Contains(body, "<script>") || strings.Contains(body, " on") && strings.Contains(body, "onclick") || strings.Contains(body, "style=") {
		t.Fatal("inline script or style in the page")
	}
	if !strings.Contains(body, `id="login-link"`) || strings.Contains(body, `id="edges"`) {
		t.Fatalf("without a session the page must offer the login only: %s", body)
	}
	if res := f.do(t, "GET", "/", "", nil); res.status != http.StatusFound || res.header.Get("Location") != api.ConsolePath {
		t.Fatalf("/: %d %v", res.status, res.header)
	}
}
