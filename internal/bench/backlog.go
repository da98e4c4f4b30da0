package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// backlogBudget bounds the runs of the backlog scenario at full size:
// runs stop at 20 or once this much time went by. A run writes 100,000
// events at the edge's real durability (an fsync each, about 1,500 a
// second on the 2-core machine) and a raw baseline's as many, so 20 runs
// take about 25 minutes.
const backlogBudget = 30 * time.Minute

// fillOffline fills edge i's event stream with n events from
// streamPublishers devices while its link is cut, at the edge's real
// durability (fsync before every acknowledgement).
func (r *runner) fillOffline(ctx context.Context, s *site, i, n int) error {
	edge, node := edgeName(i), s.nodes[i]
	ops := make([]op, streamPublishers)
	devs := make([]*devicekit.Client, streamPublishers)
	defer func() {
		for _, c := range devs {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for k := range ops {
		var err error
		if devs[k], err = s.d.device(ctx, sensorOf(edge, k), node.ClientURL()); err != nil {
			return err
		}
		c := devs[k]
		ops[k] = func(ctx context.Context) error {
			_, err := c.PublishEvent(ctx, "door.opened", benchPayload)
			return err
		}
	}
	_, _, err := r.drive(ctx, "buffering at "+edge+" during the outage", n, ops)
	return err
}

func runBacklog(ctx context.Context, r *runner, res *Result) error {
	n, runs, n10 := r.size(200, 100000), r.size(2, 20), r.size(50, 10000)
	pool, _, err := openDB(ctx, r.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer func() { pool.Close() }()
	var cl cleanup
	defer cl.run()
	dir, err := r.scratch("backlog")
	if err != nil {
		return err
	}
	d, err := newDeployment(ctx, r.log, dir, shape{edges: 10, sensors: streamPublishers})
	if err != nil {
		return err
	}
	// One site of ten edges, the first of which has its outages, and then
	// one whose ten edges catch up at once, against the same database in
	// turn. The other nine edges of the first site stay linked and idle,
	// as at a central whose other sites are fine: registered but down,
	// they would be kicked in the supervisor's first minutes after
	// central's start (a never-heard source is, within eight times
	// StuckAfter of its start), which makes central scan its stream and
	// slows the runs that fall in that span; that is central's start, not
	// the catch-up measured here.
	s, err := r.startSite(ctx, &cl, d, dir, pool, nil)
	if err != nil {
		return err
	}
	filter := benchOrg + "." + edgeName(0) + ".sensor.*.evt"
	var forwarded, stored, rawFwd latencies
	var phases []catchUpPhases
	start := time.Now()
	for run := range runs {
		if run > 0 && !r.cfg.Quick && time.Since(start) > backlogBudget {
			break
		}
		s.proxies[0].Cut()
		if err := waitFor(ctx, "the link to drop", 10*time.Millisecond, func() bool { return !s.nodes[0].LinkUp() }); err != nil {
			return err
		}
		before := s.centralCount(ctx, filter)
		if err := r.fillOffline(ctx, s, 0, n); err != nil {
			return err
		}
		r.progress(fmt.Sprintf("run %d of %d: catching up", run+1, runs), 0, n)
		ph, err := s.catchUp(ctx, r, []int{0}, filter, before+uint64(n))
		if err != nil {
			return err
		}
		forwarded, stored = append(forwarded, ph.forwarded), append(stored, ph.stored)
		phases = append(phases, ph)
		raw, err := r.rawCatchUp(ctx, filepath.Join(dir, fmt.Sprintf("raw%d", run)), n)
		if err != nil {
			return err
		}
		rawFwd = append(rawFwd, raw)
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d events buffered at one edge of ten (the other nine linked and idle) during an outage, %d runs (bounded at 20 runs or %v); from the link's return until central's stream holds them all, and until the ingest committed them to PostgreSQL; baseline: the same number of messages sourced by a plain hub from a plain leaf server's stream", n, len(forwarded), backlogBudget),
		fmt.Sprintf("each run, into central's stream / into the database / raw: %s", runTimes(forwarded, stored, rawFwd)),
		fmt.Sprintf("each run, from the link's return until the edge's leaf is connected / central's stream holds the first of the backlog / the longest pause after that, central's stream taking none: %s", phaseTimes(phases)))
	res.Figures = append(res.Figures,
		fig("into central's stream p99", forwarded.quantile(0.99).Seconds(), "s", rawFwd.quantile(0.99).Seconds(), "raw JetStream sourcing", valueAtMost, 5),
		fig("into the database p99", stored.quantile(0.99).Seconds(), "s", rawFwd.quantile(0.99).Seconds(), "raw JetStream sourcing (stream only)", valueAtMost, 10))
	cl.run()

	// Ten edges catching up at once, on a fresh database: the ingest's
	// position belongs to the stream of the central before.
	pool.Close()
	if pool, _, err = openDB(ctx, r.cfg.DatabaseURL); err != nil {
		return err
	}
	s, err = r.startSite(ctx, &cl, d, filepath.Join(dir, "ten"), pool, nil)
	if err != nil {
		return err
	}
	all := make([]int, d.shape.edges)
	for i := range all {
		all[i] = i
		s.proxies[i].Cut()
	}
	tenFilter := benchOrg + ".*.sensor.*.evt"
	before := s.centralCount(ctx, tenFilter)
	for i := range all {
		if err := waitFor(ctx, "the links to drop", 10*time.Millisecond, func() bool { return !s.nodes[i].LinkUp() }); err != nil {
			return err
		}
	}
	if err := parallel(ctx, len(all), len(all), func(ctx context.Context, i int) error { return r.fillOffline(ctx, s, i, n10) }); err != nil {
		return err
	}
	ten, err := s.catchUp(ctx, r, all, tenFilter, before+uint64(n10*len(all)))
	if err != nil {
		return err
	}
	fwd, st := ten.forwarded, ten.stored
	raw, err := r.rawCatchUp(ctx, filepath.Join(dir, "raw-ten"), n10*len(all))
	if err != nil {
		return err
	}
	res.Notes = append(res.Notes, fmt.Sprintf("10 edges: %d events each, all links restored at once (report only; baseline: one plain leaf's stream of the same total)", n10))
	res.Figures = append(res.Figures,
		fig("10 edges into central's stream", fwd.Seconds(), "s", raw.Seconds(), "raw JetStream sourcing", noGoal, 0),
		fig("10 edges into the database", st.Seconds(), "s", raw.Seconds(), "raw JetStream sourcing (stream only)", noGoal, 0))
	return nil
}

// catchUpPhases is how long a catch-up took from the links' return: until
// every edge's leaf was connected again, until central's stream held the
// first message of the backlog, until it held them all, and until the
// ingest had committed them; and the longest pause between the first and
// the last, during which central's stream took none.
type catchUpPhases struct {
	linked, first, forwarded, stored time.Duration
	pause                            time.Duration
}

// catchUp restores the links of edges and returns how long until
// central's stream held want messages matching filter, and until the
// ingest had committed every message of the stream up to then, with the
// phases on the way.
func (s *site) catchUp(ctx context.Context, r *runner, edges []int, filter string, want uint64) (catchUpPhases, error) {
	var ph catchUpPhases
	var grew time.Duration // when central's stream last took more
	before := s.centralCount(ctx, filter)
	count := before
	start := time.Now()
	for _, i := range edges {
		s.proxies[i].Restore()
	}
	linked := func() bool {
		for _, i := range edges {
			if !s.nodes[i].LinkUp() {
				return false
			}
		}
		return true
	}
	if err := waitFor(ctx, "the backlog in central's stream", 5*time.Millisecond, func() bool {
		if ph.linked == 0 && linked() {
			ph.linked = time.Since(start)
		}
		c, now := s.centralCount(ctx, filter), time.Since(start)
		switch {
		case ph.first == 0 && c > before:
			ph.first, grew, count = now, now, c
		case c > count:
			ph.pause, grew, count = max(ph.pause, now-grew), now, c
		}
		return c >= want
	}); err != nil {
		return ph, err
	}
	ph.forwarded = time.Since(start)
	last := s.central.Status(ctx).Orgs[benchOrg].EventStreamLastSeq
	if err := waitFor(ctx, "the backlog in the database", 5*time.Millisecond, func() bool {
		in := s.central.Status(ctx).Orgs[benchOrg].Ingest
		return in != nil && in.Position >= last
	}); err != nil {
		return ph, err
	}
	ph.stored = time.Since(start)
	return ph, nil
}

// rawCatchUp fills a plain leaf server's stream with n messages of the
// same size, then creates the hub's stream sourcing it, and returns how
// long until the hub holds them all.
func (r *runner) rawCatchUp(ctx context.Context, dir string, n int) (time.Duration, error) {
	raw, err := startRawPair(ctx, dir, []string{benchOrg + ".>"}, false, false)
	if err != nil {
		return 0, err
	}
	defer raw.close()
	st := message.NewStamper(sensorOf(edgeName(0), 0), message.ID{7})
	for i := range n {
		e := &message.Envelope{Type: topic.Event, Name: "door.opened"}
		if err := message.SetPayload(e, benchPayload); err != nil {
			return 0, err
		}
		st.Stamp(e)
		msg, err := e.ToMsg(nil)
		if err != nil {
			return 0, err
		}
		if _, err := raw.edgeJS.PublishMsgAsync(msg); err != nil {
			return 0, fmt.Errorf("bench: raw fill: %w", err)
		}
		if i%1000 == 999 || i == n-1 {
			select {
			case <-raw.edgeJS.PublishAsyncComplete():
			case <-ctx.Done():
				return 0, context.Cause(ctx)
			}
			r.progress("raw baseline: filling", i+1, n)
		}
	}
	start := time.Now()
	if err := raw.source(ctx); err != nil {
		return 0, err
	}
	if err := waitFor(ctx, "the raw hub to hold the backlog", 5*time.Millisecond, func() bool { return raw.hubMsgs(ctx) >= uint64(n) }); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// runTimes renders the times of each run, in seconds.
func runTimes(forwarded, stored, raw latencies) string {
	var parts []string
	for i := range forwarded {
		parts = append(parts, fmt.Sprintf("%.2f / %.2f / %.2f s", forwarded[i].Seconds(), stored[i].Seconds(), raw[i].Seconds()))
	}
	return strings.Join(parts, ", ")
}

// phaseTimes renders when each run's leaf was back, its first message in
// central's stream, and its longest pause after that, in seconds.
func phaseTimes(phases []catchUpPhases) string {
	var parts []string
	for _, p := range phases {
		parts = append(parts, fmt.Sprintf("%.2f / %.2f / %.2f s", p.linked.Seconds(), p.first.Seconds(), p.pause.Seconds()))
	}
	return strings.Join(parts, ", ")
}
