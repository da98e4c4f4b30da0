package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// footprintDevices is how many devices share the footprint's event rate.
const footprintDevices = 10

// binaries are the apps whose sizes the footprint reports.
var binaries = []string{"edge", "central", "gateway", "lintelctl"}

func runFootprint(ctx context.Context, r *runner, res *Result) error {
	rate, dur, settle := r.size(200, 1000), time.Duration(r.size(2, 20))*time.Second, time.Duration(r.size(1, 5))*time.Second
	centralEdges := r.size(3, 100)
	if err := r.binarySizes(ctx, res); err != nil {
		return err
	}
	if r.cfg.Child == nil {
		res.Notes = append(res.Notes, "memory: n/a, no way to start a child process here")
		return nil
	}
	res.Notes = append(res.Notes, fmt.Sprintf("resident memory (VmRSS) of processes of their own: an edge as the edge binary runs it (node, access service, rules engine; central unreachable), idle %v after start, and the most seen under %d events/s for %v from %d devices; central with %d edges provisioned (not linked), idle; baseline: a plain nats-server with JetStream (fsync always) in the same conditions, raw JetStream publishes for the load", settle, rate, dur, footprintDevices, centralEdges))
	dir, err := r.scratch("footprint")
	if err != nil {
		return err
	}
	d, err := newDeployment(ctx, r.log, dir, shape{edges: max(1, centralEdges), sensors: footprintDevices, readers: 1})
	if err != nil {
		return err
	}
	spec, err := d.childSpec(edgeName(0), filepath.Join(dir, "edge-store"))
	if err != nil {
		return err
	}

	// The baseline: a plain server, idle then loaded with raw publishes.
	base, line, err := r.startChild(ctx, dir, RoleNATS, RoleNATS, &childSpec{StoreDir: filepath.Join(dir, "nats-store")}, "ready")
	if err != nil {
		return err
	}
	baseIdle, baseLoaded, err := r.idleAndLoaded(ctx, base, settle, func() (func(ctx context.Context, w int) error, func(), error) {
		return rawLoad(ctx, strings.TrimPrefix(line, "ready "))
	}, rate, dur)
	base.stop()
	if err != nil {
		return err
	}

	edge, line, err := r.startChild(ctx, dir, RoleEdge, RoleEdge, spec, "ready")
	if err != nil {
		return err
	}
	url := strings.TrimPrefix(line, "ready ")
	edgeIdle, edgeLoaded, err := r.idleAndLoaded(ctx, edge, settle, func() (func(ctx context.Context, w int) error, func(), error) {
		return d.deviceLoad(ctx, url)
	}, rate, dur)
	edge.stop()
	if err != nil {
		return err
	}
	res.Figures = append(res.Figures,
		fig("edge RSS idle", mib(edgeIdle), "MiB", mib(baseIdle), "plain nats-server idle", valueAtMost, 64),
		fig(fmt.Sprintf("edge RSS at %d events/s", rate), mib(edgeLoaded), "MiB", mib(baseLoaded), "plain nats-server, raw publishes", noGoal, 0))

	cspec := *spec
	cspec.StoreDir = filepath.Join(dir, "central-store")
	c, _, err := r.startChild(ctx, dir, RoleCentral, RoleCentral, &cspec, "ready")
	if err != nil {
		return err
	}
	if err := sleep(ctx, settle); err != nil {
		c.stop()
		return err
	}
	centralIdle := rssOf(c.pid())
	c.stop()
	res.Figures = append(res.Figures, fig(fmt.Sprintf("central RSS, %d edges", centralEdges), mib(centralIdle), "MiB", mib(baseIdle), "plain nats-server idle", noGoal, 0))
	return nil
}

// idleAndLoaded returns c's resident memory settle after start, and the
// most seen while load (made by mkLoad) runs at rate for dur.
func (r *runner) idleAndLoaded(ctx context.Context, c *child, settle time.Duration, mkLoad func() (func(ctx context.Context, w int) error, func(), error), rate int, dur time.Duration) (idle, loaded int64, err error) {
	if err := sleep(ctx, settle); err != nil {
		return 0, 0, err
	}
	idle = rssOf(c.pid())
	load, closeLoad, err := mkLoad()
	if err != nil {
		return 0, 0, err
	}
	defer closeLoad()
	stop := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var most int64
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				peak <- most
				return
			case <-t.C:
				most = max(most, rssOf(c.pid()))
			}
		}
	}()
	r.progress(fmt.Sprintf("%d events/s for %v", rate, dur), 0, 1)
	ok, failed := paced(ctx, float64(rate), dur, footprintDevices, load)
	close(stop)
	loaded = max(<-peak, rssOf(c.pid()))
	r.progress(fmt.Sprintf("%d events/s for %v", rate, dur), 1, 1)
	if failed > 0 {
		return idle, loaded, fmt.Errorf("bench: %d of %d publishes failed under load", failed, ok+failed)
	}
	return idle, loaded, nil
}

// deviceLoad connects footprintDevices devices to url, and returns a load
// function publishing an event from device w.
func (d *deployment) deviceLoad(ctx context.Context, url string) (func(ctx context.Context, w int) error, func(), error) {
	devs := make([]*devicekit.Client, footprintDevices)
	closeAll := func() {
		for _, c := range devs {
			if c != nil {
				_ = c.Close()
			}
		}
	}
	for i := range devs {
		var err error
		if devs[i], err = d.device(ctx, sensorOf(edgeName(0), i), url); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	return func(ctx context.Context, w int) error {
		_, err := devs[w].PublishEvent(ctx, "door.opened", benchPayload)
		return err
	}, closeAll, nil
}

// rawLoad creates a stream on the plain server at url and returns a load
// function publishing the same envelopes from connection w.
func rawLoad(ctx context.Context, url string) (func(ctx context.Context, w int) error, func(), error) {
	conns := make([]*nats.Conn, footprintDevices)
	jss := make([]jetstream.JetStream, footprintDevices)
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	for i := range conns {
		var err error
		if conns[i], jss[i], err = connectJS(url); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	if _, err := jss[0].CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{benchOrg + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("bench: raw stream: %w", err)
	}
	stampers := make([]*message.Stamper, footprintDevices)
	for i := range stampers {
		stampers[i] = message.NewStamper(sensorOf(edgeName(0), i), message.ID{byte(i + 1)})
	}
	return func(ctx context.Context, w int) error {
		e := &message.Envelope{Type: topic.Event, Name: "door.opened"}
		if err := message.SetPayload(e, benchPayload); err != nil {
			return err
		}
		stampers[w].Stamp(e)
		msg, err := e.ToMsg(nil)
		if err != nil {
			return err
		}
		_, err = jss[w].PublishMsg(ctx, msg)
		return err
	}, closeAll, nil
}

// childSpec returns the spec of a child running edge (or central) of d.
func (d *deployment) childSpec(edge, store string) (*childSpec, error) {
	inv, err := json.Marshal(d.inv)
	if err != nil {
		return nil, fmt.Errorf("bench: inventory: %w", err)
	}
	st, err := authz.MarshalState(d.st)
	if err != nil {
		return nil, fmt.Errorf("bench: state: %w", err)
	}
	id := authz.EdgeKeyID(benchOrg, edge)
	return &childSpec{Inventory: inv, State: st, Edge: edge, ConfigDir: d.dir, StoreDir: store,
		CommandSeed: d.secrets.CommandSeeds[id].Reveal(), AuditSeed: d.secrets.AuditSeeds[id].Reveal(), HashKey: d.hashKey,
		ServicePassword: d.password(authz.ServiceUser(benchOrg, benchService)), OrgCommandSeed: d.secrets.CommandSeeds[benchOrg].Reveal()}, nil
}

// binarySizes builds the apps with "go build -o" into a temporary
// directory and reports their sizes, or notes why it cannot.
func (r *runner) binarySizes(ctx context.Context, res *Result) error {
	if r.cfg.ModuleDir == "" {
		res.Notes = append(res.Notes, "binary sizes: n/a, not run from the source tree (no module directory to build in)")
		return nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		res.Notes = append(res.Notes, "binary sizes: n/a, no go toolchain on PATH")
		return nil
	}
	out, err := r.scratch("bin")
	if err != nil {
		return err
	}
	build := binaries
	if r.cfg.Quick {
		build = binaries[:1] // the edge's: quick runs stay quick
	}
	args := []string{"build", "-trimpath", "-o", out + string(os.PathSeparator)}
	for _, b := range build {
		args = append(args, "./apps/"+b)
	}
	r.progress("go build the binaries", 0, 1)
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = r.cfg.ModuleDir
	if msg, err := cmd.CombinedOutput(); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("binary sizes: n/a, go build failed: %v: %s", err, strings.TrimSpace(string(msg))))
		return nil
	}
	r.progress("go build the binaries", 1, 1)
	res.Notes = append(res.Notes, "binary sizes: go build -trimpath, default flags (not stripped)")
	for _, b := range build {
		fi, err := os.Stat(filepath.Join(out, b))
		if err != nil {
			return fmt.Errorf("bench: binary %s: %w", b, err)
		}
		res.Figures = append(res.Figures, fig(b+" binary", mib(fi.Size()), "MiB", 0, "", noGoal, 0))
	}
	return nil
}

// sleep waits for d or ctx's end.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
