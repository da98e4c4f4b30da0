package leaktest

import (
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); <-stop }()

	if leaked := Wait(50*time.Millisecond, "github.com/lintel-io/lintel/testing/leaktest"); leaked == "" {
		t.Fatal("Wait reported no leak while a goroutine of the package runs")
	}
	close(stop)
	<-done
	if leaked := Wait(5*time.Second, "github.com/lintel-io/lintel/testing/leaktest"); leaked != "" {
		t.Fatalf("Wait reported a leak after the goroutine ended:\n%s", leaked)
	}
	if leaked := Wait(0, "example.com/none"); leaked != "" {
		t.Fatalf("Wait reported a goroutine of an unrelated package:\n%s", leaked)
	}
}
