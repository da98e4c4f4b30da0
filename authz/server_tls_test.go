package authz_test

import (
	"bufio"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

// tlsCAs are the CAs of a TLS deployment: hub signs central's
// certificates, site the edge's, and other is a CA nobody trusts.
type tlsCAs struct{ hub, site, other *natstest.CA }

func newTLSCAs(t *testing.T) tlsCAs {
	return tlsCAs{hub: natstest.TempCA(t), site: natstest.TempCA(t), other: natstest.TempCA(t)}
}

// startTLSCentral starts central from CentralOptions with TLS on its client
// and leaf-node listeners (certificates of hub); leafClientCA, when set,
// makes the leaf-node listener require client certificates signed by it.
func startTLSCentral(t *testing.T, inv *authz.Inventory, c *natsCreds, hub *natstest.CA, leafClientCA string) (*natstest.Server, *logCapture) {
	t.Helper()
	ro := testRender(t)
	ro.TLS = &authz.TLSFiles{CertFile: hub.ServerCertFile, KeyFile: hub.ServerKeyFile}
	ro.LeafTLS = &authz.TLSFiles{CertFile: hub.ServerCertFile, KeyFile: hub.ServerKeyFile, ClientCAFile: leafClientCA}
	opts, err := authz.CentralOptions(inv, c.st, ro)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog = true
	srv := natstest.Run(t, opts)
	return srv, captureLog(srv)
}

// startTLSEdge starts edge at acme from EdgeOptions, with an
// EdgeAuthenticator, TLS on its client listener (certificates of site)
// and hubTLS on its leaf link to hub.
func startTLSEdge(t *testing.T, inv *authz.Inventory, c *natsCreds, edge string, hub *natstest.Server, hubTLS *authz.HubTLS, site *natstest.CA) (*natstest.Server, *logCapture) {
	t.Helper()
	ro := testRender(t)
	ro.HubURLs = []string{"nats-leaf://" + hub.LeafNodeAddr()}
	ro.ConfigDir = t.TempDir()
	ro.SeedFile = "leaf.seed"
	if err := authz.WriteSeedFile(filepath.Join(ro.ConfigDir, ro.SeedFile), authz.NewSecret(c.seeds[authz.EdgeKeyID("acme", edge)])); err != nil {
		t.Fatal(err)
	}
	ro.HubTLS = hubTLS
	ro.TLS = &authz.TLSFiles{CertFile: site.ServerCertFile, KeyFile: site.ServerKeyFile}
	opts, err := authz.EdgeOptions(inv, c.st, "acme", edge, ro)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog = true
	auth, err := authz.NewEdgeAuthenticator(inv, c.st, "acme", edge, authz.EdgeAuthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	auth.Configure(opts)
	srv, err := natstest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	auth.Attach(srv.Server())
	return srv, captureLog(srv)
}

// TestTLSLeafLinkAndDeviceLogin: with TLS on every listener, the leaf link
// comes up against central's certificate pinned to its CA (and, in the
// mutual case, with the edge's client certificate that central requires),
// a device logs in to its edge over TLS, and its event crosses the link to
// a central service connected over TLS.
func TestTLSLeafLinkAndDeviceLogin(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	for _, mutual := range []bool{false, true} {
		t.Run(fmt.Sprintf("mutual=%v", mutual), func(t *testing.T) {
			cas := newTLSCAs(t)
			var leafClientCA string
			hubTLS := &authz.HubTLS{CAFile: cas.hub.CAFile}
			if mutual {
				leafClientCA = cas.site.CAFile
				hubTLS.CertFile, hubTLS.KeyFile = cas.site.ClientCertFile, cas.site.ClientKeyFile
			}
			central, _ := startTLSCentral(t, inv, c, cas.hub, leafClientCA)
			hq, _ := startTLSEdge(t, inv, c, "hq", central, hubTLS, cas.site)
			waitFor(t, "leaf connection over TLS", func() bool {
				return hq.Server().NumLeafNodes() == 1 && central.Server().NumLeafNodes() == 1
			})

			r1 := mkThing("acme", "hq", "reader", "r1")
			dev := connectAs(t, hq, c, authz.DeviceUser(r1), nats.Secure(cas.site.ClientTLS()))
			if st, err := dev.TLSConnectionState(); err != nil || !st.HandshakeComplete {
				t.Fatalf("device connection not TLS: %v", err)
			}
			if v := connTLSVersion(t, hq, authz.DeviceUser(r1)); v == "" {
				t.Fatal("the edge sees the device's connection without TLS")
			}
			svc := connectAs(t, central, c, authz.ServiceUser("acme", "ingest"), nats.Secure(cas.hub.ClientTLS()))
			sub, err := svc.SubscribeSync("acme.hq.>")
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.Flush(); err != nil {
				t.Fatal(err)
			}
			// Interest crosses the leaf link asynchronously: publish until central sees it.
			waitFor(t, "a device event at central", func() bool {
				if err := dev.Publish(r1.Subject("evt").String(), []byte("over tls")); err != nil {
					t.Fatal(err)
				}
				m, err := sub.NextMsg(20 * time.Millisecond)
				return err == nil && string(m.Data) == "over tls"
			})
		})
	}
}

// TestTLSLeafLinkRefused: a leaf link that cannot verify central's
// certificate against its pinned CA, or one without the client certificate
// central requires, never comes up: the refusal is logged and neither side
// has a leaf connection.
func TestTLSLeafLinkRefused(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	for _, tc := range []struct {
		name      string
		mutual    bool // central requires client certificates from the site CA
		hubTLS    func(cas tlsCAs) *authz.HubTLS
		centralLo bool   // the refusal is logged by central, not by the edge
		want      string // in the log line of the refusal
	}{
		{"edge pinned to another CA", false, func(cas tlsCAs) *authz.HubTLS {
			return &authz.HubTLS{CAFile: cas.other.CAFile}
		}, false, "certificate signed by unknown authority"},
		{"edge pinned to its own site CA", false, func(cas tlsCAs) *authz.HubTLS {
			return &authz.HubTLS{CAFile: cas.site.CAFile}
		}, false, "certificate signed by unknown authority"},
		{"edge without TLS settings", false, func(tlsCAs) *authz.HubTLS { return nil },
			false, "certificate signed by unknown authority"},
		{"edge without the client certificate central requires", true, func(cas tlsCAs) *authz.HubTLS {
			return &authz.HubTLS{CAFile: cas.hub.CAFile}
		}, true, "didn't provide a certificate"},
		{"edge with a client certificate of another CA", true, func(cas tlsCAs) *authz.HubTLS {
			return &authz.HubTLS{CAFile: cas.hub.CAFile, CertFile: cas.other.ClientCertFile, KeyFile: cas.other.ClientKeyFile}
		}, true, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cas := newTLSCAs(t)
			var leafClientCA string
			if tc.mutual {
				leafClientCA = cas.site.CAFile
			}
			central, clog := startTLSCentral(t, inv, c, cas.hub, leafClientCA)
			hq, elog := startTLSEdge(t, inv, c, "hq", central, tc.hubTLS(cas), cas.site)
			log := elog
			if tc.centralLo {
				log = clog
			}
			line := log.wait(t, "TLS leafnode handshake error", tc.want)
			t.Logf("refused: %s", line)
			if n := hq.Server().NumLeafNodes(); n != 0 {
				t.Errorf("edge has %d leaf connections", n)
			}
			lz, err := central.Server().Leafz(nil)
			if err != nil {
				t.Fatal(err)
			}
			if lz.NumLeafs != 0 {
				t.Errorf("central's Leafz shows %d leaf nodes: %+v", lz.NumLeafs, lz.Leafs)
			}
		})
	}
}

// TestTLSClientListenersRefuse: central's and the edge's client listeners
// refuse a client trusting another CA (a TLS error naming the unknown
// authority), a client without TLS settings (nats.go upgrades to TLS and
// cannot verify the certificate against the system's roots), and a
// plaintext client, whose CONNECT never gets an answer.
func TestTLSClientListenersRefuse(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	cas := newTLSCAs(t)
	central, _ := startTLSCentral(t, inv, c, cas.hub, "")
	hq, _ := startTLSEdge(t, inv, c, "hq", central, &authz.HubTLS{CAFile: cas.hub.CAFile}, cas.site)
	r1 := authz.DeviceUser(mkThing("acme", "hq", "reader", "r1"))
	ingest := authz.ServiceUser("acme", "ingest")
	for _, l := range []struct {
		name string
		srv  *natstest.Server
		user string
		ca   *natstest.CA // the listener's CA
	}{{"edge", hq, r1, cas.site}, {"central", central, ingest, cas.hub}} {
		t.Run(l.name, func(t *testing.T) {
			var unknown x509.UnknownAuthorityError
			for _, client := range []struct {
				name string
				opts []nats.Option
			}{
				{"another CA", []nats.Option{nats.Secure(cas.other.ClientTLS())}},
				{"the other listener's CA", []nats.Option{nats.Secure(otherCA(cas, l.ca).ClientTLS())}},
				{"no TLS settings", nil},
			} {
				nc, err := nats.Connect(l.srv.ClientURL(), append(client.opts,
					nats.UserInfo(l.user, c.passwords[l.user]), nats.MaxReconnects(0), nats.Timeout(waitTimeout))...)
				if err == nil {
					nc.Close()
					t.Errorf("%s: connected", client.name)
					continue
				}
				if !errors.Is(err, nats.ErrTLS) || !errors.As(err, &unknown) {
					t.Errorf("%s: %v, want a TLS error naming the unknown authority", client.name, err)
				}
			}
			// With the right CA the same login succeeds.
			connectWith(t, l.srv, l.user, c.passwords[l.user], nats.Secure(l.ca.ClientTLS()))

			plaintextRefused(t, l.srv.Addr(), l.user, c.passwords[l.user])
		})
	}
}

// otherCA returns the CA of cas that is neither ca nor cas.other.
func otherCA(cas tlsCAs, ca *natstest.CA) *natstest.CA {
	if ca == cas.hub {
		return cas.site
	}
	return cas.hub
}

// plaintextRefused speaks plaintext NATS to addr: the server announces that
// TLS is required, and a CONNECT with valid credentials followed by a PING
// gets no PONG: the server closes the connection.
func plaintextRefused(t *testing.T, addr, user, password string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	info, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	if !strings.HasPrefix(info, "INFO ") || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("INFO does not require TLS: %s", info)
	}
	connect := fmt.Sprintf("CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":%q,\"pass\":%q,\"protocol\":1}\r\nPING\r\n", user, password)
	if _, err := conn.Write([]byte(connect)); err != nil {
		return // closed at once: refused
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("plaintext client: connection neither answered nor closed within %v", waitTimeout)
			}
			return // closed without a PONG: refused
		}
		if strings.HasPrefix(line, "PONG") || strings.HasPrefix(line, "+OK") {
			t.Fatalf("plaintext client got %q from a TLS listener", line)
		}
	}
}

// connTLSVersion returns the TLS version of user's connection to srv, as
// the server reports it ("" for plaintext).
func connTLSVersion(t *testing.T, srv *natstest.Server, user string) string {
	t.Helper()
	cz, err := srv.Server().Connz(&server.ConnzOptions{Username: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range cz.Conns {
		if ci.AuthorizedUser == user {
			return ci.TLSVersion
		}
	}
	t.Fatalf("no connection of %s", user)
	return ""
}

// logCapture is a nats-server logger that keeps the lines it is given.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

// captureLog makes srv log to a new logCapture. A server logs its first
// moments before it, but a leaf link that fails is retried, and logged,
// again and again.
func captureLog(srv *natstest.Server) *logCapture {
	l := &logCapture{}
	srv.Server().SetLogger(l, false, false)
	return l
}

func (l *logCapture) add(level, format string, v []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, v...))
}

func (l *logCapture) Noticef(format string, v ...any) { l.add("INF", format, v) }
func (l *logCapture) Warnf(format string, v ...any)   { l.add("WRN", format, v) }
func (l *logCapture) Fatalf(format string, v ...any)  { l.add("FTL", format, v) }
func (l *logCapture) Errorf(format string, v ...any)  { l.add("ERR", format, v) }
func (l *logCapture) Debugf(format string, v ...any)  { l.add("DBG", format, v) }
func (l *logCapture) Tracef(format string, v ...any)  { l.add("TRC", format, v) }

// wait waits for a line holding every one of parts and returns it.
func (l *logCapture) wait(t *testing.T, parts ...string) string {
	t.Helper()
	var found string
	waitFor(t, fmt.Sprintf("a log line with %q", parts), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
	lines:
		for _, s := range l.lines {
			for _, p := range parts {
				if !strings.Contains(s, p) {
					continue lines
				}
			}
			found = s
			return true
		}
		return false
	})
	return found
}
