package gateway

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// Defaults of [Config].
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxBatch       = 100
	DefaultRate           = 50
	DefaultBurst          = 100
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultPublishTimeout = 10 * time.Second
	DefaultMaxPollWait    = 55 * time.Second
	DefaultPollWait       = 25 * time.Second
	DefaultSSEHeartbeat   = 15 * time.Second
	DefaultCommandLinger  = 30 * time.Second
)

// Paths the gateway serves.
const (
	PathEvents   = "/v1/events"
	PathRequests = "/v1/requests"
	PathCommands = "/v1/commands"
)

// Log keys of the gateway.
const (
	logKeyThing  = "thing"
	logKeyErr    = "err"
	logKeyStatus = "status"
)

// Config configures a [Gateway]. Org, Edge, URLs and Auth are required;
// the zero value of every other field means its default.
type Config struct {
	// Org and Edge are the edge the gateway serves: only devices of this
	// edge may use it.
	Org, Edge string
	// URLs are the client URLs of the edge's nats-server.
	URLs []string
	// Auth verifies device passwords against the bcrypt hashes of their
	// NATS logins (see [authz.EdgeAuthenticator.VerifyPassword]); the
	// caller keeps it current with its Update and closes it.
	Auth *authz.EdgeAuthenticator
	// NATSOptions are added to the options of every device connection,
	// such as nats.RootCAs for an edge with TLS.
	NATSOptions []nats.Option
	// MaxBodyBytes bounds a request body (413 beyond). Default
	// [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// MaxBatch bounds the events of one batch. Default [DefaultMaxBatch].
	MaxBatch int
	// Rate and Burst are each device's request budget: Burst requests at
	// once, refilled at Rate per second (429 beyond). Defaults
	// [DefaultRate] and [DefaultBurst]; a negative Rate turns the limit off.
	Rate  float64
	Burst int // see Rate
	// IdleTimeout is how long a device's NATS connection is kept after its
	// last request. Default [DefaultIdleTimeout].
	IdleTimeout time.Duration
	// PublishTimeout bounds a publish's wait for the stream's
	// acknowledgement. Default [DefaultPublishTimeout].
	PublishTimeout time.Duration
	// MaxPollWait bounds the wait of a command long-poll. Default
	// [DefaultMaxPollWait].
	MaxPollWait time.Duration
	// CommandLinger is how long a device stays present for commands after
	// its last poll or stream ended (see docs/gateway.md). Default
	// [DefaultCommandLinger]; it should exceed the pause between a
	// device's polls.
	CommandLinger time.Duration
	// TrustedProxies are the addresses of reverse proxies (such as Caddy)
	// whose X-Forwarded-For header names the client: the address login
	// failures are throttled by. Requests from other addresses are judged
	// by their own address, and their header is ignored.
	TrustedProxies []netip.Prefix
	// ClientCertHeader, when set, names the header in which a trusted
	// proxy passes the client certificate it verified, as base64 DER (the
	// Caddyfile's X-Lintel-Client-Cert). The header is read only from
	// TrustedProxies; from anyone else it is ignored. A certificate is a
	// second factor bound to the device: its subject common name must be
	// the device's user name, or the request is refused (401). It cannot
	// replace the password, which the gateway needs to log in to the edge
	// as the device.
	ClientCertHeader string
	// ClientCAs verifies those certificates again (required with
	// ClientCertHeader).
	ClientCAs *x509.CertPool
	// RequireClientCert refuses requests without such a certificate.
	RequireClientCert bool
	// Now is the clock of command deadlines and rate limits. Nil means
	// time.Now.
	Now func() time.Time
	// Logger receives the gateway's logs. Nil discards.
	Logger *slog.Logger
}

// Stats is a snapshot of a [Gateway]'s counters.
type Stats struct {
	Sessions          int    // devices with an open NATS connection
	Requests          uint64 // HTTP requests handled
	Stored            uint64 // messages stored (acknowledged by the stream)
	Duplicates        uint64 // messages the stream dropped as duplicates
	Unauthorized      uint64 // 401 answers
	Forbidden         uint64 // 403 answers
	RateLimited       uint64 // 429 answers
	ClientErrors      uint64 // other 4xx answers
	ServerErrors      uint64 // 5xx answers
	CommandsDelivered uint64 // commands handed to HTTP devices
	CommandsExpired   uint64 // commands acked expired instead of handed over
}

// Gateway is the HTTP-to-NATS gateway of one edge: an [http.Handler] that
// lets devices which cannot use NATS publish, request and receive commands
// over HTTP, as themselves. Create it with [New]; stop it with
// [Gateway.Close]. Its methods are safe for concurrent use.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	mu      sync.Mutex
	devs    map[topic.Thing]*session
	limits  map[topic.Thing]*bucket
	closed  bool
	quit    chan struct{}
	wg      sync.WaitGroup
	counter struct {
		requests, stored, duplicates, unauthorized, forbidden, rateLimited,
		clientErrors, serverErrors, delivered, expired atomic.Uint64
	}
}

var _ http.Handler = (*Gateway)(nil)

// New returns the gateway of cfg. It does not connect: each device's
// connection is made at its first request. It returns an error wrapping
// [ErrInvalidConfig] when a required field is missing.
func New(cfg Config) (*Gateway, error) {
	switch {
	case cfg.Org == "" || cfg.Edge == "":
		return nil, fmt.Errorf("%w: Org and Edge are required", ErrInvalidConfig)
	case len(cfg.URLs) == 0:
		return nil, fmt.Errorf("%w: URLs is empty", ErrInvalidConfig)
	case cfg.Auth == nil:
		return nil, fmt.Errorf("%w: Auth is nil", ErrInvalidConfig)
	case cfg.ClientCertHeader != "" && cfg.ClientCAs == nil:
		return nil, fmt.Errorf("%w: ClientCertHeader without ClientCAs", ErrInvalidConfig)
	case cfg.RequireClientCert && cfg.ClientCertHeader == "":
		return nil, fmt.Errorf("%w: RequireClientCert without ClientCertHeader", ErrInvalidConfig)
	}
	if cfg.CommandLinger <= 0 {
		cfg.CommandLinger = DefaultCommandLinger
	}
	g := newShared(cfg)
	g.mux = http.NewServeMux()
	g.mux.HandleFunc("POST "+PathEvents, g.device(g.postEvents))
	g.mux.HandleFunc("POST "+PathRequests, g.device(g.postRequest))
	g.mux.HandleFunc("GET "+PathCommands, g.device(g.getCommands))
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		allow := map[string]string{PathEvents: http.MethodPost, PathRequests: http.MethodPost, PathCommands: http.MethodGet}[r.URL.Path]
		if allow != "" {
			w.Header().Set("Allow", allow)
			g.problem(w, newProblem(http.StatusMethodNotAllowed, SlugMethodNotAllowed, "method not allowed",
				fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, allow)))
			return
		}
		g.problem(w, newProblem(http.StatusNotFound, SlugNotFound, "not found",
			fmt.Sprintf("%s %s is not an endpoint of the gateway: POST %s, POST %s, GET %s", r.Method, r.URL.Path, PathEvents, PathRequests, PathCommands)))
	})
	g.wg.Go(g.janitor)
	return g, nil
}

// ServeHTTP serves the gateway's endpoints:
//
//   - POST /v1/events: CloudEvents in structured mode
//     (application/cloudevents+json), batch mode
//     (application/cloudevents-batch+json, a status per event) or binary
//     content mode (ce-* headers); answered once the edge's stream stored
//     them;
//   - POST /v1/requests: a request (type io.lintel.req…) in structured
//     mode, answered with the reply;
//   - GET /v1/commands: the device's commands, by long-poll (a JSON array;
//     ?wait=25s) or as Server-Sent Events (Accept: text/event-stream).
//
// Every request authenticates the device with HTTP Basic (its NATS user
// name and password); errors are RFC 9457 problem details.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.counter.requests.Add(1)
	g.mux.ServeHTTP(w, r)
}

// Stats returns a snapshot of the gateway's counters.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	n := len(g.devs)
	g.mu.Unlock()
	c := &g.counter
	return Stats{Sessions: n, Requests: c.requests.Load(), Stored: c.stored.Load(), Duplicates: c.duplicates.Load(),
		Unauthorized: c.unauthorized.Load(), Forbidden: c.forbidden.Load(), RateLimited: c.rateLimited.Load(),
		ClientErrors: c.clientErrors.Load(), ServerErrors: c.serverErrors.Load(),
		CommandsDelivered: c.delivered.Load(), CommandsExpired: c.expired.Load()}
}

// Close stops the gateway: it closes every device connection (requests in
// flight fail) and returns once they are closed. Later requests get 503.
// Close is idempotent and returns nil.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	close(g.quit)
	devs := g.devs
	g.devs = map[topic.Thing]*session{}
	g.mu.Unlock()
	for _, s := range devs {
		s.close()
	}
	g.wg.Wait()
	return nil
}

// NewServer returns an http.Server for h on addr with the limits a public
// listener needs: ReadHeaderTimeout and ReadTimeout against slow clients
// (slow-loris), MaxHeaderBytes, and an IdleTimeout. It has no
// WriteTimeout, since command long-polls and event streams outlive any
// fixed bound; the gateway bounds those itself.
func NewServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return srv
}

// deviceHandler is an endpoint's handler for an authenticated device.
type deviceHandler func(w http.ResponseWriter, r *http.Request, s *session)

// device wraps h with authentication, the rate limit and the device's
// session.
func (g *Gateway) device(h deviceHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, perms, p := g.authenticate(r)
		if p != nil {
			g.problem(w, p)
			return
		}
		if p := g.admit(t); p != nil {
			g.problem(w, p)
			return
		}
		s, err := g.session(r.Context(), t, perms, r)
		if err != nil {
			g.problem(w, sessionProblem(err))
			return
		}
		defer s.release()
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
		h(w, r, s)
	}
}

// authenticate checks the request's Basic credentials.
func (g *Gateway) authenticate(r *http.Request) (topic.Thing, authz.Permissions, *Problem) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return topic.Thing{}, authz.Permissions{}, newProblem(http.StatusUnauthorized, SlugUnauthorized, "authentication required",
			"HTTP Basic authentication with the device's NATS user name and password is required")
	}
	t, ok := g.deviceOf(user)
	if !ok {
		return topic.Thing{}, authz.Permissions{}, newProblem(http.StatusUnauthorized, SlugUnauthorized, "login refused",
			fmt.Sprintf("user %q is not a device of edge %s.%s", user, g.cfg.Org, g.cfg.Edge))
	}
	perms, err := g.cfg.Auth.VerifyPassword(user, pass, g.clientAddr(r))
	switch {
	case err == nil:
		if p := g.checkClientCert(r, user); p != nil {
			return t, perms, p
		}
		return t, perms, nil
	case errors.Is(err, authz.ErrLoginThrottled):
		p := newProblem(http.StatusTooManyRequests, SlugLoginThrottled, "login throttled", "too many failed logins; try again later")
		p.retryAfter = authz.DefaultFailureRefill
		return t, perms, p
	case errors.Is(err, authz.ErrLoginBusy):
		p := newProblem(http.StatusServiceUnavailable, SlugUnavailable, "busy", "password checks are busy; try again")
		p.retryAfter = time.Second
		return t, perms, p
	default:
		return t, perms, newProblem(http.StatusUnauthorized, SlugUnauthorized, "login refused", "wrong user name or password")
	}
}

// deviceOf returns the thing of a device user name of the gateway's edge.
func (g *Gateway) deviceOf(user string) (topic.Thing, bool) {
	parts := strings.Split(user, ".")
	if len(parts) != 4 {
		return topic.Thing{}, false
	}
	t := topic.Thing{Org: parts[0], Edge: parts[1], Type: parts[2], Code: parts[3]}
	if t.Org != g.cfg.Org || t.Edge != g.cfg.Edge || topic.IsReserved(t.Type) || t.Validate() != nil || authz.DeviceUser(t) != user {
		return topic.Thing{}, false
	}
	return t, true
}

// trustedPeer reports whether the request comes from a trusted proxy.
func (g *Gateway) trustedPeer(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	peer := ap.Addr().Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// checkClientCert checks the client certificate a trusted proxy passed,
// if the gateway reads one: it must verify against ClientCAs and name the
// device user as its common name.
func (g *Gateway) checkClientCert(r *http.Request, user string) *Problem {
	if g.cfg.ClientCertHeader == "" {
		return nil
	}
	v := ""
	if g.trustedPeer(r) {
		v = r.Header.Get(g.cfg.ClientCertHeader)
	}
	refuse := func(detail string) *Problem {
		p := newProblem(http.StatusUnauthorized, SlugUnauthorized, "client certificate refused", detail)
		p.Field = g.cfg.ClientCertHeader
		return p
	}
	if v == "" {
		if g.cfg.RequireClientCert {
			return refuse("a client certificate of the device is required")
		}
		return nil
	}
	der, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return refuse("not base64 DER: " + err.Error())
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return refuse(err.Error())
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: g.cfg.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: g.cfg.Now()}); err != nil {
		return refuse(err.Error())
	}
	if cert.Subject.CommonName != user {
		return refuse(fmt.Sprintf("the certificate is %q's, not %q's", cert.Subject.CommonName, user))
	}
	return nil
}

// clientAddr returns the address login failures are counted by: the
// peer's, or the client a trusted proxy names in X-Forwarded-For.
func (g *Gateway) clientAddr(r *http.Request) net.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	peer := ap.Addr().Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if !p.Contains(peer) {
			continue
		}
		xff := r.Header.Values("X-Forwarded-For")
		if len(xff) == 0 {
			break
		}
		hops := strings.Split(xff[len(xff)-1], ",")
		if a, err := netip.ParseAddr(strings.TrimSpace(hops[len(hops)-1])); err == nil {
			return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a.Unmap(), 0))
		}
		break
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(peer, ap.Port()))
}

// problem writes p and counts it.
func (g *Gateway) problem(w http.ResponseWriter, p *Problem) {
	g.count(p.Status)
	writeProblem(w, p)
}

func (g *Gateway) count(status int) {
	c := &g.counter
	switch {
	case status == http.StatusUnauthorized:
		c.unauthorized.Add(1)
	case status == http.StatusForbidden:
		c.forbidden.Add(1)
	case status == http.StatusTooManyRequests:
		c.rateLimited.Add(1)
	case status >= 500:
		c.serverErrors.Add(1)
	case status >= 400:
		c.clientErrors.Add(1)
	}
}

// janitor closes idle sessions and forgets full rate buckets.
func (g *Gateway) janitor() {
	tick := time.NewTicker(max(g.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-g.quit:
			return
		case <-tick.C:
		}
		now := g.cfg.Now()
		var idle []*session
		g.mu.Lock()
		for t, s := range g.devs {
			if s.idleSince(now) >= g.cfg.IdleTimeout {
				delete(g.devs, t)
				idle = append(idle, s)
			}
		}
		for t, b := range g.limits {
			if b.full(now, g.cfg.Rate, g.cfg.Burst) {
				delete(g.limits, t)
			}
		}
		g.mu.Unlock()
		for _, s := range idle {
			s.close()
		}
	}
}

// opCtx bounds an operation on the edge by the request and PublishTimeout.
func (g *Gateway) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.cfg.PublishTimeout)
}
