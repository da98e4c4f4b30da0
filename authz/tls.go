package authz

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// tlsHandshakeTimeout bounds the TLS handshake of every connection to a
// listener with TLS, and of the leaf link: longer than nats-server's 2
// seconds, for edges on slow links.
const tlsHandshakeTimeout = 5 * time.Second

// TLSFiles are the PEM files of a TLS listener. Paths must be absolute:
// nats-server reads them relative to its working directory, not to the
// configuration file.
type TLSFiles struct {
	// CertFile is the certificate chain the listener presents, its own
	// certificate first. It must be valid for every host name and address
	// clients dial: the clients verify it.
	CertFile string
	// KeyFile is the private key of CertFile's certificate.
	KeyFile string
	// ClientCAFile, when set, makes the listener require a client
	// certificate signed by a CA in this file (nats-server's verify),
	// besides the client's usual credentials. Devices log in with
	// passwords and need none, so the client listener usually leaves it
	// empty; central's leaf-node listener may set it to admit only edges
	// with a certificate ([HubTLS].CertFile).
	ClientCAFile string
}

// HubTLS is the TLS of an edge's leaf link to central.
type HubTLS struct {
	// CAFile pins central: the leaf link accepts only a certificate of
	// central's leaf-node listener that chains to a CA in this file (the
	// system's roots are not consulted) and is valid for the host of the
	// hub URL dialled. Required.
	CAFile string
	// CertFile and KeyFile, both or neither, are the edge's client
	// certificate and key, for a central whose leaf-node listener requires
	// one ([TLSFiles].ClientCAFile).
	CertFile, KeyFile string
}

// checkTLSFiles reads every file that o's TLS, LeafTLS and HubTLS name and
// reports the first that cannot be used, with an error wrapping
// [ErrTLSFile] that names the field and the file, or [ErrRenderOption] for
// an incomplete or relative setting. [CentralOptions] and [EdgeOptions]
// call it; call it before starting a stock nats-server on a file of
// [RenderCentral] or [RenderEdge], which do not read the files.
func checkTLSFiles(o RenderOptions) error {
	if err := o.checkTLSFields(true, true); err != nil {
		return err
	}
	for _, l := range []struct {
		field string
		f     *TLSFiles
	}{{"TLS", o.TLS}, {"LeafTLS", o.LeafTLS}} {
		if l.f == nil {
			continue
		}
		if err := checkKeyPair(l.field, l.f.CertFile, l.f.KeyFile); err != nil {
			return err
		}
		if l.f.ClientCAFile != "" {
			if err := checkCAFile(l.field+".ClientCAFile", l.f.ClientCAFile); err != nil {
				return err
			}
		}
	}
	if h := o.HubTLS; h != nil {
		if err := checkCAFile("HubTLS.CAFile", h.CAFile); err != nil {
			return err
		}
		if h.CertFile != "" {
			if err := checkKeyPair("HubTLS", h.CertFile, h.KeyFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkTLSFields checks that the TLS settings that apply (the listeners'
// always, LeafTLS for central, HubTLS for an edge) are complete and name
// absolute paths, without reading the files.
func (o RenderOptions) checkTLSFields(central, edge bool) error {
	type path struct{ field, value string }
	var paths []path
	listener := func(field string, f *TLSFiles) error {
		if f == nil {
			return nil
		}
		if f.CertFile == "" || f.KeyFile == "" {
			return fmt.Errorf("%w: %s needs CertFile and KeyFile", ErrRenderOption, field)
		}
		paths = append(paths, path{field + ".CertFile", f.CertFile}, path{field + ".KeyFile", f.KeyFile},
			path{field + ".ClientCAFile", f.ClientCAFile})
		return nil
	}
	if err := listener("TLS", o.TLS); err != nil {
		return err
	}
	if central {
		if err := listener("LeafTLS", o.LeafTLS); err != nil {
			return err
		}
	}
	if h := o.HubTLS; edge && h != nil {
		if h.CAFile == "" {
			return fmt.Errorf("%w: HubTLS needs CAFile, the CA that central's leaf-node certificate is pinned to", ErrRenderOption)
		}
		if (h.CertFile == "") != (h.KeyFile == "") {
			return fmt.Errorf("%w: HubTLS needs both CertFile and KeyFile, or neither", ErrRenderOption)
		}
		paths = append(paths, path{"HubTLS.CAFile", h.CAFile}, path{"HubTLS.CertFile", h.CertFile},
			path{"HubTLS.KeyFile", h.KeyFile})
	}
	for _, p := range paths {
		if p.value != "" && !filepath.IsAbs(p.value) {
			return fmt.Errorf("%w: %s %q must be an absolute path, as nats-server reads it relative to its working directory",
				ErrRenderOption, p.field, p.value)
		}
	}
	return nil
}

// checkKeyPair checks that certFile holds a certificate and keyFile its key.
func checkKeyPair(field, certFile, keyFile string) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("%w: %s.CertFile: %w", ErrTLSFile, field, err)
	}
	if _, err := parseCerts(certPEM); err != nil {
		return fmt.Errorf("%w: %s.CertFile %s: %w", ErrTLSFile, field, certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("%w: %s.KeyFile: %w", ErrTLSFile, field, err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("%w: %s.KeyFile %s is not the key of %s.CertFile %s: %w", ErrTLSFile, field, keyFile, field, certFile, err)
	}
	return nil
}

// checkCAFile checks that file holds at least one certificate.
func checkCAFile(field, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrTLSFile, field, err)
	}
	if _, err := parseCerts(data); err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrTLSFile, field, file, err)
	}
	return nil
}

// parseCerts parses the PEM certificates of data; it fails on a file with
// none, or with one that does not parse.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return certs, nil
}

// tlsBlock writes a listener's tls block.
func (w *confWriter) tlsBlock(f *TLSFiles) {
	w.line("tls {")
	w.kv("cert_file", quote(f.CertFile))
	w.kv("key_file", quote(f.KeyFile))
	if f.ClientCAFile != "" {
		w.line("# Clients must present a certificate signed by this CA.")
		w.kv("ca_file", quote(f.ClientCAFile))
		w.kv("verify", "true")
	}
	w.kv("timeout", tlsTimeout())
	w.line("}")
}

// hubTLSBlock writes the tls block of an edge's leaf remote.
func (w *confWriter) hubTLSBlock(h *HubTLS) {
	w.line("# Central's certificate must chain to this CA; the system's roots are not trusted.")
	w.line("tls {")
	w.kv("ca_file", quote(h.CAFile))
	if h.CertFile != "" {
		w.kv("cert_file", quote(h.CertFile))
		w.kv("key_file", quote(h.KeyFile))
	}
	w.kv("timeout", tlsTimeout())
	w.line("}")
}

func tlsTimeout() string {
	return strconv.FormatFloat(tlsHandshakeTimeout.Seconds(), 'f', -1, 64)
}
