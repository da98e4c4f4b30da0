package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/edgekit/access"
)

func runRevocation(ctx context.Context, r *runner, res *Result) error {
	edges, n := r.size(2, 10), r.size(20, 1000)
	res.Notes = append(res.Notes, fmt.Sprintf("%d revocations with %d edges linked, each edge's access service holding the credentials: from the manager's Revoke until every edge's set holds the credential revoked (polled every 200 µs); baseline: a plain KV put on a plain hub until %d watchers on a plain leaf server (across the leaf link) saw it", n, edges, edges))
	var cl cleanup
	defer cl.run()
	dir, err := r.scratch("revocation")
	if err != nil {
		return err
	}
	d, err := newDeployment(ctx, r.log, dir, shape{edges: edges, readers: 1})
	if err != nil {
		return err
	}
	s, err := r.startSite(ctx, &cl, d, dir, nil, nil)
	if err != nil {
		return err
	}
	m := s.central.Manager(benchOrg)
	cs := d.credentials(n)
	svcs := make([]*access.Service, edges)
	for i, node := range s.nodes {
		if svcs[i], err = d.startService(ctx, node, edgeName(i)); err != nil {
			return err
		}
		cl.add(svcs[i].Stop)
		if _, err := r.putCredentials(ctx, m, edgeName(i), cs); err != nil {
			return err
		}
	}
	for i, svc := range svcs {
		if err := waitFor(ctx, "every edge to hold the credentials", 10*time.Millisecond, func() bool {
			r.progress("edges' credential sets", i, edges)
			return svc.Set().Len() >= n
		}); err != nil {
			return err
		}
	}
	var lat latencies
	for i, c := range cs {
		r.progress("revocations", i, n)
		t0 := time.Now()
		if _, err := m.Revoke(ctx, c.ID, "bench"); err != nil {
			return fmt.Errorf("bench: revoke: %w", err)
		}
		if err := waitFor(ctx, "every edge to hold the revocation", 200*time.Microsecond, func() bool {
			for _, svc := range svcs {
				if got, _ := svc.Set().Credential(c.ID); got.State != access.StateRevoked {
					return false
				}
			}
			return true
		}); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	raw, err := r.rawRevocations(ctx, filepath.Join(dir, "raw"), edges, n)
	if err != nil {
		return err
	}
	res.Figures = append(res.Figures,
		fig(strconv.Itoa(edges)+" edges revocation p50", ms(lat.quantile(0.5)), "ms", ms(raw.quantile(0.5)), "raw KV put across a leaf", noGoal, 0),
		fig(strconv.Itoa(edges)+" edges revocation p99", ms(lat.quantile(0.99)), "ms", ms(raw.quantile(0.99)), "raw KV put across a leaf", valueAtMost, 100))
	return nil
}

// rawRevocations puts n values into a plain KV bucket on a plain hub and
// times each until watchers watchers on a plain leaf server saw it.
func (r *runner) rawRevocations(ctx context.Context, dir string, watchers, n int) (latencies, error) {
	raw, err := startRawPair(ctx, dir, []string{"raw.unused"}, false, true)
	if err != nil {
		return nil, err
	}
	defer raw.close()
	kv, err := raw.hubJS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "rawcred", Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("bench: raw bucket: %w", err)
	}
	seen := make(chan uint64, watchers*4)
	for range watchers {
		nc, err := nats.Connect(raw.edge.ClientURL())
		if err != nil {
			return nil, fmt.Errorf("bench: raw watcher: %w", err)
		}
		defer nc.Close()
		js, err := jetstream.NewWithDomain(nc, rawHubDomain)
		if err != nil {
			return nil, fmt.Errorf("bench: raw watcher: %w", err)
		}
		wkv, err := js.KeyValue(ctx, "rawcred")
		if err != nil {
			return nil, fmt.Errorf("bench: raw watcher: %w", err)
		}
		w, err := wkv.WatchAll(ctx, jetstream.UpdatesOnly())
		if err != nil {
			return nil, fmt.Errorf("bench: raw watcher: %w", err)
		}
		defer func() { _ = w.Stop() }()
		go func() {
			for e := range w.Updates() {
				if e != nil {
					seen <- e.Revision()
				}
			}
		}()
	}
	var lat latencies
	val := []byte(`{"holder":"holder-1","kind":"card","state":"revoked","reason":"bench","doors":["front"]}`)
	for i := range n {
		r.progress("raw KV puts", i, n)
		t0 := time.Now()
		rev, err := kv.Put(ctx, "cred."+strconv.Itoa(i), val)
		if err != nil {
			return nil, fmt.Errorf("bench: raw put: %w", err)
		}
		for got := 0; got < watchers; {
			select {
			case v := <-seen:
				if v >= rev {
					got++
				}
			case <-time.After(time.Minute):
				return nil, fmt.Errorf("bench: raw watchers did not see revision %d", rev)
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}
