package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/topic"
)

// Defaults of [Config].
const (
	DefaultTimeout    = 10 * time.Second
	DefaultStaleAfter = 2 * time.Minute
	DefaultMaxWait    = time.Minute
	DefaultSessionTTL = 8 * time.Hour
	// DefaultOperatorAuditMaxAge is how long the operator audit log keeps
	// an entry: 400 days, a year and a margin.
	DefaultOperatorAuditMaxAge = 400 * 24 * time.Hour
	// PathPrefix is where every route of the API is served.
	PathPrefix = "/api/v1"
)

// Config configures a [Server]. Central is required; the zero value of
// every other field means its default.
type Config struct {
	// Central is the running central node the API serves.
	Central *central.Central
	// Org is the org the API serves; empty means the inventory's only
	// org (an inventory with several needs it set).
	Org string
	// OIDC, when set, accepts bearer JWTs of an OpenID Connect provider
	// and enables the console's login. Without it only API tokens
	// authenticate.
	OIDC *OIDCConfig
	// BootstrapTokenFile, when set, names a file holding an admin API
	// token: created with a new token at start when it does not exist
	// (mode 0600), registered again when the token store lacks it. It is
	// how a first administrator, or the demo, gets in.
	BootstrapTokenFile string
	// TokenLogin lets the console log in with an API token (POST
	// /api/v1/auth/token), for a deployment without an OIDC provider such
	// as the demo. Default false.
	TokenLogin bool
	// TrustedProxies are the addresses of the reverse proxies (such as
	// Caddy) whose X-Forwarded-For header names the client: the address
	// failed logins are throttled by. Requests from other addresses are
	// judged by their own address, and their header is ignored. Nil
	// trusts no proxy.
	TrustedProxies []netip.Prefix
	// OperatorAuditMaxAge is how long the operator audit log
	// ([OperatorAuditStream]) keeps an entry; DefaultOperatorAuditMaxAge
	// when zero. It applies to an existing stream too.
	OperatorAuditMaxAge time.Duration
	// Replicas is how many copies of the API's buckets and stream a
	// clustered central keeps; zero means one.
	Replicas int
	// StaleAfter is how long an online thing may stay silent before it is
	// reported stale; DefaultStaleAfter when zero.
	StaleAfter time.Duration
	// Timeout bounds each request's work on central (a wait excepted);
	// DefaultTimeout when zero. MaxWait bounds how long a request may wait
	// for a command's outcome; DefaultMaxWait when zero.
	Timeout, MaxWait time.Duration
	// Logger receives the API's log; nil discards.
	Logger *slog.Logger
}

// Server is central's HTTP API for one org. Start one with [Start] and
// serve [Server.Handler]; stop it with [Server.Close]. Its methods are
// safe for concurrent use.
type Server struct {
	cfg       Config
	org       string
	log       *slog.Logger
	sec       *authz.SecurityLog // security events, at most one line a second each
	central   *central.Central
	js        jetstream.JetStream
	tokens    *tokenStore
	sess      *sessionStore // the console's sessions; nil without sessions
	oplog     *opLog
	oidc      *oidcAuth
	routes    []route
	handler   http.Handler
	failMu    sync.Mutex
	failures  map[string]*rate.Limiter // failed logins by client address
	closeOnce sync.Once
	closed    chan struct{} // closed by Close: ends the live event streams
	live      liveHub       // the live event streams' shared consumer
	// sessionKey signs the console's session and login cookies: the
	// org's, from SessionKeyBucket, the same on every node and across
	// restarts.
	sessionKey []byte
}

// Start prepares the API of cfg.Org on cfg.Central, once central has
// started the org (a clustered central waits for a quorum): the token
// bucket and the operator audit stream on central (created when missing),
// the OIDC provider's discovery (when configured) and the bootstrap token.
// ctx bounds the start, the wait included. It returns an error wrapping [ErrInvalidConfig], or
// the error met.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Central == nil {
		return nil, fmt.Errorf("%w: Central is required", ErrInvalidConfig)
	}
	inv := cfg.Central.Inventory()
	org := cfg.Org
	if org == "" {
		if len(inv.Orgs) != 1 {
			return nil, fmt.Errorf("%w: Org is required: the inventory lists %d orgs", ErrInvalidConfig, len(inv.Orgs))
		}
		org = inv.Orgs[0].Code
	}
	if !slices.ContainsFunc(inv.Orgs, func(o authz.Org) bool { return o.Code == org }) {
		return nil, fmt.Errorf("%w: org %q is not in the inventory", ErrInvalidConfig, org)
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// A clustered central starts its orgs once JetStream has a quorum.
	js := cfg.Central.JetStream(org)
	for js == nil {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("api: org %s is not started on central: %w", org, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		js = cfg.Central.JetStream(org)
	}
	if cfg.OperatorAuditMaxAge < 0 {
		return nil, fmt.Errorf("%w: OperatorAuditMaxAge %v is negative", ErrInvalidConfig, cfg.OperatorAuditMaxAge)
	}
	if cfg.OperatorAuditMaxAge == 0 {
		cfg.OperatorAuditMaxAge = DefaultOperatorAuditMaxAge
	}
	s := &Server{cfg: cfg, org: org, log: cfg.Logger.With("org", org), central: cfg.Central, js: js,
		closed: make(chan struct{}), failures: map[string]*rate.Limiter{}}
	s.sec = authz.NewSecurityLog(s.log, time.Second)
	var err error
	if s.tokens, err = openTokenStore(ctx, js, org, cfg.Replicas); err != nil {
		return nil, err
	}
	if s.oplog, err = openOpLog(ctx, js, org, cfg.Replicas, cfg.OperatorAuditMaxAge); err != nil {
		return nil, err
	}
	if cfg.OIDC != nil {
		if s.oidc, err = newOIDCAuth(ctx, *cfg.OIDC); err != nil {
			return nil, err
		}
	}
	if s.sessions() {
		if s.sess, s.sessionKey, err = openSessionStore(ctx, js, org, cfg.Replicas, s.sessionTTL()); err != nil {
			return nil, err
		}
	}
	if cfg.BootstrapTokenFile != "" {
		if err := s.tokens.bootstrap(ctx, cfg.BootstrapTokenFile); err != nil {
			return nil, err
		}
	}
	s.routes = s.routeTable()
	s.handler = s.buildMux()
	s.log.Info("API ready", "routes", len(s.routes), "oidc", cfg.OIDC != nil)
	return s, nil
}

// Handler returns the API's HTTP handler, which serves every route under
// [PathPrefix].
func (s *Server) Handler() http.Handler { return s.handler }

// Close ends the live event streams being served (they would keep an
// HTTP server's graceful shutdown waiting); other requests in flight end
// with the HTTP server that serves them. Call it before shutting that
// server down. It is idempotent and returns nil.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// Org returns the org the server serves.
func (s *Server) Org() string { return s.org }

// hub returns the org's hub, or a 503 problem while central has not
// started the org.
func (s *Server) hub() (*edgekit.Hub, error) {
	if h := s.central.Hub(s.org); h != nil {
		return h, nil
	}
	return nil, problemf(http.StatusServiceUnavailable, slugUnavailable, "", "org %s is not started on central", s.org)
}

// eventStream returns the org's event stream at central, or the 503
// problem of [Server.hub].
func (s *Server) eventStream(ctx context.Context) (jetstream.Stream, error) {
	hub, err := s.hub()
	if err != nil {
		return nil, err
	}
	return s.js.Stream(ctx, hub.EventStream())
}

// manager returns the org's credential manager, or a 503 problem.
func (s *Server) manager() (*access.Manager, error) {
	if m := s.central.Manager(s.org); m != nil {
		return m, nil
	}
	return nil, problemf(http.StatusServiceUnavailable, slugUnavailable, "", "org %s is not started on central", s.org)
}

// edges returns the org's edges in the inventory, sorted.
func (s *Server) edges() []string {
	var out []string
	for _, e := range s.central.Inventory().Edges {
		if e.Org == s.org {
			out = append(out, e.Code)
		}
	}
	slices.Sort(out)
	return out
}

// edge checks that edge is an edge of the org in the inventory; otherwise
// it returns a 404 problem naming it.
func (s *Server) edge(edge string) error {
	if err := topic.ValidateToken(topic.PartEdge, edge); err != nil {
		return problemf(http.StatusBadRequest, slugInvalid, "edge", "edge %q: %v", edge, err)
	}
	if !slices.Contains(s.edges(), edge) {
		return problemf(http.StatusNotFound, slugNotFound, "edge", "edge %q is not an edge of org %s", edge, s.org)
	}
	return nil
}

// edgeFilter returns the request's optional query parameter edge, checked
// as [Server.edge] checks it; "" stands for every edge.
func (s *Server) edgeFilter(c *call) (string, error) {
	edge := c.r.URL.Query().Get("edge")
	if edge == "" {
		return "", nil
	}
	return edge, s.edge(edge)
}

// things returns the org's things in the inventory, of edge only when it
// is not empty.
func (s *Server) things(edge string) []topic.Thing {
	var out []topic.Thing
	for _, t := range s.central.Inventory().Things {
		if t.Org == s.org && (edge == "" || t.Edge == edge) {
			out = append(out, t.Thing)
		}
	}
	return out
}

// call returns ctx bounded by the configured timeout.
func (s *Server) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}
