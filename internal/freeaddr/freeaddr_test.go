package freeaddr

import (
	"net"
	"testing"
)

// TestNeverTwice hands out many addresses and finds each distinct and
// bindable.
func TestNeverTwice(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		a := Loopback(t)
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
	l, err := net.Listen("tcp", Loopback(t))
	if err != nil {
		t.Fatalf("a fresh address is not bindable: %v", err)
	}
	_ = l.Close()
	if p := Port(t); p <= 0 {
		t.Fatalf("Port = %d", p)
	}
}

// TestBelowEphemeral: on Linux the ports handed out are below the
// ephemeral range, so no outgoing connection's local port can take one.
func TestBelowEphemeral(t *testing.T) {
	hi := fixedLimit()
	if hi == 0 {
		t.Skip("the ephemeral range leaves too few ports below it")
	}
	for range 100 {
		if p := Port(t); p < lowPort || p >= hi {
			t.Fatalf("port %d outside [%d, %d)", p, lowPort, hi)
		}
	}
}
