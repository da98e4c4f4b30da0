package devicekit

import "github.com/nats-io/nats.go"

// Conn returns the client's NATS connection, for tests that need to watch
// its state or misuse it on purpose.
func Conn(c *Client) *nats.Conn { return c.nc }

// Crash stops c as a killed process stops: no death, no waiting for the
// calls in progress, the connection dropped and the outbox's files closed,
// which releases its lock as the kernel would. Calls in progress end with
// ErrClosed, which leaves their envelopes in the outbox; Close afterwards
// returns ErrClosed.
func Crash(c *Client) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	h := c.handling
	c.mu.Unlock()
	c.hbCancel()
	<-c.hbDone
	<-c.boxDone
	if h != nil {
		h.cancel(ErrClosed)
	}
	if c.box != nil {
		c.box.close()
	}
	c.nc.Close()
	c.cancelLife()
	c.closeErr = ErrClosed
	close(c.closeCh)
}
