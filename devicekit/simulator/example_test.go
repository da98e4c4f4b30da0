package simulator_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/devicekit/simulator"
	"github.com/lintel-io/lintel/topic"
)

// A small fleet of sensors against an in-process edge.
func ExampleStart() {
	cfg := simulator.Config{
		Org: "acme", Edge: "hq",
		DoorSensors: 2, EnvSensors: 3,
		DoorInterval: 10 * time.Millisecond, TelemetryInterval: 10 * time.Millisecond,
		Seed: 1,
	}
	edge, err := devicetest.NewEdge(devicetest.EdgeOptions{Things: simulator.Things(cfg)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer edge.Close()
	cfg.Connect = func(ctx context.Context, thing topic.Thing) (devicekit.Device, error) {
		return devicekit.Connect(ctx, edge.Config(thing))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sim, err := simulator.Start(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for sim.Stats().Acked < 20 && ctx.Err() == nil {
		<-time.After(10 * time.Millisecond)
	}
	if err := sim.Close(); err != nil {
		fmt.Println(err)
	}
	s := sim.Stats()
	fmt.Println("devices:", s.Devices)
	fmt.Println("errors:", s.Errors)
	// Output:
	// devices: 5
	// errors: 0
}
