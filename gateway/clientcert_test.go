package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/topic"
)

// deviceCA issues client certificates named after devices.
type deviceCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newDeviceCA(t *testing.T) *deviceCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "device CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &deviceCA{cert: cert, key: key}
}

func (ca *deviceCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns a client certificate for cn, base64 DER as Caddy passes it.
func (ca *deviceCA) issue(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// TestClientCertificate requires a client certificate passed by a
// trusted proxy: the device's own is accepted with its password; another
// device's, one from another CA, garbage, or any certificate sent by a
// client that is not a trusted proxy, is refused.
func TestClientCertificate(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	ca := newDeviceCA(t)
	const header = "X-Lintel-Client-Cert"
	trusted := startGateway(t, e, n, func(c *gateway.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.ClientCertHeader, c.ClientCAs, c.RequireClientCert = header, ca.pool(), true
		c.Rate = -1
	})
	untrusted := startGateway(t, e, n, func(c *gateway.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} // not where the test connects from
		c.ClientCertHeader, c.ClientCAs, c.RequireClientCert = header, ca.pool(), true
		c.Rate = -1
	})
	cases := []struct {
		name   string
		g      *gw
		cert   string
		status int
	}{
		{"own certificate", trusted, ca.issue(t, authz.DeviceUser(r1)), http.StatusOK},
		{"no certificate", trusted, "", http.StatusUnauthorized},
		{"another device's", trusted, ca.issue(t, authz.DeviceUser(r2)), http.StatusUnauthorized},
		{"another CA's", trusted, newDeviceCA(t).issue(t, authz.DeviceUser(r1)), http.StatusUnauthorized},
		{"garbage", trusted, "bm90IGEgY2VydA==", http.StatusUnauthorized},
		{"from an untrusted peer", untrusted, ca.issue(t, authz.DeviceUser(r1)), http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, body := event(t, r1, topic.Event, "x", nil)
			h := ceHeader()
			if c.cert != "" {
				h.Set(header, c.cert)
			}
			res := do(t, e, "POST", c.g.url+gateway.PathEvents, r1, "", h, body)
			if res.status != c.status {
				t.Fatalf("%d %s, want %d", res.status, res.body, c.status)
			}
			if c.status != http.StatusOK && res.problem(t).Field != header {
				t.Errorf("problem does not name the header: %s", res.body)
			}
		})
	}
}
