// Package tcpproxy is a TCP proxy with network faults on demand (cut,
// stall, restore), for tests (testing/natstest re-exports it) and for the
// demo, which cuts its own link to show an outage.
package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

const (
	// proxyDialTimeout bounds one dial from the proxy to its target.
	proxyDialTimeout = 5 * time.Second
	// acceptRetryInterval is the pause after a failed Accept.
	acceptRetryInterval = 10 * time.Millisecond
)

// Proxy is a TCP proxy on 127.0.0.1 in front of one target address, with
// network faults on demand: [Proxy.Cut] breaks every connection,
// [Proxy.Stall] silently stops the traffic, and [Proxy.Restore] heals both.
// Put it between a leaf node and its hub (as natstest.HubLeaf does), or between a
// client and a server, to test how code behaves when the link fails.
//
// Every accepted connection gets its own connection to the target; a target
// that is down (for example while it restarts) makes the proxy close the
// accepted connection, as a refused connection would. The methods are safe
// for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // cancelled by Close; aborts dials in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop, dials and pipes

	mu     sync.Mutex
	closed bool
	cut    bool
	// gate is closed while traffic flows; Stall replaces it with an open
	// channel that pipes wait on before writing.
	gate  chan struct{}
	conns map[*proxyConn]struct{}
	stats Stats
}

// Stats is a snapshot of a [Proxy]'s connection counters.
type Stats struct {
	// Accepted counts every connection the proxy accepted, including those
	// it closed at once because it was cut or the target was down.
	Accepted int
	// Refused counts accepted connections closed at once because the proxy
	// was cut.
	Refused int
	// Active is the number of connections currently proxied to the target.
	Active int
}

// New starts a proxy listening on a random port of 127.0.0.1 that
// forwards to target, a host:port. The target need not be up yet. NewProxy
// returns an error only when the listener cannot be created.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", "0"))
	if err != nil {
		return nil, fmt.Errorf("tcpproxy: listen: %w", err)
	}
	gate := make(chan struct{})
	close(gate)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target: target,
		ln:     ln,
		ctx:    ctx,
		cancel: cancel,
		gate:   gate,
		conns:  make(map[*proxyConn]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the host:port the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the host:port the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Stats returns a snapshot of the proxy's connection counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats
	st.Active = len(p.conns)
	return st
}

// Cut closes every proxied connection, and closes each new connection as
// soon as it is accepted, until [Proxy.Restore] or [Proxy.Stall]. To both
// peers it looks like the network dropped the link: they see the connection
// end and must reconnect.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.openGateLocked()
	conns := p.takeConnsLocked()
	p.mu.Unlock()
	for _, pc := range conns {
		pc.close()
	}
}

// Stall stops forwarding bytes in both directions while keeping every
// connection open, like a network path that silently drops packets. New
// connections are still accepted and connected to the target, but stalled
// too. Bytes the proxy receives after Stall returns are held (a little by the
// proxy, the rest in the kernel's socket buffers, which then push back on
// the sender) until [Proxy.Restore], which delivers them and resumes the
// traffic. Peers that use keep-alive pings, like NATS servers and clients,
// notice the stall once their pings go unanswered and close the connection
// themselves; the proxy closes its side when it sees that.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default: // already stalled
	}
}

// Restore ends a [Proxy.Cut] or [Proxy.Stall]: new connections are proxied
// again, and stalled connections deliver what was held and carry on.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.openGateLocked()
}

// Close stops the proxy: it closes the listener and every connection, and
// waits until all the proxy's goroutines have returned. Close is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.openGateLocked()
	conns := p.takeConnsLocked()
	p.mu.Unlock()

	p.cancel()
	// Closing the listener ends the accept loop; its error is of no interest.
	_ = p.ln.Close()
	for _, pc := range conns {
		pc.close()
	}
	p.wg.Wait()
}

func (p *Proxy) openGateLocked() {
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

func (p *Proxy) takeConnsLocked() []*proxyConn {
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
		delete(p.conns, pc)
	}
	return conns
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: back off briefly, as
			// net/http does, instead of spinning or giving up.
			time.Sleep(acceptRetryInterval)
			continue
		}
		p.mu.Lock()
		p.stats.Accepted++
		switch {
		case p.closed:
			p.mu.Unlock()
			_ = c.Close()
			return
		case p.cut:
			p.stats.Refused++
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.connect(c)
	}
}

// connect dials the target for the accepted connection c and starts the
// two pipes between them.
func (p *Proxy) connect(c net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: proxyDialTimeout}
	t, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	pc := &proxyConn{p: p, client: c, target: t, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.cut {
		p.mu.Unlock()
		pc.close()
		return
	}
	p.conns[pc] = struct{}{}
	p.wg.Add(2)
	p.mu.Unlock()
	go p.pipe(pc, t, c)
	go p.pipe(pc, c, t)
}

// pipe copies src to dst, waiting at the gate before each write, until
// either side fails; then it closes the whole proxied connection.
func (p *Proxy) pipe(pc *proxyConn, dst, src net.Conn) {
	defer p.wg.Done()
	defer pc.close()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if !p.waitGate(pc) {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if rerr != nil {
			return
		}
	}
}

// waitGate blocks while the proxy is stalled. It reports false when pc was
// closed meanwhile.
func (p *Proxy) waitGate(pc *proxyConn) bool {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	select {
	case <-gate:
		return true
	case <-pc.done:
		return false
	}
}

// proxyConn is one accepted connection and its connection to the target.
type proxyConn struct {
	p      *Proxy
	client net.Conn
	target net.Conn
	once   sync.Once
	done   chan struct{}
}

// close closes both connections and forgets pc; safe to call many times.
func (pc *proxyConn) close() {
	pc.once.Do(func() {
		close(pc.done)
		_ = pc.client.Close()
		_ = pc.target.Close()
		pc.p.mu.Lock()
		delete(pc.p.conns, pc)
		pc.p.mu.Unlock()
	})
}
