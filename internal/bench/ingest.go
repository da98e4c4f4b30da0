package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
)

// lagPoll is how often the lag probe polls the database: the lag's
// resolution.
const lagPoll = 2 * time.Millisecond

func runIngest(ctx context.Context, r *runner, res *Result) error {
	n := r.size(500, 50000)
	probes, rate := r.size(40, 1000), r.size(40, 100)
	res.Notes = append(res.Notes, fmt.Sprintf("ingest: %d events filled into central's stream by devices, then central restarted with the database: events/s until every message of the stream is committed (central's own status messages included), beside CopyFrom of the same rows, %d per statement as the ingest batches", n, storage.DefaultBatchSize),
		fmt.Sprintf("lag: %d events at %d/s, device publish -> row visible, polled every %v; baseline: the same event's fsynced raw JetStream publish plus a one-row CopyFrom", probes, rate, lagPoll))
	for _, db := range []struct{ label, url string }{{"PostgreSQL", r.cfg.DatabaseURL}, {"TimescaleDB", r.cfg.TimescaleURL}} {
		if db.url == "off" {
			res.Notes = append(res.Notes, db.label+": skipped (off)")
			continue
		}
		pool, flavor, err := openDB(ctx, db.url)
		if errors.Is(err, errUnreachable) && db.label == "TimescaleDB" {
			res.Notes = append(res.Notes, fmt.Sprintf("TimescaleDB: skipped, %v", err))
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", db.label, err)
		}
		if db.label == "TimescaleDB" && !flavor.Timescale() {
			pool.Close()
			res.Notes = append(res.Notes, "TimescaleDB: skipped, the server has no timescaledb extension")
			continue
		}
		err = r.ingestOne(ctx, res, db.label, pool, n, probes, rate)
		pool.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", db.label, err)
		}
	}
	return nil
}

// ingestOne is the ingest scenario on one database.
func (r *runner) ingestOne(ctx context.Context, res *Result, label string, pool *pgxpool.Pool, n, probes, rate int) error {
	var cl cleanup
	defer cl.run()
	dir, err := r.scratch("ingest")
	if err != nil {
		return err
	}
	d, err := newDeployment(ctx, r.log, dir, shape{edges: 1, sensors: streamPublishers})
	if err != nil {
		return err
	}
	s, err := r.startSite(ctx, &cl, d, dir, nil, nil)
	if err != nil {
		return err
	}
	edge, node := edgeName(0), s.nodes[0]
	devs := make([]*devicekit.Client, streamPublishers)
	ops := make([]op, streamPublishers)
	for i := range devs {
		if devs[i], err = d.device(ctx, sensorOf(edge, i), node.ClientURL()); err != nil {
			return err
		}
		c := devs[i]
		cl.add(func() { _ = c.Close() })
		ops[i] = func(ctx context.Context) error {
			_, err := c.PublishEvent(ctx, "door.opened", benchPayload)
			return err
		}
	}
	filter := benchOrg + "." + edge + ".sensor.*.evt"
	if _, _, err := r.path(ctx, label+": filling central's stream", n, ops, func() uint64 { return s.centralCount(ctx, filter) }); err != nil {
		return err
	}

	// Central again, on the same store and leaf port, now with the
	// database: its ingest catches up with the whole stream.
	_, port, err := net.SplitHostPort(s.central.LeafAddr())
	if err != nil {
		return fmt.Errorf("bench: central's leaf address: %w", err)
	}
	leafPort, _ := strconv.Atoi(port)
	s.central.Stop()
	cfg := d.centralConfig(filepath.Join(dir, "central"), pool)
	cfg.Render.LeafPort = leafPort
	start := time.Now()
	c2, err := central.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: restart central with the database: %w", err)
	}
	cl.add(c2.Stop)
	s.central = c2
	total := streamMsgs(ctx, s.js(), s.eventStream())
	var ingested uint64
	err = waitFor(ctx, "the ingest to catch up", 5*time.Millisecond, func() bool {
		st := c2.Status(ctx).Orgs[benchOrg]
		if st.Ingest == nil {
			return false
		}
		ingested = st.Ingest.Ingested
		r.progress(label+": ingest", int(ingested), int(total))
		return st.Ingest.Ingested+st.Ingest.Duplicates+st.Ingest.DeadLettered >= total
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	rows, err := readRows(ctx, pool)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "DELETE FROM lintel.events"); err != nil { // TRUNCATE would drop TimescaleDB's chunks
		return fmt.Errorf("bench: empty the events table: %w", err)
	}
	r.progress(label+": raw CopyFrom", 0, len(rows))
	rawT, err := copyRows(ctx, pool, rows, storage.DefaultBatchSize)
	if err != nil {
		return err
	}
	r.progress(label+": raw CopyFrom", len(rows), len(rows))
	res.Figures = append(res.Figures, fig(label+" ingest events/s", float64(ingested)/elapsed.Seconds(), "events/s",
		float64(len(rows))/rawT.Seconds(), "raw pgx CopyFrom", ratioAtLeast, 0.7))

	// Lag: the edge links to central again, through the same proxy.
	if err := waitFor(ctx, "the edge's link to the restarted central", 20*time.Millisecond, node.LinkUp); err != nil {
		return err
	}
	lag, err := r.measureLag(ctx, pool, devs, probes, rate)
	if err != nil {
		return err
	}
	rawLag, err := r.rawLag(ctx, dir, pool, rows[0], min(probes, 200))
	if err != nil {
		return err
	}
	res.Figures = append(res.Figures,
		fig(label+" lag p50", ms(lag.quantile(0.5)), "ms", ms(rawLag.quantile(0.5)), "raw JetStream publish + 1-row CopyFrom", noGoal, 0),
		fig(label+" lag p99", ms(lag.quantile(0.99)), "ms", ms(rawLag.quantile(0.99)), "raw JetStream publish + 1-row CopyFrom", noGoal, 0))
	return nil
}

// measureLag publishes probes events at rate from devs and returns, for
// each, the time from the start of its publish until its row was visible.
func (r *runner) measureLag(ctx context.Context, pool *pgxpool.Pool, devs []*devicekit.Client, probes, rate int) (latencies, error) {
	var mu sync.Mutex
	pending := map[string]time.Time{}
	var lag latencies
	pollCtx, stopPoll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(lagPoll)
		defer t.Stop()
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			ids := make([]string, 0, len(pending))
			for id := range pending {
				ids = append(ids, id)
			}
			mu.Unlock()
			if len(ids) == 0 {
				continue
			}
			rows, err := pool.Query(pollCtx, "SELECT id::text FROM lintel.events WHERE id = ANY($1::uuid[])", ids)
			if err != nil {
				continue
			}
			found, err := pgx.CollectRows(rows, pgx.RowTo[string])
			now := time.Now()
			if err != nil {
				continue
			}
			mu.Lock()
			for _, id := range found {
				if t0, ok := pending[id]; ok {
					lag = append(lag, now.Sub(t0))
					delete(pending, id)
				}
			}
			mu.Unlock()
		}
	})
	defer func() { stopPoll(); wg.Wait() }()
	dur := time.Duration(float64(probes) / float64(rate) * float64(time.Second))
	ok, failed := paced(ctx, float64(rate), dur, len(devs), func(ctx context.Context, w int) error {
		t0 := time.Now()
		id, err := devs[w].PublishEvent(ctx, "bench.lag", benchPayload)
		if err != nil {
			return err
		}
		mu.Lock()
		pending[id.String()] = t0
		mu.Unlock()
		return nil
	})
	if failed > 0 {
		return nil, fmt.Errorf("bench: %d of %d lag probes failed", failed, ok+failed)
	}
	err := waitFor(ctx, "every lag probe's row", 10*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		r.progress("lag probes stored", len(lag), int(ok))
		return len(lag) >= int(ok)
	})
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(lag), err
}

// rawLag measures k times the raw floor of the lag: the event's publish
// into an fsynced stream of a plain server, then a one-row CopyFrom of
// row (given a new id and time) into lintel.events.
func (r *runner) rawLag(ctx context.Context, dir string, pool *pgxpool.Pool, row []any, k int) (latencies, error) {
	raw, err := startRawPair(ctx, filepath.Join(dir, "rawlag"), []string{benchOrg + ".>"}, false, true)
	if err != nil {
		return nil, err
	}
	defer raw.close()
	st := message.NewStamper(sensorOf(edgeName(0), 0), message.ID{9})
	var out latencies
	for i := range k {
		r.progress("raw lag", i, k)
		t0 := time.Now()
		e := &message.Envelope{Type: topic.Event, Name: "bench.lag"}
		if err := message.SetPayload(e, benchPayload); err != nil {
			return nil, err
		}
		st.Stamp(e)
		msg, err := e.ToMsg(nil)
		if err != nil {
			return nil, err
		}
		if _, err := raw.edgeJS.PublishMsg(ctx, msg); err != nil {
			return nil, fmt.Errorf("bench: raw publish: %w", err)
		}
		v := slices.Clone(row)
		v[0], v[1] = e.Time, [16]byte(e.ID)
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"lintel", "events"}, eventColumns, pgx.CopyFromRows([][]any{v})); err != nil {
			return nil, fmt.Errorf("bench: raw copy: %w", err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}
