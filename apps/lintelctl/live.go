package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
)

// envContext names the context file when --context is not given.
const envContext = "LINTEL_CONTEXT"

// Output formats of the commands that print data.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// defaultCallTimeout bounds each call to central of the live commands.
const defaultCallTimeout = 10 * time.Second

// liveFlags are the flags of the commands that talk to a running
// deployment: which context, which output, how long a call may take.
type liveFlags struct {
	context string
	output  string
	timeout time.Duration
}

// addLiveFlags registers the live commands' flags on cmd.
func addLiveFlags(cmd *cobra.Command, f *liveFlags) {
	cmd.Flags().StringVar(&f.context, "context", "", "the context file: central's URLs, the operator's identity and secrets (default $"+envContext+")")
	cmd.Flags().StringVarP(&f.output, "output", "o", outputTable, "output format: table or json")
	cmd.Flags().DurationVar(&f.timeout, "timeout", defaultCallTimeout, "how long each call to central may take")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
}

// check refuses bad flag values, as usage errors.
func (f *liveFlags) check() error {
	if f.output != outputTable && f.output != outputJSON {
		return usagef("--output %q: want table or json", f.output)
	}
	if f.timeout <= 0 {
		return usagef("--timeout %v: want a positive duration such as 10s", f.timeout)
	}
	return nil
}

func (f *liveFlags) json() bool { return f.output == outputJSON }

// call returns a context for one call to central, bounded by --timeout.
func (f *liveFlags) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.timeout)
}

// loadContext reads the context file --context or $LINTEL_CONTEXT names.
func (f *liveFlags) loadContext() (*config.Context, error) {
	path := f.context
	if path == "" {
		path = os.Getenv(envContext)
	}
	if path == "" {
		return nil, usagef("no context: pass --context FILE or set %s (the demo prints one)", envContext)
	}
	return config.LoadContext(path)
}

// ctlConn is a connection to central as the context's operator.
type ctlConn struct {
	cx  *config.Context
	nc  *nats.Conn
	js  jetstream.JetStream
	inv *authz.Inventory // nil until needed
}

// dial checks the flags, reads the context and connects to central.
func (f *liveFlags) dial(ctx context.Context, name string) (*ctlConn, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	cx, err := f.loadContext()
	if err != nil {
		return nil, err
	}
	nc, err := cx.Connect("lintelctl "+name, nats.Timeout(f.timeout), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &ctlConn{cx: cx, nc: nc, js: js}, nil
}

func (d *ctlConn) close() { d.nc.Close() }

// inventory reads the context's inventory once.
func (d *ctlConn) inventory() (*authz.Inventory, error) {
	if d.inv != nil {
		return d.inv, nil
	}
	inv, err := d.cx.Inventory()
	if err != nil {
		return nil, err
	}
	d.inv = inv
	return inv, nil
}

// hub returns the org's hub at central, signing commands with the org's
// command key when withKey is set.
func (d *ctlConn) hub(withKey bool) (*edgekit.Hub, error) {
	inv, err := d.inventory()
	if err != nil {
		return nil, err
	}
	cfg := edgekit.HubConfig{Org: d.cx.Org, Inventory: inv}
	if withKey {
		if cfg.CommandKey, err = d.cx.CommandKey(); err != nil {
			return nil, err
		}
	}
	return edgekit.NewHub(d.js, cfg)
}

// manager returns the org's credential manager, hashing with the org's hash
// key when withKey is set.
func (d *ctlConn) manager(withKey bool) (*access.Manager, error) {
	hub, err := d.hub(false)
	if err != nil {
		return nil, err
	}
	cfg := access.ManagerConfig{Org: d.cx.Org, Inventory: d.inv}
	if withKey {
		if cfg.HashKey, err = d.cx.HashKey(); err != nil {
			return nil, err
		}
	}
	return access.NewManager(d.js, hub, cfg)
}

// withManager dials central as the context's operator and runs fn with the
// org's credential manager (hashing with the org's hash key when withKey is
// set) and a context bounded by --timeout.
func (f *liveFlags) withManager(ctx context.Context, name string, withKey bool, fn func(context.Context, *ctlConn, *access.Manager) error) error {
	d, err := f.dial(ctx, name)
	if err != nil {
		return err
	}
	defer d.close()
	m, err := d.manager(withKey)
	if err != nil {
		return err
	}
	call, cancel := f.call(ctx)
	defer cancel()
	return fn(call, d, m)
}

// edges returns the codes of the org's edges in the inventory.
func (d *ctlConn) edges() ([]string, error) {
	inv, err := d.inventory()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range inv.Edges {
		if e.Org == d.cx.Org {
			out = append(out, e.Code)
		}
	}
	return out, nil
}

// writeJSON writes v as indented JSON.
func (a *app) writeJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a tabwriter on stdout for aligned columns; flush it.
func (a *app) table() *tabwriter.Writer {
	return tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
}

// ago renders how long ago t was, "-" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return d.Truncate(time.Minute).String()
	}
}
