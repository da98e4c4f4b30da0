// Package freeaddr hands tests loopback addresses for servers whose
// address must be known before they start (a rendered configuration, a
// cluster's routes).
//
// An address is free when it is handed out, not reserved: the kernel may
// give the same port to anyone once the probe's listener closes. Two
// things make a clash unlikely. One process never hands out the same port
// twice, so two servers of one test (or of two tests running in parallel)
// are never configured with the same address. And the ports come from
// below the kernel's ephemeral range (on Linux
// /proc/sys/net/ipv4/ip_local_port_range), which the kernel draws from for
// the local end of every outgoing connection and for every listener on port
// 0: otherwise a connection another server opens between the probe and the
// server's start (a leaf node dialling its hub, say) can take the port.
package freeaddr

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports are drawn from [lowPort, the ephemeral range's start), at most
// maxFixed, when that leaves at least minSpan ports; otherwise from port 0.
const (
	lowPort  = 12000
	maxFixed = 32768
	minSpan  = 4000
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
	if hi := fixedLimit(); hi > 0 {
		for range 1000 {
			port := lowPort + rand.IntN(hi-lowPort)
			if handed[host][port] {
				continue
			}
			l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				continue // in use
			}
			_ = l.Close()
			handed[host][port] = true
			return l.Addr().String()
		}
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

// fixedLimit returns the end (exclusive) of the range ports are drawn
// from, or 0 to use port 0: when the ephemeral range leaves fewer than
// minSpan ports above lowPort.
func fixedLimit() int {
	hi := maxFixed
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil {
				hi = min(hi, lo)
			}
		}
	}
	if hi-lowPort < minSpan {
		return 0
	}
	return hi
}
