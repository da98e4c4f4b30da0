package gateway

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// CentralConfig configures a [Central] gateway. Org, URLs, Service,
// Password and Auth are required; the zero value of every other field
// means the default of the same field of [Config].
type CentralConfig struct {
	// Org is the org whose devices the gateway serves: those the inventory
	// marks authz.Thing.CentralGateway, at any edge of the org.
	Org string
	// URLs are central's client URLs.
	URLs []string
	// Service names the gateway's service in the inventory: kind
	// authz.ServiceGateway, scoped to Org without an edge. Its generated
	// permissions are what lets it publish into the org's gateway stream;
	// Password is its password.
	Service  string
	Password authz.Secret // see Service
	// Auth verifies device passwords: the authenticator of
	// [authz.NewCentralGatewayAuthenticator], which knows only the
	// devices marked for the central gateway. The caller keeps it current
	// with its Update and closes it.
	Auth *authz.EdgeAuthenticator
	// NATSOptions are added to the options of the gateway's connection,
	// such as nats.RootCAs for central's TLS listener.
	NATSOptions []nats.Option
	// MaxBodyBytes bounds a request body, as in [Config].
	MaxBodyBytes int64
	// MaxBatch bounds the events of one batch, as in [Config].
	MaxBatch int
	// Rate and Burst are each device's request budget, as in [Config].
	Rate float64
	// Burst: see Rate.
	Burst int
	// PublishTimeout bounds a publish's wait for the gateway stream's
	// acknowledgement, as in [Config].
	PublishTimeout time.Duration
	// MaxPollWait bounds the wait of a command long-poll, as in [Config].
	MaxPollWait time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client, as in [Config].
	TrustedProxies []netip.Prefix
	// ClientCertHeader names the header in which a trusted proxy passes
	// the device's client certificate, as in [Config].
	ClientCertHeader string
	// ClientCAs verifies those certificates, as in [Config].
	ClientCAs *x509.CertPool
	// RequireClientCert refuses requests without a certificate, as in
	// [Config].
	RequireClientCert bool
	// Now is the clock of rate limits and certificate checks. Nil means
	// time.Now.
	Now func() time.Time
	// Logger receives the gateway's logs. Nil discards.
	Logger *slog.Logger
}

// Central is the HTTP gateway at central, for devices that reach no edge
// (docs/gateway.md, "The central gateway"): an [http.Handler] serving
// POST /v1/events and GET /v1/commands with the same authentication, rate
// limit, content modes and answers as a [Gateway]. Commands come from its
// consumer on the org's command stream, each held until a poll or
// stream of its device takes it or its deadline passes. It publishes each event on one connection
// of its own service user into the org's gateway stream, "gw-{org}", on
// the device's internal subject, with the event's id as Nats-Msg-Id,
// and answers 200 once the stream stored it. Since no connection of the
// device carries the message, the gateway's own check of the device's
// generated permissions is the boundary for which device a message is
// for; nats-server bounds the gateway to the subjects of the devices
// marked for it. Create it with [ConnectCentral]; stop it with
// [Central.Close]. Its methods are safe for concurrent use.
type Central struct {
	g      *Gateway // the HTTP side shared with the edge gateway: config, counters, rate limits
	cfg    CentralConfig
	stream string
	mux    *http.ServeMux
	nc     *nats.Conn
	js     jetstream.JetStream
	ids    message.IDGenerator // of the acks the gateway stores as a device
	cmds   *centralCommands
}

var _ http.Handler = (*Central)(nil)

// ConnectCentral returns the central gateway of cfg, connected to central
// as its service user; ctx bounds the connection. It returns an error
// wrapping [ErrInvalidConfig] when a required field is missing, or
// [ErrEdgeUnavailable] when central cannot be reached or refused the
// login.
func ConnectCentral(ctx context.Context, cfg CentralConfig) (*Central, error) {
	switch {
	case cfg.Org == "":
		return nil, fmt.Errorf("%w: Org is required", ErrInvalidConfig)
	case len(cfg.URLs) == 0:
		return nil, fmt.Errorf("%w: URLs is empty", ErrInvalidConfig)
	case cfg.Service == "" || cfg.Password.IsZero():
		return nil, fmt.Errorf("%w: Service and Password are required", ErrInvalidConfig)
	case cfg.Auth == nil:
		return nil, fmt.Errorf("%w: Auth is nil", ErrInvalidConfig)
	case cfg.ClientCertHeader != "" && cfg.ClientCAs == nil:
		return nil, fmt.Errorf("%w: ClientCertHeader without ClientCAs", ErrInvalidConfig)
	case cfg.RequireClientCert && cfg.ClientCertHeader == "":
		return nil, fmt.Errorf("%w: RequireClientCert without ClientCertHeader", ErrInvalidConfig)
	}
	g := newShared(Config{
		Org: cfg.Org, URLs: cfg.URLs, Auth: cfg.Auth, MaxBodyBytes: cfg.MaxBodyBytes, MaxBatch: cfg.MaxBatch,
		Rate: cfg.Rate, Burst: cfg.Burst, PublishTimeout: cfg.PublishTimeout, MaxPollWait: cfg.MaxPollWait, TrustedProxies: cfg.TrustedProxies,
		ClientCertHeader: cfg.ClientCertHeader, ClientCAs: cfg.ClientCAs, RequireClientCert: cfg.RequireClientCert,
		Now: cfg.Now, Logger: cfg.Logger,
	})
	user := authz.ServiceUser(cfg.Org, cfg.Service)
	timeout := g.cfg.PublishTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	opts := append([]nats.Option{
		nats.UserInfo(user, cfg.Password.Reveal()),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(user)),
		nats.Name("lintel central gateway " + cfg.Org),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			g.log.Warn("central gateway connection", logKeyErr, err)
		}),
	}, cfg.NATSOptions...)
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrEdgeUnavailable, user, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrEdgeUnavailable, user, err)
	}
	c := &Central{g: g, cfg: cfg, stream: topology.GatewayStream(cfg.Org), nc: nc, js: js, mux: http.NewServeMux()}
	c.mux.HandleFunc("POST "+PathEvents, c.postEvents)
	c.mux.HandleFunc("GET "+PathCommands, c.getCommands)
	c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow, ok := map[string]string{PathEvents: http.MethodPost, PathCommands: http.MethodGet}[r.URL.Path]; ok {
			w.Header().Set("Allow", allow)
			g.problem(w, newProblem(http.StatusMethodNotAllowed, SlugMethodNotAllowed, "method not allowed",
				fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, allow)))
			return
		}
		g.problem(w, newProblem(http.StatusNotFound, SlugNotFound, "not found",
			fmt.Sprintf("%s %s is not an endpoint of the central gateway, which serves POST %s and GET %s; requests go through the device's edge",
				r.Method, r.URL.Path, PathEvents, PathCommands)))
	})
	g.wg.Go(g.janitor)
	c.startCommands(ctx)
	return c, nil
}

// newShared returns the HTTP side of a gateway with cfg's defaults, its
// janitor not started.
func newShared(cfg Config) *Gateway {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.MaxPollWait <= 0 {
		cfg.MaxPollWait = DefaultMaxPollWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, devs: make(map[topic.Thing]*session),
		limits: make(map[topic.Thing]*bucket), quit: make(chan struct{})}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g
}

// ServeHTTP serves POST /v1/events: CloudEvents in structured, batch or
// binary content mode, as [Gateway.ServeHTTP] does, answered once the
// org's gateway stream stored them. Every request authenticates the
// device with HTTP Basic; errors are RFC 9457 problem details.
func (c *Central) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.g.counter.requests.Add(1)
	c.mux.ServeHTTP(w, r)
}

// Stats returns a snapshot of the gateway's counters (Sessions is always
// zero: the central gateway holds no device connections).
func (c *Central) Stats() Stats { return c.g.Stats() }

// Connected reports whether the gateway's connection to central is up.
func (c *Central) Connected() bool { return c.nc.IsConnected() }

// Close stops taking commands (polls and streams end; a command not yet
// handed over stays in the command stream for the next start), closes the
// gateway's connection to central (requests in flight fail with 503) and
// stops its janitor. It is idempotent and returns nil.
func (c *Central) Close() error {
	c.cmds.stop()
	c.nc.Close()
	return c.g.Close()
}

// centralDevice is an authenticated device of the central gateway.
type centralDevice struct {
	thing topic.Thing
	perms authz.Permissions
}

// authenticate checks the request's Basic credentials against the
// devices marked for the central gateway, and the device's rate limit.
func (c *Central) authenticate(r *http.Request) (centralDevice, *Problem) {
	g := c.g
	user, pass, ok := r.BasicAuth()
	if !ok {
		return centralDevice{}, newProblem(http.StatusUnauthorized, SlugUnauthorized, "authentication required",
			"HTTP Basic authentication with the device's NATS user name and password is required")
	}
	t, ok := c.deviceOf(user)
	if !ok {
		return centralDevice{}, newProblem(http.StatusUnauthorized, SlugUnauthorized, "login refused",
			fmt.Sprintf("user %q is not a device of org %s", user, c.cfg.Org))
	}
	perms, err := g.cfg.Auth.VerifyPassword(user, pass, g.clientAddr(r))
	switch {
	case err == nil:
	case errors.Is(err, authz.ErrLoginThrottled):
		p := newProblem(http.StatusTooManyRequests, SlugLoginThrottled, "login throttled", "too many failed logins; try again later")
		p.retryAfter = authz.DefaultFailureRefill
		return centralDevice{}, p
	case errors.Is(err, authz.ErrLoginBusy):
		p := newProblem(http.StatusServiceUnavailable, SlugUnavailable, "busy", "password checks are busy; try again")
		p.retryAfter = time.Second
		return centralDevice{}, p
	default:
		// An unknown user is refused like a wrong password, so that the
		// answer does not tell which devices use the central gateway.
		return centralDevice{}, newProblem(http.StatusUnauthorized, SlugUnauthorized, "login refused", "wrong user name or password")
	}
	if p := g.checkClientCert(r, user); p != nil {
		return centralDevice{}, p
	}
	if p := g.admit(t); p != nil {
		return centralDevice{}, p
	}
	return centralDevice{thing: t, perms: perms}, nil
}

// deviceOf returns the thing of a device user name of the gateway's org.
func (c *Central) deviceOf(user string) (topic.Thing, bool) {
	parts := strings.Split(user, ".")
	if len(parts) != 4 {
		return topic.Thing{}, false
	}
	t := topic.Thing{Org: parts[0], Edge: parts[1], Type: parts[2], Code: parts[3]}
	if t.Org != c.cfg.Org || topic.IsReserved(t.Type) || t.Validate() != nil || authz.DeviceUser(t) != user {
		return topic.Thing{}, false
	}
	return t, true
}

func (c *Central) postEvents(w http.ResponseWriter, r *http.Request) {
	g := c.g
	d, p := c.authenticate(r)
	if p != nil {
		g.problem(w, p)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
	body, batch, p := g.eventsBody(r)
	if p != nil {
		g.problem(w, p)
		return
	}
	if batch {
		c.postBatch(w, r, d, body)
		return
	}
	e, p := g.decode(body)
	if p != nil {
		g.problem(w, p)
		return
	}
	msg, p := c.message(d, e)
	if p != nil {
		g.problem(w, p)
		return
	}
	ctx, cancel := g.opCtx(r.Context())
	defer cancel()
	ack, err := c.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.ID.String()), jetstream.WithExpectStream(c.stream))
	if err != nil {
		g.problem(w, c.publishProblem(err, e.ID.String(), msg))
		return
	}
	writeJSON(w, http.StatusOK, g.stored(e.ID.String(), ack))
}

func (c *Central) postBatch(w http.ResponseWriter, r *http.Request, d centralDevice, body []byte) {
	g := c.g
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		g.problem(w, newProblem(http.StatusUnprocessableEntity, SlugMalformed, "malformed batch",
			"a batch is a JSON array of CloudEvents objects: "+err.Error()))
		return
	}
	if len(raws) > g.cfg.MaxBatch {
		g.problem(w, newProblem(http.StatusRequestEntityTooLarge, SlugTooLarge, "batch too large",
			fmt.Sprintf("%d events, at most %d per batch", len(raws), g.cfg.MaxBatch)))
		return
	}
	res := make([]BatchResult, len(raws))
	fail := func(i int, p *Problem) {
		g.count(p.Status)
		res[i] = BatchResult{ID: p.ID, Status: p.Status, Problem: p}
	}
	type inflight struct {
		i   int
		id  string
		fut jetstream.PubAckFuture
	}
	var fl []inflight
	for i, raw := range raws {
		e, p := g.decode(raw)
		var msg *nats.Msg
		if p == nil {
			msg, p = c.message(d, e)
		}
		if p != nil {
			fail(i, p)
			continue
		}
		fut, err := c.js.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID.String()), jetstream.WithExpectStream(c.stream))
		if err != nil {
			fail(i, c.publishProblem(err, e.ID.String(), msg))
			continue
		}
		fl = append(fl, inflight{i, e.ID.String(), fut})
	}
	ctx, cancel := g.opCtx(r.Context())
	defer cancel()
	for _, f := range fl {
		select {
		case ack := <-f.fut.Ok():
			st := g.stored(f.id, ack)
			res[f.i] = BatchResult{ID: f.id, Status: http.StatusOK, Stored: &st}
		case err := <-f.fut.Err():
			fail(f.i, c.publishProblem(err, f.id, f.fut.Msg()))
		case <-ctx.Done():
			fail(f.i, c.publishProblem(ctx.Err(), f.id, f.fut.Msg()))
		}
	}
	status := http.StatusOK
	for _, x := range res {
		if x.Status != http.StatusOK {
			status = http.StatusMultiStatus
		}
	}
	writeJSON(w, status, res)
}

// message checks that the device d may store e, as the edge gateway's
// check does against the device's generated permissions (403 for another
// device's event or a subject the device may not publish, 422 for a type
// that is not stored), and returns the message to publish into the
// gateway stream: e's NATS form on the device's internal subject.
func (c *Central) message(d centralDevice, e *message.Envelope) (*nats.Msg, *Problem) {
	subj := e.Subject().String()
	if e.Source != d.thing || !d.perms.Allowed(subj, authz.Publish) {
		p := newProblem(http.StatusForbidden, SlugSubjectNotAllowed, "subject not allowed",
			fmt.Sprintf("device %s may not publish on %s", d.thing, subj))
		p.Subject, p.ID, p.Field = subj, e.ID.String(), "source"
		if e.Source == d.thing {
			p.Field = "type"
		}
		return nil, p
	}
	if !storableTypes[e.Type] {
		p := newProblem(http.StatusUnprocessableEntity, SlugMalformed, "not a stored message type",
			fmt.Sprintf("type %s is not stored; %s takes %s, %s, %s and %s", e.Type, PathEvents,
				topic.Event, topic.Telemetry, topic.State, topic.Ack))
		p.Field, p.ID, p.Subject = "type", e.ID.String(), subj
		return nil, p
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		return nil, malformed(err, e.ID.String())
	}
	msg.Subject = topology.GatewaySubject(e.Source, e.Type)
	return msg, nil
}

// publishProblem is [publishProblem] for a publish of msg into the
// gateway stream: an event too large for central's max payload or the
// gateway stream's max_msg_size is 413 as at the edge.
func (c *Central) publishProblem(err error, id string, msg *nats.Msg) *Problem {
	p := publishProblem(err, id, msg, c.nc.MaxPayload())
	p.Detail = strings.ReplaceAll(p.Detail, "the edge's stream", "the gateway stream "+c.stream)
	p.Detail = strings.ReplaceAll(p.Detail, "no stream of the edge", "no stream of central")
	return p
}
