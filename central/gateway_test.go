package central_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// TestCentralGatewayStreamOnUpdate: a central whose inventory marks no
// device for the central gateway has no gateway stream and no ingest of
// it; once an update marks one, it has both, and an event the gateway's
// service user publishes on the device's gateway subject is stored in the
// database under the device's subject.
func TestCentralGatewayStreamOnUpdate(t *testing.T) {
	pool := pgtest.New(t)
	d := &deployment{passwords: map[string]authz.Secret{}, dir: t.TempDir(), orgs: map[string]central.OrgSecrets{}}
	inv := inventory("hq")
	inv.Services = append(inv.Services, authz.Service{Name: "gw", Kind: authz.ServiceGateway, Org: "acme"})
	d.generate(t, inv)
	c, err := central.Start(ctx(t), central.Config{
		Inventory: d.inv, State: d.st, Orgs: d.orgs, Database: pool,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
			StoreDir: t.TempDir(), MaxFileStore: 256 << 20, PingInterval: time.Second},
		GatewayStream: func(cfg *jetstream.StreamConfig) { cfg.MaxAge = time.Hour },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	js := c.JetStream("acme")
	stream := topology.GatewayStream("acme")
	if _, err := js.Stream(ctx(t), stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("gateway stream without a marked device: %v", err)
	}
	if c.GatewayIngest("acme") != nil {
		t.Fatal("an ingest of the gateway stream without a marked device")
	}

	inv = inventory("hq")
	inv.Services = append(inv.Services, authz.Service{Name: "gw", Kind: authz.ServiceGateway, Org: "acme"})
	inv.Things[0].CentralGateway = true
	d.generate(t, inv)
	if err := c.Update(ctx(t), d.inv, d.st); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx(t), stream)
	if err != nil {
		t.Fatalf("gateway stream after the update: %v", err)
	}
	if cfg := s.CachedInfo().Config; cfg.MaxAge != time.Hour || cfg.SubjectTransform == nil {
		t.Errorf("gateway stream %+v: want the hook's MaxAge and the subject transform", cfg)
	}
	in := c.GatewayIngest("acme")
	if in == nil {
		t.Fatal("no ingest of the gateway stream after the update")
	}

	user := authz.ServiceUser("acme", "gw")
	nc, err := nats.Connect(c.ClientURL(), nats.UserInfo(user, d.passwords[user].Reveal()),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(user)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	gjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var ids message.IDGenerator
	e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: hqReader, Type: topic.Event, Name: "door.opened"}
	msg, err := e.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg.Subject = topology.GatewaySubject(hqReader, topic.Event)
	ack, err := gjs.PublishMsg(ctx(t), msg, jetstream.WithMsgID(e.ID.String()))
	if err != nil || ack.Stream != stream {
		t.Fatalf("publish into the gateway stream: %+v %v", ack, err)
	}
	waitFor(t, "the event in the database", func() bool {
		var n int
		err := pool.QueryRow(ctx(t), `SELECT count(*) FROM lintel.events WHERE id = $1 AND org = 'acme' AND edge = 'hq'
			AND thing_type = 'reader' AND thing_code = 'r1' AND message_type = 'evt'`, e.ID.String()).Scan(&n)
		return err == nil && n == 1
	})
	// The ingest counts a batch once its transaction committed, just after
	// the row became visible.
	waitFor(t, "the ingest to count the event", func() bool { return in.Stats().Ingested >= 1 })
	if st := in.Stats(); st.Ingested != 1 || st.Refused != 0 {
		t.Errorf("gateway ingest stats %+v", st)
	}
}
