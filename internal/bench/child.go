package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/topic"
)

// Roles of [RunChild].
const (
	// RoleEdge runs an edge as the edge binary does: node, access service
	// and rules engine, central unreachable.
	RoleEdge = "edge"
	// RoleNATS runs a plain nats-server with JetStream: the footprint's
	// baseline.
	RoleNATS = "nats"
	// RoleCentral runs central with the spec's edges provisioned.
	RoleCentral = "central"
	// RoleDevices runs the scale scenario's devices.
	RoleDevices = "devices"
)

// ErrUnknownRole is returned by [RunChild] for a role it does not know.
var ErrUnknownRole = errors.New("bench: unknown child role")

// childSpec is what a child process is given, in a JSON file.
type childSpec struct {
	Inventory json.RawMessage `json:"inventory,omitempty"`
	State     json.RawMessage `json:"state,omitempty"`
	Edge      string          `json:"edge,omitempty"`
	ConfigDir string          `json:"config_dir,omitempty"` // the edges' seed files
	StoreDir  string          `json:"store_dir"`
	// Secrets, for the child's use only: the edge's command and audit
	// seeds, the org's hash key, central's service password and the org's
	// command seed.
	CommandSeed     string `json:"command_seed,omitempty"`
	AuditSeed       string `json:"audit_seed,omitempty"`
	HashKey         []byte `json:"hash_key,omitempty"`
	ServicePassword string `json:"service_password,omitempty"`
	OrgCommandSeed  string `json:"org_command_seed,omitempty"`
	// Devices and Every are the devices role's: each publishes an event
	// every Every.
	Devices []childDevice `json:"devices,omitempty"`
	Every   time.Duration `json:"every,omitempty"`
}

// childDevice is a device of the devices role.
type childDevice struct {
	Thing       topic.Thing `json:"thing"`
	URL         string      `json:"url"`
	Password    string      `json:"password"`
	CommandKeys []string    `json:"command_keys"`
}

// RunChild runs role, with the spec in the file specFile, until ctx ends.
// It writes "ready URL" to stdout once serving (the devices role:
// "connected N", then "acked N failed M" every second). It is what
// [Config.Child]'s command runs, in a process of its own. It returns an
// error wrapping [ErrUnknownRole] for an unknown role.
func RunChild(ctx context.Context, role, specFile string, stdout io.Writer) error {
	raw, err := os.ReadFile(specFile)
	if err != nil {
		return fmt.Errorf("bench: child spec: %w", err)
	}
	var spec childSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("bench: child spec: %w", err)
	}
	switch role {
	case RoleNATS:
		s, err := startServer(&server.Options{Host: loopback, Port: -1, JetStream: true, StoreDir: spec.StoreDir,
			NoLog: true, NoSigs: true, SyncAlways: true})
		if err != nil {
			return err
		}
		defer func() { s.Shutdown(); s.WaitForShutdown() }()
		fmt.Fprintln(stdout, "ready", s.ClientURL())
	case RoleEdge:
		stop, url, err := spec.startEdge(ctx)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintln(stdout, "ready", url)
	case RoleCentral:
		inv, st, err := spec.deployment()
		if err != nil {
			return err
		}
		c, err := central.Start(ctx, central.Config{Inventory: inv, State: st, StartTimeout: waitLong,
			Orgs: map[string]central.OrgSecrets{benchOrg: {Service: benchService, Password: authz.NewSecret(spec.ServicePassword),
				CommandKey: authz.NewSecret(spec.OrgCommandSeed), HashKey: spec.HashKey}},
			Render: authz.RenderOptions{Host: loopback, Port: -1, LeafHost: loopback, LeafPort: -1, StoreDir: spec.StoreDir,
				MaxFileStore: 16 << 30}})
		if err != nil {
			return fmt.Errorf("bench: start central: %w", err)
		}
		defer c.Stop()
		fmt.Fprintln(stdout, "ready", c.ClientURL())
	case RoleDevices:
		return runDevices(ctx, spec.Devices, spec.Every, func(n int) { fmt.Fprintln(stdout, "connected", n) },
			func(acked, failed int64) { fmt.Fprintf(stdout, "acked %d failed %d\n", acked, failed) })
	default:
		return fmt.Errorf("%w: %q", ErrUnknownRole, role)
	}
	<-ctx.Done()
	return nil
}

// deployment parses the spec's inventory and state.
func (s *childSpec) deployment() (*authz.Inventory, *authz.State, error) {
	inv, err := authz.ParseInventory(s.Inventory)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: child inventory: %w", err)
	}
	st, err := authz.ParseState(s.State)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: child state: %w", err)
	}
	return inv, st, nil
}

// startEdge starts the edge of the spec as the edge binary wires it, and
// returns what stops it and its client URL.
func (s *childSpec) startEdge(ctx context.Context) (stop func(), url string, err error) {
	inv, st, err := s.deployment()
	if err != nil {
		return nil, "", err
	}
	node, err := startEdge(ctx, edgekit.NodeConfig{Org: benchOrg, Edge: s.Edge, Inventory: inv, State: st,
		Render: authz.RenderOptions{Host: loopback, Port: -1, StoreDir: s.StoreDir, HubURLs: []string{"nats-leaf://127.0.0.1:1"},
			ConfigDir: s.ConfigDir, SeedFile: authz.EdgeKeyID(benchOrg, s.Edge) + ".seed"},
		CommandKey: authz.NewSecret(s.CommandSeed)})
	if err != nil {
		return nil, "", err
	}
	d := &deployment{inv: inv, st: st, hashKey: s.HashKey, secrets: &authz.Secrets{AuditSeeds: map[string]authz.Secret{
		authz.EdgeKeyID(benchOrg, s.Edge): authz.NewSecret(s.AuditSeed)}}}
	svc, err := d.startService(ctx, node, s.Edge)
	if err != nil {
		node.Stop()
		return nil, "", err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	engine, err := rules.Start(runCtx, rules.Config{Org: benchOrg, Edge: s.Edge, Conn: node.Conn(), JetStream: node.JetStream(),
		SignCommand: node.SignCommand}, nil)
	if err != nil {
		cancel()
		svc.Stop()
		node.Stop()
		return nil, "", fmt.Errorf("bench: rules engine: %w", err)
	}
	return func() { cancel(); engine.Stop(); svc.Stop(); node.Stop() }, node.ClientURL(), nil
}

// runDevices connects devs (32 at a time), calls connected, then makes
// each publish an event every every, spread over the period, calling
// report every second and once at the end, until ctx ends.
func runDevices(ctx context.Context, devs []childDevice, every time.Duration, connected func(int), report func(acked, failed int64)) error {
	clients := make([]*devicekit.Client, len(devs))
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	err := parallel(ctx, len(devs), 32, func(ctx context.Context, i int) error {
		s := devs[i]
		c, err := devicekit.Connect(ctx, devicekit.Config{Thing: s.Thing, URLs: []string{s.URL}, Password: devicekit.Password(s.Password),
			CommandKeys: s.CommandKeys, HeartbeatInterval: -1, Timeout: time.Minute})
		if err != nil {
			return fmt.Errorf("bench: device %s: %w", s.Thing, err)
		}
		clients[i] = c
		return nil
	})
	if err != nil {
		return err
	}
	connected(len(clients))
	var acked, failed atomic.Int64
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			select {
			case <-time.After(every * time.Duration(i) / time.Duration(len(clients))):
			case <-ctx.Done():
				return
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				if _, err := c.PublishEvent(ctx, "door.opened", benchPayload); err == nil {
					acked.Add(1)
				} else if ctx.Err() == nil {
					failed.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			report(acked.Load(), failed.Load())
			return nil
		case <-t.C:
			report(acked.Load(), failed.Load())
		}
	}
}

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	lines chan string // its stdout, line by line; closed at its end
}

// pid returns the child's process id, as /proc names it.
func (c *child) pid() string { return strconv.Itoa(c.cmd.Process.Pid) }

// startChild writes spec to the file name.json under dir, starts role with
// it, and waits for its first line starting with want ("ready" or
// "connected"), which it returns.
func (r *runner) startChild(ctx context.Context, dir, name, role string, spec *childSpec, want string) (*child, string, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, "", fmt.Errorf("bench: child spec: %w", err)
	}
	file := filepath.Join(dir, name+".json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return nil, "", fmt.Errorf("bench: child spec: %w", err)
	}
	cmd := r.cfg.Child(ctx, role, "--spec", file)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", fmt.Errorf("bench: child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("bench: start child %s: %w", role, err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 64)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // a reader that is not keeping up wants only the latest
				select {
				case <-c.lines:
				default:
				}
				c.lines <- sc.Text()
			}
		}
	}()
	wait := waitLong
	if role == RoleDevices {
		wait = 3 * waitLong // thousands of logins on a busy machine
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.stop()
				return nil, "", fmt.Errorf("bench: child %s ended before it was %s", role, want)
			}
			if strings.HasPrefix(line, want) {
				return c, line, nil
			}
		case <-timeout.C:
			c.stop()
			return nil, "", fmt.Errorf("bench: child %s was not %s in time", role, want)
		case <-ctx.Done():
			c.stop()
			return nil, "", context.Cause(ctx)
		}
	}
}

// stop ends the child (SIGTERM, then SIGKILL after a while) and waits for
// it.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan struct{})
	go func() {
		for range c.lines { // drain, so that the child never blocks on its stdout
		}
		_ = c.cmd.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-waited
	}
}
