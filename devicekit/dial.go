package devicekit

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/nats-io/nats.go"
)

// dialEdge connects to url with opts, trying again every wait while no
// server answers, until ctx ends. A server that refuses the credentials
// ends it at once: trying again cannot help, and costs the edge a password
// check each time.
func dialEdge(ctx context.Context, url string, wait time.Duration, opts []nats.Option) (*nats.Conn, error) {
	if wait <= 0 {
		wait = DefaultReconnectWait
	}
	for {
		dial := nats.DefaultTimeout
		if d, ok := ctx.Deadline(); ok && time.Until(d) < dial {
			dial = max(time.Until(d), time.Millisecond)
		}
		nc, err := nats.Connect(url, append(opts[:len(opts):len(opts)], nats.Timeout(dial))...)
		if err == nil {
			return nc, nil
		}
		if !unreachable(err) {
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// unreachable reports whether err says that no server answered, which a
// later attempt may change.
func unreachable(err error) bool {
	var ne net.Error
	return errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, io.EOF) || errors.Is(err, nats.ErrConnectionClosed) || errors.As(err, &ne)
}

// isAuthError reports whether err is the server refusing the credentials.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}
