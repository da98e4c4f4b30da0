package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
)

// decisionReaders is the concurrency of the busy case of the decision
// scenario.
const decisionReaders = 10

// credentials returns n active cards for door front, "card-0"...
func (d *deployment) credentials(n int) []*access.Credential {
	cs := make([]*access.Credential, n)
	for i := range cs {
		cs[i] = &access.Credential{ID: message.Credential(cardName(i)).Hash(d.hashKey), Holder: "holder-" + strconv.Itoa(i),
			Kind: message.CredentialCard, State: access.StateActive, Doors: []string{benchDoor}, Groups: []string{}}
	}
	return cs
}

func cardName(i int) string { return "card-" + strconv.Itoa(i) }

// putCredentials stores cs for edge at central, in chunks, reporting
// progress, and returns the last revision.
func (r *runner) putCredentials(ctx context.Context, m *access.Manager, edge string, cs []*access.Credential) (uint64, error) {
	const chunk = 10000
	var rev uint64
	for off := 0; off < len(cs); off += chunk {
		r.progress("storing credentials for "+edge, off, len(cs))
		var err error
		if rev, err = m.PutMany(ctx, edge, cs[off:min(off+chunk, len(cs))]); err != nil {
			return 0, fmt.Errorf("bench: store credentials: %w", err)
		}
	}
	r.progress("storing credentials for "+edge, len(cs), len(cs))
	return rev, nil
}

func runDecision(ctx context.Context, r *runner, res *Result) error {
	cards, n, rounds := r.size(1000, 100000), r.size(200, 10000), r.size(2, 10)
	res.Notes = append(res.Notes, fmt.Sprintf("%d credentials at the edge, central cut off, every decision's signed audit record stored (fsynced) before the reply; %d requests per case; the floor is a device's event publish into the edge's fsynced event stream, at the same concurrency; floor and decisions take turns in %d rounds", cards, n, rounds))
	var cl cleanup
	defer cl.run()
	dir, err := r.scratch("decision")
	if err != nil {
		return err
	}
	d, err := newDeployment(ctx, r.log, dir, shape{edges: 1, sensors: decisionReaders, readers: decisionReaders})
	if err != nil {
		return err
	}
	s, err := r.startSite(ctx, &cl, d, dir, nil, nil)
	if err != nil {
		return err
	}
	edge, node := edgeName(0), s.nodes[0]
	svc, err := d.startService(ctx, node, edge)
	if err != nil {
		return err
	}
	cl.add(svc.Stop)
	if _, err := r.putCredentials(ctx, s.central.Manager(benchOrg), edge, d.credentials(cards)); err != nil {
		return err
	}
	// Every credential, and a confirmed sync: a set never confirmed is
	// stale, and the door then decides by its fallback (deny).
	if err := waitFor(ctx, "the edge to hold every credential, synced", 20*time.Millisecond, func() bool {
		r.progress("edge's credential set", svc.Set().Len(), cards)
		return svc.Set().Len() >= cards && !svc.SyncedAt().IsZero()
	}); err != nil {
		return err
	}
	s.proxies[0].Cut()
	if err := waitFor(ctx, "the link to drop", 10*time.Millisecond, func() bool { return !node.LinkUp() }); err != nil {
		return err
	}
	readers := make([]*devicekit.Client, decisionReaders)
	sensors := make([]*devicekit.Client, decisionReaders)
	for i := range readers {
		if readers[i], err = d.device(ctx, readerOf(edge, i), node.ClientURL()); err != nil {
			return err
		}
		if sensors[i], err = d.device(ctx, sensorOf(edge, i), node.ClientURL()); err != nil {
			return err
		}
		rd, sn := readers[i], sensors[i]
		cl.add(func() { _ = rd.Close(); _ = sn.Close() })
	}
	for _, conc := range []int{1, decisionReaders} {
		floorOps := make([]op, conc)
		decideOps := make([]op, conc)
		for i := range conc {
			sn, rd := sensors[i], readers[i]
			floorOps[i] = func(ctx context.Context) error {
				_, err := sn.PublishEvent(ctx, "door.opened", benchPayload)
				return err
			}
			decideOps[i] = func(ctx context.Context) error {
				card := cardName(rand.IntN(cards))
				e, err := rd.Request(ctx, message.NameAccessRequested,
					message.AccessRequest{Door: benchDoor, Kind: message.CredentialCard, Credential: message.Credential(card)})
				if err != nil {
					return err
				}
				if e.Name != message.NameAccessGranted {
					d, _ := message.DecodePayload[message.AccessDecision](e)
					return fmt.Errorf("bench: %s was not granted: %s (%s)", card, e.Name, d.Reason)
				}
				return nil
			}
		}
		label := fmt.Sprintf("%d reader", conc)
		if conc > 1 {
			label += "s"
		}
		// Floor and decisions take turns, in rounds, so that a change in
		// the machine's speed (another process, the disk's own work) falls
		// on both alike.
		var floor, dec latencies
		for round := range rounds {
			step := fmt.Sprintf("%s, round %d of %d", label, round+1, rounds)
			f, _, err := r.drive(ctx, step+": fsynced publish (floor)", n/rounds, floorOps)
			if err != nil {
				return err
			}
			dd, _, err := r.drive(ctx, step+": decisions", n/rounds, decideOps)
			if err != nil {
				return err
			}
			floor, dec = append(floor, f...), append(dec, dd...)
		}
		const floorName = "fsynced JetStream publish"
		res.Figures = append(res.Figures,
			fig(label+" decision p50", ms(dec.quantile(0.5)), "ms", ms(floor.quantile(0.5)), floorName, noGoal, 0),
			fig(label+" decision p99", ms(dec.quantile(0.99)), "ms", ms(floor.quantile(0.99)), floorName, ratioAtMost, 1.1),
			fig(label+" decision p999", ms(dec.quantile(0.999)), "ms", ms(floor.quantile(0.999)), floorName, noGoal, 0))
	}
	return nil
}
