package authz_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

var (
	stormSize    = flag.Int("storm", 1000, "devices in BenchmarkReconnectStorm")
	stormVerbose = flag.Bool("storm.v", false, "print BenchmarkReconnectStorm's first connect error")
)

// BenchmarkReconnectStorm measures one edge taking back all its devices at
// once, as after an outage: each iteration connects -storm devices
// concurrently (bcrypt cost 11) and waits until all are in. Variants:
//
//	noauth          a server without authentication: the floor
//	cache           EdgeAuthenticator with its cache warm (devices were connected before)
//	nocache         EdgeAuthenticator without the cache: one bcrypt per device
//	server-bcrypt   nats-server's own password check from the rendered users
//	stock-unbounded no cache, no bound on concurrent bcrypts, nats-server's usual timers:
//	                one attempt per device
//	stock-shedding  no cache, the default bound and wait (load shedding), usual timers:
//	                devices retry with jitter until all are in
//
// ms/connect is the wall time of the storm divided by the devices. The
// first four variants lift two nats-server timers that a CPU-bound storm
// trips: the authentication timeout (2s until the server has read the
// CONNECT, which its starved goroutine may not do in time) and the short
// first PING (at most 2.4s after connecting; a client still waiting for
// its bcrypt turn takes it for a failed handshake, "expected 'PONG', got
// 'PING'"). The last two keep them, as a real edge would: failed/storm
// counts failed connection attempts.
// Run it once: go test -run '^$' -bench ReconnectStorm -benchtime 1x ./authz/
func BenchmarkReconnectStorm(b *testing.B) {
	n := *stormSize
	inv := &authz.Inventory{Orgs: []authz.Org{{Code: "acme"}}, Edges: []authz.Edge{{Org: "acme", Code: "hq"}}}
	for i := range n {
		inv.Things = append(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: fmt.Sprintf("s%04d", i)}})
	}
	// One cost-11 hash for every device: the storm pays for comparisons,
	// not for generating a thousand hashes first.
	const password = "storm-password-0123456789abcdef"
	h, err := bcrypt.GenerateFromPassword([]byte(password), 11)
	if err != nil {
		b.Fatal(err)
	}
	c := newNatsCreds(b, &authz.Inventory{Orgs: inv.Orgs, Edges: inv.Edges}, bcrypt.MinCost)
	users, _ := identitiesOf(inv)
	for _, u := range users {
		c.st.Passwords[u] = authz.PasswordCredential{Hash: string(h)}
	}
	devices := users[:n]
	unbounded := authz.EdgeAuthConfig{MaxBcryptWait: -1}

	for _, v := range []struct {
		name  string
		none  bool
		auth  *authz.EdgeAuthConfig
		warm  bool
		stock bool // nats-server's usual auth timeout and first PING
		retry bool // devices retry until in
	}{
		{name: "noauth", none: true, warm: true},
		{name: "cache", auth: &unbounded, warm: true},
		{name: "nocache", auth: &authz.EdgeAuthConfig{MaxBcryptWait: -1, DisableCache: true}},
		{name: "server-bcrypt"},
		{name: "stock-unbounded", auth: &authz.EdgeAuthConfig{MaxConcurrentBcrypt: -1, DisableCache: true}, stock: true},
		{name: "stock-shedding", auth: &authz.EdgeAuthConfig{DisableCache: true}, stock: true, retry: true},
	} {
		b.Run(v.name, func(b *testing.B) {
			srv, auth := stormServer(b, inv, c, v.auth, v.none, v.stock)
			user := func(i int) (string, string) {
				if v.none {
					return "", ""
				}
				return devices[i], password
			}
			if v.warm {
				conns, failed := storm(srv, n, user, false)
				closeAll(conns)
				if failed > 0 {
					b.Fatalf("%d devices failed to connect while warming", failed)
				}
			}
			var s0 authz.AuthStats
			if auth != nil {
				s0 = auth.Stats()
			}
			b.ReportAllocs()
			b.ResetTimer()
			var total time.Duration
			failed := 0
			for b.Loop() {
				start := time.Now()
				conns, f := storm(srv, n, user, v.retry)
				total += time.Since(start)
				failed += f
				b.StopTimer()
				closeAll(conns)
				b.StartTimer()
			}
			if failed > 0 && !v.stock {
				b.Fatalf("%d devices failed to connect", failed)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N*n), "ms/connect")
			b.ReportMetric(total.Seconds()/float64(b.N), "s/storm")
			b.ReportMetric(float64(failed)/float64(b.N), "failed/storm")
			if auth != nil {
				s := auth.Stats()
				b.ReportMetric(float64(s.Bcrypts-s0.Bcrypts)/float64(b.N), "bcrypts/storm")
				b.ReportMetric(float64(s.Shed-s0.Shed)/float64(b.N), "shed/storm")
			}
		})
	}
}

// stormServer starts hq without a leaf remote: with the authenticator
// (cache on or off), with nats-server's own users, or without auth.
func stormServer(b *testing.B, inv *authz.Inventory, c *natsCreds, cfg *authz.EdgeAuthConfig, none, stock bool) (*natstest.Server, *authz.EdgeAuthenticator) {
	b.Helper()
	if none {
		return natstest.Run(b, &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}), nil
	}
	ro := testRender(b)
	ro.HubURLs = []string{"nats-leaf://127.0.0.1:1"}
	ro.ConfigDir = b.TempDir()
	if err := authz.WriteSeedFile(ro.ConfigDir+"/leaf.seed", authz.NewSecret(c.seeds["acme.hq"])); err != nil {
		b.Fatal(err)
	}
	ro.SeedFile = "leaf.seed"
	opts, err := authz.EdgeOptions(inv, c.st, "acme", "hq", ro)
	if err != nil {
		b.Fatal(err)
	}
	opts.LeafNode.Remotes = nil
	opts.NoLog = true
	if !stock {
		opts.DisableShortFirstPing = true
		opts.PingInterval = time.Hour
		opts.AuthTimeout = time.Hour.Seconds()
	}
	var a *authz.EdgeAuthenticator
	if cfg != nil {
		a, err = authz.NewEdgeAuthenticator(inv, c.st, "acme", "hq", *cfg)
		if err != nil {
			b.Fatal(err)
		}
		a.Configure(opts)
	}
	srv := natstest.Run(b, opts)
	if a != nil {
		a.Attach(srv.Server())
	}
	return srv, a
}

// storm connects n clients concurrently and returns them once all are in
// or failed, with the number of failed attempts. With retry, a client that
// fails tries again after 1-2s, like nats.go's reconnect with jitter,
// until it is in.
func storm(srv *natstest.Server, n int, user func(int) (string, string), retry bool) ([]*nats.Conn, int) {
	conns := make([]*nats.Conn, n)
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			u, p := user(i)
			opts := []nats.Option{nats.NoReconnect(), nats.Timeout(10 * time.Minute)}
			if u != "" {
				opts = append(opts, nats.UserInfo(u, p))
			}
			for {
				nc, err := nats.Connect(srv.ClientURL(), opts...)
				if err == nil {
					conns[i] = nc
					return
				}
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				if !retry {
					return
				}
				time.Sleep(time.Second + rand.N(time.Second))
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil && *stormVerbose {
		fmt.Println("first connect error:", *err)
	}
	return conns, int(failed.Load())
}

func closeAll(conns []*nats.Conn) {
	for _, nc := range conns {
		if nc != nil {
			nc.Close()
		}
	}
}
