// Package admin serves the apps' admin HTTP endpoints: /healthz (the
// process runs), /readyz (JSON detail of each check; 503 when one fails)
// and /metrics (Prometheus).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Ready returns the readiness detail: a JSON-encodable value and an error
// when not ready.
type Ready func(ctx context.Context) (detail any, err error)

// Server is a running admin listener.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on addr and serves the endpoints: ready for /readyz, reg
// for /metrics (the Go and process collectors are added).
func Start(addr string, ready Ready, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		detail, err := ready(ctx)
		body := map[string]any{"status": "ready", "detail": detail}
		code := http.StatusOK
		if err != nil {
			body["status"], body["error"], code = "not ready", err.Error(), http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener failed", "err", err)
		}
	}()
	log.Info("admin listener", "addr", ln.Addr().String())
	return s, nil
}

// Addr returns the listener's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stop stops the listener, waiting up to 5 s for requests in flight.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

// Cached returns a function that calls read at most once a second (with a
// 2 s deadline) and otherwise returns its last result; a failed read keeps
// the last good one. Metrics read through it, so that one scrape of many
// gauges costs one status read.
func Cached[T any](read func(context.Context) (T, error)) func() T {
	var mu sync.Mutex
	var last time.Time
	var v T
	return func() T {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) > time.Second {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if got, err := read(ctx); err == nil {
				v = got
			}
			cancel()
			last = time.Now()
		}
		return v
	}
}
