package natstest

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// TestRestartRetriesBusyPort holds the client port while Restart runs and
// releases it once Restart has seen it busy: Restart must then succeed on the
// same port.
func TestRestartRetriesBusyPort(t *testing.T) {
	t.Parallel()
	srv := Run(t, nil)
	shutdown(srv.Server())
	l, err := net.Listen("tcp", srv.Addr())
	if err != nil {
		t.Fatalf("take the server's port: %v", err)
	}

	var once sync.Once
	sawBusy := make(chan error, 1)
	srv.onRetry = func(err error) { once.Do(func() { sawBusy <- err }) }
	done := make(chan error, 1)
	go func() { done <- srv.Restart() }()

	select {
	case err := <-sawBusy:
		if !errors.Is(err, ErrNotReady) {
			t.Errorf("busy port reported as %v, want ErrNotReady", err)
		}
	case err := <-done:
		t.Fatalf("Restart returned %v while the port was busy", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("release port: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Restart after the port was released: %v", err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	nc.Close()
}
