// Package config reads the configuration files of Lintel's apps (central,
// edge, gateway): JSON with whole-line "//" comments, unknown keys refused,
// every field checked at start with errors naming the file and the field,
// and overrides from the environment for containers.
//
// Secrets are never in a configuration file nor on a command line: fields
// ending in "_file" name files that hold them (mode 0600, as lintelctl
// render writes them), and a few may come from the environment instead.
// The layout lintelctl render writes is described in docs/deployment.md.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/storage"
)

// ErrInvalid reports a configuration that cannot be used; the wrapping
// error names the file and the field.
var ErrInvalid = errors.New("invalid configuration")

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// UnmarshalJSON reads a duration string such as "500ms" or "2m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Log is the logging of an app: JSON lines to stderr by default.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `json:"level,omitempty" env:"LOG_LEVEL"`
	// Format is json (default) or text.
	Format string `json:"format,omitempty" env:"LOG_FORMAT"`
}

// TLS are the PEM files of a TLS listener. Paths are relative to the
// configuration file's directory, or absolute.
type TLS struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// ClientCAFile, when set, makes the listener require client
	// certificates signed by it.
	ClientCAFile string `json:"client_ca_file,omitempty"`
}

// Files returns t as authz renders it; nil for nil (plaintext).
func (t *TLS) Files() *authz.TLSFiles {
	if t == nil {
		return nil
	}
	return &authz.TLSFiles{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}
}

// HubTLS is the TLS of an edge's link to central: CAFile pins central's
// CA; CertFile and KeyFile (both or neither) are the edge's certificate
// for a central that asks for one.
type HubTLS struct {
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

// Files returns h as authz renders it; nil for nil (plaintext).
func (h *HubTLS) Files() *authz.HubTLS {
	if h == nil {
		return nil
	}
	return &authz.HubTLS{CAFile: h.CAFile, CertFile: h.CertFile, KeyFile: h.KeyFile}
}

// Central is the configuration of one central node (apps/central).
type Central struct {
	// Inventory and State are the deployment's inventory and the
	// generator's public state (hashes and public keys), as lintelctl
	// render writes them. Required.
	Inventory string `json:"inventory"`
	State     string `json:"state"`
	// Secrets is the directory of central's secrets, as lintelctl render
	// writes it: each org's service password, command key and hash key.
	// Required.
	Secrets string `json:"secrets_dir"`
	// Name is the server name, unique in the deployment. Default
	// "lintel-central".
	Name string `json:"name,omitempty" env:"NAME"`
	// StoreDir is the JetStream store. Required.
	StoreDir string `json:"store_dir" env:"STORE_DIR"`
	// Listen is the client listener (central's services, operators,
	// org-wide gateways). Default "127.0.0.1:4222".
	Listen string `json:"listen,omitempty" env:"LISTEN"`
	// LeafListen is the listener edges link to. Default "0.0.0.0:7422".
	LeafListen string `json:"leaf_listen,omitempty" env:"LEAF_LISTEN"`
	// TLS and LeafTLS are the listeners' certificates. Both are required
	// unless Plaintext is set.
	TLS     *TLS `json:"tls,omitempty"`
	LeafTLS *TLS `json:"leaf_tls,omitempty"`
	// Plaintext turns TLS off on every listener, for a deployment whose
	// links run over an encrypted overlay (Nebula). Default false.
	Plaintext bool `json:"plaintext,omitempty" env:"PLAINTEXT"`
	// Cluster, when set, makes this node one of a cluster of central
	// nodes (docs/cluster.md).
	Cluster *Cluster `json:"cluster,omitempty"`
	// Database is where history is stored; without it central keeps
	// history in JetStream only, within History's limits.
	Database *Database `json:"database,omitempty"`
	// History bounds central's event stream. Default: 30 days, 10 GiB.
	History History `json:"history"`
	// Admin is the admin HTTP listener (/healthz, /readyz, /metrics).
	// Default "127.0.0.1:9470"; "off" disables it.
	Admin string `json:"admin_listen,omitempty" env:"ADMIN_LISTEN"`
	// API, when set, serves central's HTTP API (see API).
	API *API `json:"api,omitempty"`
	Log Log  `json:"log"`

	dir string
}

// Cluster makes a central node one of a cluster of central nodes. Every
// node lists the same routes and shares the route password; each has its
// own name (Central.Name) and store.
type Cluster struct {
	// Name names the cluster. Default "lintel-central".
	Name string `json:"name,omitempty"`
	// Listen is the route listener. Default "0.0.0.0:6222".
	Listen string `json:"listen,omitempty"`
	// Routes are every node's route URLs ("nats-route://10.42.0.1:6222"),
	// this node's included or not. Required.
	Routes []string `json:"routes"`
	// PasswordFile holds the route password all nodes share (mode 0600);
	// LINTEL_CENTRAL_CLUSTER_PASSWORD overrides it.
	PasswordFile string `json:"password_file,omitempty"`
	// TLS is the routes' certificate, valid for server and client use,
	// and the CA both ends verify each other against (client_ca_file,
	// required). Required unless Plaintext is set.
	TLS *TLS `json:"tls,omitempty"`
	// Replicas is how many copies of each stream and bucket central keeps.
	// Default 3, at most the number of routes.
	Replicas int `json:"replicas,omitempty"`

	password authz.Secret
}

// Password returns the route password, from the file or the environment.
func (c *Cluster) Password() authz.Secret { return c.password }

// Options returns the cluster as authz renders it; nil for nil.
func (c *Cluster) Options() *authz.ClusterOptions {
	if c == nil {
		return nil
	}
	host, port := SplitHostPort(c.Listen)
	return &authz.ClusterOptions{Name: c.Name, Host: host, Port: port, Routes: c.Routes, Password: c.password, TLS: c.TLS.Files()}
}

// Database is central's PostgreSQL or TimescaleDB.
type Database struct {
	// URLFile is a file holding the connection URL (it may carry a
	// password); LINTEL_CENTRAL_DATABASE_URL overrides it.
	URLFile string `json:"url_file,omitempty"`
	// Retention drops history older than this. Default 9600h (400 days,
	// storage.DefaultRetention, as TimescaleDB's retention policy of the
	// schema); a very long one keeps everything.
	Retention Duration `json:"retention,omitempty"`
	// Maintenance is central's own maintenance of the database.
	Maintenance Maintenance `json:"maintenance,omitzero"`

	url string
}

// Maintenance is how central maintains its database (package storage,
// Store.StartMaintenance; docs/storage.md, "Maintenance"): retention on
// every flavor, compression and the hourly aggregate's refresh on
// TimescaleDB, in place of TimescaleDB's policy jobs.
type Maintenance struct {
	// Every is how often a pass runs. Default 30m.
	Every Duration `json:"every,omitempty"`
	// CompressAfter is the age at which event chunks are compressed on
	// TimescaleDB. Default 336h (14 days).
	CompressAfter Duration `json:"compress_after,omitempty"`
	// RefreshWindow is how far back the hourly aggregate is refreshed on
	// TimescaleDB, at least 2h. Default 168h (7 days).
	RefreshWindow Duration `json:"refresh_window,omitempty"`
	// Scheduler leaves maintenance to TimescaleDB's policy jobs (which
	// fail on some PostgreSQL versions), and to nobody on plain
	// PostgreSQL: central then runs none.
	Scheduler bool `json:"scheduler,omitempty"`
}

// Config is what package storage makes of m and retention, or nil when m
// leaves maintenance to the scheduler.
func (m Maintenance) Config(retention Duration) *storage.MaintenanceConfig {
	if m.Scheduler {
		return nil
	}
	return &storage.MaintenanceConfig{
		Every: time.Duration(m.Every), Retention: time.Duration(retention),
		CompressAfter: time.Duration(m.CompressAfter), RefreshWindow: time.Duration(m.RefreshWindow),
	}
}

// History bounds central's event stream.
type History struct {
	MaxAge   Duration `json:"max_age,omitempty"`
	MaxBytes int64    `json:"max_bytes,omitempty"`
}

// Edge is the configuration of one edge node (apps/edge).
type Edge struct {
	// Org and Edge name the site. Required.
	Org  string `json:"org"`
	Edge string `json:"edge"`
	// Inventory and State as for [Central]. Required.
	Inventory string `json:"inventory"`
	State     string `json:"state"`
	// Secrets is the directory of the edge's secrets, as lintelctl render
	// writes it: leaf.seed, audit.seed, command.seed, hash.key. Required.
	Secrets string `json:"secrets_dir"`
	// StoreDir is the JetStream store. Required.
	StoreDir string `json:"store_dir" env:"STORE_DIR"`
	// Listen is the device listener. Default "0.0.0.0:4222".
	Listen string `json:"listen,omitempty" env:"LISTEN"`
	// HubURLs are central's leaf URLs ("nats-leaf://10.42.0.1:7422").
	// Required.
	HubURLs []string `json:"hub_urls"`
	// TLS is the device (and MQTT) listener's certificate and HubTLS the
	// link's; both required unless Plaintext is set.
	TLS    *TLS    `json:"tls,omitempty"`
	HubTLS *HubTLS `json:"hub_tls,omitempty"`
	// Plaintext turns TLS off, as for [Central].
	Plaintext bool `json:"plaintext,omitempty" env:"PLAINTEXT"`
	// MQTTListen, when set, starts the MQTT listener ("0.0.0.0:8883").
	MQTTListen string `json:"mqtt_listen,omitempty" env:"MQTT_LISTEN"`
	// Access starts the access service (doors and credentials). Default
	// true.
	Access *bool `json:"access,omitempty"`
	// Rules starts the rules engine. Default true.
	Rules *bool `json:"rules,omitempty"`
	// Admin as for [Central]; default "127.0.0.1:9471".
	Admin string `json:"admin_listen,omitempty" env:"ADMIN_LISTEN"`
	Log   Log    `json:"log"`

	dir string
}

// LoadCentral reads, overrides from the environment (LINTEL_CENTRAL_*),
// defaults and checks central's configuration file.
func LoadCentral(path string) (*Central, error) {
	c := new(Central)
	if err := load(path, "LINTEL_CENTRAL_", c); err != nil {
		return nil, err
	}
	c.dir = filepath.Dir(path)
	if err := c.check(path); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadEdge reads, overrides from the environment (LINTEL_EDGE_*), defaults
// and checks an edge's configuration file.
func LoadEdge(path string) (*Edge, error) {
	e := new(Edge)
	if err := load(path, "LINTEL_EDGE_", e); err != nil {
		return nil, err
	}
	e.dir = filepath.Dir(path)
	if err := e.check(path); err != nil {
		return nil, err
	}
	return e, nil
}

// load decodes the file at path into v strictly, then applies the
// environment overrides of v's env-tagged fields.
func load(path, envPrefix string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := Decode(data, v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
	}
	if err := applyEnv(reflect.ValueOf(v).Elem(), envPrefix); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Decode decodes JSON with whole-line "//" comments into v, refusing
// unknown keys and anything after the object; errors name the line.
func Decode(data []byte, v any) error {
	clean := StripComments(data)
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return locate(clean, dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("line %d: data after the configuration object", lineAt(clean, dec.InputOffset()))
	}
	return nil
}

// StripComments blanks every line whose first non-blank characters are
// "//", keeping line numbers.
func StripComments(data []byte) []byte {
	lines := bytes.Split(data, []byte("\n"))
	for i, l := range lines {
		if bytes.HasPrefix(bytes.TrimSpace(l), []byte("//")) {
			lines[i] = nil
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

// locate turns a decoding error into one naming the field and line.
func locate(data []byte, dec *json.Decoder, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("line %d: field %s: want %s, not %s", lineAt(data, te.Offset), te.Field, te.Type, te.Value)
	case errors.As(err, &se):
		return fmt.Errorf("line %d: %w", lineAt(data, se.Offset), err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("line %d: unknown field %s", lineAt(data, dec.InputOffset()), strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("empty or truncated file")
	}
	return fmt.Errorf("line %d: %w", lineAt(data, dec.InputOffset()), err)
}

func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// applyEnv sets each env-tagged string, bool or int field of v (a struct,
// nested structs included) from prefix+tag when that variable is set.
func applyEnv(v reflect.Value, prefix string) error {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration(0)) {
			if err := applyEnv(fv, prefix); err != nil {
				return err
			}
			continue
		}
		tag := f.Tag.Get("env")
		if tag == "" {
			continue
		}
		val, ok := os.LookupEnv(prefix + tag)
		if !ok {
			continue
		}
		switch fv.Kind() {
		case reflect.String:
			fv.SetString(val)
		case reflect.Bool:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return fmt.Errorf("environment %s%s: want true or false, not %q", prefix, tag, val)
			}
			fv.SetBool(b)
		default:
			return fmt.Errorf("environment %s%s: unsupported field type", prefix, tag)
		}
	}
	return nil
}

// problems collects what is wrong with a configuration, naming file and
// field.
type problems struct {
	file string
	errs []error
}

func (p *problems) add(field, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s: %s", p.file, field, fmt.Sprintf(format, args...)))
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(p.errs...))
}

// path resolves a path of the configuration relative to its directory.
func path(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// requireFile checks that the file named by field exists and is readable.
func (p *problems) requireFile(field, file string) {
	if file == "" {
		p.add(field, "required")
		return
	}
	if _, err := os.Stat(file); err != nil {
		p.add(field, "%v", err)
	}
}

// Level returns the slog level of l.
func (l Log) level() (slog.Level, error) {
	switch strings.ToLower(l.Level) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("want debug, info, warn or error, not %q", l.Level)
}

func (l Log) check(p *problems) {
	if _, err := l.level(); err != nil {
		p.add("log.level", "%v", err)
	}
	switch l.Format {
	case "", "json", "text":
	default:
		p.add("log.format", "want json or text, not %q", l.Format)
	}
}

// Logger returns the logger l describes, writing to w, with its level
// variable so that a reload can change it.
func (l Log) Logger(w io.Writer, level *slog.LevelVar) *slog.Logger {
	lv, _ := l.level()
	level.Set(lv)
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Level returns the configured level, for a reload.
func (l Log) LevelValue() slog.Level { lv, _ := l.level(); return lv }
