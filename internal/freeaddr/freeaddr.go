// Package freeaddr hands tests loopback addresses for servers whose
// address must be known before they start (a rendered configuration, a
// cluster's routes).
//
// An address is free when it is handed out, not reserved: the kernel may
// give the same port to anyone once the probe's listener closes. What this
// package adds over listening on port 0 and closing is that one process
// never hands out the same port twice, so two servers of one test (or of
// two tests running in parallel) are never configured with the same
// address.
package freeaddr

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

var (
	mu     sync.Mutex
	handed = map[string]map[int]bool{} // host -> ports handed out
)

// Loopback returns an address on 127.0.0.1 with a port free at the time
// and not handed out before by this process.
func Loopback(tb testing.TB) string {
	tb.Helper()
	return On(tb, "127.0.0.1")
}

// Port returns the port of an address Loopback would return.
func Port(tb testing.TB) int {
	tb.Helper()
	_, p, _ := net.SplitHostPort(On(tb, "127.0.0.1"))
	n, _ := strconv.Atoi(p)
	return n
}

// On returns an address on host (an IP address of this machine) with a
// port free at the time and not handed out before by this process for
// that host.
func On(tb testing.TB, host string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if handed[host] == nil {
		handed[host] = map[int]bool{}
	}
	// The probes stay open until one is new, so the kernel cannot offer
	// the same port twice within one call.
	var probes []net.Listener
	defer func() {
		for _, l := range probes {
			_ = l.Close()
		}
	}()
	for range 1000 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			tb.Fatalf("freeaddr: %v", err)
		}
		probes = append(probes, l)
		port := l.Addr().(*net.TCPAddr).Port
		if !handed[host][port] {
			handed[host][port] = true
			return l.Addr().String()
		}
	}
	tb.Fatalf("freeaddr: no new port on %s after 1000 tries", host)
	return ""
}
