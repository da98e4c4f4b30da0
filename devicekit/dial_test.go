package devicekit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// proxiedEdge starts an edge behind a proxy that starts cut off when cut is
// set, and returns both.
func proxiedEdge(t *testing.T, cut bool) (*devicetest.Edge, *natstest.Proxy) {
	t.Helper()
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	p, err := natstest.NewProxy(edge.Server.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if cut {
		p.Cut()
	}
	return edge, p
}

// TestConnectAuth attacks the edge with credentials it must refuse: each
// Connect ends with ErrAuth after one connection, without trying again.
func TestConnectAuth(t *testing.T) {
	edge, p := proxiedEdge(t, false)
	thing := edge.Things[0]
	cases := []struct {
		name   string
		mutate func(*devicekit.Config)
	}{
		{"wrong password", func(c *devicekit.Config) { c.Password = "hunter2-wrong" }},
		{"empty password", func(c *devicekit.Config) { c.Password = "" }},
		{"another thing's password", func(c *devicekit.Config) { c.Password = devicetest.Password(edge.Things[1]) }},
		{"unknown user", func(c *devicekit.Config) {
			c.Thing = topic.Thing{Org: thing.Org, Edge: thing.Edge, Type: thing.Type, Code: "ghost"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := edge.Config(thing)
			cfg.URLs = []string{"nats://" + p.Addr()}
			tc.mutate(&cfg)
			before := p.Stats().Accepted
			c, err := devicekit.Connect(testCtx(t), cfg)
			if err == nil {
				_ = c.Close()
				t.Fatal("Connect with bad credentials succeeded")
			}
			if !errors.Is(err, devicekit.ErrAuth) || !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("Connect = %v, want ErrAuth wrapping nats.ErrAuthorization", err)
			}
			if n := p.Stats().Accepted - before; n != 1 {
				t.Fatalf("Connect opened %d connections, want 1: an auth failure is not retried", n)
			}
		})
	}
}

// TestConnectWaitsForEdge connects a device while its edge does not answer
// (every connection is dropped at once): Connect keeps trying and succeeds
// once the edge answers.
func TestConnectWaitsForEdge(t *testing.T) {
	edge, p := proxiedEdge(t, true)
	cfg := edge.Config(edge.Things[0])
	cfg.URLs = []string{"nats://" + p.Addr()}
	type result struct {
		c   *devicekit.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := devicekit.Connect(testCtx(t), cfg)
		done <- result{c, err}
	}()
	waitFor(t, "Connect to try again after a refused connection", func() bool { return p.Stats().Refused >= 2 })
	p.Restore()
	r := <-done
	if r.err != nil {
		t.Fatalf("Connect: %v", r.err)
	}
	t.Cleanup(func() { _ = r.c.Close() })
	if _, err := r.c.PublishEvent(testCtx(t), "door.opened", nil); err != nil {
		t.Fatal(err)
	}
}

// TestConnectUnreachableUntilCtx connects to an edge that never answers:
// Connect returns when its context ends, with the last attempt's error.
func TestConnectUnreachableUntilCtx(t *testing.T) {
	edge, p := proxiedEdge(t, true)
	cfg := edge.Config(edge.Things[0])
	cfg.URLs = []string{"nats://" + p.Addr()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := devicekit.Connect(ctx, cfg)
		done <- err
	}()
	waitFor(t, "Connect to try again after a refused connection", func() bool { return p.Stats().Refused >= 2 })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || errors.Is(err, devicekit.ErrAuth) {
		t.Fatalf("Connect = %v, want the context's error and no ErrAuth", err)
	}
}
