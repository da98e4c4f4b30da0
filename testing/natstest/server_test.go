package natstest_test

import (
	"errors"
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRunPubSub(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t, nil)

	if got, want := srv.ClientURL(), "nats://"+srv.Addr(); got != want {
		t.Errorf("ClientURL() = %q, want %q", got, want)
	}
	host, port, err := net.SplitHostPort(srv.Addr())
	noErr(t, err, "split Addr")
	if host != "127.0.0.1" || port != strconv.Itoa(srv.Port()) {
		t.Errorf("Addr() = %q, want 127.0.0.1:%d", srv.Addr(), srv.Port())
	}
	if srv.Port() == 4222 {
		t.Error("server uses the fixed default port 4222")
	}
	if !srv.Server().JetStreamEnabled() {
		t.Error("JetStream not enabled")
	}
	if _, err := os.Stat(srv.StoreDir()); err != nil {
		t.Errorf("store dir: %v", err)
	}

	nc := connect(t, srv)
	requireDelivered(t, srv, nc, nc, "greet")
}

func TestRunCleanup(t *testing.T) {
	t.Parallel()
	var srv *natstest.Server
	t.Run("inner", func(t *testing.T) {
		srv = natstest.Run(t, nil)
		if !srv.Server().Running() {
			t.Fatal("server not running")
		}
	})
	if srv.Server().Running() {
		t.Error("server still running after cleanup")
	}
	if _, err := os.Stat(srv.StoreDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary store dir not removed: stat error %v", err)
	}
	if err := srv.Restart(); !errors.Is(err, natstest.ErrClosed) {
		t.Errorf("Restart after Close = %v, want ErrClosed", err)
	}
	srv.Close() // idempotent
}

func TestNewServerOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  func(t *testing.T) *server.Options
		check func(t *testing.T, srv *natstest.Server)
	}{
		{
			name: "user and password",
			opts: func(*testing.T) *server.Options {
				o := natstest.DefaultOptions()
				o.Username, o.Password = "alice", "s3cret"
				return o
			},
			check: func(t *testing.T, srv *natstest.Server) {
				for _, opts := range [][]nats.Option{nil, {nats.UserInfo("alice", "wrong")}} {
					if _, err := srv.Connect(opts...); !errors.Is(err, nats.ErrAuthorization) {
						t.Errorf("connect with bad credentials: err = %v, want ErrAuthorization", err)
					}
				}
				connect(t, srv, nats.UserInfo("alice", "s3cret"))
			},
		},
		{
			name: "zero options mean loopback and random port",
			opts: func(*testing.T) *server.Options { return &server.Options{NoLog: true, NoSigs: true} },
			check: func(t *testing.T, srv *natstest.Server) {
				if srv.Port() == 4222 {
					t.Error("zero Port became the fixed default port 4222")
				}
				if host, _, _ := net.SplitHostPort(srv.Addr()); host != "127.0.0.1" {
					t.Errorf("host = %q, want 127.0.0.1", host)
				}
				if srv.Server().JetStreamEnabled() || srv.StoreDir() != "" {
					t.Error("JetStream enabled although not asked for")
				}
				connect(t, srv)
			},
		},
		{
			name: "caller store dir is kept",
			opts: func(t *testing.T) *server.Options {
				o := natstest.DefaultOptions()
				o.StoreDir = t.TempDir()
				return o
			},
			check: func(t *testing.T, srv *natstest.Server) {
				srv.Close()
				if _, err := os.Stat(srv.StoreDir()); err != nil {
					t.Errorf("caller's store dir removed: %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts(t)
			port, storeDir := opts.Port, opts.StoreDir
			srv := natstest.Run(t, opts)
			if opts.Port != port || opts.StoreDir != storeDir {
				t.Error("caller's options modified")
			}
			tt.check(t, srv)
		})
	}
}

func TestNewServerBusyPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err, "listen")
	t.Cleanup(func() { _ = l.Close() })

	opts := natstest.DefaultOptions()
	opts.Port = l.Addr().(*net.TCPAddr).Port
	srv, err := natstest.NewServer(opts)
	if !errors.Is(err, natstest.ErrNotReady) || srv != nil {
		t.Fatalf("NewServer on a busy port = %v, %v; want nil, ErrNotReady", srv, err)
	}
}

func TestRestartKeepsPortsAndJetStream(t *testing.T) {
	t.Parallel()
	opts := natstest.DefaultOptions()
	opts.ServerName = "restart" // MQTT requires a server name
	opts.LeafNode.Host = "127.0.0.1"
	opts.LeafNode.Port = server.RANDOM_PORT
	opts.Websocket.Host = "127.0.0.1"
	opts.Websocket.Port = server.RANDOM_PORT
	opts.Websocket.NoTLS = true
	opts.MQTT.Host = "127.0.0.1"
	opts.MQTT.Port = server.RANDOM_PORT
	opts.HTTPHost = "127.0.0.1"
	opts.HTTPPort = server.RANDOM_PORT
	srv := natstest.Run(t, opts)
	ctx := testContext(t)

	nc := connect(t, srv)
	reconnected := make(chan struct{}, 1)
	nc.SetReconnectHandler(func(*nats.Conn) {
		select {
		case reconnected <- struct{}{}:
		default:
		}
	})
	js, err := jetstream.New(nc)
	noErr(t, err, "jetstream")
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	noErr(t, err, "create stream")
	for i := range 3 {
		_, err := js.Publish(ctx, "orders.new", []byte(strconv.Itoa(i)))
		noErr(t, err, "publish")
	}

	first := srv.Server()
	clientURL, leaf := srv.ClientURL(), srv.LeafNodeAddr()
	ws, monitor := first.WebsocketURL(), first.MonitorAddr().String()

	noErr(t, srv.Restart(), "restart")

	if srv.Server() == first || first.Running() {
		t.Error("Restart did not replace the server instance")
	}
	if srv.ClientURL() != clientURL || srv.LeafNodeAddr() != leaf {
		t.Errorf("addresses changed: %s %s, were %s %s", srv.ClientURL(), srv.LeafNodeAddr(), clientURL, leaf)
	}
	if got := srv.Server().WebsocketURL(); got != ws {
		t.Errorf("websocket URL %s, was %s", got, ws)
	}
	if got := srv.Server().MonitorAddr().String(); got != monitor {
		t.Errorf("monitor address %s, was %s", got, monitor)
	}
	for _, addr := range []string{leaf, monitor} {
		c, err := net.Dial("tcp", addr)
		noErr(t, err, "listener "+addr+" after restart")
		_ = c.Close()
	}

	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatal("client did not reconnect after restart")
	}
	streamMsgs := func(js jetstream.JetStream) (uint64, error) {
		s, err := js.Stream(ctx, "ORDERS")
		if err != nil {
			return 0, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0, err
		}
		return info.State.Msgs, nil
	}
	var n uint64
	// The stream is recovered asynchronously while the server starts.
	eventually(t, func() (err error) {
		n, err = streamMsgs(js)
		return err
	})
	if n != 3 {
		t.Errorf("stream has %d messages after restart, want 3", n)
	}

	// The restarted server keeps working, and survives a second restart.
	_, err = js.Publish(ctx, "orders.new", []byte("3"))
	noErr(t, err, "publish after restart")
	noErr(t, srv.Restart(), "second restart")
	js2, err := jetstream.New(connect(t, srv))
	noErr(t, err, "jetstream")
	eventually(t, func() (err error) {
		n, err = streamMsgs(js2)
		return err
	})
	if n != 4 {
		t.Errorf("stream has %d messages after second restart, want 4", n)
	}
}

func TestNewServerClose(t *testing.T) {
	t.Parallel()
	srv, err := natstest.NewServer(nil)
	noErr(t, err, "NewServer")
	srv.Close()
	srv.Close()
	if err := srv.Restart(); !errors.Is(err, natstest.ErrClosed) {
		t.Errorf("Restart after Close = %v, want ErrClosed", err)
	}
	if _, err := os.Stat(srv.StoreDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("store dir left behind: stat error %v", err)
	}
}

// TestRestartWithNewCredentials: RestartWith brings the server back with
// the new options on the same port and store, whatever the new options say
// of them: the old password is refused, the new one accepted, and the
// stream is still there.
func TestRestartWithNewCredentials(t *testing.T) {
	t.Parallel()
	opts := natstest.DefaultOptions()
	opts.Username, opts.Password = "op", "old"
	srv := natstest.Run(t, opts)
	ctx := testContext(t)

	nc, err := srv.Connect(nats.UserInfo("op", "old"))
	noErr(t, err, "connect with the old password")
	js, err := jetstream.New(nc)
	noErr(t, err, "jetstream")
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept.>"}})
	noErr(t, err, "create stream")
	_, err = js.Publish(ctx, "kept.one", []byte("1"))
	noErr(t, err, "publish")
	nc.Close()

	url := srv.ClientURL()
	next := natstest.DefaultOptions() // a random port and no store: kept as they were
	next.Username, next.Password = "op", "new"
	noErr(t, srv.RestartWith(next), "restart with new options")
	if srv.ClientURL() != url {
		t.Errorf("client URL %s, was %s", srv.ClientURL(), url)
	}
	if _, err := srv.Connect(nats.UserInfo("op", "old"), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("old password after RestartWith: %v, want %v", err, nats.ErrAuthorization)
	}
	nc, err = srv.Connect(nats.UserInfo("op", "new"))
	noErr(t, err, "connect with the new password")
	defer nc.Close()
	js, err = jetstream.New(nc)
	noErr(t, err, "jetstream")
	st, err := js.Stream(ctx, "KEPT")
	noErr(t, err, "stream after RestartWith")
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("stream after RestartWith: %+v, %v; want 1 message", info, err)
	}

	srv.Close()
	if err := srv.RestartWith(next); !errors.Is(err, natstest.ErrClosed) {
		t.Errorf("RestartWith after Close: %v, want ErrClosed", err)
	}
}
