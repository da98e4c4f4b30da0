package authz_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/testing/natstest"
	"golang.org/x/crypto/bcrypt"
)

func TestRenderTLSGolden(t *testing.T) {
	inv := natsInv()
	st := goldenState(t, inv)
	central, err := authz.RenderCentral(inv, st, authz.RenderOptions{
		TLS: &authz.TLSFiles{CertFile: "/etc/lintel/tls/central.pem", KeyFile: "/etc/lintel/tls/central-key.pem"},
		LeafTLS: &authz.TLSFiles{CertFile: "/etc/lintel/tls/central-leaf.pem", KeyFile: "/etc/lintel/tls/central-leaf-key.pem",
			ClientCAFile: "/etc/lintel/tls/edges-ca.pem"},
		HubTLS: &authz.HubTLS{CAFile: "ignored for central"},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "central-tls.conf", central)
	edge, err := authz.RenderEdge(inv, st, "acme", "hq", authz.RenderOptions{
		HubURLs: []string{"nats-leaf://central.example.com:7422"},
		TLS:     &authz.TLSFiles{CertFile: "/etc/lintel/tls/edge.pem", KeyFile: "/etc/lintel/tls/edge-key.pem"},
		HubTLS: &authz.HubTLS{CAFile: "/etc/lintel/tls/central-ca.pem",
			CertFile: "/etc/lintel/tls/edge-client.pem", KeyFile: "/etc/lintel/tls/edge-client-key.pem"},
		LeafTLS: &authz.TLSFiles{CertFile: "ignored for an edge"},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "edge-acme-hq-tls.conf", edge)
}

// tlsDeployment renders central's and edge hq's files with TLS on every
// listener and the leaf link, with real certificate files, and returns
// their paths and render options.
func tlsDeployment(t *testing.T, inv *authz.Inventory, c *natsCreds) (central, edge string, co, eo authz.RenderOptions) {
	t.Helper()
	hub, site := natstest.TempCA(t), natstest.TempCA(t)
	dir := t.TempDir()
	co = testRender(t)
	co.TLS = &authz.TLSFiles{CertFile: hub.ServerCertFile, KeyFile: hub.ServerKeyFile}
	co.LeafTLS = &authz.TLSFiles{CertFile: hub.ServerCertFile, KeyFile: hub.ServerKeyFile, ClientCAFile: site.CAFile}
	text, err := authz.RenderCentral(inv, c.st, co)
	if err != nil {
		t.Fatal(err)
	}
	central = writeTestFile(t, dir, "central.conf", text)

	eo = testRender(t)
	eo.HubURLs = []string{"nats-leaf://127.0.0.1:7422"}
	eo.ConfigDir = t.TempDir()
	eo.TLS = &authz.TLSFiles{CertFile: site.ServerCertFile, KeyFile: site.ServerKeyFile}
	eo.HubTLS = &authz.HubTLS{CAFile: hub.CAFile, CertFile: site.ClientCertFile, KeyFile: site.ClientKeyFile}
	if err := authz.WriteLeafSeedConf(filepath.Join(eo.ConfigDir, authz.DefaultSeedFile),
		authz.NewSecret(c.seeds["acme.hq"])); err != nil {
		t.Fatal(err)
	}
	text, err = authz.RenderEdge(inv, c.st, "acme", "hq", eo)
	if err != nil {
		t.Fatal(err)
	}
	edge = writeTestFile(t, eo.ConfigDir, "nats.conf", text)
	return central, edge, co, eo
}

// TestRenderedTLSFilesPassConfigTest: the nats-server binary accepts the
// rendered files with TLS (its -t mode loads the certificate files), and
// refuses one whose certificate file is missing.
func TestRenderedTLSFilesPassConfigTest(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central, edge, co, _ := tlsDeployment(t, inv, c)
	natsServerConfigTest(t, central, edge)

	co.TLS = &authz.TLSFiles{CertFile: filepath.Join(t.TempDir(), "missing.pem"), KeyFile: co.TLS.KeyFile}
	text, err := authz.RenderCentral(inv, c.st, co)
	if err != nil {
		t.Fatal(err)
	}
	bad := writeTestFile(t, t.TempDir(), "central.conf", text)
	if out, err := exec.Command("/usr/sbin/nats-server", "-t", "-c", bad).CombinedOutput(); err == nil {
		t.Errorf("nats-server -t accepts a configuration whose certificate file is missing:\n%s", out)
	}
}

// TestTLSOptions: CentralOptions and EdgeOptions carry the TLS of the
// rendered text: central's listeners require TLS (the leaf-node listener
// client certificates too), the edge's leaf remote uses TLS with the pinned
// CA as its only root and its client certificate; without TLS settings
// there is none.
func TestTLSOptions(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	_, _, co, eo := tlsDeployment(t, inv, c)
	copts, err := authz.CentralOptions(inv, c.st, co)
	if err != nil {
		t.Fatal(err)
	}
	want := authz.TLSHandshakeTimeout.Seconds()
	if copts.TLSConfig == nil || copts.TLSVerify || copts.TLSTimeout != want || len(copts.TLSConfig.Certificates) != 1 {
		t.Errorf("client listener: TLS %v, verify %v, timeout %v", copts.TLSConfig != nil, copts.TLSVerify, copts.TLSTimeout)
	}
	if l := copts.LeafNode; l.TLSConfig == nil || l.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert ||
		l.TLSConfig.ClientCAs == nil || l.TLSTimeout != want {
		t.Errorf("leaf-node listener: %+v", l)
	}
	eopts, err := authz.EdgeOptions(inv, c.st, "acme", "hq", eo)
	if err != nil {
		t.Fatal(err)
	}
	if eopts.TLSConfig == nil || eopts.TLSTimeout != want {
		t.Error("edge client listener without TLS")
	}
	r := eopts.LeafNode.Remotes[0]
	// nats-server uses TLS on a remote with a TLS configuration.
	if tc := r.TLSConfig; tc == nil || tc.RootCAs == nil || tc.InsecureSkipVerify || len(tc.Certificates) != 1 || r.TLSTimeout != want {
		t.Errorf("leaf remote: TLS config %v, timeout %v", tc != nil, r.TLSTimeout)
	}

	plain, err := authz.CentralOptions(inv, c.st, testRender(t))
	if err != nil {
		t.Fatal(err)
	}
	if plain.TLSConfig != nil || plain.LeafNode.TLSConfig != nil {
		t.Error("TLS without TLS settings")
	}
}

// TestTLSFileErrors: bad TLS settings fail with an error naming the field
// and the file: ErrRenderOption from rendering for an incomplete setting or
// a relative path, ErrTLSFile from checkTLSFiles, CentralOptions and
// EdgeOptions for a file that cannot be used.
func TestTLSFileErrors(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	ca, other := natstest.TempCA(t), natstest.TempCA(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	junk := writeTestFile(t, dir, "junk.pem", []byte("not a certificate\n"))
	good := &authz.TLSFiles{CertFile: ca.ServerCertFile, KeyFile: ca.ServerKeyFile}
	hub := []string{"nats-leaf://127.0.0.1:7422"}
	for _, tc := range []struct {
		name  string
		o     authz.RenderOptions
		want  error
		parts []string // in the message
	}{
		{"missing certificate file", authz.RenderOptions{TLS: &authz.TLSFiles{CertFile: missing, KeyFile: ca.ServerKeyFile}},
			authz.ErrTLSFile, []string{"TLS.CertFile", missing, "no such file"}},
		{"key file holding no certificate as certificate", authz.RenderOptions{TLS: &authz.TLSFiles{CertFile: ca.ServerKeyFile, KeyFile: ca.ServerKeyFile}},
			authz.ErrTLSFile, []string{"TLS.CertFile", ca.ServerKeyFile, "no PEM certificate"}},
		{"key not matching the certificate", authz.RenderOptions{LeafTLS: &authz.TLSFiles{CertFile: ca.ServerCertFile, KeyFile: other.ServerKeyFile}},
			authz.ErrTLSFile, []string{"LeafTLS.KeyFile", other.ServerKeyFile, "is not the key of LeafTLS.CertFile", ca.ServerCertFile}},
		{"missing key file", authz.RenderOptions{TLS: &authz.TLSFiles{CertFile: ca.ServerCertFile, KeyFile: missing}},
			authz.ErrTLSFile, []string{"TLS.KeyFile", missing}},
		{"unreadable client CA file", authz.RenderOptions{LeafTLS: &authz.TLSFiles{CertFile: ca.ServerCertFile, KeyFile: ca.ServerKeyFile, ClientCAFile: dir}},
			authz.ErrTLSFile, []string{"LeafTLS.ClientCAFile", dir}},
		{"missing hub CA file", authz.RenderOptions{HubTLS: &authz.HubTLS{CAFile: missing}},
			authz.ErrTLSFile, []string{"HubTLS.CAFile", missing}},
		{"hub CA file without a certificate", authz.RenderOptions{HubTLS: &authz.HubTLS{CAFile: junk}},
			authz.ErrTLSFile, []string{"HubTLS.CAFile", junk, "no PEM certificate"}},
		{"edge client key not matching", authz.RenderOptions{HubTLS: &authz.HubTLS{CAFile: ca.CAFile, CertFile: ca.ClientCertFile, KeyFile: ca.ServerKeyFile}},
			authz.ErrTLSFile, []string{"HubTLS.KeyFile", "HubTLS.CertFile", ca.ClientCertFile}},
		{"certificate without key", authz.RenderOptions{TLS: &authz.TLSFiles{CertFile: ca.ServerCertFile}},
			authz.ErrRenderOption, []string{"TLS needs CertFile and KeyFile"}},
		{"relative path", authz.RenderOptions{LeafTLS: &authz.TLSFiles{CertFile: "tls/leaf.pem", KeyFile: ca.ServerKeyFile}},
			authz.ErrRenderOption, []string{"LeafTLS.CertFile", "tls/leaf.pem", "absolute"}},
		{"hub TLS without CA", authz.RenderOptions{HubTLS: &authz.HubTLS{CertFile: ca.ClientCertFile, KeyFile: ca.ClientKeyFile}},
			authz.ErrRenderOption, []string{"HubTLS needs CAFile"}},
		{"hub TLS certificate without key", authz.RenderOptions{HubTLS: &authz.HubTLS{CAFile: ca.CAFile, CertFile: ca.ClientCertFile}},
			authz.ErrRenderOption, []string{"HubTLS needs both CertFile and KeyFile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s: %v, want %v", what, err, tc.want)
				}
				for _, p := range tc.parts {
					if !strings.Contains(err.Error(), p) {
						t.Errorf("%s: %q does not mention %q", what, err, p)
					}
				}
			}
			check("checkTLSFiles", authz.CheckTLSFiles(tc.o))
			o := tc.o
			o.HubURLs = hub
			if o.HubTLS == nil {
				check("CentralOptions", centralOptionsErr(inv, c, o))
			}
			if o.LeafTLS == nil {
				check("EdgeOptions", edgeOptionsErr(inv, c, o))
			}
		})
	}
	// The files of a good setting pass, and an edge ignores central's
	// settings and central the edge's.
	if err := authz.CheckTLSFiles(authz.RenderOptions{TLS: good, LeafTLS: good,
		HubTLS: &authz.HubTLS{CAFile: ca.CAFile, CertFile: ca.ClientCertFile, KeyFile: ca.ClientKeyFile}}); err != nil {
		t.Errorf("good files: %v", err)
	}
	if _, err := authz.RenderCentral(inv, c.st, authz.RenderOptions{HubTLS: &authz.HubTLS{}}); err != nil {
		t.Errorf("central with an edge's HubTLS: %v", err)
	}
	if _, err := authz.RenderEdge(inv, c.st, "acme", "hq", authz.RenderOptions{HubURLs: hub, LeafTLS: &authz.TLSFiles{}}); err != nil {
		t.Errorf("edge with central's LeafTLS: %v", err)
	}
}

func centralOptionsErr(inv *authz.Inventory, c *natsCreds, o authz.RenderOptions) error {
	_, err := authz.CentralOptions(inv, c.st, o)
	return err
}

func edgeOptionsErr(inv *authz.Inventory, c *natsCreds, o authz.RenderOptions) error {
	_, err := authz.EdgeOptions(inv, c.st, "acme", "hq", o)
	return err
}

// TestRenderedTLSFilesHoldNoKey: the rendered files name the key files,
// never hold a key.
func TestRenderedTLSFilesHoldNoKey(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central, edge, _, _ := tlsDeployment(t, inv, c)
	for _, f := range []string{central, edge} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("PRIVATE KEY")) || !bytes.Contains(data, []byte("key_file:")) {
			t.Errorf("%s: a key in the file, or no key_file", f)
		}
	}
}
