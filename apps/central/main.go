// Command central runs one node of Lintel's central system (package
// central) from a configuration file:
//
//	central -config /usr/local/etc/lintel/central.json
//	central -config central.json -check
//
// With an "api" section it also serves central's HTTP API and console
// (package central/api, docs/api.md). It logs JSON to stderr. SIGTERM or
// SIGINT stops it cleanly (the ingest commits what it read); SIGHUP
// reloads the inventory, the credential state and the log level without
// dropping linked edges. Exit codes: 0
// after a clean stop or a passed -check, 1 when stopping failed or central
// failed while running, 2 for bad usage or configuration, 3 when central
// could not start.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintel-io/lintel/apps/internal/admin"
	"github.com/lintel-io/lintel/apps/internal/appmain"
	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/storage"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	path, check, ok := appmain.Flags("central", "Runs one node of Lintel's central system.", "/usr/local/etc/lintel/central.json", args, stderr)
	if !ok {
		return appmain.ExitUsage
	}
	cfg, err := config.LoadCentral(path)
	if err != nil {
		fmt.Fprintf(stderr, "central: %v\n", err)
		return appmain.ExitUsage
	}
	in, err := loadInputs(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "central: %v\n", err)
		return appmain.ExitUsage
	}
	if check {
		fmt.Fprintf(stderr, "central: configuration %s is valid\n", path)
		return appmain.ExitOK
	}
	level := new(slog.LevelVar)
	log := cfg.Log.Logger(stderr, level)

	ctx, cancel := context.WithTimeout(context.Background(), central.DefaultStartTimeout)
	defer cancel()
	var pool *pgxpool.Pool
	if cfg.Database != nil {
		if pool, err = pgxpool.New(ctx, cfg.Database.URL()); err != nil {
			log.Error("database", "err", err)
			return appmain.ExitNoStart
		}
		defer pool.Close()
	}
	if cfg.Database == nil {
		log.Warn("no database: history is kept in central's event stream only, within these limits",
			"max_age", time.Duration(cfg.History.MaxAge).String(), "max_bytes", cfg.History.MaxBytes)
	}
	host, port := config.SplitHostPort(cfg.Listen)
	leafHost, leafPort := config.SplitHostPort(cfg.LeafListen)
	render := authz.RenderOptions{
		ServerName: cfg.Name, Host: host, Port: port, LeafHost: leafHost, LeafPort: leafPort, StoreDir: cfg.StoreDir,
	}
	render.TLS = cfg.TLS.Files()
	render.LeafTLS = cfg.LeafTLS.Files()
	render.Cluster = cfg.Cluster.Options()
	replicas := 0
	if cfg.Cluster != nil {
		replicas = cfg.Cluster.Replicas
	}
	var maint *storage.MaintenanceConfig
	if cfg.Database != nil {
		maint = cfg.Database.Maintenance.Config(cfg.Database.Retention)
	}
	c, err := central.Start(ctx, central.Config{
		Inventory: in.inv, State: in.st, Orgs: in.orgs, Render: render, Database: pool, Maintenance: maint, Logger: log, Replicas: replicas,
		EventStream: func(s *jetstream.StreamConfig) {
			s.MaxAge, s.MaxBytes = time.Duration(cfg.History.MaxAge), cfg.History.MaxBytes
		},
	})
	if err != nil {
		log.Error("central did not start", "err", err)
		return appmain.ExitNoStart
	}
	var adm *admin.Server
	if cfg.Admin != "off" {
		reg := prometheus.NewRegistry()
		registerMetrics(reg, c)
		ready := func(ctx context.Context) (any, error) {
			st := c.Status(ctx)
			return st, st.Ready()
		}
		if adm, err = admin.Start(cfg.Admin, ready, reg, log); err != nil {
			log.Error("admin listener", "err", err)
			c.Stop()
			return appmain.ExitNoStart
		}
	}

	var web *apiServer
	if cfg.API != nil {
		if web, err = startAPI(ctx, cfg.API, replicas, c, log); err != nil {
			log.Error("API", "err", err)
			if adm != nil {
				adm.Stop()
			}
			c.Stop()
			return appmain.ExitNoStart
		}
	}

	code := appmain.ExitOK
	if appmain.Serve(c.Done(), func() { reload(c, path, level, log) }, log) {
		code = appmain.ExitFailed
	}
	if web != nil {
		web.stop()
	}
	if adm != nil {
		adm.Stop()
	}
	if err := c.Close(); err != nil {
		log.Error("stop", "err", err)
		return appmain.ExitFailed
	}
	return code
}

// inputs are what the configuration's files hold.
type inputs struct {
	inv  *authz.Inventory
	st   *authz.State
	orgs map[string]central.OrgSecrets
}

// loadInputs reads the inventory, the state and each org's secrets.
func loadInputs(cfg *config.Central) (*inputs, error) {
	inv, err := config.LoadInventory(cfg.Inventory)
	if err != nil {
		return nil, err
	}
	st, err := authz.LoadState(cfg.State)
	if err != nil {
		return nil, fmt.Errorf("%w: state: %w", config.ErrInvalid, err)
	}
	in := &inputs{inv: inv, st: st, orgs: make(map[string]central.OrgSecrets)}
	for _, o := range inv.Orgs {
		svc, err := config.CentralService(inv, o.Code)
		if err != nil {
			return nil, err
		}
		pw, err := config.ReadSecret(config.SecretPath(cfg.Secrets, config.CentralPasswordFile(authz.ServiceUser(o.Code, svc))))
		if err != nil {
			return nil, err
		}
		cmd, err := config.ReadSecret(config.SecretPath(cfg.Secrets, config.CentralCommandSeed(o.Code)))
		if err != nil {
			return nil, err
		}
		hk, err := access.ReadHashKey(config.SecretPath(cfg.Secrets, config.CentralHashKey(o.Code)))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
		}
		in.orgs[o.Code] = central.OrgSecrets{Service: svc, Password: pw, CommandKey: cmd, HashKey: hk}
	}
	return in, nil
}

// reload applies a changed configuration file's inventory, state and log
// level; a configuration that does not load is logged and ignored.
func reload(c *central.Central, path string, level *slog.LevelVar, log *slog.Logger) {
	cfg, err := config.LoadCentral(path)
	if err == nil {
		var in *inputs
		if in, err = loadInputs(cfg); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), central.DefaultTimeout)
			err = c.Update(ctx, in.inv, in.st)
			cancel()
		}
	}
	if err != nil {
		log.Error("reload refused; running on as before", "err", err)
		return
	}
	level.Set(cfg.Log.LevelValue())
	log.Info("reloaded")
}
