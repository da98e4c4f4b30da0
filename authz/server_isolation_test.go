package authz_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// addUnrestricted returns an options tweak adding a user without
// permissions to the org account acme: on an edge, it plays a compromised
// edge (only central's leaf permissions stand between it and the rest); on
// central, an auditor that sees every message central accepts.
func addUnrestricted(name string) func(*server.Options) {
	return func(o *server.Options) {
		for _, a := range o.Accounts {
			if a.Name == "acme" {
				o.Users = append(o.Users, &server.User{Username: name, Password: name + "-pw", Account: a})
				return
			}
		}
		panic("no account acme")
	}
}

// recorder records the subjects a subscription receives.
type recorder struct {
	mu       sync.Mutex
	subjects []string
	forged   []string // subjects of messages with payload "forged"
	marker   chan struct{}
	want     string
}

func record(t *testing.T, nc *nats.Conn, subject, marker string) *recorder {
	t.Helper()
	r := &recorder{marker: make(chan struct{}, 1), want: marker}
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		r.mu.Lock()
		r.subjects = append(r.subjects, m.Subject)
		if string(m.Data) == "forged" {
			r.forged = append(r.forged, m.Subject)
		}
		r.mu.Unlock()
		if m.Subject == r.want {
			select {
			case r.marker <- struct{}{}:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *recorder) waitMarker(t *testing.T) {
	t.Helper()
	select {
	case <-r.marker:
	case <-time.After(waitTimeout):
		t.Fatalf("marker %s not received", r.want)
	}
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.subjects...)
}

// mentions reports whether a subject belongs to edge wh: a token "wh" or a
// stream or consumer name ending in "-wh".
func mentionsWH(subject string) bool {
	for tok := range strings.SplitSeq(subject, ".") {
		if tok == "wh" || strings.HasSuffix(tok, "-wh") {
			return true
		}
	}
	return false
}

// TestTwoEdgeIsolation runs central and two edges, hq and wh, from the
// generated options, with an unrestricted user on hq standing for a
// compromised edge. hq receives nothing of wh's (events, mirror deliveries,
// commands, JetStream replies) and injects nothing into wh's flows, while
// each edge's own flows work.
func TestTwoEdgeIsolation(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	copts, err := authz.CentralOptions(inv, c.st, testRender(t))
	if err != nil {
		t.Fatal(err)
	}
	copts.NoLog = true
	addUnrestricted("auditor")(copts)
	central := natstest.Run(t, copts)
	hq := startEdge(t, inv, c, "hq", central, edgeSetup{tweak: addUnrestricted("intruder")})
	wh := startEdge(t, inv, c, "wh", central, edgeSetup{authenticator: true})
	waitLeaf(t, hq)
	waitLeaf(t, wh)
	cjs := provisionCentral(t, central, c, "hq", "wh")
	hqjs := provisionEdge(t, hq, c, "hq")
	whjs := provisionEdge(t, wh, c, "wh")
	nhq, nwh := names(t, "hq"), names(t, "wh")

	intruder := connectWith(t, hq.Server, "intruder", "intruder-pw")
	auditor := connectWith(t, central, "auditor", "auditor-pw")
	const marker1, marker2 = "acme.hq.marker.m1.cfg", "acme.hq.marker.m2.evt"
	onHQ := record(t, intruder.Conn, ">", marker1)
	atCentral := record(t, auditor.Conn, ">", marker2)

	t.Run("wh's traffic does not reach hq", func(t *testing.T) {
		r9 := mkThing("acme", "wh", "reader", "r9")
		dev := connectAs(t, wh.Server, c, authz.DeviceUser(r9))
		djs, err := jetstream.New(dev.Conn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := djs.Publish(testCtx(t), r9.Subject(topic.Event).String(), []byte("wh event")); err != nil {
			t.Fatal(err)
		}
		ack, err := djs.Publish(testCtx(t), r9.Subject(topic.Telemetry).String(), []byte("wh telemetry"))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Stream != nwh.TelemetryStream {
			t.Fatalf("telemetry stored in %q, want %q", ack.Stream, nwh.TelemetryStream)
		}
		waitStreamSubject(t, cjs, nwh.CentralEventStream, r9.Subject(topic.Event).String())
		// Telemetry reaches central through its own flow, which the leaf
		// permissions allow.
		waitStreamSubject(t, cjs, nwh.CentralEventStream, r9.Subject(topic.Telemetry).String())

		for _, n := range []authz.EdgeNames{nwh, nhq} {
			kv, err := cjs.KeyValue(testCtx(t), n.CredentialBucket)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(testCtx(t), "card", []byte("secret of "+n.Edge)); err != nil {
				t.Fatal(err)
			}
		}
		whMirror, err := whjs.KeyValue(testCtx(t), nwh.CredentialBucket)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "wh's mirror", func() bool {
			e, err := whMirror.Get(testCtx(t), "card")
			return err == nil && string(e.Value()) == "secret of wh"
		})
		// hq's own mirror delivery must have crossed its link before the
		// marker is sent, or the marker may overtake it.
		hqMirror, err := hqjs.KeyValue(testCtx(t), nhq.CredentialBucket)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "hq's mirror", func() bool {
			e, err := hqMirror.Get(testCtx(t), "card")
			return err == nil && string(e.Value()) == "secret of hq"
		})
		if _, err := cjs.Publish(testCtx(t), authz.CommandSubject(r9), []byte("unlock")); err != nil {
			t.Fatal(err)
		}
		waitStreamSubject(t, whjs, nwh.CommandStream, authz.CommandSubject(r9))

		// Everything central sent to wh has left central by now; a marker
		// sent after it on hq's leaf link arrives after anything central
		// would have sent hq of it.
		ingest := connectAs(t, central, c, authz.ServiceUser("acme", "ingest"))
		if err := ingest.Publish(marker1, nil); err != nil {
			t.Fatal(err)
		}
		onHQ.waitMarker(t)
		ownMirror := false
		for _, s := range onHQ.seen() {
			if mentionsWH(s) {
				t.Errorf("hq received %q", s)
			}
			// A push consumer's messages travel on its deliver subject but
			// reach subscribers under their stored subject.
			ownMirror = ownMirror || s == "$KV."+nhq.CredentialBucket+".card"
		}
		if !ownMirror {
			t.Errorf("hq did not receive its own mirror's delivery; saw %v", onHQ.seen())
		}
	})

	t.Run("hq injects nothing into wh's flows", func(t *testing.T) {
		injections := []string{
			authz.DeliversOf(nwh).Event,     // wh's events to central
			authz.DeliversOf(nwh).Telemetry, // wh's telemetry to central
			authz.DeliversOf(nwh).Credential,
			authz.DeliversOf(nwh).Command,
			"acme.wh.reader.r9.cmd",
			"acme.wh.reader.r9.evt",
			authz.CommandSubject(mkThing("acme", "wh", "reader", "r9")),
			authz.CommandSubject(mkThing("acme", "hq", "reader", "r1")), // even its own: only central writes commands
			"$JS.hub.API.CONSUMER.RESET." + nwh.CredentialStream + "." + nwh.CredentialConsumer,
			"$JS.hub.API.CONSUMER.CREATE." + nhq.CredentialStream, // a consumer could deliver anywhere
			"$JS.hub.API.STREAM.INFO." + nwh.CredentialStream,     // its own bucket's info only
			"$JS.hub.API.STREAM.INFO." + nhq.CentralCommandStream,
			"$JS.API.STREAM.INFO." + nhq.CentralCommandStream,
			nwh.SyncReplyPrefix + ".x",
			"$KV." + nwh.CredentialBucket + ".card",
			"$JSC.R.hub.x." + nwh.CredentialStream + "." + nwh.CredentialConsumer + ".y",
			"$JSC.R.wh.x." + nwh.EventStream + "." + nwh.EventConsumer + ".y",
			"$JSC.R.wh.x." + nwh.TelemetryStream + "." + nwh.TelemetryConsumer + ".y",
			"$JS.FC." + nwh.CentralCommandStream + "." + nwh.CommandConsumer + ".x",
			"_INBOX._svc.acme.ingest.x",
			"$SYS.ACCOUNT.acme.CONNECT",
		}
		for _, s := range injections {
			if err := intruder.Publish(s, []byte("forged")); err != nil {
				t.Fatal(err)
			}
		}
		if err := intruder.Publish(marker2, nil); err != nil {
			t.Fatal(err)
		}
		atCentral.waitMarker(t)
		atCentral.mu.Lock()
		forged := atCentral.forged
		atCentral.mu.Unlock()
		for _, s := range forged {
			t.Errorf("central accepted %q from hq", s)
		}
		if n := streamMsgs(t, whjs, nwh.CommandStream); n != 1 {
			t.Errorf("wh's command stream holds %d messages, want 1", n)
		}
	})
}

// rawLeaf is a hand-made leaf-node connection to central, doing what a
// compromised edge's server could do on the wire, unfiltered by the
// spoke-side permissions a stock server applies.
type rawLeaf struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialLeaf connects to central's leaf port and authenticates with seed.
// It returns the first error line (such as -ERR 'Authorization Violation')
// or "" once central answers a PING.
func dialLeaf(t *testing.T, central *natstest.Server, seed string) (*rawLeaf, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", central.LeafNodeAddr(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	l := &rawLeaf{conn: conn, r: bufio.NewReader(conn)}
	line, err := l.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("no INFO from central: %q %v", line, err)
	}
	var info struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(line), "INFO ")), &info); err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	sig, err := kp.Sign([]byte(info.Nonce))
	if err != nil {
		t.Fatal(err)
	}
	connect, _ := json.Marshal(map[string]any{
		"nkey": pub, "sig": base64.RawURLEncoding.EncodeToString(sig),
		"name": "raw-" + pub[:8], "domain": "hq", "jetstream": true,
	})
	return l, l.roundTrip(t, "CONNECT "+string(connect)+"\r\n")
}

// roundTrip sends proto and a PING and returns the first -ERR line central
// sends before its PONG, or "".
func (l *rawLeaf) roundTrip(t *testing.T, proto string) string {
	t.Helper()
	if _, err := l.conn.Write([]byte(proto + "PING\r\n")); err != nil {
		return "write: " + err.Error()
	}
	for {
		line, err := l.r.ReadString('\n')
		if err != nil {
			return "read: " + err.Error()
		}
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "-ERR"):
			return line
		case line == "PONG":
			return ""
		case line == "PING":
			_, _ = l.conn.Write([]byte("PONG\r\n"))
		case strings.HasPrefix(line, "LMSG "):
			// Skip the payload of a message central forwards.
			f := strings.Fields(line)
			var n int
			_, _ = fmt.Sscan(f[len(f)-1], &n)
			_, _ = l.r.Discard(n + 2)
		}
	}
}

// TestLeafLinkEnforcedByCentral checks the leaf user's permissions where
// they are the security boundary: in central, against a hand-made leaf
// connection that sends whatever it likes. Each forbidden subscription or
// message is answered with central's permission violation.
func TestLeafLinkEnforcedByCentral(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central := startCentral(t, inv, c)
	seed := c.seeds[authz.EdgeKeyID("acme", "hq")]
	nhq, nwh := names(t, "hq"), names(t, "wh")

	t.Run("registered seed connects", func(t *testing.T) {
		if _, errLine := dialLeaf(t, central, seed); errLine != "" {
			t.Fatalf("hq's seed refused: %s", errLine)
		}
	})
	t.Run("other seed is refused", func(t *testing.T) {
		kp, _ := nkeys.CreateUser()
		other, _ := kp.Seed()
		if _, errLine := dialLeaf(t, central, string(other)); !strings.Contains(errLine, "Authorization Violation") {
			t.Fatalf("unknown seed: got %q, want an authorization violation", errLine)
		}
	})
	t.Run("service credentials cannot make a leaf", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", central.LeafNodeAddr(), waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(waitTimeout))
		l := &rawLeaf{conn: conn, r: bufio.NewReader(conn)}
		if _, err := l.r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		user := authz.ServiceUser("acme", "ingest")
		connect, _ := json.Marshal(map[string]any{"user": user, "pass": c.passwords[user], "name": "svc-leaf"})
		if errLine := l.roundTrip(t, "CONNECT "+string(connect)+"\r\n"); !strings.Contains(errLine, "Authorization Violation") {
			t.Fatalf("service user as leaf: got %q, want an authorization violation", errLine)
		}
	})

	allowed := []struct{ verb, subject, what string }{
		{"Subscription", authz.DeliversOf(nhq).Credential, "its own mirror"},
		{"Subscription", authz.DeliversOf(nhq).Command, "its own commands"},
		{"Subscription", "acme.hq.reader.r1.cfg", "its devices' config"},
		{"Subscription", "acme.hq.>", "its edge, wildcard (central filters on delivery)"},
		{"Publish", "acme.hq.reader.r1.evt", "its live events"},
		{"Publish", authz.DeliversOf(nhq).Event, "its events to sourcing"},
		{"Publish", authz.DeliversOf(nhq).Telemetry, "its telemetry to sourcing"},
		{"Publish", "$JSC.R.hq.x." + nhq.TelemetryStream + "." + nhq.TelemetryConsumer + ".y", "answering the reset of its telemetry consumer"},
		{"Subscription", "$JS.hq.API.CONSUMER.RESET." + nhq.TelemetryStream + "." + nhq.TelemetryConsumer, "central resetting its telemetry consumer"},
		{"Subscription", "$JS.FC." + nhq.TelemetryStream + "." + nhq.TelemetryConsumer + ".x", "flow control of its telemetry"},
		{"Publish", "$JS.hub.API.CONSUMER.RESET." + nhq.CredentialStream + "." + nhq.CredentialConsumer, "resetting its mirror's consumer"},
		{"Publish", nhq.ReleaseGet(authz.FlowEvents), "reading its own release mark"},
		{"Subscription", nhq.ReleaseReplyPrefix() + ".x.y", "answers to its release-mark reads"},
	}
	for _, a := range allowed {
		t.Run("allowed: "+a.what, func(t *testing.T) {
			l, errLine := dialLeaf(t, central, seed)
			if errLine != "" {
				t.Fatal(errLine)
			}
			if got := l.roundTrip(t, leafProto(a.verb, a.subject)); got != "" {
				t.Fatalf("%s %s: %s", a.verb, a.subject, got)
			}
		})
	}

	denied := []struct{ verb, subject string }{
		{"Subscription", authz.DeliversOf(nwh).Credential},
		{"Subscription", authz.DeliversOf(nwh).Command},
		{"Subscription", authz.DeliversOf(nwh).Event},
		{"Subscription", authz.DeliversOf(nwh).Telemetry},
		{"Subscription", "$JS.wh.API.CONSUMER.RESET." + nwh.TelemetryStream + "." + nwh.TelemetryConsumer},
		{"Subscription", "$JS.FC." + nwh.TelemetryStream + "." + nwh.TelemetryConsumer + ".x"},
		{"Subscription", "acme.wh.reader.r9.evt"},
		{"Subscription", "acme.hq.reader.r1.cmd"}, // device commands never come from central
		{"Subscription", "$JSC.R.hub.x." + nwh.CredentialStream + "." + nwh.CredentialConsumer + ".y"},
		{"Subscription", "$JS.wh.API.CONSUMER.RESET." + nwh.EventStream + "." + nwh.EventConsumer},
		// The edge releases what central stored by purging its own streams;
		// central may neither purge them nor change their configuration.
		{"Subscription", "$JS.hq.API.STREAM.PURGE." + nhq.EventStream},
		{"Subscription", "$JS.hq.API.STREAM.PURGE." + nhq.TelemetryStream},
		{"Subscription", "$JS.hq.API.STREAM.PURGE." + nhq.PlatformStream},
		{"Subscription", "$JS.hq.API.STREAM.UPDATE." + nhq.EventStream},
		{"Subscription", "$JS.hq.API.STREAM.MSG.DELETE." + nhq.EventStream},
		{"Subscription", "$JS.hq.API.CONSUMER.CREATE." + nhq.EventStream},
		{"Subscription", "_INBOX._svc.acme.ingest.x"},
		{"Subscription", "$SYS.ACCOUNT.acme.CONNECT"},
		{"Publish", authz.DeliversOf(nwh).Event},
		{"Publish", authz.DeliversOf(nwh).Telemetry},
		{"Publish", "$JSC.R.wh.x." + nwh.TelemetryStream + "." + nwh.TelemetryConsumer + ".y"},
		{"Publish", authz.DeliversOf(nwh).Credential},
		{"Publish", "acme.wh.reader.r9.cmd"},
		{"Publish", authz.CommandSubject(mkThing("acme", "hq", "reader", "r1"))},
		{"Publish", "$JS.hub.API.CONSUMER.CREATE." + nhq.CredentialStream},
		// Its release marks only: not another edge's, not the tracker's
		// state, not writes.
		{"Publish", nwh.ReleaseGet(authz.FlowEvents)},
		{"Publish", "$JS.hub.API.DIRECT.GET.KV_" + topology.ReleaseBucket("acme") + ".$KV." + topology.ReleaseBucket("acme") + "._tracker"},
		{"Publish", "$KV." + topology.ReleaseBucket("acme") + ".hq.events"},
		{"Publish", "$JS.hub.API.STREAM.PURGE.KV_" + topology.ReleaseBucket("acme")},
		{"Subscription", nwh.ReleaseReplyPrefix() + ".x.y"},
		{"Publish", "$JS.hub.API.CONSUMER.RESET." + nwh.CredentialStream + "." + nwh.CredentialConsumer},
		{"Publish", "$JS.hub.API.STREAM.INFO." + nwh.CredentialStream},
		{"Publish", "$JS.hub.API.DIRECT.GET." + nwh.CredentialStream + ".$KV." + nwh.CredentialBucket + ".cred.x"},
		{"Publish", "$JS.hub.API.STREAM.INFO." + nhq.CentralCommandStream},
		{"Publish", "acme.hq._sys.audit.evt"},
		{"Subscription", "acme.hq._sys.audit.evt"},
		{"Subscription", nwh.SyncReplyPrefix + ".x"},
		{"Publish", "$JSC.R.wh.x." + nwh.EventStream + "." + nwh.EventConsumer + ".y"},
		{"Publish", "$JS.FC." + nwh.CentralCommandStream + "." + nwh.CommandConsumer + ".x"},
		{"Publish", "$KV." + nhq.CredentialBucket + ".card"},
	}
	for _, d := range denied {
		t.Run("denied: "+d.verb+" "+d.subject, func(t *testing.T) {
			l, errLine := dialLeaf(t, central, seed)
			if errLine != "" {
				t.Fatal(errLine)
			}
			// Central judges the subject as sent, but reports it after
			// applying its JetStream domain mapping "$JS.hub.API.>" -> "$JS.API.>".
			reported := strings.Replace(d.subject, "$JS.hub.API.", "$JS.API.", 1)
			want := fmt.Sprintf("Permissions Violation for %s to %q", d.verb, reported)
			if got := l.roundTrip(t, leafProto(d.verb, d.subject)); !strings.Contains(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// leafProto returns the leaf protocol for subscribing to, or publishing an
// empty message on, subject.
func leafProto(verb, subject string) string {
	if verb == "Publish" {
		return "LMSG " + subject + " 0\r\n\r\n"
	}
	return "LS+ " + subject + "\r\n"
}

// TestEdgeWithOtherSeedRefused starts an edge with a seed central does not
// know: central refuses its leaf connection.
func TestEdgeWithOtherSeedRefused(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, bcrypt.MinCost)
	central := startCentral(t, inv, c)
	logs := &captureLogger{}
	central.Server().SetLoggerV2(logs, false, false, false)
	kp, _ := nkeys.CreateUser()
	other, _ := kp.Seed()
	e := startEdge(t, inv, c, "hq", central, edgeSetup{seed: string(other)})
	waitFor(t, "central to refuse the leaf", func() bool { return logs.contains("authentication error") })
	if n := central.Server().NumLeafNodes(); n != 0 {
		t.Fatalf("central has %d leaf nodes", n)
	}
	if n := e.Server.Server().NumLeafNodes(); n != 0 {
		t.Fatalf("edge has %d leaf nodes", n)
	}
}

// captureLogger is a server.Logger that keeps error lines.
type captureLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *captureLogger) add(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *captureLogger) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(strings.ToLower(line), s) {
			return true
		}
	}
	return false
}

func (l *captureLogger) Noticef(format string, v ...any) {}
func (l *captureLogger) Warnf(format string, v ...any)   { l.add(format, v...) }
func (l *captureLogger) Fatalf(format string, v ...any)  { l.add(format, v...) }
func (l *captureLogger) Errorf(format string, v ...any)  { l.add(format, v...) }
func (l *captureLogger) Debugf(format string, v ...any)  {}
func (l *captureLogger) Tracef(format string, v ...any)  {}
