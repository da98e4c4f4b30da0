package central_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLostResetSentAgain cuts an edge's link until central's server sends
// a consumer reset for one of its sources, which the cut loses, and
// restores the link at once: the supervisor sends the lost reset again,
// so that its answer reaches the reply subject nats-server still waits
// on (without it, nats-server gives up after 5 s and sends a new reset
// with a new reply subject: the first is never answered), and the event
// the edge stored during the outage reaches central's stream.
func TestLostResetSentAgain(t *testing.T) {
	d := &deployment{passwords: map[string]authz.Secret{}, dir: t.TempDir(), orgs: map[string]central.OrgSecrets{}}
	d.generate(t, inventory("hq"))
	var logs syncBuffer
	c, err := central.Start(ctx(t), central.Config{
		Inventory: d.inv, State: d.st, Orgs: d.orgs, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
			StoreDir: t.TempDir(), MaxFileStore: 256 << 20, PingInterval: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	proxy, err := natstest.NewProxy(c.LeafAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	hq := d.startEdge(t, "hq", proxy.Addr())
	waitFor(t, "hq's link", hq.LinkUp)

	// What central's server sends and hears, as a central service sees it.
	nc := jsOf(t, d, c).Conn()
	resets := make(chan string, 64) // reply subjects of the resets
	var mu sync.Mutex
	answered := map[string]bool{}
	if _, err := nc.Subscribe("$JS.hq.API.CONSUMER.RESET.*.*", func(m *nats.Msg) { resets <- m.Reply }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("$JSC.R.hq.*.*.*.*", func(m *nats.Msg) {
		mu.Lock()
		answered[m.Subject] = true
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	dev, err := devicekit.Connect(ctx(t), devicekit.Config{Thing: hqReader, URLs: []string{hq.ClientURL()},
		Password: devicekit.Password(d.passwords[authz.DeviceUser(hqReader)].Reveal()), HeartbeatInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	stream, err := c.JetStream("acme").Stream(ctx(t), c.Hub("acme").EventStream())
	if err != nil {
		t.Fatal(err)
	}
	inStream := func(id string) func() bool {
		return func() bool {
			m, err := stream.GetLastMsgForSubject(ctx(t), hqReader.Subject(topic.Event).String())
			return err == nil && strings.Contains(m.Header.Get(nats.MsgIdHdr), id)
		}
	}
	id, err := dev.PublishEvent(ctx(t), "door.opened", map[string]string{"door": "front"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event before the outage in central's stream", inStream(id.String()))

	// A reset is sent again only while nats-server still waits on it (5 s):
	// on a machine so loaded that the link came back later than that, the
	// outage is repeated.
	for attempt := 1; ; attempt++ {
		proxy.Cut()
		waitFor(t, "hq's link to drop", func() bool { return !hq.LinkUp() })
		for len(resets) > 0 {
			<-resets // sent while the link was up
		}
		id, err = dev.PublishEvent(ctx(t), "door.opened", map[string]string{"door": "front"})
		if err != nil {
			t.Fatal(err)
		}
		// nats-server sends a reset for a source silent for 10 s, on its
		// next check (every 10 s); the cut loses it.
		var lost string
		select {
		case lost = <-resets:
		case <-time.After(wait):
			t.Fatal("no consumer reset sent while the link was cut")
		}
		seen := time.Now()
		proxy.Restore()
		waitFor(t, "hq's consumer API across the link", func() bool {
			return edgekit.LeafDomains(c.Server(), "acme")["hq"] != 0
		})
		if back := time.Since(seen); back > 3*time.Second && attempt < 3 {
			t.Logf("the link came back %v after the reset was sent; again", back)
			continue
		}
		waitFor(t, "the answer to the reset lost in the cut, on its reply subject", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return answered[lost]
		})
		break
	}
	waitFor(t, "the event of the outage in central's stream", inStream(id.String()))
	if !strings.Contains(logs.String(), "sent a consumer reset lost in an outage again") {
		t.Fatal("the supervisor did not log sending the lost reset again")
	}
}
