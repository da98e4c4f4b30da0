package access_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

// TestServiceReplacedHardwareKeyRotated: the edge's hardware is replaced
// while the old box is still up. Both boxes render the same server name,
// so each connection of one would evict the other's at central; rotating
// the edge's NKey (no overlap) as part of the replacement makes central
// refuse the old box, so the link stays with the new box. The new
// box, on a fresh store, recovers the whole credential set by itself and
// follows central; the old one hears nothing more.
func TestServiceReplacedHardwareKeyRotated(t *testing.T) {
	s := newSite(t, siteOptions{})
	const n = 300
	rev := s.loadCards(n)
	s.synced(rev)
	s.acked(rev)
	old, oldSvc := s.node, s.svc

	// Replacement: a new NKey for edge hq, the old one refused at once.
	g := &authz.Generator{Cost: bcrypt.MinCost, Overlap: -1}
	id := authz.EdgeKeyID("acme", "hq")
	rot, err := g.Rotate(siteCtx(t), s.st, id)
	if err != nil {
		t.Fatal(err)
	}
	s.restartCentral(rot.State, calmPing)
	logs := &refusalLog{}
	s.central.Server().SetLoggerV2(logs, false, false, false)

	// The new box: fresh store, the new seed, started while the old box
	// still runs.
	cfg := s.nodeCfg
	cfg.State = rot.State
	cfg.Render.StoreDir = t.TempDir()
	cfg.Render.ConfigDir = t.TempDir()
	cfg.Render.PingInterval = calmPing
	if err := authz.WriteSeedFile(filepath.Join(cfg.Render.ConfigDir, cfg.Render.SeedFile), rot.Secrets.EdgeSeeds[id]); err != nil {
		t.Fatal(err)
	}
	dups := &duplicateLog{}
	cfg.Logger = slog.New(dups)
	node, err := edgekit.Start(siteCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	svc, err := access.StartService(siteCtx(t), node, s.svcCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)

	waitFor(t, "the new box to hold every credential, in sync", func() bool {
		return !svc.SyncedAt().IsZero() && svc.Set().Len() == n
	})
	if st := svc.Stats(); st.MirrorRebuilds == 0 {
		t.Errorf("stats %+v: want the new box's mirror rebuilt", st)
	}
	waitFor(t, "the old box to lose its link", func() bool { return !old.LinkUp() })
	refused := logs.refusals()
	waitFor(t, "central to refuse the old box again", func() bool { return logs.refusals() > refused })

	// The link stayed with the new box: the old box never took it back
	// (which would have evicted the new box's connection as a duplicate),
	// and central's changes reach the new box only.
	c := s.card("card-1")
	c.State, c.Reason = access.StateRevoked, "lost"
	rev = s.put(c)
	waitFor(t, "the new box to apply the revocation", func() bool { return svc.Version() >= rev })
	if n := dups.count(); n != 0 {
		t.Errorf("the new box's link was evicted %d times by a duplicate", n)
	}
	if old.LinkUp() {
		t.Error("the old box is linked again")
	}
	if v := oldSvc.Version(); v >= rev {
		t.Errorf("the refused old box applied revision %d", v)
	}
	d := request(t, s.deviceOn(node, siteR1), "front", "card-1")
	if d.Granted || d.Reason != message.DenyRevoked {
		t.Errorf("new box after the revocation: %+v", d)
	}
}

// TestManagerResetMirror: the operator's reset of central's consumer
// starts delivery over; an edge whose mirror is whole ignores what it gets
// again, keeps its set and sync, and goes on following central.
func TestManagerResetMirror(t *testing.T) {
	s := newSite(t, siteOptions{})
	const n = 100
	rev := s.loadCards(n)
	s.synced(rev)
	s.acked(rev)
	m, err := access.NewManager(s.cjs, s.hub, access.ManagerConfig{Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	before := s.svc.SyncedAt()
	if err := m.ResetMirror(siteCtx(t), "hq"); err != nil {
		t.Fatal(err)
	}
	if err := m.ResetMirror(siteCtx(t), "no such edge"); err == nil {
		t.Error("ResetMirror of a bad edge code: no error")
	}
	rev = s.put(s.card("after-reset"))
	s.synced(rev)
	waitFor(t, "a sync confirmed after the reset", func() bool {
		return s.svc.SyncedAt().After(before) && s.svc.Set().Len() == n+1 &&
			streamMsgs(t, s.node.JetStream(), "KV_creds-acme-hq") == uint64(n+1)
	})
	if st := s.svc.Stats(); st.MirrorRebuilds != 0 || st.MirrorIncomplete != 0 {
		t.Errorf("stats %+v: the whole mirror was found incomplete", st)
	}
}

// calmPing is the ping interval of the links in the tests of a replaced
// store, which cut no link: long enough that a loaded machine's stalls do
// not make the link look stale and drop it (nats-server drops a link after
// two unanswered pings), as the site's one second would.
const calmPing = 10 * time.Second

// deliveredTo puts central's consumer for hq's mirror where a store that
// received and acknowledged the bucket up to revision rev leaves it: its
// ack floor at rev.
func (s *site) deliveredTo(rev uint64) {
	s.tb.Helper()
	body, _ := json.Marshal(map[string]uint64{"seq": rev + 1})
	m, err := s.cjs.Conn().RequestWithContext(siteCtx(s.tb), "$JS.API.CONSUMER.RESET.KV_creds-acme-hq.to-hq", body)
	if err != nil {
		s.tb.Fatal(err)
	}
	var r struct {
		ResetSeq uint64          `json:"reset_seq"`
		Error    json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Error != nil || r.ResetSeq != rev+1 {
		s.tb.Fatalf("reset of hq's consumer: %s (%v)", m.Data, err)
	}
	s.acked(rev)
}

// restartCentral restarts central with credential state st and ping
// interval ping, on the ports and store it ran with. (A restart rather than
// nats-server's ReloadOptions, which races the JetStream traffic always
// flowing here: nats-io/nats-server#8499.)
func (s *site) restartCentral(st *authz.State, ping time.Duration) {
	s.tb.Helper()
	opts, err := authz.CentralOptions(s.inv, st, authz.RenderOptions{
		Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
		StoreDir: s.central.StoreDir(), MaxMemoryStore: 64 << 20, MaxFileStore: 1 << 30, PingInterval: ping,
	})
	if err != nil {
		s.tb.Fatal(err)
	}
	opts.NoLog = true
	opts.LeafNode.NoAdvertise = true
	if err := s.central.RestartWith(opts); err != nil {
		s.tb.Fatalf("restart central: %v", err)
	}
}

// acked waits until central's consumer for hq's mirror counts revision
// rev as received: its ack floor, which the mirror's flow control moves.
func (s *site) acked(rev uint64) {
	s.tb.Helper()
	s.waitFor("central's consumer to count the mirror's receipt", func() bool {
		c, err := s.cjs.PushConsumer(siteCtx(s.tb), "KV_creds-acme-hq", "to-hq")
		if err != nil {
			return false
		}
		info, err := c.Info(siteCtx(s.tb))
		return err == nil && info.AckFloor.Stream >= rev
	})
}

// deviceOn connects device t to node.
func (s *site) deviceOn(node *edgekit.Node, t topic.Thing) *devicekit.Client {
	prev := s.node
	s.node = node
	defer func() { s.node = prev }()
	return s.device(t)
}

// streamMsgs returns the number of messages in stream (on js).
func streamMsgs(tb testing.TB, js jetstream.JetStream, stream string) uint64 {
	tb.Helper()
	str, err := js.Stream(context.Background(), stream)
	if err != nil {
		tb.Fatal(err)
	}
	return str.CachedInfo().State.Msgs
}

// duplicateLog is a slog handler that counts records about a leaf
// connection evicted by a duplicate of the same server.
type duplicateLog struct {
	mu sync.Mutex
	n  int
}

func (l *duplicateLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *duplicateLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *duplicateLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *duplicateLog) WithGroup(string) slog.Handler            { return l }
func (l *duplicateLog) Handle(_ context.Context, r slog.Record) error {
	text := r.Message
	r.Attrs(func(a slog.Attr) bool { text += " " + a.Value.String(); return true })
	if strings.Contains(strings.ToLower(text), "duplicate") {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
	return nil
}

// refusalLog is a nats-server logger that counts refused logins.
type refusalLog struct {
	mu sync.Mutex
	n  int
}

func (l *refusalLog) refusals() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// add counts the line when it reports a refused login. It never formats
// the line: nats-server passes some log calls values other goroutines may
// be changing, which formatting them here would read unsynchronized.
func (l *refusalLog) add(format string, v ...any) {
	refused := strings.Contains(strings.ToLower(format), server.ErrAuthentication.Error())
	for _, a := range v {
		if err, ok := a.(error); ok && errors.Is(err, server.ErrAuthentication) {
			refused = true
		}
	}
	if refused {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
}

func (l *refusalLog) Noticef(format string, v ...any) {}
func (l *refusalLog) Warnf(format string, v ...any)   { l.add(format, v...) }
func (l *refusalLog) Fatalf(format string, v ...any)  { l.add(format, v...) }
func (l *refusalLog) Errorf(format string, v ...any)  { l.add(format, v...) }
func (l *refusalLog) Debugf(format string, v ...any)  {}
func (l *refusalLog) Tracef(format string, v ...any)  {}
