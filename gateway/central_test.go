package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/lintel-io/lintel/authz"
	centralpkg "github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/topic"
)

// Devices of the central gateway's tests: s1 and s2 are marked for the
// central gateway (at two edges, neither of them running), r9 is not.
var (
	cgwS1 = topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}
	cgwS2 = topic.Thing{Org: "acme", Edge: "lab", Type: "sensor", Code: "s2"}
	cgwR9 = topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r9"}
)

// cgw is a central with a database and the central gateway of org acme in
// front of it, over HTTP.
type cgw struct {
	c         *centralpkg.Central
	pool      *pgxpool.Pool
	passwords map[string]authz.Secret
	seeds     map[string]authz.Secret // command seeds by key id
	gw        *gateway.Central
	url       string
}

func (x *cgw) password(t topic.Thing) string { return x.passwords[authz.DeviceUser(t)].Reveal() }

func (x *cgw) service(name string) authz.Secret { return x.passwords[authz.ServiceUser("acme", name)] }

// startCentralGateway starts central (with PostgreSQL; skipped without),
// its configuration adjusted by tweaks, and the central gateway.
func startCentralGateway(t *testing.T, tweaks ...func(*centralpkg.Config)) *cgw {
	t.Helper()
	db := pgtest.NewDB(t) // skips without PostgreSQL, fails with LINTEL_REQUIRE_DB=1
	inv := &authz.Inventory{
		Orgs:  []authz.Org{{Code: "acme"}},
		Edges: []authz.Edge{{Org: "acme", Code: "hq"}, {Org: "acme", Code: "lab"}},
		Things: []authz.Thing{
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}, CentralGateway: true},
			{Thing: topic.Thing{Org: "acme", Edge: "lab", Type: "sensor", Code: "s2"}, CentralGateway: true},
			{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r9"}},
		},
		Services: []authz.Service{
			{Name: "central", Kind: authz.ServiceCentral, Org: "acme"},
			{Name: "gw", Kind: authz.ServiceGateway, Org: "acme"},
		},
	}
	res, err := (&authz.Generator{Cost: bcrypt.MinCost}).Generate(testCtx(t), inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := &cgw{pool: db.Pool, passwords: res.Secrets.Passwords, seeds: res.Secrets.CommandSeeds}
	ccfg := centralpkg.Config{
		Inventory: inv, State: res.State, Database: db.Pool,
		Orgs: map[string]centralpkg.OrgSecrets{"acme": {Service: "central", Password: x.service("central"),
			CommandKey: res.Secrets.CommandSeeds["acme"]}},
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
			StoreDir: t.TempDir(), MaxFileStore: 256 << 20, PingInterval: time.Second},
	}
	for _, tweak := range tweaks {
		tweak(&ccfg)
	}
	x.c, err = centralpkg.Start(testCtx(t), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.c.Stop)
	auth, err := authz.NewCentralGatewayAuthenticator(inv, res.State, "acme", authz.EdgeAuthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	x.gw, err = gateway.ConnectCentral(testCtx(t), gateway.CentralConfig{
		Org: "acme", URLs: []string{x.c.ClientURL()}, Service: "gw", Password: x.service("gw"), Auth: auth,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.gw.Close() })
	srv := httptest.NewServer(x.gw)
	t.Cleanup(srv.Close)
	x.url = srv.URL + gateway.PathEvents
	return x
}

// post sends body to the central gateway as the device as with password
// pass ("" for its own).
func (x *cgw) post(t *testing.T, as topic.Thing, pass string, h http.Header, body []byte) *response {
	t.Helper()
	if pass == "" {
		pass = x.password(as)
	}
	return do(t, nil, "POST", x.url, as, pass, h, body)
}

// rows counts the events stored in the database with id.
func (x *cgw) rows(t *testing.T, id message.ID) int {
	t.Helper()
	var n int
	if err := x.pool.QueryRow(testCtx(t), `SELECT count(*) FROM lintel.events WHERE id = $1`, id.String()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// ingested waits until the ingest of the gateway stream has committed
// everything the stream holds, and returns its stats.
func (x *cgw) ingested(t *testing.T) storage.IngestStats {
	t.Helper()
	var in *storage.Ingest
	waitFor(t, "the gateway ingest", func() bool { in = x.c.GatewayIngest("acme"); return in != nil })
	s, err := x.c.JetStream("acme").Stream(testCtx(t), topology.GatewayStream("acme"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	waitFor(t, "the gateway ingest to commit the stream", func() bool { return in.Stats().Position >= last })
	return in.Stats()
}

func stored(t *testing.T, res *response) gateway.Stored {
	t.Helper()
	var st gateway.Stored
	if res.status != http.StatusOK || json.Unmarshal(res.body, &st) != nil {
		t.Fatalf("want 200 and what was stored, got %d %s", res.status, res.body)
	}
	return st
}

// TestCentralGatewayStoresOnce posts events to the central gateway in
// each content mode and finds each in the database exactly once: a retry
// within the gateway stream's duplicate window is dropped by the stream
// (the same sequence, duplicate), one after it (the window shrunk) is
// stored again by the stream and once by storage's key.
func TestCentralGatewayStoresOnce(t *testing.T) {
	x := startCentralGateway(t)
	stream := topology.GatewayStream("acme")

	single, sb := event(t, cgwS1, topic.Event, "door.opened", map[string]string{"door": "front"})
	first := stored(t, x.post(t, cgwS1, "", ceHeader(), sb))
	if first.ID != single.ID.String() || first.Stream != stream || first.Duplicate {
		t.Fatalf("structured: %+v", first)
	}

	binary := &message.Envelope{ID: ids.New(), Time: time.Now().UTC().Truncate(time.Millisecond), Source: cgwS2,
		Type: topic.Telemetry, Name: "temperature", ContentType: "application/json", Payload: []byte(`{"value":21.5}`)}
	binHeader := http.Header{
		"Content-Type":     {"application/json"},
		"Ce-Specversion":   {"1.0"},
		"Ce-Id":            {binary.ID.String()},
		"Ce-Source":        {"/acme/lab/sensor/s2"},
		"Ce-Type":          {"io.lintel.tlm.temperature"},
		"Ce-Time":          {binary.Time.Format(time.RFC3339Nano)},
		"Ce-Schemaversion": {"1.0"},
	}
	if st := stored(t, x.post(t, cgwS2, "", binHeader, binary.Payload)); st.Stream != stream || st.Duplicate {
		t.Fatalf("binary: %+v", st)
	}

	b1, raw1 := event(t, cgwS1, topic.State, "door.state", map[string]bool{"open": true})
	b2, raw2 := event(t, cgwS1, topic.Telemetry, "humidity", map[string]float64{"value": 40})
	b3, raw3 := event(t, cgwS2, topic.Event, "spoofed", nil) // another device's: refused alone
	res := x.post(t, cgwS1, "", http.Header{"Content-Type": {gateway.ContentTypeCloudEventsBatch}},
		[]byte("["+string(raw1)+","+string(raw2)+","+string(raw3)+`,{"specversion":"1.0"}]`))
	var br []gateway.BatchResult
	if res.status != http.StatusMultiStatus || json.Unmarshal(res.body, &br) != nil || len(br) != 4 {
		t.Fatalf("batch: %d %s", res.status, res.body)
	}
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusForbidden, http.StatusUnprocessableEntity} {
		if br[i].Status != want {
			t.Errorf("batch event %d: status %d, want %d: %+v", i, br[i].Status, want, br[i].Problem)
		}
	}
	if br[0].ID != b1.ID.String() || br[0].Stored == nil || br[0].Stored.Stream != stream || br[1].ID != b2.ID.String() {
		t.Errorf("batch results: %+v %+v", br[0], br[1])
	}

	// Within the duplicate window (the default, two minutes) the stream
	// drops the retry and answers with the original sequence.
	if st := stored(t, x.post(t, cgwS1, "", ceHeader(), sb)); !st.Duplicate || st.Seq != first.Seq {
		t.Fatalf("retry within the window: %+v, want a duplicate of %d", st, first.Seq)
	}
	// Beyond it, the stream stores the retry again.
	const window = 100 * time.Millisecond
	// Twice: nats-server (v2.15.2, server/stream.go:2796 and :2980) lets
	// the dedup timer fire on an update before it takes the new window, so
	// that one purge may run with the old window of two minutes and put
	// the next one off as long. A second update, from a short window to
	// another, fires it again with a short window in any case.
	shrinkDedupWindow(t, x.c.JetStream("acme"), stream, 2*window)
	shrinkDedupWindow(t, x.c.JetStream("acme"), stream, window)
	again := gateway.Stored{Duplicate: true}
	for deadline := time.Now().Add(wait); again.Duplicate; {
		if time.Now().After(deadline) {
			t.Fatal("the stream never stored the retry")
		}
		time.Sleep(window / 2) // a retry pace, within the device's rate limit
		again = stored(t, x.post(t, cgwS1, "", ceHeader(), sb))
	}
	if again.Seq == first.Seq {
		t.Fatalf("retry beyond the window stored as %+v, first as %+v", again, first)
	}
	if n := countWithID(t, x.c.JetStream("acme"), stream, single.ID); n != 2 {
		t.Fatalf("the stream holds %d copies of the retried event, want 2", n)
	}

	st := x.ingested(t)
	for _, id := range []message.ID{single.ID, binary.ID, b1.ID, b2.ID} {
		if n := x.rows(t, id); n != 1 {
			t.Errorf("event %s stored %d times, want once", id, n)
		}
	}
	if n := x.rows(t, b3.ID); n != 0 {
		t.Errorf("the refused event of the batch was stored %d times", n)
	}
	if st.Duplicates == 0 || st.DeadLettered != 0 || st.Refused != 0 {
		t.Errorf("ingest stats %+v: want the second copy counted as a duplicate, nothing refused", st)
	}
	var org, edge, typ, code, mt string
	var value float64
	if err := x.pool.QueryRow(testCtx(t), `SELECT org, edge, thing_type, thing_code, message_type, value FROM lintel.events WHERE id = $1`,
		binary.ID.String()).Scan(&org, &edge, &typ, &code, &mt, &value); err != nil {
		t.Fatal(err)
	}
	if got := (topic.Thing{Org: org, Edge: edge, Type: typ, Code: code}); got != cgwS2 || mt != "tlm" || value != 21.5 {
		t.Errorf("binary event stored as %v %s %v", got, mt, value)
	}
	if s := x.gw.Stats(); s.Stored != 5 || s.Duplicates < 1 || s.Forbidden != 1 {
		t.Errorf("gateway stats %+v", s)
	}
}

// TestCentralGatewayAttacks: a device posting as another device (403), a
// wrong password and a device not marked for the central gateway (401)
// store nothing; a client other than the gateway's service user may not
// publish on the gateway stream's subjects, and the service user only on
// those of the marked devices (nats-server's permission violations); an
// event the gateway stream holds that names another org is refused by
// the ingest.
func TestCentralGatewayAttacks(t *testing.T) {
	x := startCentralGateway(t)
	js := x.c.JetStream("acme")
	stream := topology.GatewayStream("acme")

	asOther, body := event(t, cgwS2, topic.Event, "door.opened", nil)
	res := x.post(t, cgwS1, "", ceHeader(), body)
	if p := res.problem(t); res.status != http.StatusForbidden || p.Slug() != gateway.SlugSubjectNotAllowed || p.Subject != cgwS2.Subject(topic.Event).String() {
		t.Errorf("as another device: %d %+v", res.status, p)
	}
	wrong, wb := event(t, cgwS1, topic.Event, "door.opened", nil)
	if res := x.post(t, cgwS1, "not-the-password", ceHeader(), wb); res.status != http.StatusUnauthorized || res.problem(t).Slug() != gateway.SlugUnauthorized {
		t.Errorf("wrong password: %d %s", res.status, res.body)
	}
	unmarked, ub := event(t, cgwR9, topic.Event, "card.read", nil)
	if res := x.post(t, cgwR9, "", ceHeader(), ub); res.status != http.StatusUnauthorized || res.problem(t).Slug() != gateway.SlugUnauthorized {
		t.Errorf("device not marked for the central gateway: %d %s", res.status, res.body)
	}

	// Other clients on the gateway stream's subjects: central's own
	// service (which may publish everything else of its org) on a marked
	// device's, and the gateway's user on an unmarked device's.
	forged := func(t *testing.T, svc string, th topic.Thing) message.ID {
		t.Helper()
		errs := make(chan error, 4)
		user := authz.ServiceUser("acme", svc)
		nc, err := nats.Connect(x.c.ClientURL(), nats.UserInfo(user, x.service(svc).Reveal()),
			nats.CustomInboxPrefix(authz.UserInboxPrefix(user)),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		e, _ := event(t, th, topic.Event, "door.opened", nil)
		msg, err := e.ToMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		msg.Subject = topology.GatewaySubject(th, topic.Event)
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		_ = nc.Flush()
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), msg.Subject) {
				t.Errorf("%s publishing on %s: %v, want a permission violation", user, msg.Subject, err)
			}
		case <-time.After(wait):
			t.Errorf("%s published on %s without a permission violation", user, msg.Subject)
		}
		return e.ID
	}
	byCentral := forged(t, "central", cgwS1)
	byGateway := forged(t, "gw", cgwR9)

	// The gateway's user (a compromised gateway) publishes an event that
	// names another org on a marked device's subject: the stream stores
	// it under that device's subject, and the ingest refuses it.
	nc, err := nats.Connect(x.c.ClientURL(), nats.UserInfo(authz.ServiceUser("acme", "gw"), x.service("gw").Reveal()),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(authz.ServiceUser("acme", "gw"))))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	gjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	otherOrg, _ := event(t, topic.Thing{Org: "globex", Edge: "hq", Type: "sensor", Code: "s1"}, topic.Event, "door.opened", nil)
	msg, err := otherOrg.ToMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg.Subject = topology.GatewaySubject(cgwS1, topic.Event)
	if _, err := gjs.PublishMsg(testCtx(t), msg); err != nil {
		t.Fatalf("the gateway's user publishing into its stream: %v", err)
	}

	// A good event last, so that the ingest has read past everything.
	good, gb := event(t, cgwS1, topic.Event, "door.closed", nil)
	stored(t, x.post(t, cgwS1, "", ceHeader(), gb))
	st := x.ingested(t)
	if x.rows(t, good.ID) != 1 {
		t.Fatal("the good event was not stored")
	}
	for name, id := range map[string]message.ID{"as another device": asOther.ID, "wrong password": wrong.ID, "unmarked device": unmarked.ID,
		"central's service": byCentral, "gateway on an unmarked device": byGateway, "another org": otherOrg.ID} {
		if n := x.rows(t, id); n != 0 {
			t.Errorf("%s: stored %d times", name, n)
		}
		if name != "another org" && countWithID(t, js, stream, id) != 0 {
			t.Errorf("%s: in the gateway stream", name)
		}
	}
	if st.DeadLettered != 1 {
		t.Errorf("ingest stats %+v: want the other org's event dead-lettered", st)
	}
	dl := deadLetters(t, js, centralpkg.DeadLetterStream("acme"))
	if len(dl) != 1 || dl[0].Get(storage.HeaderOriginalStream) != stream || !strings.Contains(dl[0].Get(storage.HeaderDeadLetterReason), "globex") {
		t.Errorf("dead letters: %v", dl)
	}
	if s := x.gw.Stats(); s.Stored != 1 || s.Forbidden != 1 || s.Unauthorized != 2 {
		t.Errorf("gateway stats %+v", s)
	}
}

// deadLetters returns the headers of the messages of stream.
func deadLetters(t *testing.T, js jetstream.JetStream, stream string) []nats.Header {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []nats.Header
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil {
			out = append(out, m.Header)
		}
	}
	return out
}

// TestCentralGatewayEventTooLarge posts to the central gateway events
// larger than its gateway stream stores (max_msg_size) and one larger
// than central's max payload, alone and in a batch: each is a 413
// event-too-large naming the limit it broke where the gateway knows it,
// without Retry-After, and none is stored, while a good event of the same
// batch is.
func TestCentralGatewayEventTooLarge(t *testing.T) {
	const maxMsgSize, maxPayload = 16 << 10, 128 << 10
	x := startCentralGateway(t, func(c *centralpkg.Config) {
		c.GatewayStream = func(s *jetstream.StreamConfig) { s.MaxMsgSize = maxMsgSize }
		c.ServerOptions = func(o *server.Options) { o.MaxPayload = maxPayload }
	})
	pad := func(n int) map[string]string { return map[string]string{"pad": strings.Repeat("x", n)} }
	overStream, sb := event(t, cgwS1, topic.Event, "big", pad(2*maxMsgSize))
	overPayload, pb := event(t, cgwS1, topic.Event, "huge", pad(2*maxPayload))
	inBatch, bb := event(t, cgwS1, topic.Event, "big.batched", pad(2*maxMsgSize))
	good, gb := event(t, cgwS1, topic.Event, "small", nil)
	check := func(t *testing.T, status int, header http.Header, p *gateway.Problem, id message.ID, inDetail string) {
		t.Helper()
		if status != http.StatusRequestEntityTooLarge || p == nil || p.Status != status || p.Slug() != gateway.SlugEventTooLarge || p.ID != id.String() {
			t.Fatalf("status %d, problem %+v; want 413 %s for %s", status, p, gateway.SlugEventTooLarge, id)
		}
		if !strings.Contains(p.Detail, inDetail) {
			t.Errorf("detail %q does not name %q", p.Detail, inDetail)
		}
		if ra := header.Get("Retry-After"); ra != "" {
			t.Errorf("Retry-After %q on a refusal that a retry cannot change", ra)
		}
	}
	res := x.post(t, cgwS1, "", ceHeader(), sb)
	p := res.problem(t)
	check(t, res.status, res.header, &p, overStream.ID, "gateway stream "+topology.GatewayStream("acme"))
	res = x.post(t, cgwS1, "", ceHeader(), pb)
	p = res.problem(t)
	check(t, res.status, res.header, &p, overPayload.ID, "max payload of "+strconv.Itoa(maxPayload))
	res = x.post(t, cgwS1, "", http.Header{"Content-Type": {gateway.ContentTypeCloudEventsBatch}}, []byte("["+string(bb)+","+string(gb)+"]"))
	var br []gateway.BatchResult
	if res.status != http.StatusMultiStatus || json.Unmarshal(res.body, &br) != nil || len(br) != 2 {
		t.Fatalf("batch: %d %s", res.status, res.body)
	}
	check(t, br[0].Status, nil, br[0].Problem, inBatch.ID, "max_msg_size")
	if br[1].Status != http.StatusOK || br[1].ID != good.ID.String() {
		t.Fatalf("the good event of the batch: %+v", br[1])
	}

	x.ingested(t)
	if x.rows(t, good.ID) != 1 {
		t.Fatal("the good event was not stored")
	}
	js := x.c.JetStream("acme")
	for _, id := range []message.ID{overStream.ID, overPayload.ID, inBatch.ID} {
		if x.rows(t, id) != 0 || countWithID(t, js, topology.GatewayStream("acme"), id) != 0 {
			t.Errorf("event %s stored", id)
		}
	}
	if s := x.gw.Stats(); s.ServerErrors != 0 || s.ClientErrors != 3 || s.Stored != 1 {
		t.Errorf("gateway stats %+v: want three 4xx, no 5xx, one stored", s)
	}
}
