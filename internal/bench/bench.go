package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Scenario names, in the order [Run] runs them.
const (
	ScenarioStream     = "stream"
	ScenarioIngest     = "ingest"
	ScenarioDecision   = "decision"
	ScenarioBacklog    = "backlog"
	ScenarioRevocation = "revocation"
	ScenarioCodec      = "codec"
	ScenarioFootprint  = "footprint"
	ScenarioScale      = "scale"
)

// ErrUnknownScenario is returned by [Run] for a scenario name not in
// [Scenarios].
var ErrUnknownScenario = errors.New("bench: unknown scenario")

// Defaults of [Config].
const (
	DefaultDatabaseURL  = "postgres://postgres@127.0.0.1:5432/lintel_bench"
	DefaultTimescaleURL = "postgres://postgres@127.0.0.1:5433/lintel_bench"
	DefaultDuration     = 2 * time.Minute
)

// scenario is one scenario of the harness.
type scenario struct {
	name, title string
	run         func(ctx context.Context, r *runner, res *Result) error
}

// scenarios lists every scenario, in order.
var scenarios = []scenario{
	{ScenarioStream, "device -> edge -> central stream (fsync always)", runStream},
	{ScenarioIngest, "central stream -> PostgreSQL", runIngest},
	{ScenarioDecision, "access decision, central cut off, audit durable", runDecision},
	{ScenarioBacklog, "backlog catch-up after an outage", runBacklog},
	{ScenarioRevocation, "revocation central -> every edge's set", runRevocation},
	{ScenarioCodec, "envelope codecs", runCodec},
	{ScenarioFootprint, "footprint: memory and binaries", runFootprint},
	{ScenarioScale, "scale: edges x devices against one central", runScale},
}

// Scenarios returns the names of every scenario, in the order they run.
func Scenarios() []string {
	out := make([]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = s.name
	}
	return out
}

// Config configures a run. The zero value runs every scenario at full
// size against the default databases.
type Config struct {
	// Quick runs every scenario at a small size.
	Quick bool
	// Scenarios selects scenarios by name; empty means all.
	Scenarios []string
	// Duration is how long the scale scenario sustains its load;
	// DefaultDuration if zero (5 s in quick mode).
	Duration time.Duration
	// ScaleEdges and ScaleDevices are the scale scenario's edges and
	// devices per edge; 100 and 100 if zero (3 and 5 in quick mode).
	ScaleEdges, ScaleDevices int
	// DatabaseURL is the PostgreSQL database of the ingest and backlog
	// scenarios, created if missing; its lintel schema is dropped and
	// migrated again by every scenario that uses it. DefaultDatabaseURL if
	// empty.
	DatabaseURL string
	// TimescaleURL is the same for TimescaleDB; DefaultTimescaleURL if
	// empty, "off" to skip it. A server that does not answer is skipped
	// with a note.
	TimescaleURL string
	// Dir holds the run's stores; a temporary directory, removed at the
	// end, if empty.
	Dir string
	// Child, when set, returns the command that runs [RunChild] with
	// role and args in a process of its own (the footprint and the scale
	// scenarios use it). Without it, the footprint's processes are "n/a"
	// and the scale scenario's devices run in this process.
	Child func(ctx context.Context, role string, args ...string) *exec.Cmd
	// ModuleDir is a directory of the Lintel module's source, where "go
	// build" builds the binaries whose sizes the footprint reports; ""
	// reports them as "n/a".
	ModuleDir string
	// Progress, when set, is called as a scenario makes progress.
	Progress func(Progress)
	// Logger receives the harness's log, and central's and the edges'
	// (with nats-server's); nil discards.
	Logger *slog.Logger
}

// Progress is a step of a scenario: Done of Total units of it.
type Progress struct {
	Scenario, Step string
	Done, Total    int
}

// Report is the outcome of a run.
type Report struct {
	Started  time.Time `json:"started"`
	Elapsed  float64   `json:"elapsed_s"`
	Quick    bool      `json:"quick"`
	Machine  Machine   `json:"machine"`
	Revision string    `json:"revision,omitempty"`
	// Command is the command line of the run, as its caller records it.
	Command string `json:"command,omitempty"`
	// Scenarios holds one result per scenario run, in order.
	Scenarios []Result `json:"scenarios"`
}

// Result is what one scenario measured.
type Result struct {
	Scenario string   `json:"scenario"`
	Title    string   `json:"title"`
	Figures  []Figure `json:"figures"`
	// Notes say what the figures need to be read right: sizes, what was
	// skipped and why.
	Notes []string `json:"notes,omitempty"`
	// Error is why the scenario ended early, if it did; the figures
	// measured until then are kept.
	Error   string  `json:"error,omitempty"`
	Elapsed float64 `json:"elapsed_s"`
}

// Figure is one measured figure beside its baseline.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Baseline is the raw figure of the same quantity measured in the
	// same run, named by BaselineName; zero when the figure has none.
	Baseline     float64 `json:"baseline,omitempty"`
	BaselineName string  `json:"baseline_name,omitempty"`
	// Ratio is Value / Baseline (zero without a baseline).
	Ratio float64 `json:"ratio,omitempty"`
	// Goal states the goal ("" for a figure only reported) and Met
	// whether it was met.
	Goal string `json:"goal,omitempty"`
	Met  *bool  `json:"met,omitempty"`
}

// goalKind says what a goal bounds.
type goalKind int

const (
	noGoal       goalKind = iota
	ratioAtLeast          // Ratio >= bound
	ratioAtMost           // Ratio <= bound
	valueAtMost           // Value <= bound
	valueAtLeast          // Value >= bound
)

// fig returns a figure with its ratio computed and its goal judged.
func fig(name string, value float64, unit string, baseline float64, baselineName string, kind goalKind, bound float64) Figure {
	f := Figure{Name: name, Value: value, Unit: unit, Baseline: baseline, BaselineName: baselineName}
	if baseline > 0 {
		f.Ratio = value / baseline
	}
	var met bool
	switch kind {
	case noGoal:
		return f
	case ratioAtLeast:
		f.Goal, met = fmt.Sprintf("ratio >= %g", bound), baseline > 0 && f.Ratio >= bound
	case ratioAtMost:
		f.Goal, met = fmt.Sprintf("ratio <= %g", bound), baseline > 0 && f.Ratio <= bound
	case valueAtMost:
		f.Goal, met = fmt.Sprintf("<= %g %s", bound, unit), value <= bound
	case valueAtLeast:
		f.Goal, met = fmt.Sprintf(">= %g %s", bound, unit), value >= bound
	}
	f.Met = &met
	return f
}

// runner is the state of one run, shared by its scenarios.
type runner struct {
	cfg  Config
	log  *slog.Logger
	dir  string
	name string // the current scenario
}

// progress reports a step of the current scenario.
func (r *runner) progress(step string, done, total int) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(Progress{Scenario: r.name, Step: step, Done: done, Total: total})
	}
}

// size returns quick in quick mode, else full.
func (r *runner) size(quick, full int) int {
	if r.cfg.Quick {
		return quick
	}
	return full
}

// scratch returns a new directory for one part of a scenario.
func (r *runner) scratch(name string) (string, error) {
	d, err := os.MkdirTemp(r.dir, name+"-")
	if err != nil {
		return "", fmt.Errorf("bench: scratch directory: %w", err)
	}
	return d, nil
}

// Run runs the scenarios cfg selects and returns their report. A scenario
// that fails records its error in its result and the run goes on; Run
// returns an error only for a bad configuration, an unknown scenario
// (wrapping [ErrUnknownScenario]), or ctx ending (with the report so far).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	want := map[string]bool{}
	for _, s := range cfg.Scenarios {
		if !slices.Contains(Scenarios(), s) {
			return nil, fmt.Errorf("%w: %q (want one of %s)", ErrUnknownScenario, s, strings.Join(Scenarios(), ", "))
		}
		want[s] = true
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = DefaultDatabaseURL
	}
	if cfg.TimescaleURL == "" {
		cfg.TimescaleURL = DefaultTimescaleURL
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultDuration
		if cfg.Quick {
			cfg.Duration = 5 * time.Second
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &runner{cfg: cfg, log: cfg.Logger, dir: cfg.Dir}
	if r.dir == "" {
		d, err := os.MkdirTemp("", "lintel-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: temporary directory: %w", err)
		}
		defer os.RemoveAll(d)
		r.dir = d
	}
	rep := &Report{Started: time.Now().UTC(), Quick: cfg.Quick, Machine: ReadMachine()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rep.Revision = s.Value
			}
		}
	}
	start := time.Now()
	for _, s := range scenarios {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		if err := ctx.Err(); err != nil {
			rep.Elapsed = time.Since(start).Seconds()
			return rep, fmt.Errorf("bench: %w", context.Cause(ctx))
		}
		r.name = s.name
		res := Result{Scenario: s.name, Title: s.title, Figures: []Figure{}}
		t0 := time.Now()
		r.log.Info("scenario starts", "scenario", s.name)
		if err := s.run(ctx, r, &res); err != nil {
			res.Error = err.Error()
			r.log.Warn("scenario failed", "scenario", s.name, "err", err)
		}
		res.Elapsed = time.Since(t0).Seconds()
		rep.Scenarios = append(rep.Scenarios, res)
	}
	rep.Elapsed = time.Since(start).Seconds()
	return rep, nil
}

// WriteTable writes the report as aligned text: the machine, then a line
// per figure with its baseline, ratio and goal.
func (rep *Report) WriteTable(w io.Writer) error {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, load average at start %s, %s %s/%s\n", m.NProc, m.CPU, m.LoadAvg, m.GoVersion, m.OS, m.Arch)
	mode := "full"
	if rep.Quick {
		mode = "quick (sizes too small for figures)"
	}
	fmt.Fprintf(w, "started %s, %s, took %.0f s\n", rep.Started.Format(time.RFC3339), mode, rep.Elapsed)
	if rep.Command != "" {
		fmt.Fprintf(w, "command: %s\n", rep.Command)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tVALUE\tBASELINE\tRATIO\tGOAL\tMET")
	for _, s := range rep.Scenarios {
		for _, f := range s.Figures {
			base, ratio, met := "-", "-", "-"
			if f.BaselineName != "" {
				base = fmt.Sprintf("%s (%s)", num(f.Baseline, f.Unit), f.BaselineName)
				ratio = fmt.Sprintf("%.2f", f.Ratio)
			}
			if f.Met != nil {
				met = map[bool]string{true: "met", false: "MISSED"}[*f.Met]
			}
			goal := f.Goal
			if goal == "" {
				goal = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Scenario, f.Name, num(f.Value, f.Unit), base, ratio, goal, met)
		}
		if s.Error != "" {
			fmt.Fprintf(tw, "%s\tERROR\t%s\t\t\t\t\n", s.Scenario, s.Error)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range rep.Scenarios {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "note: %s: %s\n", s.Scenario, n)
		}
	}
	return nil
}

// num renders a value with its unit.
func num(v float64, unit string) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f %s", v, unit)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}
