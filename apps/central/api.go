package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/central/api"
)

// apiServer is central's HTTP API as the app runs it.
type apiServer struct {
	srv  *api.Server
	http *http.Server
	addr string // the listener's address
	done chan struct{}
}

// startAPI starts the API of the configuration's api section on c, with
// its bucket and stream in replicas copies (a clustered central's), and
// serves it on its listener.
func startAPI(ctx context.Context, cfg *config.API, replicas int, c *central.Central, log *slog.Logger) (*apiServer, error) {
	ac := api.Config{Central: c, Org: cfg.Org, BootstrapTokenFile: cfg.BootstrapTokenFile, TokenLogin: cfg.TokenLogin, Replicas: replicas,
		StaleAfter: time.Duration(cfg.StaleAfter), TrustedProxies: cfg.Proxies(), OperatorAuditMaxAge: time.Duration(cfg.OperatorAuditMaxAge),
		Logger: log.With("component", "api")}
	if o := cfg.OIDC; o != nil {
		ac.OIDC = &api.OIDCConfig{Issuer: o.Issuer, ClientID: o.ClientID, Audience: o.Audience, RedirectURL: o.RedirectURL,
			RoleClaim: o.RoleClaim}
		if !o.ClientSecret().IsZero() {
			ac.OIDC.ClientSecret = o.ClientSecret().Reveal()
		}
		if len(o.Roles) > 0 {
			ac.OIDC.Roles = map[string]api.Role{}
			for k, v := range o.Roles {
				r, err := api.ParseRole(v)
				if err != nil {
					return nil, fmt.Errorf("api.oidc.roles.%s: %w", k, err)
				}
				ac.OIDC.Roles[k] = r
			}
		}
	}
	srv, err := api.Start(ctx, ac)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("api listener: %w", err)
	}
	a := &apiServer{srv: srv, addr: ln.Addr().String(), done: make(chan struct{}),
		http: &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	if cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("api tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	go func() {
		defer close(a.done)
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api listener", "err", err)
		}
	}()
	log.Info("API listening", "addr", ln.Addr().String(), "org", srv.Org(), "oidc", cfg.OIDC != nil)
	return a, nil
}

// stop ends the API: requests in flight get a few seconds to finish.
func (a *apiServer) stop() {
	_ = a.srv.Close() // ends the live event streams first
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.http.Shutdown(ctx)
	<-a.done
}
