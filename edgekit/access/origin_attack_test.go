package access_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// hostileEdge starts a leaf node of central that holds edge hq's NKey but
// whose owner does as he likes with it, as with a stolen box: its server
// has the edge's rendered configuration plus a user "owner" without
// permissions, whose JetStream context it returns. The box serves the
// edge's event stream, widened to capture anything, and the durable
// consumer central sources it through.
func hostileEdge(s *site) jetstream.JetStream {
	tb := s.tb
	opts, err := authz.EdgeOptions(s.inv, s.st, "acme", "hq", authz.RenderOptions{
		Host: "127.0.0.1", Port: -1, StoreDir: tb.TempDir(), MaxFileStore: 1 << 30,
		PingInterval: time.Second, HubURLs: []string{"nats-leaf://" + s.proxy.Addr()},
		ConfigDir: s.dir, SeedFile: "leaf.seed",
	})
	if err != nil {
		tb.Fatal(err)
	}
	var acme *server.Account
	for _, a := range opts.Accounts {
		if a.Name == "acme" {
			acme = a
		}
	}
	if acme == nil {
		tb.Fatal("no account acme in the edge's configuration")
	}
	opts.Users = append(opts.Users, &server.User{Username: "owner", Password: "owner", Account: acme})
	opts.NoLog = true
	box := natstest.Run(tb, opts)
	nc, err := box.Connect(nats.UserInfo("owner", "owner"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	n, _ := authz.NamesFor("acme", "hq")
	cfg := n.EventStreamConfig()
	cfg.Subjects = []string{"acme.>", "globex.>"}
	ctx := siteCtx(tb)
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		tb.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, n.EventStream, n.EventConsumerConfig()); err != nil {
		tb.Fatal(err)
	}
	waitFor(tb, "the hostile box's leaf link", func() bool { return box.Server().NumLeafNodes() > 0 })
	return js
}

// storageDB returns a fresh database migrated for storage.
func storageDB(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	db := pgtest.NewDB(tb, pgtest.WithTemplate(pgtest.Template{
		Name: "storage", Hash: storage.SchemaHash(),
		Migrate: func(ctx context.Context, pool *pgxpool.Pool) error {
			_, err := storage.Migrate(ctx, pool, storage.MigrateOptions{})
			return err
		},
	}))
	return db.Pool
}

// TestOriginHostileEdge is a compromised edge hq writing, through its own
// event stream and central's genuine sourcing, as edge lab, as another
// org, and as central (a system subject of lab and of itself), beside an
// event of its own. Central's storage ingest stores only hq's own event
// and central's alarms; the auditor verifies nothing it sent for lab and
// raises an alarm about hq for each forgery; both count what they refused.
func TestOriginHostileEdge(t *testing.T) {
	s := newSite(t, siteOptions{noNode: true})
	pool := storageDB(t)
	table, err := authz.NewSourceTableFor(s.inv, "acme")
	if err != nil {
		t.Fatal(err)
	}
	a := s.auditor(func(c *access.AuditorConfig) { c.Origins = table })
	js := hostileEdge(s)

	ids := &message.IDGenerator{}
	now := time.Now()
	envelope := func(th topic.Thing, name string, payload any) *nats.Msg {
		e := &message.Envelope{ID: ids.NewAt(now), Time: now.UTC(), Source: th, Type: topic.Event, Name: name}
		if payload != nil {
			if err := message.SetPayload(e, payload); err != nil {
				t.Fatal(err)
			}
		}
		m, err := e.ToMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	own := envelope(siteR1, "door.opened", nil)
	forged := []*nats.Msg{
		envelope(siteX1, "door.opened", nil), // acme.lab.reader.x1.evt
		envelope(topic.Thing{Org: "globex", Edge: "plant", Type: "reader", Code: "g1"}, "door.opened", nil),
		envelope(access.AlarmThing("acme", "lab"), access.NameAuditChainBroken, access.ChainAlarm{Kind: access.BreakGap}),
		envelope(access.AlarmThing("acme", "hq"), access.NameAuditChainBroken, access.ChainAlarm{Kind: access.BreakGap}),
		newChainWriter(t, access.DecisionThing("acme", "lab", "x1"), nil).next(cenGrant("lab", s.id("a"), 1), now),
	}
	for _, m := range append([]*nats.Msg{own}, forged...) {
		if _, err := js.PublishMsg(siteCtx(t), m); err != nil {
			t.Fatalf("publish %s on the hostile box: %v", m.Subject, err)
		}
	}

	// The auditor sees the org's events: all but globex's.
	waitFor(t, "the auditor to refuse the forgeries", func() bool { return a.Stats().Refused == 4 })
	st := a.Stats()
	if st.Verified != 0 || st.Breaks != 0 || st.ForgedSys != 2 {
		t.Fatalf("auditor stats %+v: want nothing verified or broken, 2 forged system events", st)
	}
	alarms := cenNamed(s.alarms("hq"), access.NameAuditChainBroken)
	if len(alarms) != 4 {
		t.Fatalf("%d alarms about hq, want 4", len(alarms))
	}
	if got := cenNamed(s.alarms("lab"), access.NameAuditChainBroken); len(got) != 0 {
		t.Fatalf("%d alarms filed against lab, want none: the forgeries are hq's", len(got))
	}

	// Storage: every message of central's stream is read; only hq's own
	// event and central's alarms are stored.
	if _, err := s.cjs.CreateStream(siteCtx(t), jetstream.StreamConfig{Name: "deadletter-acme", Subjects: []string{"acme.deadletter"}}); err != nil {
		t.Fatal(err)
	}
	ing, err := storage.NewIngest(storage.New(pool, storage.Config{}), s.cjs, storage.IngestConfig{
		Stream: s.hub.EventStream(), DeadLetterSubject: "acme.deadletter", Origins: table,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ing.Start(siteCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	str, err := s.cjs.Stream(siteCtx(t), s.hub.EventStream())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ingest to read central's stream", func() bool {
		info, err := str.Info(siteCtx(t))
		return err == nil && ing.Stats().Refused == 5 && ing.Stats().Position >= info.State.LastSeq
	})
	var stored []string
	rows, err := pool.Query(siteCtx(t), "SELECT org || '.' || edge || '.' || thing_type || '.' || thing_code FROM lintel.events ORDER BY received_at")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var th string
		if err := rows.Scan(&th); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, th)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := "acme.hq.reader.r1"
	alarmThing := access.AlarmThing("acme", "hq")
	nOwn := 0
	for _, th := range stored {
		switch th {
		case want:
			nOwn++
		case alarmThing.Org + "." + alarmThing.Edge + "." + alarmThing.Type + "." + alarmThing.Code:
		default:
			t.Errorf("stored an event of %s", th)
		}
	}
	if nOwn != 1 {
		t.Fatalf("stored %v: want hq's own event once", stored)
	}
	for _, m := range forged {
		var n int
		e := eventID(t, m)
		if err := pool.QueryRow(siteCtx(t), "SELECT count(*) FROM lintel.events WHERE id = $1", [16]byte(e)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("forged %s stored", m.Subject)
		}
	}
	if got := ing.Stats(); got.Refused != 5 || got.DeadLettered < 5 {
		t.Fatalf("ingest stats %+v: want 5 refused and dead-lettered", got)
	}
}
