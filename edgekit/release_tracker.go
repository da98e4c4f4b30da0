package edgekit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
)

// trackerKey is where the tracker keeps its own state in the release
// bucket; no edge may read it (edges read only "{edge}.{flow}").
const trackerKey = "_tracker"

// trackInterval is how often the tracker reads central's event stream and
// writes the marks that changed; markRefresh is how often it writes every
// mark again, with a new time, so that edges see it is running.
const (
	trackInterval = 250 * time.Millisecond
	markRefresh   = 3 * time.Second
)

// span is a run of sequences lo..hi.
type span struct{ Lo, Hi uint64 }

// flowTrack is what the tracker knows of one flow of one edge: every
// sequence below Next is in central's stream, and so are the spans above
// it (sorted, disjoint, none touching Next).
type flowTrack struct {
	Next  uint64 `json:"next"`
	Above []span `json:"above,omitempty"`
}

// add records that central's stream holds seq.
func (f *flowTrack) add(seq uint64) {
	switch {
	case f.Next == 0: // the first sequence seen of this flow
		f.Next = seq + 1
	case seq < f.Next:
		return
	case seq == f.Next:
		f.Next++
	default:
		i, _ := slices.BinarySearchFunc(f.Above, seq, func(s span, v uint64) int {
			switch {
			case s.Hi < v:
				return -1
			case s.Lo > v:
				return 1
			}
			return 0
		})
		switch {
		case i < len(f.Above) && f.Above[i].Lo <= seq && seq <= f.Above[i].Hi:
			return
		case i > 0 && f.Above[i-1].Hi+1 == seq:
			f.Above[i-1].Hi = seq
			if i < len(f.Above) && f.Above[i].Lo == seq+1 {
				f.Above[i-1].Hi = f.Above[i].Hi
				f.Above = slices.Delete(f.Above, i, i+1)
			}
		case i < len(f.Above) && f.Above[i].Lo == seq+1:
			f.Above[i].Lo = seq
		default:
			f.Above = slices.Insert(f.Above, i, span{seq, seq})
		}
	}
	for len(f.Above) > 0 && f.Above[0].Lo <= f.Next {
		f.Next = max(f.Next, f.Above[0].Hi+1)
		f.Above = f.Above[1:]
	}
}

// mark returns f as the edge reads it.
func (f *flowTrack) mark() topology.ReleaseMark {
	m := topology.ReleaseMark{}
	if f.Next > 0 {
		m.Stored = f.Next - 1
	}
	if len(f.Above) > 0 {
		m.Next = f.Above[0].Lo
	}
	return m
}

// trackerState is the tracker's state as it keeps it in the bucket.
type trackerState struct {
	// Pos is the last sequence of central's event stream read.
	Pos uint64 `json:"pos"`
	// Flows is keyed by release key, "{edge}.{flow}".
	Flows map[string]*flowTrack `json:"flows"`
	// FromStart records that the tracker has read central's stream from
	// its first message: a flow it first sees at sequence n > 1 then
	// lacks 1..n-1 (sourcing skipped them, as nats-server's source-restart
	// race can at a flow's start), which the edge still holds, having had
	// no mark to release them by, and sends again. A tracker that started
	// on a stream whose start was gone takes a flow's first sequence as its
	// start instead.
	FromStart bool `json:"from_start,omitempty"`
}

// tracker reads central's event stream and keeps, for each edge and flow,
// how far central holds the edge's stream without a gap, in the release
// bucket, where the edge reads it before releasing anything.
type tracker struct {
	h       *Hub
	kv      jetstream.KeyValue
	st      trackerState
	written map[string]topology.ReleaseMark // without At
	sources map[string]string               // source name → release key
	dirty   bool
	lastAll time.Time // when every mark was last written
	// cons reads central's stream; consNext is the sequence it delivers
	// next.
	cons     jetstream.Consumer
	consNext uint64
}

// ReleaseTracker reads central's event stream and keeps, in the org's
// release bucket ("release-{org}"), how far central holds each
// edge's streams without a gap; an edge releases nothing beyond that and
// sends again what central never stored (docs/edge-release.md). The
// supervisor runs one ([Hub.Supervise]); run one per org, on one node.
type ReleaseTracker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// TrackReleases starts a release tracker; it runs until
// [ReleaseTracker.Stop]. A failure (central's stream missing, JetStream
// unavailable) is logged and retried.
func (h *Hub) TrackReleases() *ReleaseTracker {
	ctx, cancel := context.WithCancel(context.Background())
	r := &ReleaseTracker{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		h.track(ctx, nil)
	}()
	return r
}

// Stop stops the tracker and returns once it has stopped. Idempotent.
func (r *ReleaseTracker) Stop() {
	r.cancel()
	<-r.done
}

// track runs the tracker until ctx ends, starting from t when not nil.
func (h *Hub) track(ctx context.Context, t *tracker) {
	tick := time.NewTicker(trackInterval)
	defer tick.Stop()
	failing := ""
	for {
		err := func() error {
			cctx, cancel := context.WithTimeout(ctx, max(h.cfg.Timeout, 5*time.Second))
			defer cancel()
			if t == nil {
				nt, err := h.openTracker(cctx)
				if err != nil {
					return err
				}
				t = nt
			}
			return t.round(cctx)
		}()
		switch {
		case err != nil && ctx.Err() == nil && err.Error() != failing:
			failing = err.Error()
			h.log.Warn("release tracker failed; retrying", message.LogKeyError, err)
		case err == nil:
			failing = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// openTracker creates the release bucket when missing and loads the
// tracker's state from it.
func (h *Hub) openTracker(ctx context.Context) (*tracker, error) {
	cfg := topology.ReleaseBucketConfig(h.cfg.Org)
	cfg.Replicas = h.cfg.Replicas
	kv, err := h.js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("edgekit: release bucket %s: %w", cfg.Bucket, err)
	}
	t := &tracker{h: h, kv: kv, st: trackerState{Flows: map[string]*flowTrack{}}, written: map[string]topology.ReleaseMark{}, sources: map[string]string{}}
	e, err := kv.Get(ctx, trackerKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, fmt.Errorf("edgekit: release tracker state: %w", err)
	default:
		if err := json.Unmarshal(e.Value(), &t.st); err != nil {
			return nil, fmt.Errorf("edgekit: release tracker state: %w", err)
		}
		if t.st.Flows == nil {
			t.st.Flows = map[string]*flowTrack{}
		}
		for k, f := range t.st.Flows {
			t.written[k] = f.mark()
		}
	}
	return t, nil
}

// keyOf returns the release key of a message sourced from the stream
// named name, learning the edge of subject when needed.
func (t *tracker) keyOf(name, subject string) (string, bool) {
	if k, ok := t.sources[name]; ok {
		return k, true
	}
	parts := strings.SplitN(subject, ".", 3)
	if len(parts) < 3 || parts[0] != t.h.cfg.Org {
		return "", false
	}
	n, err := authz.NamesFor(t.h.cfg.Org, parts[1])
	if err != nil {
		return "", false
	}
	for _, src := range n.Sources() {
		if flow, ok := n.FlowOf(authz.SourceName(src)); ok {
			t.sources[authz.SourceName(src)] = n.ReleaseKey(flow)
		}
	}
	k, ok := t.sources[name]
	return k, ok
}

// round reads what central's event stream gained since the last round and
// writes the marks that moved, then the tracker's state.
func (t *tracker) round(ctx context.Context) error {
	h := t.h
	str, err := h.js.Stream(ctx, h.eventStream)
	if err != nil {
		return err
	}
	last := str.CachedInfo().State.LastSeq
	if t.st.Pos == 0 && len(t.st.Flows) == 0 && !t.st.FromStart && str.CachedInfo().State.FirstSeq <= 1 {
		t.st.FromStart, t.dirty = true, true
	}
	if first := str.CachedInfo().State.FirstSeq; t.st.Pos+1 < first {
		t.st.Pos = first - 1 // removed by the stream's limits: nothing to learn there
	}
	if last > t.st.Pos {
		// One ordered consumer serves round after round; it is made again
		// only after a failure, or when the stream's limits removed what it
		// would read next.
		if t.cons == nil || t.consNext != t.st.Pos+1 {
			cons, err := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
				DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: t.st.Pos + 1, HeadersOnly: true,
				InactiveThreshold: time.Minute,
				// Unbounded, a reset without a JetStream quorum would hold
				// a fetch, and so Stop, forever; a failed one is retried
				// with a new consumer at the next round.
				MaxResetAttempts: 3,
			})
			if err != nil {
				return err
			}
			t.cons = cons
		}
		defer func() { t.consNext = t.st.Pos + 1 }()
		for t.st.Pos < last {
			batch, err := t.cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				t.cons = nil
				return err
			}
			got := 0
			for m := range batch.Messages() {
				got++
				t.read(m)
			}
			if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
				t.cons = nil
				return err
			}
			if got == 0 {
				break
			}
		}
	}
	if t.st.FromStart && t.st.Pos >= last {
		// Read from the stream's start up to its end: a flow of a
		// registered edge not seen yet has nothing stored, which its mark
		// must say (Stored 0), or an edge whose every message sourcing
		// skipped would learn of no gap, and never send them again.
		for _, e := range registered(str.CachedInfo().Config) {
			n, err := authz.NamesFor(h.cfg.Org, e)
			if err != nil {
				continue
			}
			for _, f := range []string{authz.FlowEvents, authz.FlowTelemetry, authz.FlowPlatform} {
				if k := n.ReleaseKey(f); t.st.Flows[k] == nil {
					t.flow(k)
					t.dirty = true
				}
			}
		}
	}
	now := h.cfg.Now()
	all := now.Sub(t.lastAll) >= markRefresh
	for k, f := range t.st.Flows {
		m := f.mark()
		if w, ok := t.written[k]; ok && w == m && !all {
			continue
		}
		t.written[k] = m
		m.At = now
		b, _ := json.Marshal(m)
		if _, err := t.kv.Put(ctx, k, b); err != nil {
			delete(t.written, k)
			return fmt.Errorf("edgekit: release mark %s: %w", k, err)
		}
	}
	if all {
		t.lastAll = now
	}
	if t.dirty {
		b, _ := json.Marshal(t.st)
		if _, err := t.kv.Put(ctx, trackerKey, b); err != nil {
			return fmt.Errorf("edgekit: release tracker state: %w", err)
		}
		t.dirty = false
	}
	return nil
}

// read takes one message of central's event stream into account.
func (t *tracker) read(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	t.st.Pos, t.dirty = meta.Sequence.Stream, true
	src := m.Headers().Get(authz.HeaderStreamSource)
	if src == "" {
		return // central's own
	}
	fields := strings.Fields(src)
	if len(fields) < 2 {
		return
	}
	key, ok := t.keyOf(fields[0], m.Subject())
	if !ok {
		return
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return
	}
	t.flow(key).add(seq)
	// A message the edge sent again for one central never stored fills
	// that gap.
	if flow, orig, ok := topology.ParseRepairOf(m.Headers().Get(authz.HeaderRepairOf)); ok {
		edge, _, _ := strings.Cut(key, ".")
		t.flow(edge + "." + flow).add(orig)
	}
}

func (t *tracker) flow(key string) *flowTrack {
	f := t.st.Flows[key]
	if f == nil {
		f = &flowTrack{}
		if t.st.FromStart {
			f.Next = 1 // every flow starts at 1 (see trackerState.FromStart)
		}
		t.st.Flows[key] = f
	}
	return f
}
