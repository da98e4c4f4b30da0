package devicekit

import "github.com/nats-io/nats.go"

// Conn returns the client's NATS connection, for tests that need to watch
// its state or misuse it on purpose.
func Conn(c *Client) *nats.Conn { return c.nc }
