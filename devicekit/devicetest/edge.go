package devicetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Defaults of [EdgeOptions].
const (
	DefaultOrg  = "acme"
	DefaultEdge = "hq"
	// EdgeUser is the NATS user of the edge service; it may use every
	// subject.
	EdgeUser = "edge"
	// DefaultMaxMsgSize is the largest message the stream stores by
	// default: 64 KiB, the default of an edge's event stream
	// (edgekit.DefaultEventMaxMsgSize), well below the server's max
	// payload.
	DefaultMaxMsgSize = 64 << 10
)

// EdgeOptions configures [NewEdge] and [StartEdge]. The zero value means the
// defaults.
type EdgeOptions struct {
	// Org and Edge name the edge; empty means DefaultOrg and DefaultEdge.
	Org, Edge string
	// Things are the devices to provision, each with its own user; nil
	// means DefaultThings(Org, Edge). They must belong to Org and Edge.
	Things []topic.Thing
	// Stream is the name of the edge's stream; empty means
	// "events-{org}-{edge}", the name the authorization package gives it.
	Stream string
	// NoTelemetry leaves the devices' tlm subjects out of the stream, so
	// that only unacknowledged telemetry can be published.
	NoTelemetry bool
	// MaxMsgs and MaxBytes limit the stream, with the discard-new policy,
	// so that a full stream refuses new messages; zero means no limit.
	MaxMsgs  int64
	MaxBytes int64 // see MaxMsgs
	// MaxMsgSize is the largest message the stream stores, as an edge's
	// event stream bounds it; zero means [DefaultMaxMsgSize], negative no
	// bound but the server's max payload.
	MaxMsgSize int32
	// Server, when set, modifies the server's options after the defaults
	// are applied (users included) and before the server starts.
	Server func(*server.Options)
}

// Edge is an in-process NATS server set up as an edge node for device tests:
// a stream capturing the devices' messages, a user per device confined to its
// own subjects ([DevicePermissions]) and an edge-service user ([EdgeUser])
// with broad rights. Make one with [NewEdge] or [StartEdge].
type Edge struct {
	// Server is the NATS server.
	Server *natstest.Server
	// Conn is a connection as the edge service, for the edge side of tests.
	Conn *nats.Conn
	// JetStream is Conn's JetStream context.
	JetStream jetstream.JetStream
	// Org and Code name the edge.
	Org, Code string
	// Stream is the name of the stream capturing the devices' messages.
	Stream string
	// Things are the provisioned devices.
	Things []topic.Thing
	// CommandKey is the edge's command signing key, made for this edge:
	// devices configured by [Edge.Config] trust it, and commands sent with
	// [PublishCommand] and this key reach their handlers.
	CommandKey nkeys.KeyPair
}

// DefaultThings returns the devices an Edge provisions by default: two
// readers, a lock, a door sensor and an environment sensor.
func DefaultThings(org, edge string) []topic.Thing {
	return []topic.Thing{
		{Org: org, Edge: edge, Type: "reader", Code: "r1"},
		{Org: org, Edge: edge, Type: "reader", Code: "r2"},
		{Org: org, Edge: edge, Type: "lock", Code: "l1"},
		{Org: org, Edge: edge, Type: "door", Code: "d1"},
		{Org: org, Edge: edge, Type: "sensor", Code: "s1"},
	}
}

// DevicePermissions returns the NATS permissions of device t: publish only
// on its own evt, tlm, state, ack and req subjects; subscribe only to its own
// cmd and cfg subjects and its reply inbox, t.InboxPrefix()+".>". In
// production the authorization package generates these from the inventory;
// this copy keeps the test edge independent of it.
func DevicePermissions(t topic.Thing) *server.Permissions {
	subj := func(mt topic.MessageType) string { return t.Subject(mt).String() }
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			subj(topic.Event), subj(topic.Telemetry), subj(topic.State), subj(topic.Ack), subj(topic.Request),
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			subj(topic.Command), subj(topic.Config), t.InboxPrefix() + ".>",
		}},
	}
}

// Password returns the password of device t's user on an Edge. It is fixed,
// for tests only.
func Password(t topic.Thing) devicekit.Password {
	return devicekit.Password("secret-" + t.String())
}

const edgePassword = "edge-secret"

// NewEdge starts an Edge: the server, the stream and the edge service's
// connection. Close it when done; in tests, use [StartEdge].
func NewEdge(opts EdgeOptions) (*Edge, error) {
	if opts.Org == "" {
		opts.Org = DefaultOrg
	}
	if opts.Edge == "" {
		opts.Edge = DefaultEdge
	}
	if opts.Things == nil {
		opts.Things = DefaultThings(opts.Org, opts.Edge)
	}
	if opts.Stream == "" {
		opts.Stream = "events-" + opts.Org + "-" + opts.Edge
	}
	so := natstest.DefaultOptions()
	so.Users = []*server.User{{Username: EdgeUser, Password: edgePassword}}
	for _, t := range opts.Things {
		if t.Org != opts.Org || t.Edge != opts.Edge {
			return nil, fmt.Errorf("devicetest: thing %s does not belong to edge %s.%s", t, opts.Org, opts.Edge)
		}
		if err := topic.ValidateThing(t); err != nil {
			return nil, fmt.Errorf("devicetest: %w", err)
		}
		so.Users = append(so.Users, &server.User{
			Username:    t.String(),
			Password:    string(Password(t)),
			Permissions: DevicePermissions(t),
		})
	}
	if opts.Server != nil {
		opts.Server(so)
	}
	srv, err := natstest.NewServer(so)
	if err != nil {
		return nil, err
	}
	nc, err := srv.Connect(nats.UserInfo(EdgeUser, edgePassword), nats.Name("devicetest edge"))
	if err != nil {
		srv.Close()
		return nil, err
	}
	e := &Edge{Server: srv, Conn: nc, Org: opts.Org, Code: opts.Edge, Stream: opts.Stream, Things: opts.Things}
	if e.CommandKey, err = nkeys.CreateUser(); err != nil {
		e.Close()
		return nil, fmt.Errorf("devicetest: command key: %w", err)
	}
	if e.JetStream, err = jetstream.New(nc); err != nil {
		e.Close()
		return nil, err
	}
	types := []topic.MessageType{topic.Event, topic.State, topic.Ack}
	if !opts.NoTelemetry {
		types = append(types, topic.Telemetry)
	}
	cfg := jetstream.StreamConfig{
		Name:       opts.Stream,
		Storage:    jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
		MaxMsgs:    -1,
		MaxBytes:   -1,
		MaxMsgSize: opts.MaxMsgSize,
	}
	switch {
	case opts.MaxMsgSize == 0:
		cfg.MaxMsgSize = DefaultMaxMsgSize
	case opts.MaxMsgSize < 0:
		cfg.MaxMsgSize = -1
	}
	for _, mt := range types {
		cfg.Subjects = append(cfg.Subjects, opts.Org+"."+opts.Edge+".*.*."+string(mt))
	}
	if opts.MaxMsgs > 0 || opts.MaxBytes > 0 {
		cfg.Discard = jetstream.DiscardNew
		if opts.MaxMsgs > 0 {
			cfg.MaxMsgs = opts.MaxMsgs
		}
		if opts.MaxBytes > 0 {
			cfg.MaxBytes = opts.MaxBytes
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.JetStream.CreateStream(ctx, cfg); err != nil {
		e.Close()
		return nil, fmt.Errorf("devicetest: create stream %s: %w", opts.Stream, err)
	}
	return e, nil
}

// StartEdge is [NewEdge] for tests: it fails tb at once on error, and in
// tb.Cleanup checks that the stream holds no message twice (the envelope IDs
// are unique, as deduplication promises) and closes the edge.
func StartEdge(tb testing.TB, opts EdgeOptions) *Edge {
	tb.Helper()
	e, err := NewEdge(opts)
	if err != nil {
		tb.Fatalf("devicetest: start edge: %v", err)
	}
	tb.Cleanup(func() {
		defer e.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.CheckNoDuplicates(ctx); err != nil {
			tb.Error(err)
		}
	})
	return e
}

// Close closes the edge service's connection and the server. It is
// idempotent.
func (e *Edge) Close() {
	e.Conn.Close()
	e.Server.Close()
}

// Config returns the configuration of device t on this edge: its thing,
// the server's URL, its password, the edge's command key to trust, and
// reconnection settings short enough for tests.
func (e *Edge) Config(t topic.Thing) devicekit.Config {
	pub, _ := e.CommandKey.PublicKey()
	return devicekit.Config{
		Thing:         t,
		URLs:          []string{e.Server.ClientURL()},
		Password:      Password(t),
		CommandKeys:   []string{pub},
		ReconnectWait: 50 * time.Millisecond,
	}
}

// Harness returns the harness that runs the conformance suite for
// [devicekit.Client] on this edge: devices connect with [devicekit.Connect]
// and e.Config.
func (e *Edge) Harness() Harness {
	return Harness{
		Things: e.Things,
		Connect: func(ctx context.Context, t topic.Thing) (devicekit.Device, error) {
			return devicekit.Connect(ctx, e.Config(t))
		},
		Edge:       e.Conn,
		Stream:     e.Stream,
		CommandKey: e.CommandKey,
	}
}

// CheckNoDuplicates reads the whole stream and returns an error naming any
// envelope ID stored twice.
func (e *Edge) CheckNoDuplicates(ctx context.Context) error {
	all, err := Stored(ctx, e.JetStream, e.Stream, ">")
	if err != nil {
		return err
	}
	seen := make(map[message.ID]uint64, len(all))
	var errs []error
	for _, m := range all {
		if prev, ok := seen[m.Envelope.ID]; ok {
			errs = append(errs, fmt.Errorf("devicetest: stream %s: envelope %s stored twice, at sequences %d and %d", e.Stream, m.Envelope.ID, prev, m.Seq))
		}
		seen[m.Envelope.ID] = m.Seq
	}
	return errors.Join(errs...)
}
