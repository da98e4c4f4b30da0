package natstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// caValidity is how long the certificates of a [CA] are valid, from an hour
// before they were made (to absorb clock skew between processes).
const caValidity = 24 * time.Hour

// CA is a throwaway certificate authority for tests, with a server and a
// client certificate it issued, all written as PEM files to one directory:
//
//	ca := natstest.TempCA(t)
//	opts.TLSConfig, err = server.GenTLSConfig(&server.TLSConfigOpts{CertFile: ca.ServerCertFile, KeyFile: ca.ServerKeyFile})
//	nc, err := srv.Connect(nats.Secure(ca.ClientTLS()))
//
// The server certificate is valid for 127.0.0.1, ::1 and localhost, the
// addresses natstest servers listen on, for a day. Keys are ECDSA P-256.
// Two CAs never trust each other's certificates, which is how a test shows
// that a peer pinned to the wrong CA is refused.
type CA struct {
	// Dir is the directory holding the files.
	Dir string
	// CAFile is the CA's certificate: the file a client pins the server
	// to, or a server verifies client certificates against.
	CAFile string
	// ServerCertFile and ServerKeyFile are the server certificate (for
	// 127.0.0.1, ::1 and localhost) and its private key.
	ServerCertFile, ServerKeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate (common
	// name "natstest client", for client authentication) and its key.
	ClientCertFile, ClientKeyFile string

	cert *x509.Certificate
}

// NewCA makes a new CA and its certificates, and writes them to dir, which
// must exist: ca.pem, server-cert.pem, server-key.pem, client-cert.pem and
// client-key.pem (keys with mode 0600). It returns an error when a key
// cannot be made or a file cannot be written.
func NewCA(dir string) (*CA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("natstest: CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "natstest CA", Organization: []string{"natstest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("natstest: CA certificate: %w", err)
	}
	ca := &CA{
		Dir:            dir,
		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerCertFile: filepath.Join(dir, "server-cert.pem"),
		ServerKeyFile:  filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client-cert.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
		cert:           caCert,
	}
	if err := writePEM(ca.CAFile, "CERTIFICATE", caDER, 0o644); err != nil {
		return nil, err
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "natstest server"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		// Server and client use: a cluster node presents it both ways.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if err := ca.issue(server, caCert, caKey, ca.ServerCertFile, ca.ServerKeyFile); err != nil {
		return nil, err
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "natstest client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := ca.issue(client, caCert, caKey, ca.ClientCertFile, ca.ClientKeyFile); err != nil {
		return nil, err
	}
	return ca, nil
}

// TempCA is [NewCA] for tests, in a directory of tb.TempDir(): it fails tb
// at once on an error, and the files go with the directory after the test.
func TempCA(tb testing.TB) *CA {
	tb.Helper()
	ca, err := NewCA(tb.TempDir())
	if err != nil {
		tb.Fatalf("natstest.TempCA: %v", err)
	}
	return ca
}

// CertPool returns a pool holding the CA's certificate only.
func (ca *CA) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ClientTLS returns a client TLS configuration that trusts this CA only
// (not the system's roots) and verifies the server's certificate, such as
// for nats.Secure. Each call returns a new value the caller may modify.
func (ca *CA) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: ca.CertPool(), MinVersion: tls.VersionTLS12}
}

// issue makes a key and a certificate from tmpl signed by the CA, and
// writes both.
func (ca *CA) issue(tmpl, caCert *x509.Certificate, caKey *ecdsa.PrivateKey, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("natstest: key for %s: %w", tmpl.Subject.CommonName, err)
	}
	tmpl.NotBefore, tmpl.NotAfter = caCert.NotBefore, caCert.NotAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := sign(tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("natstest: key for %s: %w", tmpl.Subject.CommonName, err)
	}
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writePEM(keyFile, "PRIVATE KEY", keyDER, 0o600)
}

// sign gives tmpl a random serial number and signs it with parent's key.
func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("natstest: serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("natstest: certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("natstest: write %s: %w", path, err)
	}
	return nil
}
