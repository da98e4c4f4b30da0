package natstest_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/testing/natstest"
)

// echoServer starts a TCP echo server and returns its address.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err, "listen")
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// newProxy starts a proxy to target and closes it in cleanup.
func newProxy(t *testing.T, target string) *natstest.Proxy {
	t.Helper()
	p, err := natstest.NewProxy(target)
	noErr(t, err, "NewProxy")
	t.Cleanup(p.Close)
	return p
}

// dialLine connects to addr and returns the connection and a line reader.
func dialLine(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	noErr(t, err, "dial")
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// requireEcho sends line and expects it back.
func requireEcho(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	noErr(t, c.SetDeadline(time.Now().Add(waitTimeout)), "set deadline")
	_, err := io.WriteString(c, line+"\n")
	noErr(t, err, "write")
	got, err := r.ReadString('\n')
	noErr(t, err, "read echo")
	if got != line+"\n" {
		t.Fatalf("echo = %.20q..., want %.20q...", got, line)
	}
}

// requireClosed expects the proxy to end the connection.
func requireClosed(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	noErr(t, c.SetReadDeadline(time.Now().Add(waitTimeout)), "set deadline")
	_, err := r.ReadString('\n')
	if err == nil || isTimeout(err) {
		t.Fatalf("connection not closed by the proxy: read error %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyForwards(t *testing.T) {
	t.Parallel()
	target := echoServer(t)
	p := newProxy(t, target)
	if p.Target() != target {
		t.Errorf("Target() = %s, want %s", p.Target(), target)
	}

	c, r := dialLine(t, p.Addr())
	requireEcho(t, c, r, "one")
	requireEcho(t, c, r, strings.Repeat("x", 100_000))
	if got, want := p.Stats(), (natstest.ProxyStats{Accepted: 1, Active: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestProxyCutRestore(t *testing.T) {
	t.Parallel()
	p := newProxy(t, echoServer(t))
	c, r := dialLine(t, p.Addr())
	requireEcho(t, c, r, "before")

	p.Cut()
	requireClosed(t, c, r)
	c2, r2 := dialLine(t, p.Addr())
	requireClosed(t, c2, r2)
	if got, want := p.Stats(), (natstest.ProxyStats{Accepted: 2, Refused: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}

	p.Restore()
	c3, r3 := dialLine(t, p.Addr())
	requireEcho(t, c3, r3, "after")
}

func TestProxyStallRestore(t *testing.T) {
	t.Parallel()
	p := newProxy(t, echoServer(t))
	c, r := dialLine(t, p.Addr())
	requireEcho(t, c, r, "before")

	p.Stall()
	p.Stall() // idempotent
	_, err := io.WriteString(c, "held\n")
	noErr(t, err, "write")
	// A new connection is accepted while stalled, and stalled too.
	c2, r2 := dialLine(t, p.Addr())
	_, err = io.WriteString(c2, "held too\n")
	noErr(t, err, "write")

	// Nothing may come back while stalled. This short wait can only let a
	// broken Stall go unnoticed, never fail a working one.
	noErr(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)), "set deadline")
	if _, err := r.ReadString('\n'); !isTimeout(err) {
		t.Fatalf("data crossed a stalled proxy: read error %v", err)
	}

	p.Restore()
	for _, cr := range []struct {
		c    net.Conn
		r    *bufio.Reader
		want string
	}{{c, r, "held\n"}, {c2, r2, "held too\n"}} {
		noErr(t, cr.c.SetReadDeadline(time.Now().Add(waitTimeout)), "set deadline")
		got, err := cr.r.ReadString('\n')
		noErr(t, err, "read held data")
		if got != cr.want {
			t.Errorf("after Restore read %q, want %q", got, cr.want)
		}
	}
	requireEcho(t, c, r, "after")
}

func TestProxyTargetDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err, "listen")
	target := l.Addr().String()
	noErr(t, l.Close(), "close listener")

	p := newProxy(t, target)
	c, r := dialLine(t, p.Addr())
	requireClosed(t, c, r)
}

// TestProxyCloseLeavesNoGoroutines is not parallel: it counts every Proxy
// goroutine in the process, so no other test's proxy may be running.
func TestProxyCloseLeavesNoGoroutines(t *testing.T) {
	p, err := natstest.NewProxy(echoServer(t))
	noErr(t, err, "NewProxy")
	c, r := dialLine(t, p.Addr())
	requireEcho(t, c, r, "one")
	c2, _ := dialLine(t, p.Addr())
	p.Stall()
	_, err = io.WriteString(c2, "held\n")
	noErr(t, err, "write")

	if n := proxyGoroutines(); n == 0 {
		t.Fatal("no proxy goroutine found while the proxy runs: the count below would prove nothing")
	}
	p.Close()
	p.Close() // idempotent
	requireClosed(t, c, r)
	// A goroutine may still be exiting after its last deferred call.
	eventually(t, func() error {
		if n := proxyGoroutines(); n != 0 {
			return fmt.Errorf("%d proxy goroutines left after Close", n)
		}
		return nil
	})
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		_ = c.Close()
		t.Error("proxy still accepts connections after Close")
	}
}

// proxyGoroutines counts the goroutines running a Proxy method.
func proxyGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "lintel/internal/tcpproxy.")
		}
		buf = make([]byte, 2*len(buf))
	}
}
