// Package tcpproxy is a TCP proxy with network faults on demand, for tests
// (testing/natstest re-exports it) and for the demo, which cuts its own
// link to show an outage. A [Proxy] cuts its link ([Proxy.Cut]), stalls it
// ([Proxy.Stall]), holds it half-open like a dead NAT ([Proxy.HalfOpen]),
// or slows it down with latency and a bandwidth limit ([Proxy.Impair]);
// [Proxy.Restore] ends all of these.
package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const (
	// proxyDialTimeout bounds one dial from the proxy to its target.
	proxyDialTimeout = 5 * time.Second
	// acceptRetryInterval is the pause after a failed Accept.
	acceptRetryInterval = 10 * time.Millisecond
	// chunkSize is the most the proxy reads at once.
	chunkSize = 32 << 10
	// maxInFlight is how many bytes one direction of a connection holds
	// between reading and delivering them, like a TCP window: past it the
	// proxy stops reading, and the sender's writes block.
	maxInFlight = 1 << 20
	// maxBurst caps the bytes a bandwidth limit lets through at once.
	maxBurst = 32 << 10
)

// Direction is one way of the traffic of a proxied connection, or both.
type Direction int

const (
	// ToTarget is the traffic from the accepted connection (the client)
	// to the target.
	ToTarget Direction = 1 << iota
	// ToClient is the traffic from the target back to the client.
	ToClient
	// BothWays is the traffic in both directions.
	BothWays = ToTarget | ToClient
)

// Impairment degrades the traffic of one direction without interrupting
// it. The zero value impairs nothing; negative values count as zero.
type Impairment struct {
	// Latency delays the traffic: every chunk of bytes the proxy reads is
	// delivered no earlier than Latency after it was read, in the order
	// read. Chunks are in flight together, as on a long cable, so latency
	// alone does not throttle a direction below one window (1 MiB) per
	// Latency.
	Latency time.Duration
	// Bandwidth caps the direction at this many bytes per second, shared
	// by all the proxy's connections as a link's capacity is; 0 means no
	// cap. Up to a tenth of a second's worth (at most 32 KiB) passes at
	// once; what the cap holds back pushes back on the sender.
	Bandwidth int
}

// Proxy is a TCP proxy on 127.0.0.1 in front of one target address, with
// network faults on demand: [Proxy.Cut] breaks every connection,
// [Proxy.Stall] silently stops the traffic and delivers it later,
// [Proxy.HalfOpen] silently drops it as a dead NAT or a pulled cable does,
// [Proxy.Impair] adds latency or a bandwidth limit, and [Proxy.Restore]
// heals them all. Put it between a leaf node and its hub (as
// natstest.HubLeaf does), or between a client and a server, to test how
// code behaves when the link fails or degrades.
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
	wg     sync.WaitGroup // accept loop, dials, readers and writers

	// impaired holds the impairment of each direction: [0] ToTarget,
	// [1] ToClient; nil impairs nothing.
	impaired [2]atomic.Pointer[impairment]
	dropped  atomic.Int64
	bufs     sync.Pool // of *[]byte, chunkSize long

	mu       sync.Mutex
	closed   bool
	cut      bool
	halfOpen bool
	// gate is closed while traffic flows; Stall replaces it with an open
	// channel that writers wait on before writing.
	gate  chan struct{}
	conns map[*proxyConn]struct{}
	stats Stats
}

// impairment is an [Impairment] in force.
type impairment struct {
	latency time.Duration
	limiter *rate.Limiter // nil: no bandwidth limit
}

// Stats is a snapshot of a [Proxy]'s connection counters.
type Stats struct {
	// Accepted counts every connection the proxy accepted, including those
	// it closed at once because it was cut or the target was down.
	Accepted int
	// Refused counts accepted connections closed at once because the proxy
	// was cut.
	Refused int
	// Active is the number of connections currently open through the
	// proxy, those held half-open included.
	Active int
	// HalfOpen is the number of connections currently held half-open
	// ([Proxy.HalfOpen]).
	HalfOpen int
	// Dropped counts the bytes the proxy read and discarded because their
	// connection was held half-open.
	Dropped int64
}

// New starts a proxy listening on a random port of 127.0.0.1 that
// forwards to target, a host:port. The target need not be up yet. New
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
	p.bufs.New = func() any { b := make([]byte, chunkSize); return &b }
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
	for pc := range p.conns {
		if pc.dead.Load() {
			st.HalfOpen++
		}
	}
	st.Dropped = p.dropped.Load()
	return st
}

// Cut closes every proxied connection, and closes each new connection as
// soon as it is accepted, until [Proxy.Restore], [Proxy.Stall] or
// [Proxy.HalfOpen]. To both peers it looks like the network dropped the
// link: they see the connection end and must reconnect. Impairments set
// with [Proxy.Impair] stay in force.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.halfOpen = false
	p.openGateLocked()
	conns := p.takeConnsLocked(false)
	p.mu.Unlock()
	closeAll(conns, false)
}

// Stall stops forwarding bytes in both directions while keeping every
// connection open, like a network path that silently holds packets. New
// connections are still accepted and connected to the target, but stalled
// too. Bytes the proxy receives after Stall returns are held (up to 1 MiB
// each way by the proxy, the rest in the kernel's socket buffers, which then
// push back on the sender) until [Proxy.Restore], which delivers them and
// resumes the traffic. Peers that use keep-alive pings, like NATS servers
// and clients, notice the stall once their pings go unanswered and close
// the connection themselves; the proxy closes the other side when it sees
// that, so both peers learn of it. Stall ends a [Proxy.Cut], and a
// [Proxy.HalfOpen] as [Proxy.Restore] does.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.cut = false
	dead := p.endHalfOpenLocked()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default: // already stalled
	}
	p.mu.Unlock()
	closeAll(dead, true)
}

// HalfOpen holds every connection half-open, as a dead NAT or a pulled
// cable does: both TCP connections stay open, but the proxy reads and
// discards every byte in both directions (counted in [Stats].Dropped), so
// the senders' writes succeed and nothing arrives. Nor does a close cross:
// a peer that gives up and closes its connection leaves the other peer's
// open, unaware. Only application-level pings tell the peers the link is
// dead. A connection accepted while half-open is held the same way and
// never reaches the target, as a connection attempt over a dead path does
// not. HalfOpen ends a [Proxy.Cut] or [Proxy.Stall] (bytes held by the
// stall are dropped). [Proxy.Restore] ends it as a NAT that lost its
// mapping does: every connection held half-open is reset, and the peers
// must reconnect. Impairments set with [Proxy.Impair] stay in force.
func (p *Proxy) HalfOpen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.halfOpen = true
	for pc := range p.conns {
		pc.dead.Store(true)
	}
	// Writers waiting at a stall's gate drop what they hold.
	p.openGateLocked()
}

// Impair sets the impairment of the direction or directions dir, for the
// connections open now and those to come, until [Proxy.Restore] or the
// next Impair of the same direction; a zero [Impairment] clears it. Bytes
// already read keep the latency they were read with. Impairments apply on
// top of a [Proxy.Stall].
func (p *Proxy) Impair(dir Direction, imp Impairment) {
	var in *impairment
	if imp.Latency > 0 || imp.Bandwidth > 0 {
		in = &impairment{latency: max(imp.Latency, 0)}
		if imp.Bandwidth > 0 {
			burst := min(max(imp.Bandwidth/10, 1), maxBurst)
			in.limiter = rate.NewLimiter(rate.Limit(imp.Bandwidth), burst)
		}
	}
	for i, d := range []Direction{ToTarget, ToClient} {
		if dir&d != 0 {
			p.impaired[i].Store(in)
		}
	}
}

// Restore ends a [Proxy.Cut], [Proxy.Stall] or [Proxy.HalfOpen] and
// clears every impairment ([Proxy.Impair]): new connections are proxied
// again, stalled connections deliver what was held and carry on, and
// connections held half-open are reset (closed at once on both sides, an
// RST to each peer), so that their peers reconnect. Bytes already read
// under a latency are still delivered at their time.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	dead := p.endHalfOpenLocked()
	p.openGateLocked()
	p.mu.Unlock()
	p.impaired[0].Store(nil)
	p.impaired[1].Store(nil)
	closeAll(dead, true)
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
	conns := p.takeConnsLocked(false)
	p.mu.Unlock()

	p.cancel()
	// Closing the listener ends the accept loop; its error is of no interest.
	_ = p.ln.Close()
	closeAll(conns, false)
	p.wg.Wait()
}

func (p *Proxy) openGateLocked() {
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// endHalfOpenLocked ends the half-open state and returns the connections
// held half-open, forgotten by the proxy, for the caller to reset.
func (p *Proxy) endHalfOpenLocked() []*proxyConn {
	p.halfOpen = false
	return p.takeConnsLocked(true)
}

// takeConnsLocked forgets and returns every connection, or only those
// held half-open.
func (p *Proxy) takeConnsLocked(deadOnly bool) []*proxyConn {
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		if deadOnly && !pc.dead.Load() {
			continue
		}
		conns = append(conns, pc)
		delete(p.conns, pc)
	}
	return conns
}

func closeAll(conns []*proxyConn, reset bool) {
	for _, pc := range conns {
		if reset {
			pc.reset()
		}
		pc.close()
	}
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
		case p.halfOpen:
			// A connection attempt over a dead path: held, never dialled.
			pc := newProxyConn(p, c, nil)
			pc.dead.Store(true)
			p.conns[pc] = struct{}{}
			p.wg.Add(1)
			p.mu.Unlock()
			go p.read(pc, ToTarget, c, nil)
			continue
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.connect(c)
	}
}

// connect dials the target for the accepted connection c and starts the
// reader and the writer of each direction between them.
func (p *Proxy) connect(c net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: proxyDialTimeout}
	t, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	pc := newProxyConn(p, c, t)
	p.mu.Lock()
	if p.closed || p.cut {
		p.mu.Unlock()
		pc.close()
		return
	}
	if p.halfOpen { // it began during the dial
		pc.dead.Store(true)
	}
	p.conns[pc] = struct{}{}
	p.wg.Add(4)
	p.mu.Unlock()
	up, down := newFlight(), newFlight()
	go p.read(pc, ToTarget, c, up)
	go p.write(pc, ToTarget, t, up)
	go p.read(pc, ToClient, t, down)
	go p.write(pc, ToClient, c, down)
}

// read reads src and hands each chunk, stamped with the time it is due,
// to the writer of its direction through f (nil for a connection that has
// no target), until src fails.
func (p *Proxy) read(pc *proxyConn, dir Direction, src net.Conn, f *flight) {
	defer p.wg.Done()
	for {
		buf := p.bufs.Get().(*[]byte)
		n, rerr := src.Read(*buf)
		switch {
		case n == 0:
			p.bufs.Put(buf)
		case f == nil || pc.dead.Load():
			p.dropped.Add(int64(n))
			p.bufs.Put(buf)
		default:
			c := chunk{buf: buf, n: n, due: time.Now()}
			if in := p.impairment(dir); in != nil {
				c.due = c.due.Add(in.latency)
			}
			if !f.push(c, pc.done) {
				p.bufs.Put(buf)
				return
			}
		}
		if rerr == nil {
			continue
		}
		switch {
		case f == nil || pc.dead.Load():
			// A dead path carries no FIN or RST: the other peer is not
			// told. Restore, Cut or Close closes the connection.
		default:
			// Deliver what is in flight, then close: a stall holds the
			// close behind the bytes it holds, as a stalled network would
			// deliver them (a device that crashed while its last publish
			// was in flight has that publish arrive after Restore).
			f.push(chunk{end: true}, pc.done)
		}
		return
	}
}

// write delivers the chunks f carries to dst, each at its due time, until
// the end of the stream or a failure; then it closes the whole proxied
// connection, unless it is held half-open.
func (p *Proxy) write(pc *proxyConn, dir Direction, dst net.Conn, f *flight) {
	defer p.wg.Done()
	for {
		c, ok := f.pop(pc.done)
		if !ok {
			return
		}
		if c.end {
			if !pc.dead.Load() {
				pc.close()
			}
			return
		}
		ok = p.deliver(pc, dir, dst, c)
		p.bufs.Put(c.buf)
		f.release(c.n)
		switch {
		case ok:
		case pc.dead.Load():
			// Held half-open: drop the rest; Restore closes it.
		default:
			pc.close()
			return
		}
	}
}

// deliver writes one chunk to dst once it is due, the gate is open and the
// bandwidth limit allows, or drops it when the connection is held
// half-open. It reports false when pc was closed or dst failed.
func (p *Proxy) deliver(pc *proxyConn, dir Direction, dst net.Conn, c chunk) bool {
	if !pc.dead.Load() {
		if wait := time.Until(c.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-pc.done:
				t.Stop()
				return false
			}
		}
		if !p.waitGate(pc) {
			return false
		}
	}
	b := (*c.buf)[:c.n]
	for len(b) > 0 {
		if pc.dead.Load() {
			p.dropped.Add(int64(len(b)))
			return true
		}
		piece := b
		if in := p.impairment(dir); in != nil && in.limiter != nil {
			piece = piece[:min(len(piece), in.limiter.Burst())]
			if err := in.limiter.WaitN(pc.ctx, len(piece)); err != nil {
				return false
			}
		}
		if _, err := dst.Write(piece); err != nil {
			return false
		}
		b = b[len(piece):]
	}
	return true
}

func (p *Proxy) impairment(dir Direction) *impairment {
	if dir == ToClient {
		return p.impaired[1].Load()
	}
	return p.impaired[0].Load()
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
	target net.Conn // nil for a connection accepted while half-open
	// dead is set while the connection is held half-open.
	dead   atomic.Bool
	ctx    context.Context // cancelled by close, for bandwidth waits
	cancel context.CancelFunc
	once   sync.Once
	done   chan struct{}
}

func newProxyConn(p *Proxy, client, target net.Conn) *proxyConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &proxyConn{p: p, client: client, target: target, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// reset makes the coming close send an RST instead of a FIN to both peers.
func (pc *proxyConn) reset() {
	for _, c := range []net.Conn{pc.client, pc.target} {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
}

// close closes both connections and forgets pc; safe to call many times.
func (pc *proxyConn) close() {
	pc.once.Do(func() {
		close(pc.done)
		pc.cancel()
		_ = pc.client.Close()
		if pc.target != nil {
			_ = pc.target.Close()
		}
		pc.p.mu.Lock()
		delete(pc.p.conns, pc)
		pc.p.mu.Unlock()
	})
}

// chunk is what one read returned, or the end of the stream.
type chunk struct {
	buf *[]byte
	n   int
	due time.Time // when it may be delivered
	end bool      // the source ended: close after what came before
}

// flight carries the chunks of one direction from its reader to its
// writer, in order, holding at most maxInFlight bytes: the reader waits
// for room beyond that. One reader and one writer use it.
type flight struct {
	mu    sync.Mutex
	q     []chunk
	bytes int
	added chan struct{} // a chunk was pushed
	freed chan struct{} // bytes were released
}

func newFlight() *flight {
	return &flight{added: make(chan struct{}, 1), freed: make(chan struct{}, 1)}
}

// push appends c, waiting for room; it reports false when done closed
// first.
func (f *flight) push(c chunk, done <-chan struct{}) bool {
	for {
		f.mu.Lock()
		if f.bytes == 0 || f.bytes+c.n <= maxInFlight {
			f.q = append(f.q, c)
			f.bytes += c.n
			f.mu.Unlock()
			signal(f.added)
			return true
		}
		f.mu.Unlock()
		select {
		case <-f.freed:
		case <-done:
			return false
		}
	}
}

// pop removes the oldest chunk, waiting for one; it reports false when
// done closed first.
func (f *flight) pop(done <-chan struct{}) (chunk, bool) {
	for {
		f.mu.Lock()
		if len(f.q) > 0 {
			c := f.q[0]
			f.q[0] = chunk{}
			f.q = f.q[1:]
			f.mu.Unlock()
			return c, true
		}
		f.mu.Unlock()
		select {
		case <-f.added:
		case <-done:
			return chunk{}, false
		}
	}
}

// release returns n bytes of room, once their chunk was delivered.
func (f *flight) release(n int) {
	f.mu.Lock()
	f.bytes -= n
	f.mu.Unlock()
	signal(f.freed)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
