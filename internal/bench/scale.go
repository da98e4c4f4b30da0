package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
)

// scaleDevicesPerChild is how many devices of the scale scenario one
// child process runs.
const scaleDevicesPerChild = 2500

// snapshot is the process's goroutines and live heap after a GC.
func snapshot() (goroutines int, heap uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}

func runScale(ctx context.Context, r *runner, res *Result) error {
	edges, devices := r.size(3, 100), r.size(5, 100)
	if r.cfg.ScaleEdges > 0 {
		edges = r.cfg.ScaleEdges
	}
	if r.cfg.ScaleDevices > 0 {
		devices = r.cfg.ScaleDevices
	}
	every := time.Duration(r.size(1, 10)) * time.Second
	offered := float64(edges*devices) / every.Seconds()
	var cl cleanup
	defer cl.run()
	dir, err := r.scratch("scale")
	if err != nil {
		return err
	}
	r.progress("generating credentials", 0, 1)
	d, err := newDeployment(ctx, r.log, dir, shape{edges: edges, sensors: devices})
	if err != nil {
		return err
	}
	s, err := r.startSite(ctx, &cl, d, dir, nil, func(c *edgekit.NodeConfig) {
		// As the edge binary runs: the default per-device limits.
		c.DeviceRate, c.EventMaxMsgsPerSubject = 0, 0
		c.Render.MaxMemoryStore = 16 << 20
	})
	if err != nil {
		return err
	}
	var specs []childDevice
	for i, n := range s.nodes {
		for k := range devices {
			t := sensorOf(edgeName(i), k)
			specs = append(specs, childDevice{Thing: t, URL: n.ClientURL(), Password: d.password(authz.DeviceUser(t)),
				CommandKeys: d.st.CommandPublicKeys(benchOrg, t.Edge)})
		}
	}
	var acked, failed atomic.Int64
	where := "in this process"
	if r.cfg.Child != nil {
		// Devices spread over processes of their own, a few thousand each:
		// every device holds sockets, and a process has only so many.
		nChildren := (len(specs) + scaleDevicesPerChild - 1) / scaleDevicesPerChild
		where = fmt.Sprintf("in %d processes of their own", nChildren)
		counts := make([]struct{ acked, failed atomic.Int64 }, nChildren)
		for k := range nChildren {
			r.progress("connecting devices", k*scaleDevicesPerChild, len(specs))
			part := specs[k*scaleDevicesPerChild : min((k+1)*scaleDevicesPerChild, len(specs))]
			c, _, err := r.startChild(ctx, dir, fmt.Sprintf("%s-%d", RoleDevices, k), RoleDevices, &childSpec{Devices: part, Every: every}, "connected")
			if err != nil {
				return err
			}
			cl.add(c.stop)
			go func() {
				for line := range c.lines {
					var a, f int64
					if _, err := fmt.Sscanf(line, "acked %d failed %d", &a, &f); err == nil {
						counts[k].acked.Store(a)
						counts[k].failed.Store(f)
						var sa, sf int64
						for i := range counts {
							sa, sf = sa+counts[i].acked.Load(), sf+counts[i].failed.Load()
						}
						acked.Store(sa)
						failed.Store(sf)
					}
				}
			}()
		}
	} else {
		devCtx, cancel := context.WithCancel(ctx)
		connected := make(chan error, 1)
		done := make(chan struct{})
		go labelled(devCtx, partDevices, func(devCtx context.Context) {
			defer close(done)
			err := runDevices(devCtx, specs, every, func(int) { connected <- nil }, func(a, f int64) { acked.Store(a); failed.Store(f) })
			if err != nil {
				connected <- err
			}
		})
		cl.add(func() { cancel(); <-done })
		select {
		case err := <-connected:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d edges x %d devices against one central, central and the edges in this process, the devices %s, each publishing an event every %v (offered %.0f events/s) for %v after a warm-up of %v; memory is of this process (central and every edge together), CPU of this process split by part with profiler labels (a JetStream stream's or consumer's goroutines, which nats-server labels itself, by the server holding the stream; runtime work no goroutine of a part asked for, such as the garbage collector's own workers, is \"other\"); the baseline of the throughput is the offered rate", edges, devices, where, every, offered, r.cfg.Duration, every+2*time.Second))
	if err := sleep(ctx, every+2*time.Second); err != nil { // every device has published; caches warm
		return err
	}
	epochs := make([]uint64, len(s.nodes))
	for i, n := range s.nodes {
		epochs[i] = n.LinkEpoch()
	}
	// The streams do not change during the run: name their parts before
	// it, not while central is under load.
	r.progress("naming the streams", 0, 1)
	streams, splitErr := s.streamParts(ctx)
	g0, h0 := snapshot()
	var split *cpuSplit
	if splitErr == nil {
		split, splitErr = startCPUSplit()
	}
	stopSplit := func() (map[string]time.Duration, error) {
		if split == nil {
			return nil, splitErr
		}
		c := split
		split = nil
		return c.stop(streams)
	}
	defer stopSplit()
	cpu0, a0, start := cpuTime(), acked.Load(), time.Now()
	var maxRSS int64
	// A snapshot at half time tells growth that levels off (the streams'
	// caches and buffers filling) from growth that goes on.
	gm, hm, half := 0, uint64(0), false
	t := time.NewTicker(time.Second)
	for time.Since(start) < r.cfg.Duration {
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		maxRSS = max(maxRSS, rssOf("self"))
		if !half && time.Since(start) >= r.cfg.Duration/2 {
			gm, hm = snapshot()
			half = true
		}
		r.progress("sustained load", int(time.Since(start)/time.Second), int(r.cfg.Duration/time.Second))
	}
	t.Stop()
	elapsed := time.Since(start)
	rate := float64(acked.Load()-a0) / elapsed.Seconds()
	cores := (cpuTime() - cpu0).Seconds() / elapsed.Seconds()
	parts, splitErr := stopSplit()
	g1, h1 := snapshot()
	drops := 0
	for i, n := range s.nodes {
		if n.LinkEpoch() != epochs[i] {
			drops++
		}
	}
	res.Figures = append(res.Figures,
		fig("throughput", rate, "events/s", offered, "offered rate", noGoal, 0),
		fig("CPU, this process", cores, "cores", 0, "", noGoal, 0))
	if splitErr == nil {
		var sampled time.Duration
		for _, d := range parts {
			sampled += d
		}
		for _, part := range []string{partCentral, partEdges, partShared, partDevices, partProxy, ""} {
			if (part == partDevices && r.cfg.Child != nil) || (part == partShared && parts[part] == 0) {
				continue
			}
			name := part
			if name == "" {
				name = "other"
			}
			// Each part's share of the sampled CPU, of the process's CPU
			// time measured beside it.
			share := 0.0
			if sampled > 0 {
				share = float64(parts[part]) / float64(sampled)
			}
			res.Figures = append(res.Figures, fig("CPU, "+name, share*cores, "cores", 0, "", noGoal, 0))
		}
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("CPU is not split by part: %v", splitErr))
	}
	res.Figures = append(res.Figures,
		fig("RSS, central + edges (max)", mib(maxRSS), "MiB", 0, "", noGoal, 0),
		fig("goroutines at start", float64(g0), "", 0, "", noGoal, 0),
		fig("goroutines at half time", float64(gm), "", 0, "", noGoal, 0),
		fig("goroutines at end", float64(g1), "", 0, "", noGoal, 0),
		fig("live heap at start", mib(int64(h0)), "MiB", 0, "", noGoal, 0),
		fig("live heap at half time", mib(int64(hm)), "MiB", 0, "", noGoal, 0),
		fig("live heap at end", mib(int64(h1)), "MiB", 0, "", noGoal, 0),
		fig("publishes failed", float64(failed.Load()), "", 0, "", noGoal, 0),
		fig("leaf links dropped", float64(drops), "", 0, "", noGoal, 0))
	return nil
}

// streamParts names the part of each JetStream stream of the site:
// central's, the edges', or partShared for a name both have (an edge's
// mirror of its credential bucket has the bucket's name).
func (s *site) streamParts(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	add := func(js jetstream.JetStream, part string) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		names := js.StreamNames(ctx)
		for n := range names.Name() {
			if p, ok := out[n]; ok && p != part {
				out[n] = partShared
			} else {
				out[n] = part
			}
		}
		if err := names.Err(); err != nil {
			return fmt.Errorf("bench: the streams of the %s: %w", part, err)
		}
		return nil
	}
	if err := add(s.js(), partCentral); err != nil {
		return nil, err
	}
	for _, n := range s.nodes {
		if err := add(n.JetStream(), partEdges); err != nil {
			return nil, err
		}
	}
	return out, nil
}
