package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/internal/bench"
)

// benchChildEnv marks a process started as a bench child: the test binary
// reads it to act as lintelctl (see bench_test.go).
const benchChildEnv = "LINTEL_BENCH_CHILD"

// benchOptions are the flags of lintelctl bench.
type benchOptions struct {
	quick      bool
	scenarios  []string
	duration   time.Duration
	edges      int
	devices    int
	output     string
	jsonFile   string
	database   string
	timescale  string
	cpuprofile string
	logFile    string
}

// benchCommand returns "lintelctl bench".
func (a *app) benchCommand() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the system end to end, each figure beside a raw baseline",
		Long: `bench measures Lintel end to end on this machine, with the code the
binaries run (central, edge nodes with their access service, devices over
NATS and HTTP, the gateway, the ingest into PostgreSQL), and measures in
the same run a raw baseline for each figure (plain nats-server and
nats.go, pgx CopyFrom, encoding/json), so that the ratio between them
holds on a busy machine. It starts everything it needs in-process on
random loopback ports, and processes of its own for the footprint and the
scale run's devices.

Scenarios (--scenario, repeatable or comma separated; all by default):

  stream      device -> edge -> central stream, NATS and HTTP devices,
              events/s and latency, fsync always (goal >= 90% of raw),
              and a bare HTTP front end beside the gateway
  ingest      central stream -> PostgreSQL and TimescaleDB, events/s
              (goal >= 70% of raw CopyFrom) and publish -> row lag
  decision    access decision p50/p99/p999, 100,000 credentials, central
              cut off (goal p99 <= 1.1x one fsynced publish), 1 and 10 readers
  backlog     100,000 events buffered during an outage: into central's
              stream (goal p99 <= 5 s) and the database (goal <= 10 s);
              10 edges at once
  revocation  central -> every edge's credential set, 10 edges
              (goal p99 <= 100 ms)
  codec       envelope round trip: msgpack (goal <= 1 us, >= 10x
              encoding/json, 0 allocs to encode), CloudEvents JSON
  footprint   edge memory idle (goal <= 64 MiB) and at 1,000 events/s,
              central with 100 edges, binary sizes
  scale       100 edges x 100 devices against one central for --duration

The database named by --database (created if missing) has its lintel
schema dropped and recreated: give bench a database of its own. A
TimescaleDB server that does not answer is skipped with a note.

A full run takes 20 to 40 minutes and several GiB of memory; --quick runs
every scenario at a small size in about a minute, to check that it works,
not for figures. Progress is drawn on stderr.`,
		Example: `  lintelctl bench
  lintelctl bench --quick --output json
  lintelctl bench --scenario stream,decision --json bench.json
  lintelctl bench --scenario scale --edges 100 --devices 20 --duration 5m --cpuprofile scale.pprof`,
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			if o.output != outputTable && o.output != outputJSON {
				return usagef("--output %q: want table or json", o.output)
			}
			var names []string
			for _, s := range o.scenarios {
				for _, n := range strings.Split(s, ",") {
					if n = strings.TrimSpace(n); n != "" {
						names = append(names, n)
					}
				}
			}
			for _, n := range names {
				if !containsString(bench.Scenarios(), n) {
					return usagef("--scenario %q: want one of %s", n, strings.Join(bench.Scenarios(), ", "))
				}
			}
			if o.duration < 0 {
				return usagef("--duration %v: want a positive duration", o.duration)
			}
			if o.edges < 0 || o.devices < 0 {
				return usagef("--edges %d --devices %d: want positive numbers", o.edges, o.devices)
			}
			return a.bench(cmd.Context(), o, names)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&o.quick, "quick", false, "run every scenario at a small size (checks the harness; no figures to quote)")
	f.StringSliceVar(&o.scenarios, "scenario", nil, "scenarios to run: "+strings.Join(bench.Scenarios(), ", ")+" (default all)")
	f.DurationVar(&o.duration, "duration", 0, "how long the scale scenario sustains its load (default 2m, 5s with --quick)")
	f.IntVar(&o.edges, "edges", 0, "edges of the scale scenario (default 100, 3 with --quick)")
	f.IntVar(&o.devices, "devices", 0, "devices per edge of the scale scenario (default 100, 5 with --quick)")
	f.StringVarP(&o.output, "output", "o", outputTable, "output format: table or json")
	f.StringVar(&o.jsonFile, "json", "", "also write the report as JSON to this file")
	f.StringVar(&o.database, "database", bench.DefaultDatabaseURL, "PostgreSQL database for the ingest and backlog scenarios (created if missing, its lintel schema recreated)")
	f.StringVar(&o.timescale, "timescale", bench.DefaultTimescaleURL, `TimescaleDB database for the ingest scenario ("off" to skip)`)
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to this file")
	f.StringVar(&o.logFile, "log", "", "write the log of central, the edges and their servers to this file, as JSON lines")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("scenario", cobra.FixedCompletions(bench.Scenarios(), cobra.ShellCompDirectiveNoFileComp))
	cmd.AddCommand(a.benchChildCommand())
	return cmd
}

// benchChildCommand returns "lintelctl bench child", the hidden command
// bench runs in processes of its own.
func (a *app) benchChildCommand() *cobra.Command {
	var spec string
	cmd := &cobra.Command{
		Use:    "child ROLE --spec FILE",
		Short:  "Run one process of lintelctl bench (internal)",
		Hidden: true,
		Example: `  lintelctl bench child edge --spec /tmp/lintel-bench-1/edge.json
  lintelctl bench child devices --spec /tmp/lintel-bench-1/devices.json`,
		Args: cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return bench.RunChild(cmd.Context(), args[0], spec, a.stdout)
		}),
	}
	cmd.Flags().StringVar(&spec, "spec", "", "the child's specification, written by bench (required)")
	_ = cmd.MarkFlagRequired("spec")
	return cmd
}

// bench runs the scenarios and prints the report.
func (a *app) bench(ctx context.Context, o benchOptions, names []string) error {
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var logger *slog.Logger
	if o.logFile != "" {
		f, err := os.Create(o.logFile)
		if err != nil {
			return fmt.Errorf("--log: %w", err)
		}
		defer f.Close()
		logger = slog.New(slog.NewJSONHandler(&syncWriter{w: f}, nil))
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find lintelctl's executable: %w", err)
	}
	errOut := &syncWriter{w: a.stderr} // progress and the children's errors
	p := &benchProgress{a: a, w: errOut}
	cfg := bench.Config{
		Quick: o.quick, Scenarios: names, Duration: o.duration, ScaleEdges: o.edges, ScaleDevices: o.devices,
		DatabaseURL: o.database, TimescaleURL: o.timescale,
		ModuleDir: moduleDir(),
		Child: func(ctx context.Context, role string, args ...string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, exe, append([]string{"bench", "child", role}, args...)...)
			cmd.Env = append(os.Environ(), benchChildEnv+"=1")
			cmd.Stderr = errOut
			cmd.WaitDelay = time.Minute
			return cmd
		},
		Progress: p.update,
		Logger:   logger,
	}
	rep, err := bench.Run(ctx, cfg)
	p.finish()
	if rep == nil {
		return err
	}
	rep.Command = commandLine(o, names)
	if o.jsonFile != "" {
		data, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(o.jsonFile, append(data, '\n'), 0o644)
		}
		if jerr != nil {
			return fmt.Errorf("--json %s: %w", o.jsonFile, jerr)
		}
	}
	if o.output == outputJSON {
		if werr := a.writeJSON(rep); werr != nil {
			return werr
		}
	} else if werr := rep.WriteTable(a.stdout); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	for _, s := range rep.Scenarios {
		if s.Error != "" {
			return fmt.Errorf("scenario %s failed: %s", s.Scenario, s.Error)
		}
	}
	return nil
}

// commandLine renders the command line of the run, for the report.
func commandLine(o benchOptions, names []string) string {
	parts := []string{"lintelctl bench"}
	if o.quick {
		parts = append(parts, "--quick")
	}
	if len(names) > 0 {
		parts = append(parts, "--scenario "+strings.Join(names, ","))
	}
	if o.duration > 0 {
		parts = append(parts, "--duration "+o.duration.String())
	}
	if o.edges > 0 {
		parts = append(parts, fmt.Sprintf("--edges %d", o.edges))
	}
	if o.devices > 0 {
		parts = append(parts, fmt.Sprintf("--devices %d", o.devices))
	}
	if o.database != bench.DefaultDatabaseURL {
		parts = append(parts, "--database "+o.database)
	}
	if o.timescale != bench.DefaultTimescaleURL {
		parts = append(parts, "--timescale "+o.timescale)
	}
	return strings.Join(parts, " ")
}

// moduleDir returns the directory of the Lintel module's go.mod above
// the working directory, or "" outside the source tree.
func moduleDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module github.com/lintel-io/lintel\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// containsString reports whether list holds s.
func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// benchProgress shows a run's progress on stderr: a bar per step on a
// terminal, otherwise a line per step.
type benchProgress struct {
	a    *app
	w    io.Writer
	mu   sync.Mutex
	step string
	bar  *progressbar.ProgressBar
}

func (p *benchProgress) update(pr bench.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	step := pr.Scenario + ": " + pr.Step
	if step != p.step {
		p.finishLocked()
		p.step = step
		if !p.a.terminal {
			fmt.Fprintln(p.w, "bench:", step)
		} else {
			p.bar = progressbar.NewOptions(max(pr.Total, 1),
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(step),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionShowElapsedTimeOnFinish(),
				progressbar.OptionThrottle(100*time.Millisecond))
		}
	}
	if p.bar != nil {
		_ = p.bar.Set(pr.Done) // drawing errors do not matter
	}
}

func (p *benchProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
}

func (p *benchProgress) finishLocked() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
		p.bar = nil
	}
}

// syncWriter serializes writes to w, shared by goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
