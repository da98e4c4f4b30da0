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
