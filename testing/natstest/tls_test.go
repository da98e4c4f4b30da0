package natstest_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TestCATLSServer: a server with the CA's server certificate, requiring
// client certificates signed by the CA, accepts a client that trusts the CA
// and presents the CA's client certificate; a client trusting another CA
// fails the handshake, and so does one without a client certificate.
func TestCATLSServer(t *testing.T) {
	t.Parallel()
	ca := natstest.TempCA(t)
	other := natstest.TempCA(t)
	for _, f := range []string{ca.CAFile, ca.ServerCertFile, ca.ClientCertFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
	for _, f := range []string{ca.ServerKeyFile, ca.ClientKeyFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}

	opts := natstest.DefaultOptions()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: ca.ServerCertFile, KeyFile: ca.ServerKeyFile, CaFile: ca.CAFile, Verify: true, Timeout: 5,
	})
	noErr(t, err, "server TLS config")
	opts.TLSConfig, opts.TLSTimeout, opts.TLSVerify = tc, 5, true
	srv := natstest.Run(t, opts)
	if !strings.HasPrefix(srv.ClientURL(), "tls://") {
		t.Errorf("ClientURL() = %q, want a tls:// URL", srv.ClientURL())
	}

	clientTLS := ca.ClientTLS()
	cert, err := tls.LoadX509KeyPair(ca.ClientCertFile, ca.ClientKeyFile)
	noErr(t, err, "client key pair")
	clientTLS.Certificates = []tls.Certificate{cert}
	nc := connect(t, srv, nats.Secure(clientTLS))
	requireDelivered(t, srv, nc, nc, "over.tls")
	if st, err := nc.TLSConnectionState(); err != nil || !st.HandshakeComplete {
		t.Errorf("TLS state: %+v %v", st, err)
	}

	wrong := other.ClientTLS()
	wrong.Certificates = []tls.Certificate{cert}
	_, err = nats.Connect(srv.ClientURL(), nats.Secure(wrong), nats.MaxReconnects(0))
	var unknown x509.UnknownAuthorityError
	if !errors.Is(err, nats.ErrTLS) || !errors.As(err, &unknown) {
		t.Errorf("client trusting another CA: %v, want an unknown-authority TLS error", err)
	}

	// Without a client certificate the server ends the handshake; with TLS
	// 1.3 the client learns it on its first read, as a closed connection.
	if nc, err := nats.Connect(srv.ClientURL(), nats.Secure(ca.ClientTLS()), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("client without a certificate connected to a server that requires one")
	}
}
