package devicekit_test

import (
	"testing"

	"github.com/lintel-io/lintel/devicekit/devicetest"
)

// TestConformance runs the Device conformance suite for the NATS client.
func TestConformance(t *testing.T) {
	edge := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	devicetest.Run(t, edge.Harness())
}
