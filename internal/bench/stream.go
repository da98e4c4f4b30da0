package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/internal/tcpproxy"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// streamPublishers is how many devices publish at once in the stream
// scenario, as in the node's ingest benchmark.
const streamPublishers = 8

// benchPayload is the payload of every event the scenarios publish.
var benchPayload = map[string]string{"door": benchDoor, "holder": "1234"}

// site is central and edges linked to it through proxies that can cut
// the links.
type site struct {
	d       *deployment
	central *central.Central
	proxies []*tcpproxy.Proxy
	nodes   []*edgekit.Node
}

// startSite starts central (with db, if not nil) and edges of d, each
// linked through a proxy, and waits for the links. tweak adjusts each
// edge's configuration. Everything stops with cl.
func (r *runner) startSite(ctx context.Context, cl *cleanup, d *deployment, dir string, db *pgxpool.Pool, tweak func(*edgekit.NodeConfig)) (*site, error) {
	s := &site{d: d}
	var err error
	// Each part's goroutines carry its label, so that the scale scenario
	// can tell central's CPU from the edges'.
	labelled(ctx, partCentral, func(ctx context.Context) {
		s.central, err = d.startCentral(ctx, filepath.Join(dir, "central"), db)
	})
	if err != nil {
		return nil, err
	}
	cl.add(s.central.Stop)
	s.proxies = make([]*tcpproxy.Proxy, d.shape.edges)
	s.nodes = make([]*edgekit.Node, d.shape.edges)
	for i := range s.proxies {
		labelled(ctx, partProxy, func(context.Context) { s.proxies[i], err = tcpproxy.New(s.central.LeafAddr()) })
		if err != nil {
			return nil, fmt.Errorf("bench: link proxy: %w", err)
		}
		cl.add(s.proxies[i].Close)
	}
	err = parallel(ctx, d.shape.edges, 4, func(ctx context.Context, i int) error {
		cfg := d.edgeConfig(edgeName(i), filepath.Join(dir, edgeName(i)), "nats-leaf://"+s.proxies[i].Addr())
		if tweak != nil {
			tweak(&cfg)
		}
		var n *edgekit.Node
		var err error
		labelled(ctx, partEdges, func(ctx context.Context) { n, err = startEdge(ctx, cfg) })
		if err != nil {
			return err
		}
		s.nodes[i] = n
		return nil
	})
	for _, n := range s.nodes {
		if n != nil {
			cl.add(n.Stop)
		}
	}
	if err != nil {
		return nil, err
	}
	for i, n := range s.nodes {
		r.progress("linking edges", i, len(s.nodes))
		if err := waitFor(ctx, "the edges' links to central", 20*time.Millisecond, n.LinkUp); err != nil {
			return nil, err
		}
	}
	// Every flow of the edges started has run once: a scenario starts from
	// a site in its steady state, not from central's start-up.
	r.progress("sourcing from the edges", 0, 1)
	if err := waitFor(ctx, "central sourcing every flow of the edges", 50*time.Millisecond, func() bool { return s.sourcing(ctx) }); err != nil {
		return nil, err
	}
	return s, nil
}

// sourcing reports whether central has heard every flow of the site's
// edges since its sources last (re)started.
func (s *site) sourcing(ctx context.Context) bool {
	st, err := s.central.Hub(benchOrg).Sources(ctx)
	if err != nil {
		return false
	}
	started := map[string]bool{}
	for i := range s.nodes {
		started[edgeName(i)] = true
	}
	for _, src := range st {
		if started[src.Edge] && (src.Missing || src.Active < 0) {
			return false
		}
	}
	return true
}

// js returns central's JetStream of the org.
func (s *site) js() jetstream.JetStream { return s.central.JetStream(benchOrg) }

// eventStream returns the name of central's event stream.
func (s *site) eventStream() string { return s.central.Hub(benchOrg).EventStream() }

// centralCount returns how many events central's stream holds that match
// filter.
func (s *site) centralCount(ctx context.Context, filter string) uint64 {
	return subjectMsgs(ctx, s.js(), s.eventStream(), filter)
}

// pathResult is what one publishing path measured.
type pathResult struct {
	rate     float64 // events/s until central held them all
	p50, p99 time.Duration
}

func runStream(ctx context.Context, r *runner, res *Result) error {
	n, rounds := r.size(400, 20000), r.size(2, 5)
	res.Notes = append(res.Notes, fmt.Sprintf("%d events per path from %d devices publishing at once, the paths taking turns in %d rounds; events/s counts until central's stream (the raw paths: the raw hub's) holds them all; latency is publish -> edge's acknowledgement (stored, fsynced); each raw publisher, and the raw HTTP front end for each device, has a connection of its own, as each device has; raw HTTP is a bare net/http handler publishing each body as it came with nats.go, no login, decoding or checks", n, streamPublishers, rounds))
	var cl cleanup
	defer cl.run()
	dir, err := r.scratch("stream")
	if err != nil {
		return err
	}
	d, err := newDeployment(ctx, r.log, dir, shape{edges: 1, sensors: 2 * streamPublishers})
	if err != nil {
		return err
	}
	s, err := r.startSite(ctx, &cl, d, dir, nil, nil)
	if err != nil {
		return err
	}
	edge, node := edgeName(0), s.nodes[0]
	filter := benchOrg + "." + edge + ".sensor.*.evt"

	// Raw: nats.go JetStream publishes of the same envelopes into an
	// fsynced stream on a plain edge server, sourced by a plain hub, each
	// publisher on a connection of its own as each device is.
	raw, err := startRawPair(ctx, filepath.Join(dir, "raw"), []string{benchOrg + ".>"}, true, true)
	if err != nil {
		return err
	}
	cl.add(raw.close)
	rawConn := func() (jetstream.JetStream, error) {
		nc, js, err := connectJS(raw.edge.ClientURL())
		if err != nil {
			return nil, err
		}
		cl.add(nc.Close)
		return js, nil
	}
	rawOps := make([]op, streamPublishers)
	for i := range rawOps {
		st := message.NewStamper(sensorOf(edge, i), message.ID{byte(i + 1)})
		js, err := rawConn()
		if err != nil {
			return err
		}
		rawOps[i] = func(ctx context.Context) error {
			e := &message.Envelope{Type: topic.Event, Name: "door.opened"}
			if err := message.SetPayload(e, benchPayload); err != nil {
				return err
			}
			st.Stamp(e)
			msg, err := e.ToMsg(nil)
			if err != nil {
				return err
			}
			_, err = js.PublishMsg(ctx, msg)
			return err
		}
	}

	natsOps := make([]op, streamPublishers)
	for i := range natsOps {
		c, err := d.device(ctx, sensorOf(edge, i), node.ClientURL())
		if err != nil {
			return err
		}
		cl.add(func() { _ = c.Close() })
		natsOps[i] = func(ctx context.Context) error {
			_, err := c.PublishEvent(ctx, "door.opened", benchPayload)
			return err
		}
	}

	url, err := startGateway(ctx, &cl, d, node, edge)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * streamPublishers}, Timeout: time.Minute}
	cl.add(client.CloseIdleConnections)
	httpOps := make([]op, streamPublishers)
	ids := &message.IDGenerator{}
	for i := range httpOps {
		t := sensorOf(edge, streamPublishers+i)
		user, pass := authz.DeviceUser(t), d.password(authz.DeviceUser(t))
		httpOps[i] = func(ctx context.Context) error {
			body, err := cloudEvent(t, ids)
			if err != nil {
				return err
			}
			return postEvent(ctx, client, url+gateway.PathEvents, user, pass, body)
		}
	}

	// Raw HTTP: the same CloudEvents, by the same HTTP client, posted to a
	// bare net/http handler that publishes each body as it came with
	// nats.go into the raw edge stream and answers once it is stored: HTTP
	// in front of JetStream with none of the gateway's work (no login,
	// decoding or checks; a connection per device, as the gateway's).
	conns := make(map[string]jetstream.JetStream, streamPublishers)
	subjects := make([]string, streamPublishers)
	for i := range subjects {
		subjects[i] = (&message.Envelope{Source: sensorOf(edge, streamPublishers+i), Type: topic.Event}).Subject().String()
		if conns[subjects[i]], err = rawConn(); err != nil {
			return err
		}
	}
	rawURL, err := startRawHTTP(ctx, &cl, conns)
	if err != nil {
		return err
	}
	rawHTTPOps := make([]op, streamPublishers)
	for i := range rawHTTPOps {
		t, subject := sensorOf(edge, streamPublishers+i), subjects[i]
		rawHTTPOps[i] = func(ctx context.Context) error {
			body, err := cloudEvent(t, ids)
			if err != nil {
				return err
			}
			return postEvent(ctx, client, rawURL+"/"+subject, "", "", body)
		}
	}
	// The paths take turns, in rounds, so that a change in the machine's
	// load falls on all of them alike.
	var rawT, natsT, httpT, rawHTTPT pathTotal
	for round := range rounds {
		for _, p := range []struct {
			name  string
			ops   []op
			count func() uint64
			total *pathTotal
		}{
			{"raw nats.go", rawOps, func() uint64 { return raw.hubMsgs(ctx) }, &rawT},
			{"NATS devices", natsOps, func() uint64 { return s.centralCount(ctx, filter) }, &natsT},
			{"raw HTTP", rawHTTPOps, func() uint64 { return raw.hubMsgs(ctx) }, &rawHTTPT},
			{"HTTP gateway devices", httpOps, func() uint64 { return s.centralCount(ctx, filter) }, &httpT},
		} {
			lat, el, err := r.path(ctx, fmt.Sprintf("round %d of %d: %s", round+1, rounds, p.name), n/rounds, p.ops, p.count)
			if err != nil {
				return err
			}
			p.total.add(lat, el)
		}
	}
	rawRes, natsRes, httpRes, rawHTTPRes := rawT.result(), natsT.result(), httpT.result(), rawHTTPT.result()

	for _, p := range []struct {
		name string
		pr   pathResult
	}{{"NATS devices", natsRes}, {"HTTP devices", httpRes}} {
		res.Figures = append(res.Figures,
			fig(p.name+" events/s", p.pr.rate, "events/s", rawRes.rate, "raw nats.go JetStream", ratioAtLeast, 0.9),
			fig(p.name+" p50 latency", ms(p.pr.p50), "ms", ms(rawRes.p50), "raw nats.go JetStream", noGoal, 0),
			fig(p.name+" p99 latency", ms(p.pr.p99), "ms", ms(rawRes.p99), "raw nats.go JetStream", noGoal, 0))
	}
	// The HTTP hop's own cost: a bare HTTP front end against NATS, and the
	// gateway against that front end (reported without a goal).
	res.Figures = append(res.Figures,
		fig("raw HTTP front end events/s", rawHTTPRes.rate, "events/s", rawRes.rate, "raw nats.go JetStream", noGoal, 0),
		fig("HTTP devices events/s, against raw HTTP", httpRes.rate, "events/s", rawHTTPRes.rate, "raw HTTP -> nats.go JetStream", noGoal, 0),
		fig("HTTP devices p50 latency, against raw HTTP", ms(httpRes.p50), "ms", ms(rawHTTPRes.p50), "raw HTTP -> nats.go JetStream", noGoal, 0))
	return nil
}

// cloudEvent returns a new event of t as a structured CloudEvent.
func cloudEvent(t topic.Thing, ids *message.IDGenerator) ([]byte, error) {
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: t, Type: topic.Event, Name: "door.opened"}
	if err := message.SetPayload(e, benchPayload); err != nil {
		return nil, err
	}
	return e.AppendCloudEvent(nil)
}

// postEvent posts the structured CloudEvent body to url, with Basic
// credentials unless user is empty, until it is answered 200. As a device
// should, it sends the same event again after the Retry-After of a 503
// (password checks busy) or a 429.
func postEvent(ctx context.Context, client *http.Client, url, user, pass string, body []byte) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", message.ContentTypeCloudEventsJSON)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return nil
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			wait := time.Second
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
				wait = time.Duration(n) * time.Second
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("bench: %s: status %d: %s: %w", url, resp.StatusCode, msg, ctx.Err())
			case <-time.After(wait):
			}
		default:
			return fmt.Errorf("bench: %s: status %d: %s", url, resp.StatusCode, msg)
		}
	}
}

// startRawHTTP serves the raw HTTP baseline on a loopback port and returns
// its URL: a POST to /SUBJECT publishes the body, as it came, with nats.go
// on SUBJECT through its connection in conns (a stream stores it), and is
// answered 200 with the acknowledgement once the stream stored it.
func startRawHTTP(ctx context.Context, cl *cleanup, conns map[string]jetstream.JetStream) (string, error) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject := strings.TrimPrefix(r.URL.Path, "/")
		js, ok := conns[subject]
		if !ok {
			http.Error(w, "no connection for subject "+subject, http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ack, err := js.PublishMsg(r.Context(), &nats.Msg{Subject: subject, Data: body})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"stream":%q,"seq":%d}`, ack.Stream, ack.Sequence)
	})
	return serveHTTP(ctx, cl, h, "raw HTTP")
}

// serveHTTP serves h on a loopback port until cl runs, and returns its URL.
func serveHTTP(ctx context.Context, cl *cleanup, h http.Handler, what string) (string, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return "", fmt.Errorf("bench: %s listener: %w", what, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the scenario's requests fail and say so
		}
	}()
	cl.add(func() {
		_ = srv.Close()
		<-done
	})
	return "http://" + ln.Addr().String(), nil
}

// path publishes n events with ops and waits until count has grown by n;
// it returns the publishes' latencies and the time until count had grown.
func (r *runner) path(ctx context.Context, name string, n int, ops []op, count func() uint64) (latencies, time.Duration, error) {
	before := count()
	start := time.Now()
	lat, _, err := r.drive(ctx, name, n, ops)
	if err != nil {
		return nil, 0, err
	}
	if err := waitFor(ctx, name+" events at central", 5*time.Millisecond, func() bool { return count() >= before+uint64(n) }); err != nil {
		return nil, 0, err
	}
	return lat, time.Since(start), nil
}

// pathTotal adds up the rounds of one path.
type pathTotal struct {
	lat     latencies
	elapsed time.Duration
	n       int
}

func (t *pathTotal) add(lat latencies, el time.Duration) {
	t.lat, t.elapsed, t.n = append(t.lat, lat...), t.elapsed+el, t.n+len(lat)
}

func (t *pathTotal) result() pathResult {
	return pathResult{rate: float64(t.n) / t.elapsed.Seconds(), p50: t.lat.quantile(0.5), p99: t.lat.quantile(0.99)}
}

// startGateway serves the gateway of edge in front of node on a loopback
// port and returns its URL.
func startGateway(ctx context.Context, cl *cleanup, d *deployment, node *edgekit.Node, edge string) (string, error) {
	auth, err := authz.NewEdgeAuthenticator(d.inv, d.st, benchOrg, edge, authz.EdgeAuthConfig{})
	if err != nil {
		return "", fmt.Errorf("bench: gateway authenticator: %w", err)
	}
	cl.add(auth.Close)
	g, err := gateway.New(gateway.Config{Org: benchOrg, Edge: edge, URLs: []string{node.ClientURL()}, Auth: auth,
		Rate: -1, PublishTimeout: time.Minute})
	if err != nil {
		return "", fmt.Errorf("bench: gateway: %w", err)
	}
	cl.add(func() { _ = g.Close() })
	return serveHTTP(ctx, cl, g, "gateway")
}
