package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const (
	// readyTimeout bounds how long a start waits for every listener.
	readyTimeout = 10 * time.Second
	// restartTimeout bounds how long Restart retries a port that is still busy.
	restartTimeout = 10 * time.Second
	// restartRetryInterval is the pause between two bind attempts in Restart.
	restartRetryInterval = 25 * time.Millisecond

	// defaultMaxMemory and defaultMaxStore cap JetStream so a test server
	// never sizes itself from the host's RAM and disk.
	defaultMaxMemory = 256 << 20
	defaultMaxStore  = 1 << 30

	loopback = "127.0.0.1"
)

// errBind marks a start that failed because a listener could not bind;
// Restart retries those. It is always wrapped together with ErrNotReady.
var errBind = errors.New("listener could not bind")

// DefaultOptions returns the options [NewServer] and [Run] use when given nil:
// client listener on 127.0.0.1 with a random port, JetStream enabled with
// 256 MiB of memory and 1 GiB of file storage, no logging and no signal
// handlers. The store directory is left empty so that NewServer creates a
// temporary one. Each call returns a fresh value the caller may modify.
func DefaultOptions() *server.Options {
	return &server.Options{
		Host:                   loopback,
		Port:                   server.RANDOM_PORT,
		NoLog:                  true,
		NoSigs:                 true,
		JetStream:              true,
		JetStreamMaxMemory:     defaultMaxMemory,
		JetStreamMaxStore:      defaultMaxStore,
		DisableJetStreamBanner: true,
	}
}

// Server is an in-process NATS server for tests, the NATS counterpart of
// httptest.Server. Create one with [NewServer] or [Run]. Its methods are safe
// for concurrent use.
//
// The first start resolves every random port (-1) to the port actually bound
// and keeps it, so [Server.Restart] comes back on the same client, leafnode,
// websocket, MQTT, monitoring, cluster and gateway ports, with the same
// JetStream store directory.
type Server struct {
	mu       sync.Mutex      // serialises Restart and Close
	opts     *server.Options // template for every start; random ports pinned after the first
	closed   bool
	probes   []string // host:port of every listener, checked free before a restart
	ownStore bool

	ns atomic.Pointer[server.Server]

	// onRetry, when set (by tests), is called each time Restart finds a
	// port busy and is about to retry.
	onRetry func(error)

	// Fixed after the first start.
	storeDir  string
	clientURL string
	addr      string
	port      int
	leafAddr  string
}

// NewServer starts a server with opts and waits until it accepts connections
// on every configured listener.
//
// A nil opts means [DefaultOptions]. Caller options are honoured as given
// (authorization, accounts, leafnode remotes, ...), with three test-friendly
// exceptions: an empty Host means 127.0.0.1, a zero Port means a random port
// (nats-server itself would use 4222), and when JetStream is enabled with an
// empty StoreDir, a temporary directory is created and removed by
// [Server.Close]. Unlike a bare server.NewServer, NoLog: false really
// logs, to stderr, honouring Debug, Trace and Logtime. opts is copied, never
// modified.
//
// NewServer returns an error wrapping the nats-server error for invalid
// options, or [ErrNotReady] when a listener does not come up in time.
func NewServer(opts *server.Options) (*Server, error) {
	if opts == nil {
		opts = DefaultOptions()
	} else {
		opts = cloneOptions(opts)
	}
	if opts.Host == "" {
		opts.Host = loopback
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	s := &Server{opts: opts}
	if opts.JetStream && opts.StoreDir == "" {
		dir, err := os.MkdirTemp("", "natstest-")
		if err != nil {
			return nil, fmt.Errorf("natstest: create JetStream store dir: %w", err)
		}
		opts.StoreDir = dir
		s.ownStore = true
	}
	s.storeDir = opts.StoreDir

	ns, eff, err := s.start()
	if err != nil {
		s.removeStore()
		return nil, err
	}
	s.pin(ns, eff)
	s.ns.Store(ns)
	return s, nil
}

// Run is [NewServer] for tests: it fails tb at once if the server does not
// start, and closes the server in tb.Cleanup.
//
//	srv := natstest.Run(t, nil)
//	nc, err := srv.Connect()
func Run(tb testing.TB, opts *server.Options) *Server {
	tb.Helper()
	s, err := NewServer(opts)
	if err != nil {
		tb.Fatalf("natstest.Run: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// start builds and starts one server instance from the template.
// eff is the options value the instance owns, with resolved ports.
func (s *Server) start() (ns *server.Server, eff *server.Options, err error) {
	eff = cloneOptions(s.opts)
	ns, err = server.NewServer(eff)
	if err != nil {
		return nil, nil, fmt.Errorf("natstest: configure server: %w", err)
	}
	if !eff.NoLog {
		// Log to stderr as configured (Debug, Trace, Logtime, ...).
		ns.ConfigureLogger()
	}
	// Start is synchronous: it returns once every listener except the
	// cluster one is bound (or has failed).
	ns.Start()
	if !eff.DontListen && ns.Addr() == nil {
		shutdown(ns)
		return nil, nil, fmt.Errorf("%w: %w: client listener on %s (port busy, or startup failed)",
			ErrNotReady, errBind, net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)))
	}
	if !ns.ReadyForConnections(readyTimeout) {
		shutdown(ns)
		return nil, nil, fmt.Errorf("%w within %v", ErrNotReady, readyTimeout)
	}
	return ns, eff, nil
}

// pin records the ports the first start resolved, so that restarts reuse
// them. eff's listener fields were written by ns.Start in this goroutine.
func (s *Server) pin(ns *server.Server, eff *server.Options) {
	o := s.opts
	if a, ok := ns.Addr().(*net.TCPAddr); ok {
		if o.Port == server.RANDOM_PORT {
			o.Port = a.Port
		}
		s.port = a.Port
		s.addr = net.JoinHostPort(dialHost(o.Host), strconv.Itoa(a.Port))
		scheme := "nats"
		if o.TLSConfig != nil {
			scheme = "tls"
		}
		s.clientURL = (&url.URL{Scheme: scheme, Host: s.addr}).String()
		s.probes = append(s.probes, net.JoinHostPort(eff.Host, strconv.Itoa(a.Port)))
	}
	pinPort := func(tmpl *int, host string, port int) {
		if port <= 0 {
			return
		}
		if *tmpl == server.RANDOM_PORT {
			*tmpl = port
		}
		s.probes = append(s.probes, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	if eff.LeafNode.Port != 0 {
		pinPort(&o.LeafNode.Port, eff.LeafNode.Host, eff.LeafNode.Port)
		s.leafAddr = net.JoinHostPort(dialHost(eff.LeafNode.Host), strconv.Itoa(eff.LeafNode.Port))
	}
	if eff.Websocket.Port != 0 {
		pinPort(&o.Websocket.Port, eff.Websocket.Host, eff.Websocket.Port)
	}
	if eff.MQTT.Port != 0 {
		pinPort(&o.MQTT.Port, eff.MQTT.Host, eff.MQTT.Port)
	}
	if a := ns.MonitorAddr(); a != nil {
		if o.HTTPSPort != 0 {
			pinPort(&o.HTTPSPort, eff.HTTPHost, a.Port)
		} else {
			pinPort(&o.HTTPPort, eff.HTTPHost, a.Port)
		}
	}
	if a := ns.ClusterAddr(); a != nil {
		pinPort(&o.Cluster.Port, eff.Cluster.Host, a.Port)
	}
	if a := ns.GatewayAddr(); a != nil {
		pinPort(&o.Gateway.Port, eff.Gateway.Host, a.Port)
	}
	if a := ns.ProfilerAddr(); a != nil {
		pinPort(&o.ProfPort, eff.Host, a.Port)
	}
}

// Server returns the running nats-server instance. [Server.Restart] replaces
// it, so do not keep the result across a restart.
func (s *Server) Server() *server.Server { return s.ns.Load() }

// ClientURL returns the URL clients connect to, such as
// "nats://127.0.0.1:41234". It does not change across restarts.
func (s *Server) ClientURL() string { return s.clientURL }

// Addr returns the host:port of the client listener. An unspecified listen
// host (0.0.0.0) is reported as 127.0.0.1 so that the address can be dialled.
func (s *Server) Addr() string { return s.addr }

// Port returns the port of the client listener.
func (s *Server) Port() int { return s.port }

// LeafNodeAddr returns the host:port of the leafnode listener, or "" when the
// server accepts no leafnode connections.
func (s *Server) LeafNodeAddr() string { return s.leafAddr }

// StoreDir returns the JetStream store directory: the caller's, the
// temporary one [NewServer] created, or "" when there is none.
func (s *Server) StoreDir() string { return s.storeDir }

// WaitInterest waits until the server's global account has interest in
// subject: a local subscriber, or a subscriber beyond a leafnode link whose
// interest has crossed it. After a [HubLeaf]'s link comes up, interest crosses
// it shortly afterwards; wait for it before publishing messages that must not
// be dropped. Subjects that a server answers through an account subject
// mapping, such as the API of its own JetStream domain ($JS.<domain>.API.>),
// have no interest of their own. When ctx has no deadline, WaitInterest
// waits for at most 30 seconds. It returns nil, or an error wrapping the
// context's error.
func (s *Server) WaitInterest(ctx context.Context, subject string) error {
	return waitFor(ctx, fmt.Sprintf("interest in %q", subject), func() bool {
		acc := s.Server().GlobalAccount()
		return acc != nil && acc.SubscriptionInterest(subject)
	})
}

// Connect connects a client to the server. Test-friendly defaults come first
// and opts are applied after them, so opts win: the connection is named
// "natstest", reconnects forever, and waits 100ms between reconnect attempts,
// so that it survives [Server.Restart]. Close the connection before the
// server, or it keeps trying to reconnect.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name("natstest"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(s.clientURL, all...)
	if err != nil {
		return nil, fmt.Errorf("natstest: connect to %s: %w", s.clientURL, err)
	}
	return nc, nil
}

// Restart shuts the server down and starts it again with the same options,
// on the same ports and with the same JetStream store directory, so streams,
// consumers and their messages survive. Clients created with
// [Server.Connect] and leaf nodes reconnect on their own.
//
// If a port is still busy, Restart retries for a few seconds. It returns
// [ErrClosed] after [Server.Close], or an error wrapping [ErrNotReady] when a
// port stays busy or a listener does not come up. After a failed Restart the server is
// down; call Restart again or Close.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restart()
}

// RestartWith is [Server.Restart] with new options, such as rotated
// credentials: the server comes back on the same host, ports and JetStream
// store directory whatever opts says of them, and later restarts use opts
// too. opts is copied, never modified.
//
// It is the way to change a test server's configuration while JetStream
// traffic flows: nats-server's ReloadOptions (v2.15.2) replaces the
// server's options while JetStream goroutines read them unsynchronized
// (direct gets, replies through service imports: nats-io/nats-server#8499),
// which the race detector reports.
func (s *Server) RestartWith(opts *server.Options) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	o, cur := cloneOptions(opts), s.opts
	o.Host, o.Port, o.StoreDir = cur.Host, cur.Port, cur.StoreDir
	o.LeafNode.Host, o.LeafNode.Port = cur.LeafNode.Host, cur.LeafNode.Port
	o.Websocket.Host, o.Websocket.Port = cur.Websocket.Host, cur.Websocket.Port
	o.MQTT.Host, o.MQTT.Port = cur.MQTT.Host, cur.MQTT.Port
	o.HTTPHost, o.HTTPPort, o.HTTPSPort = cur.HTTPHost, cur.HTTPPort, cur.HTTPSPort
	o.Cluster.Host, o.Cluster.Port = cur.Cluster.Host, cur.Cluster.Port
	o.Gateway.Host, o.Gateway.Port = cur.Gateway.Host, cur.Gateway.Port
	o.ProfPort = cur.ProfPort
	s.opts = o
	return s.restart()
}

// restart is Restart with s.mu held.
func (s *Server) restart() error {
	if s.closed {
		return ErrClosed
	}
	shutdown(s.ns.Load())

	deadline := time.Now().Add(restartTimeout)
	for {
		err := s.portsFree()
		if err == nil {
			var ns *server.Server
			ns, _, err = s.start()
			if err == nil {
				s.ns.Store(ns)
				return nil
			}
		}
		if !errors.Is(err, errBind) || time.Now().After(deadline) {
			return fmt.Errorf("natstest: restart: %w", err)
		}
		if s.onRetry != nil {
			s.onRetry(err)
		}
		time.Sleep(restartRetryInterval)
	}
}

// portsFree reports, wrapping ErrNotReady and errBind, the first pinned listener address that
// cannot be bound right now.
func (s *Server) portsFree() error {
	for _, hp := range s.probes {
		l, err := net.Listen("tcp", hp)
		if err != nil {
			return fmt.Errorf("%w: %w: %s: %w", ErrNotReady, errBind, hp, err)
		}
		if err := l.Close(); err != nil {
			return fmt.Errorf("%w: %w: %s: %w", ErrNotReady, errBind, hp, err)
		}
	}
	return nil
}

// Close shuts the server down, waits until the shutdown is complete, and
// removes the JetStream store directory if [NewServer] created it. Close is
// idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	shutdown(s.ns.Load())
	s.removeStore()
}

func (s *Server) removeStore() {
	if s.ownStore {
		// Best effort: a leftover temporary directory is not worth failing for.
		_ = os.RemoveAll(s.storeDir)
	}
}

// shutdown stops ns and waits until it is fully down. A nil ns is a no-op.
func shutdown(ns *server.Server) {
	if ns == nil {
		return
	}
	ns.Shutdown()
	ns.WaitForShutdown()
}

// dialHost turns an unspecified listen host into one that can be dialled.
func dialHost(host string) string {
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return loopback
	}
	return host
}

// cloneOptions deep-copies the parts of o that a server start may modify.
// server.Options.Clone leaves leafnode remotes shared, so copy them too.
func cloneOptions(o *server.Options) *server.Options {
	c := o.Clone()
	if o.LeafNode.Remotes != nil {
		c.LeafNode.Remotes = make([]*server.RemoteLeafOpts, len(o.LeafNode.Remotes))
		for i, r := range o.LeafNode.Remotes {
			rc := *r
			rc.URLs = make([]*url.URL, len(r.URLs))
			for j, u := range r.URLs {
				uc := *u
				rc.URLs[j] = &uc
			}
			c.LeafNode.Remotes[i] = &rc
		}
	}
	return c
}
