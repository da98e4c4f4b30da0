package devicekit

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// Defaults applied by [Connect] to the zero fields of a [Config].
const (
	// DefaultHeartbeatInterval is how often a device sends a heartbeat
	// unless Config.HeartbeatInterval says otherwise.
	DefaultHeartbeatInterval = 30 * time.Second
	// DefaultAckTimeout is how long one attempt of a publish waits for the
	// stream's acknowledgement before sending the message again.
	DefaultAckTimeout = 2 * time.Second
	// DefaultTimeout bounds calls whose context has no deadline.
	DefaultTimeout = 30 * time.Second
	// DefaultCloseTimeout bounds Close: stopping command handling and
	// publishing the death.
	DefaultCloseTimeout = 5 * time.Second
	// DefaultReconnectBufferSize is the size in bytes of the buffer that
	// holds outgoing messages while the device is disconnected: nats.go's
	// own default.
	DefaultReconnectBufferSize = nats.DefaultReconnectBufSize
	// DefaultReconnectWait is the pause between reconnection attempts:
	// nats.go's own default.
	DefaultReconnectWait = nats.DefaultReconnectWait
	// DefaultCommandHistory is how many recent command IDs and idempotency
	// keys a device remembers to recognise repeated commands.
	DefaultCommandHistory = 1024
	// DefaultOutboxRetry is how often a device with an outbox sends again,
	// while connected, the envelopes whose publish ended without an
	// answer, unless Config.OutboxRetry says otherwise: far below the
	// edge's duplicate window (2 minutes by default), within which a
	// repeated envelope is stored once.
	DefaultOutboxRetry = 5 * time.Second
)

// Config configures [Connect]. The zero value of every field but Thing, URLs
// and Password means the default.
type Config struct {
	// Thing is the thing the device is. It must be valid and not of a
	// reserved thing type (see topic.ValidateThing).
	Thing topic.Thing
	// URLs are the NATS URLs of the edge's server, tried in turn. At least
	// one is required.
	URLs []string
	// User is the device's NATS user; empty means Thing.String(), the name
	// the authorization package gives device users.
	User string
	// Password is the device's NATS password. It never appears in logs or
	// formatted output.
	Password Password
	// Name is the NATS connection name the server shows; empty means
	// "devicekit " followed by the thing.
	Name string

	// BootID identifies this boot; zero means a new ID for every Connect,
	// which is what a device reboot is. The boot's sequence numbers start at
	// 1 with the birth.
	BootID message.ID
	// Model and Firmware describe the device in its birth message.
	Model, Firmware string

	// Logger receives the device's log records; nil discards them. Keys
	// are the LogKey constants; the password is never logged.
	Logger *slog.Logger
	// Now is the device's clock, used to stamp envelopes and to decide
	// whether a command has expired; nil means time.Now.
	Now func() time.Time
	// IDs makes envelope and boot IDs; nil means a generator of the
	// device's own, reading Now.
	IDs *message.IDGenerator

	// HeartbeatInterval is how often the device publishes a heartbeat (and
	// announces in its birth); zero means DefaultHeartbeatInterval, a
	// negative value turns heartbeats off.
	HeartbeatInterval time.Duration
	// TelemetryUnacknowledged makes PublishTelemetry send without waiting
	// for the stream's acknowledgement: cheaper, but a reading lost in
	// transit (or refused by a full stream) goes unnoticed. Events, states,
	// acks, births and deaths are always acknowledged.
	TelemetryUnacknowledged bool
	// AckTimeout is how long one attempt of an acknowledged publish waits
	// before sending the message again with the same ID; zero means
	// DefaultAckTimeout.
	AckTimeout time.Duration
	// Timeout bounds every call whose context has no deadline, Connect
	// included; zero means DefaultTimeout.
	Timeout time.Duration
	// CloseTimeout bounds Close; zero means DefaultCloseTimeout.
	CloseTimeout time.Duration

	// Outbox, when set, is a directory (created if missing) where the
	// device keeps every envelope it publishes with an acknowledgement
	// through Publish, PublishEvent, PublishState or PublishTelemetry
	// (unless TelemetryUnacknowledged) until the edge's stream
	// acknowledges it, so that a crash or power cut does not forget it.
	// Empty means no outbox: what was not acknowledged when the process
	// ended is lost. The birth, heartbeats, death and command acks, which
	// belong to the running boot, are never kept.
	//
	// Each envelope, already stamped with its ID, is written to its own
	// file and synced (the file, then the directory) before it is sent,
	// and removed once acknowledged: one pair of fsyncs per publish, which
	// usually costs more than the publish itself. Connect sends what a
	// previous run left there again, unchanged (same ID, same bytes) and in
	// the order it was written, before the birth; while the client runs, an
	// envelope whose publish ended without an answer is sent again the
	// same way after a reconnection, every OutboxRetry, and before any
	// later publish. See docs/devicekit.md for what that
	// guarantees (exactly once at the edge only within its duplicate
	// window, 2 minutes by default) and what it does not.
	// Files it cannot read are logged and renamed with a .bad suffix, never
	// deleted. One client at a time may use a directory: Connect fails with
	// [ErrOutboxLocked] while another holds it (flock(2), so Linux, macOS
	// and the BSDs only). Give each device its own directory.
	Outbox string
	// OutboxRetry is how often, while connected, the client sends again
	// the envelopes left in the outbox by publishes that ended without an
	// answer; it also does so after every reconnection. Zero means
	// DefaultOutboxRetry. Keep it well below the edge's duplicate window
	// (edgekit.NodeConfig.DuplicateWindow).
	OutboxRetry time.Duration

	// ReconnectBufferSize is the size in bytes of the buffer that holds
	// outgoing messages while the device is disconnected; zero means
	// DefaultReconnectBufferSize, and a negative value disables buffering,
	// so that every publish during an outage fails at once. A publish that
	// does not fit fails with [ErrBufferFull].
	ReconnectBufferSize int
	// ReconnectWait is the pause between reconnection attempts; zero means
	// DefaultReconnectWait. The device tries to reconnect for ever.
	ReconnectWait time.Duration

	// CommandKeys are the public keys ("U…" NKeys) whose signed commands
	// the device acts on: central's command key of the org and the edge's
	// own (authz's State.CommandPublicKeys gives both, for provisioning).
	// A message on the cmd subject that is not a command for this very
	// device signed by one of them (see message.VerifyCommand) is dropped
	// unanswered, counted (Stats.CommandsRefused) and logged. Required by
	// HandleCommands.
	CommandKeys []string

	// CommandHistory is how many recent command IDs and idempotency keys
	// the device remembers, with their outcome, to recognise a repeated
	// command; zero means DefaultCommandHistory.
	CommandHistory int

	// TLS, when set, makes the connection to the edge use TLS and verify
	// the edge's certificate: RootCAs holds the CA that signed it (nil
	// means the system's roots), Certificates a client certificate for an
	// edge that asks for one. Connect then refuses an edge that offers no
	// TLS. InsecureSkipVerify is refused unless VerifyConnection or
	// VerifyPeerCertificate verifies the certificate instead. Connect does
	// not try again after a failed handshake (an untrusted certificate, one
	// for another name): its error wraps nats.ErrTLS and the cause, such as
	// an x509.UnknownAuthorityError. nil (and no CAFile) means plaintext,
	// unless the edge requires TLS, which then fails verification against
	// the system's roots.
	TLS *tls.Config
	// CAFile is a PEM file of the CA certificates that sign the edge's
	// certificate: the RootCAs of (a copy of) TLS, which it implies. An
	// unreadable file, or one without a certificate, fails Connect with
	// [ErrInvalidConfig] naming it.
	CAFile string

	// NATSOptions are applied after the options Connect sets, for what
	// Config does not cover. They must not change the inbox prefix, the
	// user or the reconnection handlers.
	NATSOptions []nats.Option
}

// withDefaults returns c with its defaults applied, or an error wrapping
// ErrInvalidConfig.
func (c Config) withDefaults() (Config, error) {
	if err := topic.ValidateThing(c.Thing); err != nil {
		return c, fmt.Errorf("%w: thing: %w", ErrInvalidConfig, err)
	}
	if len(c.URLs) == 0 {
		return c, fmt.Errorf("%w: no server URLs", ErrInvalidConfig)
	}
	for name, d := range map[string]time.Duration{"AckTimeout": c.AckTimeout, "Timeout": c.Timeout, "CloseTimeout": c.CloseTimeout, "ReconnectWait": c.ReconnectWait, "OutboxRetry": c.OutboxRetry} {
		if d < 0 {
			return c, fmt.Errorf("%w: negative %s %v", ErrInvalidConfig, name, d)
		}
	}
	if bad := message.ValidCommandKeys(c.CommandKeys); bad != "" {
		return c, fmt.Errorf("%w: command key %q is not a public user NKey", ErrInvalidConfig, bad)
	}
	if c.CommandHistory < 0 {
		return c, fmt.Errorf("%w: negative CommandHistory %d", ErrInvalidConfig, c.CommandHistory)
	}
	if err := c.applyTLS(); err != nil {
		return c, err
	}
	if c.User == "" {
		c.User = c.Thing.String()
	}
	if c.Name == "" {
		c.Name = "devicekit " + c.Thing.String()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.IDs == nil {
		c.IDs = &message.IDGenerator{Now: c.Now}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.ReconnectBufferSize == 0 {
		c.ReconnectBufferSize = DefaultReconnectBufferSize
	} else if c.ReconnectBufferSize < 0 {
		c.ReconnectBufferSize = -1
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.CommandHistory == 0 {
		c.CommandHistory = DefaultCommandHistory
	}
	if c.OutboxRetry == 0 {
		c.OutboxRetry = DefaultOutboxRetry
	}
	if c.BootID.IsZero() {
		c.BootID = c.IDs.New()
	}
	return c, nil
}

// applyTLS loads CAFile into a copy of TLS, checks it, and puts it first
// among c's NATSOptions, after the options Connect sets.
func (c *Config) applyTLS() error {
	if c.TLS == nil && c.CAFile == "" {
		return nil
	}
	var tc *tls.Config
	if c.TLS != nil {
		tc = c.TLS.Clone()
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if tc.InsecureSkipVerify && tc.VerifyConnection == nil && tc.VerifyPeerCertificate == nil {
		return fmt.Errorf("%w: TLS.InsecureSkipVerify without VerifyConnection or VerifyPeerCertificate: the edge's certificate must be verified", ErrInvalidConfig)
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return fmt.Errorf("%w: CAFile: %w", ErrInvalidConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: CAFile %s: no PEM certificate in it", ErrInvalidConfig, c.CAFile)
		}
		tc.RootCAs = pool
	}
	c.NATSOptions = append([]nats.Option{nats.Secure(tc)}, c.NATSOptions...)
	return nil
}

// Password is a secret that formats and logs as "[REDACTED]"; use
// string(p) for its value.
type Password string

const redacted = "[REDACTED]"

// String returns "[REDACTED]", so fmt never prints the password.
func (Password) String() string { return redacted }

// GoString returns "[REDACTED]", so %#v never prints the password.
func (Password) GoString() string { return redacted }

// LogValue returns "[REDACTED]"; it implements slog.LogValuer.
func (Password) LogValue() slog.Value { return slog.StringValue(redacted) }

// Keys of the device's log records besides the shared ones of package
// message (message.LogKeyThing, LogKeySubject, LogKeyMsgID, LogKeyBootID
// and LogKeyError).
const (
	logKeyAction = "action"
	logKeyStatus = "status"
	logKeyURL    = "url"
	// logKeySecurity marks a security event (logged at warn level); it
	// is authz.LogKeySecurity, which a device does not import, and its
	// values are the Security constants.
	logKeySecurity = "security"
	// logKeySigner is the key that signed a refused command.
	logKeySigner = "signer"
)

// Values of the security events a device logs (key "security", as
// authz.LogKeySecurity).
const (
	// SecurityCommandRefused is a message on the cmd subject dropped
	// because it is not a command signed for the device by a trusted key.
	SecurityCommandRefused = "command_refused"
)
