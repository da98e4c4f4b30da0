package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/simulator"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// simReportEvery is how often sim prints its counters.
const simReportEvery = 5 * time.Second

// simReport is sim's final counters, as --output json prints them (see
// simulator.Stats).
type simReport struct {
	Devices  int     `json:"devices"`
	Sent     uint64  `json:"sent"`
	Acked    uint64  `json:"acked"`
	Errors   uint64  `json:"errors"`
	Commands uint64  `json:"commands"`
	Seconds  float64 `json:"seconds"`
}

type simOptions struct {
	urls      []string
	org, edge string
	passwords string
	state     string
	ca        string
	cards     string // the file of card numbers readers present
	cfg       simulator.Config
	duration  time.Duration
	output    string
	plan      bool
}

func (a *app) simCommand() *cobra.Command {
	var o simOptions
	cmd := &cobra.Command{
		Use:   "sim --url URL --org ORG --edge EDGE --passwords DIR --state FILE",
		Short: "Run simulated devices against an edge: readers, locks, door contacts, sensors",
		Long: `sim runs a fleet of simulated devices against an edge, as real devices: each
logs in with its own password and permissions and behaves as its kind does
(package devicekit/simulator): readers present cards now and then, locks
carry out the commands they receive (checking their signature), door
contacts open, close and now and then report a door held or forced open,
environment sensors send telemetry.

Readers present random card numbers, which the edge denies as unknown;
with --cards FILE (card numbers, one a line; blank lines and lines
starting with # are skipped) they present one of those every other time,
so that a card enrolled for the reader's door (door-reader-1 for
reader-1, ...) is granted.

The simulated things are named reader-1, reader-2, ..., lock-1, ...,
door-1, ..., sensor-1, ...; they must be in the inventory and rendered.
--plan prints the inventory entries to add and exits. Their passwords are
read from --passwords, the directory render writes them into
(DIR/devices/<org>-<edge>), and the command keys locks trust from the
state file.

sim runs until interrupted or for --duration, printing its counters every
5 s on stderr, and the last ones at the end (on stdout, as JSON with
--output json). It exits 1 when a device could not connect, or when any
publish failed.`,
		Example: `  lintelctl sim --plan --org acme --edge hq --readers 4 --locks 4
  lintelctl sim --url nats://10.42.0.2:4222 --org acme --edge hq \
      --passwords deploy/out/devices/acme-hq --state deploy/state.json --readers 4 --locks 4 --env-sensors 8`,
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error { return a.sim(cmd.Context(), &o) }),
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.urls, "url", nil, "the edge's client URL(s) (required, except with --plan)")
	f.StringVar(&o.org, "org", "", "the org code (required)")
	f.StringVar(&o.edge, "edge", "", "the edge code (required)")
	f.StringVar(&o.passwords, "passwords", "", "the directory of the devices' password files, as render writes them")
	f.StringVar(&o.state, "state", "", "the state file: the command keys locks trust")
	f.StringVar(&o.ca, "ca", "", "the CA of the edge's TLS certificate, when its client listener has TLS")
	f.StringVar(&o.cards, "cards", "", "a file of card numbers, one a line, that readers present every other time")
	f.IntVar(&o.cfg.Readers, "readers", 2, "card readers")
	f.IntVar(&o.cfg.Locks, "locks", 2, "locks")
	f.IntVar(&o.cfg.DoorSensors, "door-sensors", 2, "door contacts")
	f.IntVar(&o.cfg.EnvSensors, "env-sensors", 2, "environment sensors")
	f.DurationVar(&o.cfg.ReaderInterval, "reader-interval", 0, "mean time between two badge-ins of a reader (default: the simulator's)")
	f.DurationVar(&o.cfg.DoorInterval, "door-interval", 0, "mean time between two door events of a contact")
	f.DurationVar(&o.cfg.TelemetryInterval, "telemetry-interval", 0, "mean time between two readings of a sensor")
	f.Uint64Var(&o.cfg.Seed, "seed", 1, "random seed: one seed gives the same behaviour on every run")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long (0: run until interrupted)")
	f.StringVarP(&o.output, "output", "o", outputTable, "output format of the final counters: table or json")
	f.BoolVar(&o.plan, "plan", false, "print the inventory entries of the simulated things, and exit")
	return cmd
}

func (a *app) sim(ctx context.Context, o *simOptions) error {
	switch {
	case o.output != outputTable && o.output != outputJSON:
		return usagef("--output %q: want table or json", o.output)
	case o.org == "" || o.edge == "":
		return usagef("--org and --edge are required")
	case o.cfg.Readers < 0 || o.cfg.Locks < 0 || o.cfg.DoorSensors < 0 || o.cfg.EnvSensors < 0:
		return usagef("device counts must be 0 or more")
	case o.duration < 0:
		return usagef("--duration %v: want 0 or more", o.duration)
	}
	o.cfg.Org, o.cfg.Edge = o.org, o.edge
	things := simulator.Things(o.cfg)
	if o.plan {
		entries := make([]authz.Thing, len(things))
		for i, t := range things {
			entries[i] = authz.Thing{Thing: t}
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"things": entries})
	}
	switch {
	case len(o.urls) == 0:
		return usagef("--url is required")
	case o.passwords == "":
		return usagef("--passwords is required: the directory of the devices' password files")
	case o.state == "":
		return usagef("--state is required: the command keys locks trust")
	case len(things) == 0:
		return usagef("no devices to simulate")
	}
	if o.cards != "" {
		cards, err := readCards(o.cards)
		if err != nil {
			return err
		}
		o.cfg.Cards = cards
	}
	st, err := authz.LoadState(o.state)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	keys := st.CommandPublicKeys(o.org, o.edge)
	// Every password first: a missing one is named before anything starts.
	passwords := map[topic.Thing]authz.Secret{}
	for _, t := range things {
		pw, err := config.ReadSecret(filepath.Join(o.passwords, authz.DeviceUser(t)+".password"))
		if err != nil {
			return fmt.Errorf("%s: %w (is it in the inventory, rendered? see --plan)", t, err)
		}
		passwords[t] = pw
	}
	o.cfg.Connect = func(ctx context.Context, t topic.Thing) (devicekit.Device, error) {
		cfg := devicekit.Config{Thing: t, URLs: o.urls, Password: devicekit.Password(passwords[t].Reveal()), CommandKeys: keys}
		if o.ca != "" {
			cfg.NATSOptions = append(cfg.NATSOptions, nats.RootCAs(o.ca))
		}
		return devicekit.Connect(ctx, cfg)
	}
	start := time.Now()
	s, err := simulator.Start(ctx, o.cfg)
	if err != nil {
		return fmt.Errorf("start the simulator at %s: %w", strings.Join(o.urls, ","), err)
	}
	fmt.Fprintf(a.stderr, "simulating %d devices at edge %s (Ctrl-C to stop)\n", len(things), o.edge)
	var end <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		end = t.C
	}
	tick := time.NewTicker(simReportEvery)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end:
			break loop
		case <-s.Done():
			break loop
		case <-tick.C:
			fmt.Fprintf(a.stderr, "%s  %s\n", time.Since(start).Round(time.Second), s.Stats())
		}
	}
	closeErr := s.Close()
	stats := s.Stats()
	if o.output == outputJSON {
		rep := simReport{Devices: stats.Devices, Sent: stats.Sent, Acked: stats.Acked, Errors: stats.Errors,
			Commands: stats.Commands, Seconds: time.Since(start).Seconds()}
		if err := a.writeJSON(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "%s after %s\n", stats, time.Since(start).Round(time.Millisecond))
	}
	if stats.Errors > 0 {
		return fmt.Errorf("%d publishes or requests failed (see the edge's log)", stats.Errors)
	}
	return closeErr
}

// readCards reads the card numbers of file, one a line, skipping blank
// lines and comments (#).
func readCards(file string) ([]message.Credential, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--cards: %w", err)
	}
	var cards []message.Credential
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) > 256 || strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("--cards %s: line %d: want a card number of 1 to 256 printable characters", file, i+1)
		}
		cards = append(cards, message.Credential(line))
	}
	if len(cards) == 0 {
		return nil, usagef("--cards %s: no card numbers in it", file)
	}
	return cards, nil
}
