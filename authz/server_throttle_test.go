package authz_test

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

// TestLoginFloodThrottled floods a real edge server with wrong passwords for
// one device, over NATS from one address, and counts the password checks
// the flood costs: with throttling a few, without it one per attempt. A
// device that logged in before the flood, and another device from another
// address, still log in during it.
func TestLoginFloodThrottled(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	hub := startCentral(t, inv, c)
	r1 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r1"))
	r2 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r2"))
	const burst, attempts = 3, 120

	flood := func(t *testing.T, e *testEdge, same bool) {
		t.Helper()
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Go(func() {
				for i := range attempts / 12 {
					pw := "guess-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
					if same {
						pw = "guess"
					}
					nc, err := nats.Connect(e.ClientURL(), nats.UserInfo(r1, pw), nats.MaxReconnects(0), nats.Timeout(waitTimeout))
					if err == nil {
						nc.Close()
						t.Error("wrong password accepted")
					}
				}
			})
		}
		wg.Wait()
	}

	t.Run("unthrottled", func(t *testing.T) {
		e := startEdge(t, inv, c, "hq", hub, edgeSetup{authenticator: true,
			authConfig: authz.EdgeAuthConfig{DisableThrottle: true, MaxBcryptWait: -1}})
		flood(t, e, false)
		if s := e.auth.Stats(); s.Bcrypts != attempts || s.Throttled != 0 {
			t.Fatalf("stats %+v, want one bcrypt per attempt (%d)", s, attempts)
		}
	})

	t.Run("throttled", func(t *testing.T) {
		// Refill slowly enough that the flood gets no new check while it
		// runs, so the count is exact.
		e := startEdge(t, inv, c, "hq", hub, edgeSetup{authenticator: true,
			authConfig: authz.EdgeAuthConfig{FailureBurst: burst, FailureRefill: time.Hour, MaxBcryptWait: -1}})
		// r1 logs in before the flood: its credentials are then verified.
		connectAs(t, e.Server, c, r1).Close()
		before := e.auth.Stats()

		flood(t, e, false)
		flood(t, e, true)
		s := e.auth.Stats()
		if got := s.Bcrypts - before.Bcrypts; got > burst {
			t.Fatalf("%d wrong passwords cost %d bcrypts, want at most %d (stats %+v)", 2*attempts, got, burst, s)
		}
		if s.Throttled < 2*attempts-burst {
			t.Fatalf("stats %+v: want at least %d logins throttled", s, 2*attempts-burst)
		}
		t.Logf("%d wrong passwords: %d bcrypts, %d throttled (without throttling: %d bcrypts)",
			2*attempts, s.Bcrypts-before.Bcrypts, s.Throttled, attempts)

		// During the flood: r1, verified before, from the flooded address...
		connectAs(t, e.Server, c, r1).Close()
		// ... and r2, never seen, from another address.
		dial := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: waitTimeout}
		connectAs(t, e.Server, c, r2, nats.SetCustomDialer(dial)).Close()
		if got := e.auth.Stats().Accepted; got != before.Accepted+2 {
			t.Fatalf("accepted %d logins during the flood, want 2", got-before.Accepted)
		}
		// A device never verified before, from the flooded address, is
		// refused without a check: the address has spent its budget.
		l1 := authz.DeviceUser(mkThing("acme", "hq", "lock", "l1"))
		checks := e.auth.Stats().Bcrypts
		if nc, err := nats.Connect(e.ClientURL(), nats.UserInfo(l1, c.passwords[l1]), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("the flooding address was not throttled")
		}
		if got := e.auth.Stats().Bcrypts; got != checks {
			t.Fatalf("a throttled login cost %d bcrypts", got-checks)
		}
	})
}
