package gateway_test

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/topic"
)

// TestLoginFlood guesses passwords for r1: after the authenticator's
// failure budget the gateway refuses without a password check (429,
// login-throttled), from the guesser's address as a trusted proxy names
// it; r1 itself, known to the verified-credential cache, keeps working.
func TestLoginFlood(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, func(c *gateway.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.Rate = -1
	})
	_, good := event(t, r1, topic.Event, "x", nil)
	if res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", ceHeader(), good); res.status != 200 {
		t.Fatalf("r1: %d %s", res.status, res.body)
	}
	bcrypts := g.auth.Stats().Bcrypts
	guesser := ceHeader()
	guesser.Set("X-Forwarded-For", "198.51.100.7")
	throttled := false
	began := time.Now()
	for i := range authz.DefaultFailureBurst + 3 {
		_, b := event(t, r1, topic.Event, "x", nil)
		res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "guess-"+string(rune('a'+i)), guesser, b)
		switch p := res.problem(t); {
		case res.status == http.StatusUnauthorized:
		case res.status == http.StatusTooManyRequests && p.Slug() == gateway.SlugLoginThrottled:
			throttled = true
			if res.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		default:
			t.Fatalf("guess %d: %d %+v", i, res.status, p)
		}
	}
	if !throttled {
		t.Fatal("guessing was never throttled")
	}
	// The budget refills one check per DefaultFailureRefill: on a slow
	// machine the guesses may have earned some back.
	budget := authz.DefaultFailureBurst + int(time.Since(began)/authz.DefaultFailureRefill)
	if spent := g.auth.Stats().Bcrypts - bcrypts; spent > uint64(budget) {
		t.Errorf("%d password checks for the guesses, want at most %d (burst %d, refilled over %v)",
			spent, budget, authz.DefaultFailureBurst, time.Since(began).Round(time.Millisecond))
	}
	// Another client, as the proxy names it, logs in as r1 with the right
	// password: from the cache, unaffected.
	other := ceHeader()
	other.Set("X-Forwarded-For", "203.0.113.9")
	_, b := event(t, r1, topic.Event, "x", nil)
	if res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", other, b); res.status != 200 {
		t.Fatalf("r1 during the flood: %d %s", res.status, res.body)
	}
}

// TestRevokedDevice removes r1's credential: its next request is refused,
// and the edge closes the connection the gateway held for it.
func TestRevokedDevice(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, nil)
	_, b := event(t, r1, topic.Event, "x", nil)
	if res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", ceHeader(), b); res.status != 200 {
		t.Fatalf("r1: %d %s", res.status, res.body)
	}
	st := *e.st
	st.Passwords = map[string]authz.PasswordCredential{}
	for u, c := range e.st.Passwords {
		if u != authz.DeviceUser(r1) {
			st.Passwords[u] = c
		}
	}
	if err := g.auth.Update(e.inv, &st); err != nil {
		t.Fatal(err)
	}
	if err := n.UpdateCredentials(e.inv, &st); err != nil {
		t.Fatal(err)
	}
	_, b = event(t, r1, topic.Event, "x", nil)
	if res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", ceHeader(), b); res.status != http.StatusUnauthorized {
		t.Fatalf("revoked r1: %d %s", res.status, res.body)
	}
	waitFor(t, "the edge to close the gateway's connection of r1", func() bool { return g.Stats().Sessions == 0 })
}
