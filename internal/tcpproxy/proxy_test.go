package tcpproxy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintel-io/lintel/internal/tcpproxy"
)

const waitTimeout = 30 * time.Second

// server is a TCP echo server that counts what each connection received
// and notes when its peer closed it.
type server struct {
	addr  string
	mu    sync.Mutex
	conns []*serverConn
}

type serverConn struct {
	c        net.Conn
	received atomic.Int64
	ended    atomic.Bool // the peer closed or reset it
}

func newServer(t *testing.T) *server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: l.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			sc := &serverConn{c: c}
			s.mu.Lock()
			s.conns = append(s.conns, sc)
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					sc.received.Add(int64(n))
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							err = werr
						}
					}
					if err != nil {
						sc.ended.Store(true)
						_ = c.Close()
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		s.mu.Lock()
		for _, sc := range s.conns {
			_ = sc.c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

// accepted returns the connections the server accepted so far.
func (s *server) accepted() []*serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*serverConn(nil), s.conns...)
}

// sink is a TCP server that reads and counts everything sent to it.
func sink(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					k, err := c.Read(buf)
					n.Add(int64(k))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String(), &n
}

func newProxy(t *testing.T, target string) *tcpproxy.Proxy {
	t.Helper()
	p, err := tcpproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends line and reads it back, returning how long that took.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) time.Duration {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	d := time.Since(t0)
	if got != line+"\n" {
		t.Fatalf("echo = %.20q, want %.20q", got, line)
	}
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// requireOpenAndSilent expects nothing to arrive on c for a short while,
// and c not to be closed. The wait can only let a broken proxy go
// unnoticed, never fail a working one.
func requireOpenAndSilent(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if b, err := r.ReadByte(); !isTimeout(err) {
		t.Fatalf("read from a half-open connection: %q, %v; want a timeout", b, err)
	}
}

// requireEnded expects c to be closed or reset by the proxy.
func requireEnded(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := r.ReadByte()
		if err == nil {
			continue
		}
		if isTimeout(err) {
			t.Fatalf("connection not ended by the proxy")
		}
		return
	}
}

// TestForwardsInOrder: bytes cross the proxy both ways unchanged and in
// order, in chunks of every size.
func TestForwardsInOrder(t *testing.T) {
	t.Parallel()
	p := newProxy(t, newServer(t).addr)
	c, r := dial(t, p.Addr())
	var want bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&want, "%d:%s\n", i, strings.Repeat("x", i%300))
	}
	go func() { _, _ = c.Write(want.Bytes()) }()
	if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the echo differs from what was sent")
	}
	if st := p.Stats(); st.Accepted != 1 || st.Active != 1 || st.HalfOpen != 0 || st.Dropped != 0 {
		t.Fatalf("Stats() = %+v", st)
	}
}

// TestLatency: with a latency each way, a round trip takes at least their
// sum, on a connection open before the impairment and on a new one; a
// burst keeps its order; Restore clears the latency.
func TestLatency(t *testing.T) {
	t.Parallel()
	const up, down = 150 * time.Millisecond, 100 * time.Millisecond
	p := newProxy(t, newServer(t).addr)
	live, liveR := dial(t, p.Addr())
	roundTrip(t, live, liveR, "before")

	p.Impair(tcpproxy.ToTarget, tcpproxy.Impairment{Latency: up})
	p.Impair(tcpproxy.ToClient, tcpproxy.Impairment{Latency: down})
	fresh, freshR := dial(t, p.Addr())
	for name, cr := range map[string]struct {
		c net.Conn
		r *bufio.Reader
	}{"live connection": {live, liveR}, "new connection": {fresh, freshR}} {
		if d := roundTrip(t, cr.c, cr.r, "delayed"); d < up+down {
			t.Errorf("%s: round trip in %v, want at least %v", name, d, up+down)
		} else {
			t.Logf("%s: round trip in %v with %v up and %v down", name, d, up, down)
		}
	}

	// A burst of lines written at once comes back whole and in order;
	// each line is delayed, not each write after the one before.
	const lines = 50
	t0 := time.Now()
	go func() {
		for i := range lines {
			if _, err := fmt.Fprintf(live, "line %d\n", i); err != nil {
				return
			}
		}
	}()
	for i := range lines {
		got, err := liveR.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("line %d\n", i); got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	d := time.Since(t0)
	if d < up+down {
		t.Errorf("burst back in %v, want at least %v", d, up+down)
	}
	t.Logf("a burst of %d writes came back in %v", lines, d)

	p.Restore()
	t.Logf("round trip after Restore: %v", roundTrip(t, live, liveR, "restored"))
}

// TestBandwidth: a bandwidth limit bounds what crosses in a window, on a
// connection open before the limit; the other direction is not limited;
// Restore lifts the limit.
func TestBandwidth(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10 // bytes/s
	addr, received := sink(t)
	p := newProxy(t, addr)
	c, _ := dial(t, p.Addr())
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first bytes", func() bool { return received.Load() == 5 })

	p.Impair(tcpproxy.ToTarget, tcpproxy.Impairment{Bandwidth: limit})
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(writerDone)
		buf := make([]byte, 16<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil && !isTimeout(err) {
				return
			}
		}
	}()
	defer func() { close(stop); <-writerDone }()
	const window = 96 << 10
	waitFor(t, "bytes through the limit", func() bool { return received.Load()-5 >= window })
	got := received.Load() - 5
	elapsed := time.Since(t0) // measured after the count: the bound only loosens
	// Generously: twice the limit over the window, plus a burst and a
	// read's worth.
	bound := int64(2*limit*elapsed.Seconds()) + 64<<10
	if got > bound {
		t.Fatalf("%d bytes crossed in %v under a limit of %d bytes/s (bound %d)", got, elapsed, limit, bound)
	}
	t.Logf("%d bytes crossed in %v under a limit of %d bytes/s: %.0f bytes/s", got, elapsed, limit, float64(got)/elapsed.Seconds())

	// Restore lifts the limit: 8 MiB more cross, 128 s at the limit.
	p.Restore()
	base := received.Load()
	waitFor(t, "8 MiB after Restore", func() bool { return received.Load()-base >= 8<<20 })
}

// TestHalfOpen: a half-open proxy keeps both connections open and drops
// every byte either way, does not pass a close on, holds new connections
// without reaching the target, and Restore resets what it held.
func TestHalfOpen(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	p := newProxy(t, srv.addr)
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "before")
	sc := srv.accepted()[0]

	p.HalfOpen()
	p.HalfOpen() // idempotent
	if st := p.Stats(); st.Active != 1 || st.HalfOpen != 1 {
		t.Fatalf("Stats() = %+v, want one connection, held half-open", st)
	}
	payload := bytes.Repeat([]byte("a"), 1000)
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("write to a half-open connection: %v", err)
	}
	if _, err := sc.c.Write(payload); err != nil {
		t.Fatalf("write from the target to a half-open connection: %v", err)
	}
	waitFor(t, "the proxy to drop both writes", func() bool { return p.Stats().Dropped >= 2000 })
	if n := sc.received.Load(); n != int64(len("before\n")) {
		t.Fatalf("the target received %d bytes, want only those sent before", n)
	}
	if sc.ended.Load() {
		t.Fatal("the target's connection ended")
	}
	requireOpenAndSilent(t, c, r)

	// A new connection is accepted and held, and never reaches the target.
	c2, r2 := dial(t, p.Addr())
	if _, err := c2.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the proxy to drop the new connection's byte", func() bool { return p.Stats().Dropped >= 2001 })
	if n := len(srv.accepted()); n != 1 {
		t.Fatalf("the target accepted %d connections, want 1", n)
	}
	requireOpenAndSilent(t, c2, r2)

	// The target gives up: the client is not told.
	_ = sc.c.Close()
	requireOpenAndSilent(t, c, r)
	if st := p.Stats(); st.Active != 2 || st.HalfOpen != 2 {
		t.Fatalf("Stats() = %+v, want two connections held half-open", st)
	}

	// Restore resets what was held; new connections are proxied again.
	p.Restore()
	requireEnded(t, c, r)
	requireEnded(t, c2, r2)
	c3, r3 := dial(t, p.Addr())
	roundTrip(t, c3, r3, "after")
	if st := p.Stats(); st.Active != 1 || st.HalfOpen != 0 {
		t.Fatalf("Stats() = %+v after Restore, want one connection proxied", st)
	}
}

// TestHalfOpenCut: Cut closes connections held half-open, with the
// target's side, and refuses new ones until Restore.
func TestHalfOpenCut(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	p := newProxy(t, srv.addr)
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "before")
	sc := srv.accepted()[0]
	p.HalfOpen()
	p.Cut()
	requireEnded(t, c, r)
	waitFor(t, "the target's side to close", sc.ended.Load)
	c2, r2 := dial(t, p.Addr())
	requireEnded(t, c2, r2)
	if st := p.Stats(); st.Active != 0 || st.Refused != 1 {
		t.Fatalf("Stats() = %+v, want nothing open and one refused", st)
	}
	p.Restore()
	c3, r3 := dial(t, p.Addr())
	roundTrip(t, c3, r3, "after")
}

// TestStallPassesCloseOn: unlike a half-open proxy, a stalled one passes a
// peer's close on, and delivers what it held once restored.
func TestStallPassesCloseOn(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	p := newProxy(t, srv.addr)
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "one")
	c2, r2 := dial(t, p.Addr())
	roundTrip(t, c2, r2, "two")
	p.Stall()
	if _, err := io.WriteString(c2, "held\n"); err != nil {
		t.Fatal(err)
	}
	_ = srv.accepted()[0].c.Close()
	requireEnded(t, c, r)
	p.Restore()
	if err := c2.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	if got, err := r2.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after Restore read %q, %v; want the held line", got, err)
	}
}

// TestCloseLeavesNoGoroutines is not parallel: it counts every Proxy
// goroutine in the process, so no other test's proxy may be running.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	srv := newServer(t)
	p, err := tcpproxy.New(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "one")
	p.Impair(tcpproxy.BothWays, tcpproxy.Impairment{Latency: time.Hour, Bandwidth: 1})
	if _, err := io.WriteString(c, "in flight\n"); err != nil {
		t.Fatal(err)
	}
	c2, _ := dial(t, p.Addr())
	p.HalfOpen()
	c3, _ := dial(t, p.Addr())
	for _, c := range []net.Conn{c2, c3} {
		if _, err := io.WriteString(c, "dropped\n"); err != nil {
			t.Fatal(err)
		}
	}
	if proxyGoroutines() == 0 {
		t.Fatal("no proxy goroutine found in the stacks: the count below would prove nothing")
	}
	p.Close()
	p.Close() // idempotent
	requireEnded(t, c, r)
	waitFor(t, "the proxy's goroutines to end", func() bool { return proxyGoroutines() == 0 })
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		_ = c.Close()
		t.Error("proxy still accepts connections after Close")
	}
}

// proxyGoroutines counts the stack frames of Proxy methods in all
// goroutines.
func proxyGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "tcpproxy.(*Proxy)")
		}
		buf = make([]byte, 2*len(buf))
	}
}
