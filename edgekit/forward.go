package edgekit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/nats-io/nats.go/jetstream"
)

// Flows of an edge into central's event stream, one source each
// ([SourceStatus].Flow).
const (
	// FlowEvents is the edge's event stream (events, states, acks).
	FlowEvents = "events"
	// FlowTelemetry is the edge's telemetry stream.
	FlowTelemetry = "telemetry"
	// FlowPlatform is the edge's platform stream: the platform's own
	// records, such as the access service's audit trail.
	FlowPlatform = "platform"
)

// flow is one of an edge's flows into central's event stream.
type flow struct {
	name   string
	stream func(authz.EdgeNames) string
	source func(authz.EdgeNames) *jetstream.StreamSource
}

// flows are the flows of every edge, in the order of their sources.
var flows = [...]flow{
	{FlowEvents, func(n authz.EdgeNames) string { return n.EventStream }, authz.EdgeNames.EventSource},
	{FlowTelemetry, func(n authz.EdgeNames) string { return n.TelemetryStream }, authz.EdgeNames.TelemetrySource},
	{FlowPlatform, func(n authz.EdgeNames) string { return n.PlatformStream }, authz.EdgeNames.PlatformSource},
}

// sourceRefusedGrace is how long, with HubConfig.EdgeNodes, a source whose
// setup the edge refused may stay silent while its edge is evidently
// linked before the supervisor kicks it: nats-server retries a refused
// setup only after a back-off of 10 s more per failure.
//
// A source that merely has not run since it (re)started gets StuckAfter,
// not this: nats-server restarts a source on its own once the link is
// back, but not at once. A reset in flight when the link returns is
// awaited for 5 s and retried after a back-off, and a source silent for
// under 10 s when the link returns is restarted only by the next source
// health check (every 10 s), if its consumer does not simply resume.
// Kicking such a source early costs two updates of the stream, each a
// backward scan of it, and slowed a 100,000-event catch-up from a median
// of 5.9 s to 9.4 s.
const sourceRefusedGrace = 8 * time.Second

// unheardKickSpan is how many times StuckAfter after its start (2 min by
// default) the supervisor, with HubConfig.EdgeNodes, kicks a source it has
// never heard without any sign of its edge's link: long enough for
// central's start before its edges are ready, and bounded because each
// kick of a source with no message in central's stream makes nats-server
// scan the whole stream backwards, twice. An edge that is registered but
// down (decommissioned, or a site without power) would otherwise cost two
// such scans every MaxKickInterval for as long as it stays down.
const unheardKickSpan = 8

// errFlowControlStalled is nats-server's error code for a source whose
// flow control went unanswered (JSSourceConsumerFlowControlStalledErr): an
// outage, not a refusal of the edge.
const errFlowControlStalled = 10228

// SourceStatus is the state of one source of central's event stream (one
// flow of one edge), as nats-server reports it.
type SourceStatus struct {
	// Edge is the edge code.
	Edge string
	// Flow is [FlowEvents], [FlowTelemetry] or [FlowPlatform], and Stream the edge's stream
	// the source reads.
	Flow   string
	Stream string // see Flow
	// Lag is how many messages the edge's stream held beyond the last one
	// central received, as of that message. It is not updated while no
	// message arrives, so it says nothing about a backlog that built up
	// while the link was down.
	Lag uint64
	// Active is how long ago central last heard from the source: a message,
	// or the idle heartbeat the edge's consumer sends every second while
	// sourcing runs. Negative when central has not heard from it since the
	// source (re)started.
	Active time.Duration
	// Error is the source's last setup error, if any.
	Error string
	// refused: Error is an answer of the edge (or a local failure) to the
	// source's setup, not nats-server's note of a flow-control stall,
	// which an outage makes.
	refused bool
	// fcStalled: Error is nats-server's note of a flow-control stall: the
	// edge's consumer says it waits for a flow-control reply that has not
	// reached it.
	fcStalled bool
	// Missing reports a registered edge that has no source at the moment
	// (a kick in progress, or one that was interrupted).
	Missing bool
}

// Sources returns the state of the sources of central's event stream, one
// per flow of each registered edge, sorted by edge, then [FlowEvents],
// [FlowTelemetry], [FlowPlatform]. It returns the JetStream error.
func (h *Hub) Sources(ctx context.Context) ([]SourceStatus, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	s, err := h.js.Stream(ctx, h.eventStream)
	if err != nil {
		return nil, fmt.Errorf("edgekit: central event stream %s: %w", h.eventStream, err)
	}
	info := s.CachedInfo()
	var out []SourceStatus
	for _, e := range registered(info.Config) {
		n, err := authz.NamesFor(h.cfg.Org, e)
		if err != nil {
			continue
		}
		for _, f := range flows {
			st := SourceStatus{Edge: e, Flow: f.name, Stream: f.stream(n), Missing: true, Active: -1}
			for _, si := range info.Sources {
				if si.Name != st.Stream {
					continue
				}
				st.Missing = false
				st.Lag = si.Lag
				st.Active = si.Active
				if si.Error != nil {
					st.Error = si.Error.Error()
					st.refused = si.Error.ErrorCode != errFlowControlStalled
					st.fcStalled = !st.refused
				}
			}
			out = append(out, st)
		}
	}
	return out, nil
}

// Kick restarts the sourcing of edge's events, telemetry and platform
// records: it removes the edge's sources from central's event stream,
// waits about 5.5 s and adds them again: two updates of the stream's
// configuration. [Hub.Supervise] restarts only the flows that are stuck,
// never those of an edge that is merely unreachable. Kick returns once the
// sources are back, or when ctx ends (the sources then come back with the
// next [Hub.Provision] or supervisor poll).
//
// Removing a source cancels its source consumer and any retry nats-server
// had scheduled with back-off. A consumer reset it had sent may still be
// answered for up to 5 s, and an answer applied to the source added again
// could make central skip messages it never received: hence the wait,
// during which the edge's flows pause (the edge keeps what it holds).
// Adding the source again makes nats-server recover the source's
// position (the last edge sequence central stored, found by a backward scan
// of central's stream for the newest message from that edge) and ask the
// edge at once, without back-off, to reset its durable consumer to its
// acknowledgement floor. Messages the edge then sends again up to the
// position central already holds are skipped by sequence, so a kick
// neither loses nor duplicates anything: the durable consumer on the edge
// never moves its floor past what central stored, and the registry in the
// stream's metadata keeps the edge registered even if the second update
// never happens ([Hub.Provision] and [Hub.Supervise] add it back).
//
// It returns an error wrapping [ErrEdgeNotRegistered] for an edge that is
// not registered, or the JetStream error.
func (h *Hub) Kick(ctx context.Context, edge string) error {
	return h.kick(ctx, edge, FlowEvents, FlowTelemetry, FlowPlatform)
}

// kick restarts the sources of edge's flows named: it removes them, waits
// sourceSettle, and adds them again. Were ctx to end during the wait, the
// edge stays registered and [Hub.Provision] or the supervisor add the
// sources back.
func (h *Hub) kick(ctx context.Context, edge string, names ...string) error {
	n, err := authz.NamesFor(h.cfg.Org, edge)
	if err != nil {
		return err
	}
	var kicked []*jetstream.StreamSource
	for _, f := range flows {
		if slices.Contains(names, f.name) {
			kicked = append(kicked, f.source(n))
		}
	}
	isKicked := func(s *jetstream.StreamSource) bool {
		return slices.ContainsFunc(kicked, func(k *jetstream.StreamSource) bool { return k.Name == s.Name })
	}
	if err := h.updateSources(ctx, edge, func(cfg *jetstream.StreamConfig) bool {
		n := len(cfg.Sources)
		cfg.Sources = slices.DeleteFunc(slices.Clone(cfg.Sources), isKicked)
		for _, k := range kicked {
			h.noteRemoved(k.Name)
		}
		return len(cfg.Sources) < n
	}); err != nil {
		return fmt.Errorf("edgekit: kick %s: remove source: %w", edge, err)
	}
	t := time.NewTimer(sourceSettle)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("edgekit: kick %s: sources removed, not yet added again: %w", edge, ctx.Err())
	case <-t.C:
	}
	if err := h.updateSources(ctx, edge, func(cfg *jetstream.StreamConfig) bool {
		var add []*jetstream.StreamSource
		for _, k := range kicked {
			if !slices.ContainsFunc(cfg.Sources, func(s *jetstream.StreamSource) bool { return s.Name == k.Name }) {
				add = append(add, k)
			}
			delete(h.removed, k.Name)
		}
		cfg.Sources = append(slices.Clone(cfg.Sources), add...)
		return len(add) > 0
	}); err != nil {
		return fmt.Errorf("edgekit: kick %s: add source again: %w", edge, err)
	}
	return nil
}

// updateSources applies change to the configuration of central's event
// stream with h.mu held, and updates the stream if change reports a change.
// It returns an error wrapping [ErrEdgeNotRegistered] if edge is not
// registered.
func (h *Hub) updateSources(ctx context.Context, edge string, change func(*jetstream.StreamConfig) bool) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	cfg, err := h.eventStreamConfig(ctx)
	if err != nil {
		return err
	}
	edges := registered(cfg)
	if !slices.Contains(edges, edge) {
		return fmt.Errorf("%w: %s", ErrEdgeNotRegistered, edge)
	}
	cfg.Subjects = h.eventSubjects()
	// A stream whose registry is still only its sources (one made by an
	// earlier version, or by hand) keeps it in its metadata from now on:
	// removing the sources must not unregister the edge.
	setRegistered(&cfg, edges)
	if !change(&cfg) {
		return nil
	}
	if _, err := h.js.UpdateStream(ctx, cfg); err != nil {
		return err
	}
	h.log.Info("updated the sources of central's event stream for a kick", message.LogKeyEdge, edge, "sources", len(cfg.Sources))
	return nil
}

// repair adds the sources of registered edges that have none (but not one
// removed less than sourceSettle ago), and returns how many it added.
func (h *Hub) repair(ctx context.Context) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cfg, err := h.eventStreamConfig(ctx)
	if err != nil {
		return 0, err
	}
	return h.setSources(ctx, cfg, registered(cfg))
}

// SupervisorStats is a snapshot of a [Supervisor]'s counters.
type SupervisorStats struct {
	Polls      uint64 // reads of the sources
	PollErrors uint64 // reads that failed
	Stalls     uint64 // polls that found a source stalled
	Kicks      uint64 // kicks done
	KickErrors uint64 // kicks that failed
	Repairs    uint64 // missing sources added back
	// Kicking is how many kicks are in progress (one per edge at most).
	Kicking int64
	// ResetsResent counts the consumer resets, lost while their edge had
	// no link, that the supervisor sent again once it had (see
	// HubConfig.LeafLinks).
	ResetsResent uint64
}

// Supervisor watches the sources of central's event stream and restarts
// those that stall. Start one with [Hub.Supervise]; it runs until
// [Supervisor.Stop].
type Supervisor struct {
	h       *Hub
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time // by h.cfg.Now

	kicking sync.Map       // edge → struct{}: a kick of the edge in progress
	kicked  sync.Map       // edge → time.Time: when its last kick ended
	kickers sync.WaitGroup // the kicks in progress
	tracker sync.WaitGroup // the release tracker

	// Used by poll only, which runs once in Supervise and then in run.
	stallOf map[string]*kickState // edge/flow → its stall
	heard   map[string]bool       // edge/flow → heard since the supervisor started
	behind  map[string]*lagState  // edge/flow → the lag it reports, while above zero
	fcStall map[string]time.Time  // edge/flow → heard stalled on flow control since
	linkOf  map[string]*edgeLink  // edge → evidence of its link

	resets *resetWatch // with HubConfig.LeafLinks

	polls, pollErrors, stalls, kicks, kickErrors, repairs, resent atomic.Uint64
	inKick                                                        atomic.Int64 // kicks in progress
}

// Supervise starts watching the sources of central's event stream: it
// reads them once (kicking and repairing as every poll does) and returns
// the running [Supervisor]. ctx bounds that start only; the supervisor then
// runs until [Supervisor.Stop], whatever becomes of ctx. It returns the
// error of the first read ([Hub.Sources]), such as one wrapping
// jetstream.ErrStreamNotFound before [Hub.Provision], or ctx's error;
// nothing is left running then.
//
// The supervisor also runs the release tracker, which reads central's
// event stream and keeps in the org's release bucket ("release-{org}")
// how far central holds each edge's streams
// without a gap; an edge releases nothing beyond that, and sends again
// what central never stored (docs/edge-release.md).
//
// How: every HubConfig.PollInterval it reads the stream's source info. A
// source is stalled when central has not heard from it for
// HubConfig.StallAfter (a running source hears a message or its edge
// consumer's heartbeat every second, whatever the traffic). Without
// HubConfig.EdgeNodes a stalled source is kicked ([Hub.Kick] of its flows)
// at once, then every HubConfig.MinKickInterval for HubConfig.FastKickFor,
// then with a back-off that doubles up to HubConfig.MaxKickInterval; it
// starts over once the source runs. With EdgeNodes a stalled source is
// left to nats-server, which restarts it on its own once the link is back,
// and kicked only when stuck: silent for HubConfig.StuckAfter while its
// edge was evidently linked all along (another of its flows heard), or
// for 8 s when the edge refused its setup, which nats-server would retry
// only after a growing back-off. A source the supervisor has not heard
// since it started (central's start) is kicked as without EdgeNodes while
// another flow of its edge is heard, and otherwise only for 8 times
// StuckAfter after the start (2 min by default): an edge registered but
// down costs no kicks after that. In
// both modes a source heard but without a message for StuckAfter while its
// edge holds more (an unchanged lag above zero), or heard but stalled on
// flow control for StuckAfter (its edge consumer waits for a reply that
// does not reach it, and nats-server, hearing its heartbeats, never
// restarts it), is stuck too, and a source missing for a registered edge
// (a kick interrupted) is added back. Why each choice: docs/edge-release.md,
// "The supervisor".
//
// With HubConfig.LeafLinks it also sends again, once the edge's link is
// back, a consumer reset that nats-server sent for one of the edge's
// sources while the edge had no link, which nats-server would otherwise
// wait 5 s for (docs/edge-release.md, "Lost resets").
//
// The hub's service user cannot see central's system account (leaf connect
// events) nor the edge's JetStream API (consumer info): the authz
// permissions confine it to its org, so the source info is the signal.
func (h *Hub) Supervise(ctx context.Context) (*Supervisor, error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Supervisor{h: h, cancel: cancel, done: make(chan struct{}), started: h.cfg.Now(),
		stallOf: map[string]*kickState{}, heard: map[string]bool{}, behind: map[string]*lagState{}, fcStall: map[string]time.Time{}, linkOf: map[string]*edgeLink{}}
	if h.cfg.LeafLinks != nil {
		w, err := s.watchResets(h.cfg.LeafLinks)
		if err != nil {
			cancel()
			return nil, err
		}
		s.resets = w
	}
	if err := s.poll(ctx, runCtx); err != nil {
		cancel()
		s.kickers.Wait()
		if s.resets != nil {
			s.resets.close()
		}
		close(s.done)
		return nil, err
	}
	// The tracker's bucket is created within the start, so that nothing
	// of the supervisor's is still being created once Supervise returns
	// (nats-server v2.15 reads its options unguarded while it adds a
	// stream, which races with a reload of the server's configuration,
	// such as central's Update). Should that fail, the tracker tries again
	// on its own.
	t, err := h.openTracker(ctx)
	if err != nil {
		h.log.Warn("release tracker failed; retrying", message.LogKeyError, err)
	}
	s.tracker.Go(func() { s.h.track(runCtx, t) })
	go s.run(runCtx)
	return s, nil
}

// Stop stops the supervisor and returns once it has: a kick in progress
// is cut short (the edge stays registered, and its sources come back with
// the next [Hub.Provision] or supervisor). Stop is the only way to stop
// the supervisor, and is idempotent.
func (s *Supervisor) Stop() {
	s.cancel()
	<-s.done
}

// Done is closed when the supervisor has stopped.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// Stats returns a snapshot of the supervisor's counters.
func (s *Supervisor) Stats() SupervisorStats {
	return SupervisorStats{
		Polls:      s.polls.Load(),
		PollErrors: s.pollErrors.Load(),
		Stalls:     s.stalls.Load(),
		Kicks:      s.kicks.Load(),
		KickErrors: s.kickErrors.Load(),
		Repairs:    s.repairs.Load(),
		Kicking:    s.inKick.Load(),

		ResetsResent: s.resent.Load(),
	}
}

// kickState is the back-off of one stalled source (one flow of an edge).
type kickState struct {
	since time.Time     // stalled since
	next  time.Time     // no kick before
	gap   time.Duration // wait after the next kick
}

// lagState is the lag a heard source reports, and since when unchanged.
type lagState struct {
	lag   uint64
	since time.Time
}

// edgeLink is the supervisor's evidence that an edge is linked to
// central: one of its flows heard (at the time central heard it, not
// when the supervisor read it), or a source whose reset the edge answered
// with an error.
type edgeLink struct {
	since time.Time // linked since, without a gap longer than StallAfter
	last  time.Time // last evidently linked
}

// linkedFor returns for how long, as of now, the edge has been evidently
// linked without a gap longer than stallAfter; zero when it is not.
func (l *edgeLink) linkedFor(now time.Time, stallAfter time.Duration) time.Duration {
	if l == nil || l.since.IsZero() || now.Sub(l.last) > stallAfter {
		return 0
	}
	return now.Sub(l.since)
}

// run polls every PollInterval, after the first poll Supervise made,
// until ctx (the supervisor's own) ends.
func (s *Supervisor) run(ctx context.Context) {
	defer close(s.done)
	if s.resets != nil {
		defer s.resets.close()
	}
	defer s.tracker.Wait()
	defer s.kickers.Wait()
	t := time.NewTicker(s.h.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_ = s.poll(ctx, ctx)
	}
}

// poll reads the sources within ctx, adds back missing ones and starts
// kicks of the stuck ones, which run within runCtx. It returns the error
// of reading the sources.
//
// A source silent for more than StallAfter counts as stalled, but is left
// to nats-server, which restarts it on its own once the link is back: a
// kick then would only delay it (a kick pauses the edge's flows for about
// 5.5 s, and each of its two stream updates makes the server scan
// central's event stream backwards, during which the stream takes no
// sourced message). The supervisor kicks a source only once it is stuck:
// silent for StuckAfter while its edge has been evidently linked for as
// long (see [edgeLink]), or heard without a message for StuckAfter while
// the edge holds more ([Supervisor.stuckBehind]). While the link is down
// there is no such evidence, so an outage of any length costs no stream
// update.
func (s *Supervisor) poll(ctx, runCtx context.Context) error {
	h := s.h
	pctx, cancel := context.WithTimeout(ctx, max(h.cfg.PollInterval*4, 2*time.Second))
	defer cancel()
	st, err := h.Sources(pctx)
	s.polls.Add(1)
	if err != nil {
		if ctx.Err() == nil {
			s.pollErrors.Add(1)
			h.log.Debug("reading sources failed", message.LogKeyError, err)
		}
		return err
	}
	now := h.cfg.Now()
	s.noteLinks(now, st)
	missing := false
	stalled := map[string][]SourceStatus{} // edge → its flows to kick now
	gaps := map[string]time.Duration{}     // edge → wait after this kick
	for _, src := range st {
		if _, busy := s.kicking.Load(src.Edge); busy {
			continue // its kick removed the sources for a while
		}
		if src.Missing {
			missing = true
			continue
		}
		key := src.Edge + "/" + src.Flow
		var kickedAt time.Time
		if at, ok := s.kicked.Load(src.Edge); ok {
			kickedAt = at.(time.Time)
		}
		if src.Active >= 0 && src.Active <= h.cfg.StallAfter {
			s.heard[key] = true
			behind := s.stuckBehind(key, src, now, kickedAt)
			if fc := s.stuckOnFlowControl(key, src, now, kickedAt); !behind && !fc {
				delete(s.stallOf, key)
				continue
			}
			// Heard, but no message for StuckAfter while the edge holds
			// more, or stalled on flow control as long: stuck (the heard
			// source is its own evidence of the link).
		} else {
			delete(s.behind, key)
			delete(s.fcStall, key)
		}
		k := s.stallOf[key]
		if k == nil {
			k = &kickState{since: now, gap: h.cfg.MinKickInterval}
			s.stallOf[key] = k
		}
		if src.Active < 0 || src.Active > h.cfg.StallAfter {
			silent := src.Active
			if silent < 0 {
				// Not heard from since it (re)started: silent since then,
				// as far as the supervisor knows.
				silent = now.Sub(later(k.since, kickedAt))
			}
			if silent <= h.cfg.StallAfter {
				continue
			}
			s.stalls.Add(1)
			// With EdgeNodes a silent source is left to nats-server while
			// the link may be down or nats-server may still restart it on
			// its own: for StuckAfter while its edge is evidently linked,
			// or for sourceRefusedGrace when the edge refused its setup,
			// which nats-server would retry only after a back-off of 10 s
			// more per failure.
			// A source never heard since the supervisor started (central's
			// start) is kicked as without EdgeNodes: with no flow of its
			// edge heard, nothing tells a link that is not up yet from an
			// edge whose consumers are not there yet, which nats-server
			// retries only after its back-off. After unheardKickSpan
			// times StuckAfter it takes another flow of its edge heard: an
			// edge down since central's start is left alone. A kick does
			// not make a source unheard: the kicks it would then bring
			// on, each two backward scans of the stream, would slow every
			// catch-up.
			if h.cfg.EdgeNodes && !s.heard[key] && now.Sub(s.started) > unheardKickSpan*h.cfg.StuckAfter &&
				s.linkOf[src.Edge].linkedFor(now, h.cfg.StallAfter) == 0 {
				continue
			}
			if h.cfg.EdgeNodes && s.heard[key] {
				wait := h.cfg.StuckAfter
				if src.refused {
					wait = min(wait, max(sourceRefusedGrace, h.cfg.StallAfter))
				}
				if silent < wait || s.linkOf[src.Edge].linkedFor(now, h.cfg.StallAfter) < wait {
					continue
				}
			}
		} else {
			s.stalls.Add(1)
		}
		if now.Before(k.next) {
			continue
		}
		stalled[src.Edge] = append(stalled[src.Edge], src)
		gaps[src.Edge] = max(gaps[src.Edge], k.gap)
		k.next = now.Add(k.gap)
		if now.Sub(k.since) >= h.cfg.FastKickFor {
			k.gap = min(k.gap*2, h.cfg.MaxKickInterval)
		}
	}
	if missing {
		if n, err := h.repair(pctx); err != nil {
			h.log.Warn("adding back missing sources failed", message.LogKeyError, err)
		} else if n > 0 {
			s.repairs.Add(uint64(n))
			h.log.Info("added back missing sources", "sources", n)
		}
	}
	for edge, srcs := range stalled {
		s.kickers.Add(1)
		s.kicking.Store(edge, struct{}{})
		s.inKick.Add(1)
		go func() {
			defer s.kickers.Done()
			defer s.inKick.Add(-1)
			defer s.kicking.Delete(edge)
			s.kick(runCtx, edge, srcs, gaps[edge])
			s.kicked.Store(edge, h.cfg.Now())
		}()
	}
	return nil
}

// stuckBehind reports whether src, a source heard within StallAfter, has
// received no message for StuckAfter (since the later of then and
// kickedAt, when its edge's last kick ended) while the edge's stream held
// more: the lag it reported with its last message is above zero and has
// not changed. A source that moves has a lag that moves with it.
func (s *Supervisor) stuckBehind(key string, src SourceStatus, now, kickedAt time.Time) bool {
	if src.Lag == 0 {
		delete(s.behind, key)
		return false
	}
	b := s.behind[key]
	if b == nil || b.lag != src.Lag {
		s.behind[key] = &lagState{lag: src.Lag, since: now}
		return false
	}
	return now.Sub(later(b.since, kickedAt)) >= s.h.cfg.StuckAfter
}

// stuckOnFlowControl reports whether src, a source heard within
// StallAfter, has been stalled on flow control for StuckAfter (since the
// later of then and kickedAt): its edge consumer's heartbeats keep saying
// it waits for a flow-control reply that does not reach it, so it sends
// nothing, and nats-server, which hears the heartbeats, never restarts it.
// Its reported lag is of its last message and may well be zero.
func (s *Supervisor) stuckOnFlowControl(key string, src SourceStatus, now, kickedAt time.Time) bool {
	if !src.fcStalled {
		delete(s.fcStall, key)
		return false
	}
	since, ok := s.fcStall[key]
	if !ok {
		s.fcStall[key] = now
		return false
	}
	return now.Sub(later(since, kickedAt)) >= s.h.cfg.StuckAfter
}

// noteLinks updates the evidence of each edge's link from the sources st,
// read at now, and forgets edges no longer registered.
func (s *Supervisor) noteLinks(now time.Time, st []SourceStatus) {
	stallAfter := s.h.cfg.StallAfter
	seen := map[string]bool{}
	for _, src := range st {
		seen[src.Edge] = true
		var at time.Time // when the edge was last evidently linked
		switch {
		case src.Missing:
			continue
		case src.refused:
			at = now
		case src.Active >= 0 && src.Active <= stallAfter:
			at = now.Add(-src.Active)
		default:
			continue
		}
		l := s.linkOf[src.Edge]
		if l == nil {
			l = &edgeLink{}
			s.linkOf[src.Edge] = l
		}
		if l.since.IsZero() || at.Sub(l.last) > stallAfter {
			l.since = at
		}
		l.last = later(l.last, at)
	}
	for e := range s.linkOf {
		if !seen[e] {
			delete(s.linkOf, e)
		}
	}
	for key := range s.heard {
		if e, _, _ := strings.Cut(key, "/"); !seen[e] {
			delete(s.heard, key)
		}
	}
	for key := range s.stallOf {
		if e, _, _ := strings.Cut(key, "/"); !seen[e] {
			delete(s.stallOf, key)
		}
	}
	for key := range s.behind {
		if e, _, _ := strings.Cut(key, "/"); !seen[e] {
			delete(s.behind, key)
		}
	}
	for key := range s.fcStall {
		if e, _, _ := strings.Cut(key, "/"); !seen[e] {
			delete(s.fcStall, key)
		}
	}
}

// kick restarts the stalled flows srcs of edge. Kicks of different edges
// run side by side: each waits sourceSettle between removing and adding
// back its sources.
func (s *Supervisor) kick(ctx context.Context, edge string, srcs []SourceStatus, gap time.Duration) {
	h := s.h
	names := make([]string, len(srcs))
	for i, src := range srcs {
		names[i] = src.Flow
	}
	ctx, cancel := context.WithTimeout(ctx, sourceSettle+2*h.cfg.Timeout)
	defer cancel()
	if err := h.kick(ctx, edge, names...); err != nil {
		if ctx.Err() == nil {
			s.kickErrors.Add(1)
			h.log.Warn("kicking a stuck source failed", message.LogKeyEdge, edge, logKeyFlow, strings.Join(names, ","), message.LogKeyError, err)
		}
		return
	}
	s.kicks.Add(1)
	h.log.Info("kicked a stuck source", message.LogKeyEdge, edge, logKeyFlow, strings.Join(names, ","), logKeyActive, srcs[0].Active, logKeyLag, srcs[0].Lag, logKeyKickGap, gap)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
