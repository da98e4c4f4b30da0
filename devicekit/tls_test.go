package devicekit_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// tlsServer sets TLS with ca's server certificate on so: clients must use
// TLS.
func tlsServer(t *testing.T, ca *natstest.CA, so *server.Options) {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: ca.ServerCertFile, KeyFile: ca.ServerKeyFile, Timeout: 5})
	if err != nil {
		t.Fatal(err)
	}
	so.TLSConfig, so.TLSTimeout = tc, 5
}

// tlsEdge is an edge server that requires TLS, with ca's server
// certificate, a user per device of devicetest.DefaultThings and a stream
// of the messages they publish with an acknowledgement.
type tlsEdge struct {
	srv    *natstest.Server
	js     jetstream.JetStream
	things []topic.Thing
}

func startTLSEdge(t *testing.T, ca *natstest.CA) *tlsEdge {
	t.Helper()
	e := &tlsEdge{things: devicetest.DefaultThings("acme", "hq")}
	so := natstest.DefaultOptions()
	so.Users = []*server.User{{Username: "edge", Password: "edge-secret"}}
	for _, th := range e.things {
		so.Users = append(so.Users, &server.User{Username: th.String(), Password: string(devicetest.Password(th)),
			Permissions: devicetest.DevicePermissions(th)})
	}
	tlsServer(t, ca, so)
	e.srv = natstest.Run(t, so)
	nc, err := e.srv.Connect(nats.UserInfo("edge", "edge-secret"), nats.Secure(ca.ClientTLS()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if e.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.CreateStream(testCtx(t), jetstream.StreamConfig{Name: "events", Subjects: []string{"acme.hq.*.*.evt", "acme.hq.*.*.state", "acme.hq.*.*.ack", "acme.hq.*.*.tlm"}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// config returns the configuration of device th on e, without TLS settings.
func (e *tlsEdge) config(th topic.Thing) devicekit.Config {
	return devicekit.Config{Thing: th, URLs: []string{e.srv.ClientURL()}, Password: devicetest.Password(th), HeartbeatInterval: -1}
}

// TestConnectTLS: a device given the CA of the edge's certificate, as
// CAFile or as Config.TLS, connects over TLS and publishes; one given
// another CA, or none, fails the handshake at once, with an error naming
// the unknown authority.
func TestConnectTLS(t *testing.T) {
	ca, other := natstest.TempCA(t), natstest.TempCA(t)
	edge := startTLSEdge(t, ca)
	r1, r2 := edge.things[0], edge.things[1]

	for _, tc := range []struct {
		name   string
		thing  topic.Thing
		mutate func(*devicekit.Config)
	}{
		{"CAFile", r1, func(c *devicekit.Config) { c.CAFile = ca.CAFile }},
		{"TLS", r2, func(c *devicekit.Config) { c.TLS = ca.ClientTLS() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := edge.config(tc.thing)
			tc.mutate(&cfg)
			d, err := devicekit.Connect(testCtx(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			st, err := devicekit.Conn(d).TLSConnectionState()
			if err != nil || !st.HandshakeComplete {
				t.Fatalf("not TLS: %v", err)
			}
			id, err := d.PublishEvent(testCtx(t), "door.opened", nil)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := devicetest.Stored(testCtx(t), edge.js, "events", tc.thing.Subject(topic.Event).String())
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 || msgs[len(msgs)-1].Envelope.ID != id {
				t.Fatalf("event %s not stored: %d messages", id, len(msgs))
			}
		})
	}

	for _, tc := range []struct {
		name   string
		mutate func(*devicekit.Config)
	}{
		{"another CA", func(c *devicekit.Config) { c.CAFile = other.CAFile }},
		{"no TLS settings", func(*devicekit.Config) {}},
	} {
		cfg := edge.config(r1)
		tc.mutate(&cfg)
		_, err := devicekit.Connect(testCtx(t), cfg)
		var unknown x509.UnknownAuthorityError
		if !errors.Is(err, nats.ErrTLS) || !errors.As(err, &unknown) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want a TLS error naming the unknown authority, at once", tc.name, err)
		}
		t.Logf("%s: refused: %v", tc.name, err)
	}
}

// TestConnectTLSRequired: a device configured for TLS refuses an edge that
// offers none.
func TestConnectTLSRequired(t *testing.T) {
	ca := natstest.TempCA(t)
	plain := devicetest.StartEdge(t, devicetest.EdgeOptions{})
	cfg := plain.Config(plain.Things[0])
	cfg.CAFile = ca.CAFile
	if _, err := devicekit.Connect(testCtx(t), cfg); !errors.Is(err, nats.ErrSecureConnWanted) {
		t.Errorf("TLS device against a plaintext edge: %v, want %v", err, nats.ErrSecureConnWanted)
	}
}

// TestConfigTLSErrors: an unusable CAFile and a TLS configuration that
// skips verification are refused as invalid configuration, naming what is
// wrong.
func TestConfigTLSErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	thing := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	for _, tc := range []struct {
		name  string
		cfg   devicekit.Config
		parts []string
	}{
		{"missing CA file", devicekit.Config{CAFile: missing}, []string{"CAFile", missing}},
		{"CA file without a certificate", devicekit.Config{CAFile: junk}, []string{"CAFile", junk, "no PEM certificate"}},
		{"verification skipped", devicekit.Config{TLS: &tls.Config{InsecureSkipVerify: true}}, []string{"InsecureSkipVerify"}},
	} {
		cfg := tc.cfg
		cfg.Thing, cfg.URLs = thing, []string{"tls://127.0.0.1:1"}
		_, err := devicekit.Connect(testCtx(t), cfg)
		if !errors.Is(err, devicekit.ErrInvalidConfig) {
			t.Errorf("%s: %v, want %v", tc.name, err, devicekit.ErrInvalidConfig)
			continue
		}
		for _, p := range tc.parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%s: %q does not mention %q", tc.name, err, p)
			}
		}
	}
}
