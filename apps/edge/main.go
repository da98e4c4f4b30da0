// Command edge runs Lintel's edge at one site from a configuration file:
// the edge node (embedded nats-server, leaf link to central, JetStream in
// the edge's domain), the access service, the rules engine and, when
// configured, the MQTT listener.
//
//	edge -config /usr/local/etc/lintel/edge.json
//	edge -config edge.json -check
//
// It starts and keeps running without central. It logs JSON to stderr.
// SIGTERM or SIGINT stops it cleanly (nothing a device was told is stored
// is lost); SIGHUP reloads the inventory and credential state (device
// logins) and the log level. Exit codes: 0 after a clean stop or a passed
// -check, 1 when stopping failed or the edge failed while running, 2 for
// bad usage or configuration, 3 when the edge could not start.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintel-io/lintel/apps/internal/admin"
	"github.com/lintel-io/lintel/apps/internal/appmain"
	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/edgekit/rules"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	path, check, ok := appmain.Flags("edge", "Runs Lintel's edge at one site.", "/usr/local/etc/lintel/edge.json", args, stderr)
	if !ok {
		return appmain.ExitUsage
	}
	cfg, err := config.LoadEdge(path)
	if err != nil {
		fmt.Fprintf(stderr, "edge: %v\n", err)
		return appmain.ExitUsage
	}
	in, err := loadInputs(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "edge: %v\n", err)
		return appmain.ExitUsage
	}
	if check {
		fmt.Fprintf(stderr, "edge: configuration %s is valid\n", path)
		return appmain.ExitOK
	}
	level := new(slog.LevelVar)
	// The libraries (node, access service, rules engine) tag their own
	// records with org and edge; the binary's own are tagged here.
	base := cfg.Log.Logger(stderr, level)
	log := base.With("org", cfg.Org, "edge", cfg.Edge)

	host, port := config.SplitHostPort(cfg.Listen)
	render := authz.RenderOptions{
		ServerName: "lintel-edge-" + cfg.Org + "-" + cfg.Edge, Host: host, Port: port, StoreDir: cfg.StoreDir,
		HubURLs: cfg.HubURLs, ConfigDir: cfg.Secrets, SeedFile: config.EdgeLeafSeed,
	}
	render.TLS = cfg.TLS.Files()
	render.HubTLS = cfg.HubTLS.Files()
	ncfg := edgekit.NodeConfig{
		Org: cfg.Org, Edge: cfg.Edge, Inventory: in.inv, State: in.st, Render: render,
		CommandKey: in.commandKey, Logger: base,
	}
	if cfg.MQTTListen != "" {
		h, p := config.SplitHostPort(cfg.MQTTListen)
		ncfg.MQTT = edgekit.MQTTConfig{Enabled: true, Host: h, Port: p}
	}
	ctx, cancel := context.WithTimeout(context.Background(), edgekit.DefaultStartTimeout)
	defer cancel()
	node, err := edgekit.Start(ctx, ncfg)
	if err != nil {
		log.Error("edge did not start", "err", err)
		return appmain.ExitNoStart
	}
	stops := []func(){node.Stop}
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	reg := prometheus.NewRegistry()
	decisions := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "lintel_access_decision_seconds", Help: "Time from an access request's arrival to its answer, by outcome.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
	}, []string{"outcome"})
	reg.MustRegister(decisions)
	var svc *access.Service
	if *cfg.Access {
		if svc, err = access.StartService(ctx, node, access.ServiceConfig{
			HashKey: in.hashKey, AuditKey: in.auditKey, Inventory: in.inv, Logger: base,
			ObserveDecision: func(granted bool, d time.Duration) {
				outcome := "denied"
				if granted {
					outcome = "granted"
				}
				decisions.WithLabelValues(outcome).Observe(d.Seconds())
			},
		}); err != nil {
			log.Error("access service did not start", "err", err)
			stopAll()
			return appmain.ExitNoStart
		}
		stops = append(stops, svc.Stop)
	}
	if *cfg.Rules {
		stop, err := startRules(node, base, log)
		if err != nil {
			log.Error("rules engine did not start", "err", err)
			stopAll()
			return appmain.ExitNoStart
		}
		stops = append(stops, stop)
	}
	var adm *admin.Server
	if cfg.Admin != "off" {
		registerMetrics(reg, node, svc, log)
		ready := func(ctx context.Context) (any, error) {
			st, err := node.Status(ctx)
			if err != nil {
				return nil, err
			}
			// An edge is ready without central: the link is reported, not required.
			return st, nil
		}
		if adm, err = admin.Start(cfg.Admin, ready, reg, log); err != nil {
			log.Error("admin listener", "err", err)
			stopAll()
			return appmain.ExitNoStart
		}
		stops = append(stops, adm.Stop)
	}

	code := appmain.ExitOK
	if appmain.Serve(node.Done(), func() { reload(node, path, level, log) }, log) {
		code = appmain.ExitFailed
	}
	stops = stops[1:] // the node last, after what runs on it
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	if err := node.Close(); err != nil {
		log.Error("stop", "err", err)
		return appmain.ExitFailed
	}
	log.Info("edge stopped")
	return code
}

// startRules starts the rules engine on node, with the rule document
// watched in the edge's mirror of its credential bucket; the returned
// function stops both. The engine logs to base; what the watch refuses
// goes to log.
func startRules(node *edgekit.Node, base, log *slog.Logger) (func(), error) {
	runCtx, stop := context.WithCancel(context.Background())
	engine, err := rules.Start(runCtx, rules.Config{Org: node.Names().Org, Edge: node.Names().Edge, Conn: node.Conn(),
		JetStream: node.JetStream(), SignCommand: node.SignCommand, Logger: base}, nil)
	if err != nil {
		stop()
		return nil, err
	}
	kv, err := node.JetStream().KeyValue(runCtx, node.Names().CredentialBucket)
	if err != nil {
		stop()
		engine.Stop()
		return nil, err
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		refused := func(err error) { log.Error("rules document refused", "err", err) }
		if err := rules.Watch(runCtx, kv, rules.ConfigKey, engine, refused); err != nil && runCtx.Err() == nil {
			log.Error("rules watch ended", "err", err)
		}
	}()
	return func() { stop(); <-watched; engine.Stop() }, nil
}

// inputs are what the configuration's files hold.
type inputs struct {
	inv        *authz.Inventory
	st         *authz.State
	commandKey authz.Secret
	hashKey    []byte
	auditKey   nkeys.KeyPair
}

func loadInputs(cfg *config.Edge) (*inputs, error) {
	inv, err := config.LoadInventory(cfg.Inventory)
	if err != nil {
		return nil, err
	}
	st, err := authz.LoadState(cfg.State)
	if err != nil {
		return nil, fmt.Errorf("%w: state: %w", config.ErrInvalid, err)
	}
	in := &inputs{inv: inv, st: st}
	if in.commandKey, err = config.ReadSecret(config.SecretPath(cfg.Secrets, config.EdgeCommandSeed)); err != nil {
		return nil, err
	}
	if _, err := config.ReadSecret(config.SecretPath(cfg.Secrets, config.EdgeLeafSeed)); err != nil {
		return nil, err
	}
	if in.hashKey, err = access.ReadHashKey(config.SecretPath(cfg.Secrets, config.EdgeHashKey)); err != nil {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	if in.auditKey, err = access.ReadAuditKey(config.SecretPath(cfg.Secrets, config.EdgeAuditSeed)); err != nil {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	return in, nil
}

// reload applies a changed inventory, state and log level; a
// configuration that does not load is logged and ignored.
func reload(node *edgekit.Node, path string, level *slog.LevelVar, log *slog.Logger) {
	cfg, err := config.LoadEdge(path)
	if err == nil {
		var in *inputs
		if in, err = loadInputs(cfg); err == nil {
			err = node.UpdateCredentials(in.inv, in.st)
		}
	}
	if err != nil {
		log.Error("reload refused; running on as before", "err", err)
		return
	}
	level.Set(cfg.Log.LevelValue())
	log.Info("reloaded")
}
