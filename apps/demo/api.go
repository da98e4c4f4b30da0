package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lintel-io/lintel/central/api"
)

// apiTokenFile is the file, in the demo's temporary directory, holding the
// admin API token the console and the API take.
const apiTokenFile = "api-admin.token"

// startAPI starts central's API and console on a loopback port, with an
// admin token for the console's token login and for API clients.
func (l *live) startAPI(ctx context.Context) error {
	tokenFile := filepath.Join(l.dir, apiTokenFile)
	srv, err := api.Start(ctx, api.Config{Central: l.central, BootstrapTokenFile: tokenFile, TokenLogin: true,
		Logger: l.log.With("component", "api")})
	if err != nil {
		return fmt.Errorf("start the API: %w", err)
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("the API's admin token: %w", err)
	}
	ln, err := net.Listen("tcp", loopback+":0")
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("the API's listener: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(l.log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.fail(fmt.Errorf("the API's listener: %w", err))
		}
	}()
	l.onClose(func() {
		_ = srv.Close() // ends the live streams first
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	})
	l.apiURL = "http://" + ln.Addr().String()
	l.apiToken = strings.TrimSpace(string(token))
	return nil
}
