// Command gateway runs Lintel's HTTP gateway for one edge: devices that
// cannot use NATS publish events, send requests and receive commands over
// HTTP, each as itself, through connections to the edge's nats-server
// logged in as the device (see package gateway and docs/gateway.md).
//
// With "mode": "central" it runs the central gateway of an org instead:
// the devices the inventory marks "central_gateway" post their events
// over HTTP, and the gateway stores them in the org's gateway stream at
// central, connected as its own service user (gateway.Central).
//
//	gateway -config /usr/local/etc/lintel/gateway.json
//	gateway -config gateway.json -check
//
// It serves plain HTTP, meant to sit behind a TLS-terminating proxy
// (apps/deploy/Caddyfile). It logs JSON to stderr. SIGTERM or SIGINT stops
// it cleanly; SIGHUP reloads the inventory and credential state (device
// passwords) and the log level. It serves /healthz, /readyz and /metrics
// on its admin listener. Exit codes: 0 after a clean stop or a passed
// -check, 1 when the gateway failed while running, 2 for bad usage or
// configuration, 3 when it could not start.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintel-io/lintel/apps/internal/admin"
	"github.com/lintel-io/lintel/apps/internal/appmain"
	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/gateway"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	path, check, ok := appmain.Flags("gateway", "Runs Lintel's HTTP gateway for one edge.", "/usr/local/etc/lintel/gateway.json", args, stderr)
	if !ok {
		return appmain.ExitUsage
	}
	cfg, err := config.LoadGateway(path)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return appmain.ExitUsage
	}
	inv, st, err := loadInputs(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return appmain.ExitUsage
	}
	if check {
		fmt.Fprintf(stderr, "gateway: configuration %s is valid\n", path)
		return appmain.ExitOK
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.LevelValue())
	log := cfg.Log.Logger(stderr, level).With("org", cfg.Org, "edge", cfg.Edge)
	if cfg.Central() {
		log = cfg.Log.Logger(stderr, level).With("org", cfg.Org, "mode", cfg.Mode)
	}

	var auth *authz.EdgeAuthenticator
	if cfg.Central() {
		auth, err = authz.NewCentralGatewayAuthenticator(inv, st, cfg.Org, authz.EdgeAuthConfig{Logger: log})
	} else {
		auth, err = authz.NewEdgeAuthenticator(inv, st, cfg.Org, cfg.Edge, authz.EdgeAuthConfig{Logger: log})
	}
	if err != nil {
		log.Error("credentials", "err", err)
		return appmain.ExitUsage
	}
	defer auth.Close()
	var natsOpts []nats.Option
	if cfg.EdgeCAFile != "" {
		natsOpts = append(natsOpts, nats.RootCAs(cfg.EdgeCAFile))
	}
	if cfg.CentralCAFile != "" {
		natsOpts = append(natsOpts, nats.RootCAs(cfg.CentralCAFile))
	}
	gcfg := gateway.Config{
		Org: cfg.Org, Edge: cfg.Edge, URLs: cfg.EdgeURLs, Auth: auth, NATSOptions: natsOpts,
		MaxBodyBytes: cfg.MaxBodyBytes, Rate: cfg.Rate, Burst: cfg.Burst, TrustedProxies: cfg.Proxies(), Logger: log,
		ClientCertHeader: cfg.ClientCertHeader, RequireClientCert: cfg.RequireClientCert,
	}
	if cfg.ClientCertHeader != "" {
		pem, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			log.Error("client CA", "err", err)
			return appmain.ExitUsage
		}
		gcfg.ClientCAs = x509.NewCertPool()
		if !gcfg.ClientCAs.AppendCertsFromPEM(pem) {
			log.Error("client CA: no PEM certificate", "file", cfg.ClientCAFile)
			return appmain.ExitUsage
		}
	}
	var gw handler
	if cfg.Central() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := gateway.ConnectCentral(cctx, gateway.CentralConfig{
			Org: cfg.Org, URLs: cfg.CentralURLs, Service: cfg.Service, Password: cfg.Password(), Auth: auth,
			NATSOptions: natsOpts, MaxBodyBytes: gcfg.MaxBodyBytes, Rate: gcfg.Rate, Burst: gcfg.Burst,
			TrustedProxies: gcfg.TrustedProxies, ClientCertHeader: gcfg.ClientCertHeader, ClientCAs: gcfg.ClientCAs,
			RequireClientCert: gcfg.RequireClientCert, Logger: log,
		})
		cancel()
		switch {
		case errors.Is(err, gateway.ErrInvalidConfig):
			log.Error("gateway", "err", err)
			return appmain.ExitUsage
		case err != nil:
			log.Error("connect to central", "err", err)
			return appmain.ExitNoStart
		}
		gw = c
	} else {
		g, err := gateway.New(gcfg)
		if err != nil {
			log.Error("gateway", "err", err)
			return appmain.ExitUsage
		}
		gw = g
	}
	defer gw.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("listen", "err", err)
		return appmain.ExitNoStart
	}
	srv := gateway.NewServer(cfg.Listen, gw, log)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve", "err", err)
		}
	}()
	var adm *admin.Server
	if cfg.Admin != "off" {
		reg := prometheus.NewRegistry()
		registerMetrics(reg, gw, auth)
		if adm, err = admin.Start(cfg.Admin, func(ctx context.Context) (any, error) { return ready(ctx, cfg, gw) }, reg, log); err != nil {
			log.Error("admin listener", "err", err)
			_ = srv.Close()
			<-served
			return appmain.ExitNoStart
		}
		defer adm.Stop()
	}
	adminAddr := "off"
	if adm != nil {
		adminAddr = adm.Addr()
	}
	log.Info("gateway started", "listen", ln.Addr().String(), "admin", adminAddr)

	code := appmain.ExitOK
	if appmain.Serve(served, func() { reload(auth, path, level, log) }, log) {
		code = appmain.ExitFailed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Long-polls and event streams end when the gateway closes; the
	// server's Shutdown waits for the rest.
	_ = gw.Close()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("stop", "err", err)
		_ = srv.Close()
	}
	<-served
	log.Info("gateway stopped")
	return code
}

// handler is the gateway of either mode: *gateway.Gateway or
// *gateway.Central.
type handler interface {
	http.Handler
	Stats() gateway.Stats
	Close() error
}

func loadInputs(cfg *config.Gateway) (*authz.Inventory, *authz.State, error) {
	inv, err := config.LoadInventory(cfg.Inventory)
	if err != nil {
		return nil, nil, err
	}
	st, err := authz.LoadState(cfg.State)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: state: %w", config.ErrInvalid, err)
	}
	return inv, st, nil
}

// ready reports the gateway's counters, and fails while the first client
// URL of the edge (or of central, in central mode) does not accept
// connections.
func ready(ctx context.Context, cfg *config.Gateway, gw handler) (any, error) {
	u, err := url.Parse(cfg.URLs()[0])
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return gw.Stats(), fmt.Errorf("%s %s unreachable: %w", cfg.Mode, u.Host, err)
	}
	_ = c.Close()
	return gw.Stats(), nil
}

// reload applies a changed inventory, state and log level; a
// configuration that does not load is logged and ignored.
func reload(auth *authz.EdgeAuthenticator, path string, level *slog.LevelVar, log *slog.Logger) {
	cfg, err := config.LoadGateway(path)
	if err == nil {
		var inv *authz.Inventory
		var st *authz.State
		if inv, st, err = loadInputs(cfg); err == nil {
			err = auth.Update(inv, st)
		}
	}
	if err != nil {
		log.Error("reload refused; running on as before", "err", err)
		return
	}
	level.Set(cfg.Log.LevelValue())
	log.Info("reloaded")
}

// registerMetrics exports the gateway's and its password checks' counters.
func registerMetrics(reg *prometheus.Registry, gw handler, auth *authz.EdgeAuthenticator) {
	counter := func(name, help string, f func(gateway.Stats) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(gw.Stats())) }))
	}
	counter("lintel_gateway_requests_total", "HTTP requests handled.", func(s gateway.Stats) uint64 { return s.Requests })
	counter("lintel_gateway_stored_total", "Messages stored in the edge's streams.", func(s gateway.Stats) uint64 { return s.Stored })
	counter("lintel_gateway_duplicates_total", "Messages the stream dropped as retries.", func(s gateway.Stats) uint64 { return s.Duplicates })
	counter("lintel_gateway_unauthorized_total", "401 answers.", func(s gateway.Stats) uint64 { return s.Unauthorized })
	counter("lintel_gateway_forbidden_total", "403 answers.", func(s gateway.Stats) uint64 { return s.Forbidden })
	counter("lintel_gateway_rate_limited_total", "429 answers.", func(s gateway.Stats) uint64 { return s.RateLimited })
	counter("lintel_gateway_client_errors_total", "Other 4xx answers.", func(s gateway.Stats) uint64 { return s.ClientErrors })
	counter("lintel_gateway_server_errors_total", "5xx answers.", func(s gateway.Stats) uint64 { return s.ServerErrors })
	counter("lintel_gateway_commands_delivered_total", "Commands handed to HTTP devices.", func(s gateway.Stats) uint64 { return s.CommandsDelivered })
	counter("lintel_gateway_commands_expired_total", "Commands acked expired instead of handed over.", func(s gateway.Stats) uint64 { return s.CommandsExpired })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_gateway_sessions", Help: "Devices with an open connection to the edge."},
		func() float64 { return float64(gw.Stats().Sessions) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lintel_gateway_bcrypts_total", Help: "Password checks that ran bcrypt."},
		func() float64 { return float64(auth.Stats().Bcrypts) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lintel_gateway_logins_throttled_total", Help: "Logins refused without a password check."},
		func() float64 { return float64(auth.Stats().Throttled) }))
}
