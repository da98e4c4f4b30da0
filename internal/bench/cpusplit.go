package bench

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"time"

	"github.com/google/pprof/profile"
)

// cpuLabel is the profiler label that names the part of the process a
// goroutine belongs to; goroutines inherit it from the one that started
// them, so everything central starts (its server's client and leaf
// connections included) carries "central".
const cpuLabel = "lintel"

// Parts of the process, values of cpuLabel.
const (
	partCentral = "central"
	partEdges   = "edges"
	partDevices = "devices"
	partProxy   = "link proxies"
	// partShared is the part of streams central and an edge both have.
	partShared = "central or edges (same stream name)"
)

// labelled runs f with the goroutine, and every goroutine f starts,
// labelled part.
func labelled(ctx context.Context, part string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(cpuLabel, part), f)
}

// cpuSplit samples the process's CPU with the profiler, to split it by
// part.
type cpuSplit struct {
	buf bytes.Buffer
}

// startCPUSplit starts the profiler. It fails when a CPU profile is
// already being written (lintelctl bench --cpuprofile).
func startCPUSplit() (*cpuSplit, error) {
	c := &cpuSplit{}
	if err := pprof.StartCPUProfile(&c.buf); err != nil {
		return nil, fmt.Errorf("bench: CPU by part: %w", err)
	}
	return c, nil
}

// stop stops the profiler and returns the CPU time sampled of each part.
// nats-server replaces the labels of its streams' and consumers'
// goroutines with its own ("stream", "account", ...), so a sample without
// a part but with a stream is of the part streams names, where it names
// the stream; samples of goroutines without either (the runtime's, such as
// the garbage collector's workers) are under "".
func (c *cpuSplit) stop(streams map[string]string) (map[string]time.Duration, error) {
	pprof.StopCPUProfile()
	p, err := profile.Parse(&c.buf)
	if err != nil {
		return nil, fmt.Errorf("bench: CPU by part: %w", err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("bench: CPU by part: the profile has no cpu nanoseconds")
	}
	out := map[string]time.Duration{}
	for _, s := range p.Sample {
		part := ""
		if v := s.Label[cpuLabel]; len(v) > 0 {
			part = v[0]
		} else if v := s.Label["stream"]; len(v) > 0 {
			part = streams[v[0]]
		}
		out[part] += time.Duration(s.Value[idx])
	}
	return out, nil
}
