// Package simulator runs fleets of simulated Lintel devices, for tests,
// benchmarks and demos: card readers that send access requests, locks that
// carry out unlock and lock commands and report their door's state, door
// sensors that report doors opening and closing, and environment sensors that
// send temperature and humidity readings.
//
// Devices connect through any [devicekit.Device] implementation, given as
// [Config.Connect]; their behaviour (which credential, which reading, when)
// comes from a seeded random source per device, so that one seed gives the
// same messages in the same order on every run.
//
// The context given to [Start] bounds connecting the devices only; the
// fleet runs until [Simulator.Stop] (or [Simulator.Close], which also
// returns the errors of closing the devices).
//
//	sim, err := simulator.Start(ctx, simulator.Config{Org: "acme", Edge: "hq", Readers: 2, Locks: 2, Seed: 1, Connect: connect})
//	...
//	defer sim.Stop()
//	fmt.Println(sim.Stats())
package simulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Kind is a kind of simulated device; it is also the device's thing type.
type Kind string

// The kinds of simulated device.
const (
	// Reader is a card reader: it sends an access request
	// (message.NameAccessRequested) every ReaderInterval and waits for the
	// edge's decision. It presents a random card number, or, when
	// Config.Cards lists some, one of those every other time.
	Reader Kind = "reader"
	// Lock is a door lock: it carries out "unlock" and "lock" commands,
	// rejects others, and reports its door's state (message.NameDoorState)
	// at start and after each change.
	Lock Kind = "lock"
	// DoorSensor is a door contact: it reports its door opening and closing
	// (message.NameDoorState) every DoorInterval, and now and then an event
	// that the door was held open (message.NameDoorHeldOpen, one opening in
	// ten) or forced open (message.NameDoorForcedOpen, one in twenty).
	DoorSensor Kind = "door"
	// EnvSensor is an environment sensor: it sends temperature and humidity
	// readings (message.NameSensorReading telemetry) every TelemetryInterval.
	EnvSensor Kind = "sensor"
)

// Defaults of [Config].
const (
	DefaultReaderInterval    = 2 * time.Second
	DefaultDoorInterval      = 5 * time.Second
	DefaultTelemetryInterval = time.Second
	// DefaultCallTimeout bounds each publish or request of a device.
	DefaultCallTimeout = 10 * time.Second
)

// Config configures [Start]. The zero value of every field but Org, Edge
// and Connect means the default.
type Config struct {
	// Org and Edge are the org and edge codes of the devices.
	Org, Edge string
	// How many devices of each kind to run.
	Readers, Locks, DoorSensors, EnvSensors int
	// Mean times between two messages of one device, each wait drawn
	// uniformly between half and one and a half times the mean; zero means
	// the defaults.
	ReaderInterval, DoorInterval, TelemetryInterval time.Duration
	// CallTimeout bounds each publish or request; zero means
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// Seed seeds every device's random source, so that one seed gives the
	// same behaviour on every run.
	Seed uint64
	// Cards are card numbers the readers present every other time, drawn
	// at random, so that some requests can be granted; the others are
	// random numbers. Empty: random numbers only.
	Cards []message.Credential
	// Connect connects a device as thing. Required.
	Connect func(ctx context.Context, thing topic.Thing) (devicekit.Device, error)
	// Logger receives the simulator's log records; nil discards them.
	Logger *slog.Logger
}

// Stats is a snapshot of a simulator's counters. Sent - Acked - Errors calls
// were cut short by stopping, at most one per device.
type Stats struct {
	Devices  int    // devices running
	Sent     uint64 // publishes and requests attempted
	Acked    uint64 // publishes stored (or sent, for unacknowledged telemetry) and requests answered
	Errors   uint64 // publishes and requests that failed
	Commands uint64 // commands carried out by locks
}

// String formats s on one line.
func (s Stats) String() string {
	return fmt.Sprintf("devices=%d sent=%d acked=%d errors=%d commands=%d", s.Devices, s.Sent, s.Acked, s.Errors, s.Commands)
}

// Things returns the things cfg simulates, in order: readers "reader-1",
// "reader-2", ..., then locks, door sensors and environment sensors. Provision
// them (users and permissions) before [Start].
func Things(cfg Config) []topic.Thing {
	var things []topic.Thing
	for _, k := range []struct {
		kind Kind
		n    int
	}{{Reader, cfg.Readers}, {Lock, cfg.Locks}, {DoorSensor, cfg.DoorSensors}, {EnvSensor, cfg.EnvSensors}} {
		for i := 1; i <= k.n; i++ {
			things = append(things, topic.Thing{Org: cfg.Org, Edge: cfg.Edge, Type: string(k.kind), Code: string(k.kind) + "-" + strconv.Itoa(i)})
		}
	}
	return things
}

// Simulator is a running fleet of simulated devices. Make one with [Start]
// and stop it with [Simulator.Stop] or [Simulator.Close]; its methods are
// safe for concurrent use.
type Simulator struct {
	cfg     Config
	log     *slog.Logger
	devices []devicekit.Device
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	done    chan struct{}

	sent, acked, errs, commands atomic.Uint64

	stopOnce sync.Once
	stopErr  error
}

// Start connects every device of cfg and starts them. ctx bounds the
// start only (it is passed to Config.Connect and to the locks'
// HandleCommands): the devices run until
// [Simulator.Stop] or [Simulator.Close], whatever becomes of ctx. It
// returns an error wrapping the first failed connection (closing the
// devices already connected), or when cfg has no Connect or names an
// invalid thing.
func Start(ctx context.Context, cfg Config) (*Simulator, error) {
	if cfg.Connect == nil {
		return nil, errors.New("simulator: Config.Connect is required")
	}
	things := Things(cfg)
	for _, t := range things {
		if err := topic.ValidateThing(t); err != nil {
			return nil, fmt.Errorf("simulator: %w", err)
		}
	}
	if cfg.ReaderInterval <= 0 {
		cfg.ReaderInterval = DefaultReaderInterval
	}
	if cfg.DoorInterval <= 0 {
		cfg.DoorInterval = DefaultDoorInterval
	}
	if cfg.TelemetryInterval <= 0 {
		cfg.TelemetryInterval = DefaultTelemetryInterval
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Simulator{cfg: cfg, log: cfg.Logger, cancel: cancel, done: make(chan struct{})}
	for _, t := range things {
		d, err := cfg.Connect(ctx, t)
		if err != nil {
			cancel()
			for _, d := range s.devices {
				_ = d.Close()
			}
			return nil, fmt.Errorf("simulator: connect %s: %w", t, err)
		}
		s.devices = append(s.devices, d)
	}
	for i, d := range s.devices {
		b := newBehaviour(cfg.Seed, i, Kind(things[i].Type), things[i].Code)
		b.cards = cfg.Cards
		if Kind(things[i].Type) == Lock {
			sub, err := d.HandleCommands(ctx, devicekit.HandlerFunc(func(ctx context.Context, cmd devicekit.Command) error {
				return s.command(d, b, cmd)
			}))
			if err != nil {
				s.Stop()
				return nil, fmt.Errorf("simulator: %s: %w", things[i], err)
			}
			_ = sub // stopped by the device's Close
		}
		s.wg.Go(func() { s.run(runCtx, d, b) })
	}
	return s, nil
}

// Stop stops every device and closes it (publishing its death), and
// returns once all are closed. It is idempotent; [Simulator.Close] is the
// same with the errors of those closes.
func (s *Simulator) Stop() { _ = s.Close() }

// Close is the io.Closer form of [Simulator.Stop]: it stops the simulator
// as Stop does and returns the errors of closing the devices, joined.
// Every call returns the same result.
func (s *Simulator) Close() error {
	s.stopOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		var errs []error
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, d := range s.devices {
			wg.Go(func() {
				if err := d.Close(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		s.stopErr = errors.Join(errs...)
		close(s.done)
	})
	<-s.done
	return s.stopErr
}

// Done is closed once the simulator has stopped.
func (s *Simulator) Done() <-chan struct{} { return s.done }

// Devices returns the simulated devices.
func (s *Simulator) Devices() []devicekit.Device {
	return append([]devicekit.Device(nil), s.devices...)
}

// Stats returns a snapshot of the simulator's counters.
func (s *Simulator) Stats() Stats {
	return Stats{
		Devices:  len(s.devices),
		Sent:     s.sent.Load(),
		Acked:    s.acked.Load(),
		Errors:   s.errs.Load(),
		Commands: s.commands.Load(),
	}
}

// interval returns the mean wait between two messages of kind k.
func (s *Simulator) interval(k Kind) time.Duration {
	switch k {
	case Reader:
		return s.cfg.ReaderInterval
	case DoorSensor:
		return s.cfg.DoorInterval
	case EnvSensor:
		return s.cfg.TelemetryInterval
	}
	return 0
}

// run drives one device until ctx ends.
func (s *Simulator) run(ctx context.Context, d devicekit.Device, b *behaviour) {
	if b.kind == Lock {
		s.call(ctx, d, func(ctx context.Context) error {
			return errOnly(d.PublishState(ctx, message.NameDoorState, b.lockState()))
		})
		return // commands drive it from now on
	}
	mean := s.interval(b.kind)
	timer := time.NewTimer(b.wait(mean))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		switch b.kind {
		case Reader:
			req := b.accessRequest()
			s.call(ctx, d, func(ctx context.Context) error {
				_, err := d.Request(ctx, message.NameAccessRequested, req)
				return err
			})
		case DoorSensor:
			st, event := b.doorChange()
			s.call(ctx, d, func(ctx context.Context) error { return errOnly(d.PublishState(ctx, message.NameDoorState, st)) })
			if event != "" {
				s.call(ctx, d, func(ctx context.Context) error { return errOnly(d.PublishEvent(ctx, event, st)) })
			}
		case EnvSensor:
			r := b.reading()
			s.call(ctx, d, func(ctx context.Context) error { return errOnly(d.PublishTelemetry(ctx, message.NameSensorReading, r)) })
		}
		timer.Reset(b.wait(mean))
	}
}

// call runs one publish or request and counts its outcome; failures caused
// by stopping are not errors.
func (s *Simulator) call(ctx context.Context, d devicekit.Device, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	s.sent.Add(1)
	err := f(ctx)
	switch {
	case err == nil:
		s.acked.Add(1)
	case errors.Is(err, context.Canceled) || errors.Is(err, devicekit.ErrClosed):
		// stopping
	default:
		s.errs.Add(1)
		s.log.Warn("simulated device call failed", message.LogKeyThing, d.Thing().String(), message.LogKeyError, err)
	}
}

// command carries out a lock's command.
func (s *Simulator) command(d devicekit.Device, b *behaviour, cmd devicekit.Command) error {
	var locked bool
	switch cmd.Action {
	case "unlock":
		locked = false
	case "lock":
		locked = true
	default:
		return fmt.Errorf("%w: unknown action %q", devicekit.ErrCommandRejected, cmd.Action)
	}
	s.commands.Add(1)
	st := b.setLocked(locked)
	// Report the new state even if handling is stopping.
	s.call(context.Background(), d, func(ctx context.Context) error {
		return errOnly(d.PublishState(ctx, message.NameDoorState, st))
	})
	return nil
}

// behaviour is one device's simulated world: its random source and state.
type behaviour struct {
	kind Kind
	door string

	mu     sync.Mutex // a lock's state changes under commands
	rng    *rand.Rand
	cards  []message.Credential // a reader's known cards (Config.Cards)
	open   bool
	locked bool
	temp   float64
	humid  float64
	n      int
}

// newBehaviour returns the behaviour of device number i, of kind, seeded
// from seed and i alone.
func newBehaviour(seed uint64, i int, kind Kind, code string) *behaviour {
	return &behaviour{
		kind:   kind,
		door:   "door-" + code,
		rng:    rand.New(rand.NewPCG(seed, uint64(i))),
		locked: true,
		temp:   21,
		humid:  45,
	}
}

// wait returns a wait drawn uniformly from [mean/2, 3*mean/2).
func (b *behaviour) wait(mean time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return mean/2 + time.Duration(b.rng.Int64N(int64(mean)+1))
}

// accessRequest returns the next card presented to a reader: one of its
// known cards every other time, when it has some, else a random number.
func (b *behaviour) accessRequest() message.AccessRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	cred := message.Credential(fmt.Sprintf("%08d", b.rng.IntN(100_000_000)))
	if len(b.cards) > 0 && b.rng.IntN(2) == 0 {
		cred = b.cards[b.rng.IntN(len(b.cards))]
	}
	return message.AccessRequest{Door: b.door, Kind: message.CredentialCard, Credential: cred}
}

// doorChange opens or closes the door, and returns the event an opening
// also raises, if any: held open too long (one opening in ten), or
// forced open, with the lock engaged (one in twenty).
func (b *behaviour) doorChange() (message.DoorState, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open = !b.open
	st := message.DoorState{Door: b.door, Open: b.open, Locked: !b.open}
	if !b.open {
		return st, ""
	}
	switch n := b.rng.IntN(20); {
	case n < 2:
		st.HeldOpen = true
		return st, message.NameDoorHeldOpen
	case n == 2:
		st.Forced, st.Locked = true, true
		return st, message.NameDoorForcedOpen
	}
	return st, ""
}

// reading returns the next reading, alternating temperature and humidity,
// each a random walk.
func (b *behaviour) reading() message.SensorReading {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	if b.n%2 == 1 {
		b.temp += b.rng.NormFloat64() * 0.1
		return message.SensorReading{Metric: "temperature", Value: round(b.temp), Unit: "Cel"}
	}
	b.humid = min(max(b.humid+b.rng.NormFloat64()*0.5, 0), 100)
	return message.SensorReading{Metric: "humidity", Value: round(b.humid), Unit: "%"}
}

func round(v float64) float64 { return math.Round(v*100) / 100 }

func (b *behaviour) lockState() message.DoorState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return message.DoorState{Door: b.door, Locked: b.locked}
}

func (b *behaviour) setLocked(locked bool) message.DoorState {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.locked = locked
	return message.DoorState{Door: b.door, Locked: b.locked}
}

// errOnly returns err, dropping the envelope ID a publish returns.
func errOnly(_ message.ID, err error) error { return err }
