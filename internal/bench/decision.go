package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

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
	echo, err := startEcho(&cl, decisionReaders)
	if err != nil {
		return err
	}
	for _, conc := range []int{1, decisionReaders} {
		floorOps := make([]op, conc)
		decideOps := make([]op, conc)
		echoOps := make([]op, conc)
		for i := range conc {
			echoOps[i] = echo.request(i)
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
		var floor, dec, rtt latencies
		for round := range rounds {
			step := fmt.Sprintf("%s, round %d of %d", label, round+1, rounds)
			f, _, err := r.drive(ctx, step+": fsynced publish (floor)", n/rounds, floorOps)
			if err != nil {
				return err
			}
			e, _, err := r.drive(ctx, step+": request round trip", n/rounds, echoOps)
			if err != nil {
				return err
			}
			rtt = append(rtt, e...)
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
			fig(label+" decision p999", ms(dec.quantile(0.999)), "ms", ms(floor.quantile(0.999)), floorName, noGoal, 0),
			// What a decision adds to the floor at the least: the reader's
			// request reaches the service and the reply comes back.
			fig(label+" request round trip p50 (no disk)", ms(rtt.quantile(0.5)), "ms", 0, "", noGoal, 0),
			fig(label+" request round trip p99 (no disk)", ms(rtt.quantile(0.99)), "ms", 0, "", noGoal, 0),
			fig(label+" decision p99 beyond the floor", ms(dec.quantile(0.99)-floor.quantile(0.99)), "ms", ms(rtt.quantile(0.99)), "request round trip p99", noGoal, 0))
	}
	return nil
}

// echoServer is a plain nats-server on loopback with a responder that
// answers every request at once: the round trip a request to a service
// takes, without the service's work or a disk.
type echoServer struct {
	conns []*nats.Conn // one a requester
}

// startEcho starts an echo server with requesters connections to it.
func startEcho(cl *cleanup, requesters int) (*echoServer, error) {
	srv, err := startServer(&server.Options{Host: loopback, Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, err
	}
	cl.add(srv.Shutdown)
	conn := func() (*nats.Conn, error) {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			return nil, fmt.Errorf("bench: connect to the echo server: %w", err)
		}
		cl.add(nc.Close)
		return nc, nil
	}
	resp, err := conn()
	if err != nil {
		return nil, err
	}
	if _, err := resp.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return nil, fmt.Errorf("bench: echo responder: %w", err)
	}
	if err := resp.Flush(); err != nil {
		return nil, fmt.Errorf("bench: echo responder: %w", err)
	}
	e := &echoServer{}
	for range requesters {
		nc, err := conn()
		if err != nil {
			return nil, err
		}
		e.conns = append(e.conns, nc)
	}
	return e, nil
}

// request returns an op that sends a request of 256 bytes (an access
// request's envelope is smaller) through requester i and waits for the
// answer.
func (e *echoServer) request(i int) op {
	nc, body := e.conns[i], make([]byte, 256)
	return func(ctx context.Context) error {
		_, err := nc.RequestWithContext(ctx, "echo", body)
		return err
	}
}
