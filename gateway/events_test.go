package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// TestEventsStored posts an event in each content mode and finds it in the
// edge's event stream with its id, source and payload; posting it again
// (a retry) is answered as a duplicate and stored once.
func TestEventsStored(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, nil)
	stream := n.Names().EventStream
	subject := r1.Subject(topic.Event).String()

	structured, sb := event(t, r1, topic.Event, "door.opened", map[string]string{"door": "front"})
	binary := &message.Envelope{ID: ids.New(), Time: time.Now().UTC().Truncate(time.Millisecond), Source: r1, Type: topic.Event, Name: "door.closed",
		ContentType: "application/json", Payload: []byte(`{"door":"front"}`)}
	batch1, b1 := event(t, r1, topic.Event, "card.read", nil)
	batch2, b2 := event(t, r1, topic.State, "door.state", map[string]bool{"open": true})
	batchBody := []byte("[" + string(b1) + "," + string(b2) + "]")

	binHeader := http.Header{
		"Content-Type":     {"application/json"},
		"Ce-Specversion":   {"1.0"},
		"Ce-Id":            {binary.ID.String()},
		"Ce-Source":        {"/acme/hq/reader/r1"},
		"Ce-Type":          {"io.lintel.evt.door.closed"},
		"Ce-Time":          {binary.Time.Format(time.RFC3339Nano)},
		"Ce-Schemaversion": {"1.0"},
	}
	for round := range 2 {
		res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", ceHeader(), sb)
		var st gateway.Stored
		if res.status != http.StatusOK || json.Unmarshal(res.body, &st) != nil {
			t.Fatalf("structured: %d %s", res.status, res.body)
		}
		if st.ID != structured.ID.String() || st.Stream != stream || st.Duplicate != (round == 1) {
			t.Fatalf("structured round %d: %+v", round, st)
		}
		res = do(t, e, "POST", g.url+gateway.PathEvents, r1, "", binHeader, binary.Payload)
		if res.status != http.StatusOK || json.Unmarshal(res.body, &st) != nil || st.Duplicate != (round == 1) {
			t.Fatalf("binary round %d: %d %s", round, res.status, res.body)
		}
		res = do(t, e, "POST", g.url+gateway.PathEvents, r1, "", http.Header{"Content-Type": {gateway.ContentTypeCloudEventsBatch}}, batchBody)
		var br []gateway.BatchResult
		if res.status != http.StatusOK || json.Unmarshal(res.body, &br) != nil || len(br) != 2 {
			t.Fatalf("batch round %d: %d %s", round, res.status, res.body)
		}
		for i, want := range []*message.Envelope{batch1, batch2} {
			if br[i].Status != http.StatusOK || br[i].ID != want.ID.String() || br[i].Stored.Duplicate != (round == 1) {
				t.Fatalf("batch round %d event %d: %+v", round, i, br[i])
			}
		}
	}

	got := storedEnvelopes(t, n.JetStream(), stream, subject)
	if len(got) != 3 {
		t.Fatalf("stored %d events on %s, want 3 (each once)", len(got), subject)
	}
	byID := map[message.ID]*message.Envelope{}
	for _, x := range got {
		byID[x.ID] = x
	}
	for _, want := range []*message.Envelope{structured, binary, batch1} {
		x := byID[want.ID]
		if x == nil {
			t.Fatalf("event %s not stored", want.ID)
		}
		if x.Source != r1 || x.Name != want.Name || !x.Time.Equal(want.Time) {
			t.Errorf("stored %+v, want %+v", x, want)
		}
	}
	if p := string(byID[binary.ID].Payload); p != `{"door":"front"}` {
		t.Errorf("binary payload stored as %q", p)
	}
	if st := storedEnvelopes(t, n.JetStream(), stream, r1.Subject(topic.State).String()); len(st) != 1 || st[0].ID != batch2.ID {
		t.Errorf("state stored: %v", st)
	}
	if s := g.Stats(); s.Stored != 4 || s.Duplicates != 4 {
		t.Errorf("stats: %+v", s)
	}
}

// TestBatchPartialFailure posts a batch whose events fail in different
// ways; each gets its own status and the good ones are stored.
func TestBatchPartialFailure(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, nil)
	good, gb := event(t, r1, topic.Event, "ok", nil)
	other, ob := event(t, r2, topic.Event, "spoofed", nil)
	req, rb := event(t, r1, topic.Request, "access.requested", nil)
	body := fmt.Sprintf(`[%s,%s,{"specversion":"1.0","id":"nope"},%s]`, gb, ob, rb)
	res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", http.Header{"Content-Type": {gateway.ContentTypeCloudEventsBatch}}, []byte(body))
	var br []gateway.BatchResult
	if res.status != http.StatusMultiStatus || json.Unmarshal(res.body, &br) != nil || len(br) != 4 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	want := []struct {
		status int
		id     string
		field  string
	}{
		{http.StatusOK, good.ID.String(), ""},
		{http.StatusForbidden, other.ID.String(), "source"},
		{http.StatusUnprocessableEntity, "", "id"},
		{http.StatusUnprocessableEntity, req.ID.String(), "type"},
	}
	for i, w := range want {
		if br[i].Status != w.status || br[i].ID != w.id {
			t.Errorf("event %d: %+v, want status %d id %s", i, br[i], w.status, w.id)
		}
		if w.field != "" && (br[i].Problem == nil || br[i].Problem.Field != w.field) {
			t.Errorf("event %d: problem %+v, want field %q", i, br[i].Problem, w.field)
		}
	}
	if got := storedEnvelopes(t, n.JetStream(), n.Names().EventStream, r2.Subject(topic.Event).String()); len(got) != 0 {
		t.Fatalf("r1 stored %d events as r2", len(got))
	}
	if got := storedEnvelopes(t, n.JetStream(), n.Names().EventStream, r1.Subject(topic.Event).String()); len(got) != 1 {
		t.Fatalf("stored %d of r1's events, want 1", len(got))
	}
}

// TestEventTooLarge posts events larger than the edge's event stream
// stores (its max_msg_size, 64 KiB by default) but within the gateway's
// body limit (1 MiB), in structured, binary and batch mode: each is the
// client's mistake, a 413 event-too-large naming the event, without
// Retry-After, and none of them is stored, while a good event of the same
// batch is. (TestCentralGatewayEventTooLarge covers the server's max
// payload, which the gateway's decoder limit keeps out of reach at an
// edge with the default 1 MiB.)
func TestEventTooLarge(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, func(c *gateway.Config) { c.Rate = -1 })
	url := g.url + gateway.PathEvents
	pad := map[string]string{"pad": strings.Repeat("x", 2*edgekit.DefaultEventMaxMsgSize)}
	structured, sb := event(t, r1, topic.Event, "big.structured", pad)
	binID := ids.New()
	binBody := []byte(strings.Repeat("y", 2*edgekit.DefaultEventMaxMsgSize))
	inBatch, bb := event(t, r1, topic.Event, "big.batched", pad)
	good, gb := event(t, r1, topic.Event, "small", nil)

	check := func(t *testing.T, status int, header http.Header, p *gateway.Problem, id, inDetail string) {
		t.Helper()
		if status != http.StatusRequestEntityTooLarge || p == nil || p.Status != status || p.Slug() != gateway.SlugEventTooLarge || p.ID != id {
			t.Fatalf("status %d, problem %+v; want 413 %s for %s", status, p, gateway.SlugEventTooLarge, id)
		}
		if !strings.Contains(p.Detail, inDetail) {
			t.Errorf("detail %q does not name %q", p.Detail, inDetail)
		}
		if ra := header.Get("Retry-After"); ra != "" {
			t.Errorf("Retry-After %q on a refusal that a retry cannot change", ra)
		}
	}
	single := []struct {
		name     string
		id       message.ID
		header   http.Header
		body     []byte
		inDetail string
	}{
		{"structured", structured.ID, ceHeader(), sb, "max_msg_size"},
		{"binary", binID, binaryHeader(binID, "big.binary"), binBody, "max_msg_size"},
	}
	for _, c := range single {
		t.Run(c.name, func(t *testing.T) {
			res := do(t, e, "POST", url, r1, "", c.header, c.body)
			p := res.problem(t)
			check(t, res.status, res.header, &p, c.id.String(), c.inDetail)
		})
	}
	t.Run("batch", func(t *testing.T) {
		res := do(t, e, "POST", url, r1, "", http.Header{"Content-Type": {gateway.ContentTypeCloudEventsBatch}}, []byte("["+string(bb)+","+string(gb)+"]"))
		var br []gateway.BatchResult
		if res.status != http.StatusMultiStatus || json.Unmarshal(res.body, &br) != nil || len(br) != 2 {
			t.Fatalf("%d %s", res.status, res.body)
		}
		check(t, br[0].Status, nil, br[0].Problem, inBatch.ID.String(), "max_msg_size")
		if br[1].Status != http.StatusOK || br[1].ID != good.ID.String() {
			t.Errorf("the good event of the batch: %+v", br[1])
		}
	})

	got := storedEnvelopes(t, n.JetStream(), n.Names().EventStream, r1.Subject(topic.Event).String())
	if len(got) != 1 || got[0].ID != good.ID {
		t.Errorf("stored %d events, want only the good one %s", len(got), good.ID)
	}
	if s := g.Stats(); s.ServerErrors != 0 || s.ClientErrors != 3 || s.Stored != 1 {
		t.Errorf("stats %+v: want three 4xx, no 5xx, one stored", s)
	}
}

// binaryHeader returns the ce-* headers of r1's event id named name in
// binary content mode, with an opaque payload.
func binaryHeader(id message.ID, name string) http.Header {
	return http.Header{
		"Content-Type":     {"application/octet-stream"},
		"Ce-Specversion":   {"1.0"},
		"Ce-Id":            {id.String()},
		"Ce-Source":        {"/acme/hq/reader/r1"},
		"Ce-Type":          {"io.lintel.evt." + name},
		"Ce-Time":          {time.Now().UTC().Format(time.RFC3339Nano)},
		"Ce-Schemaversion": {"1.0"},
	}
}

// TestHostileInput sends what a careless or hostile client sends and
// checks each gets its own 4xx problem naming what is wrong, never a 5xx,
// and that nothing is stored.
func TestHostileInput(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, func(c *gateway.Config) { c.MaxBodyBytes = 4096; c.Rate = -1 })
	_, good := event(t, r1, topic.Event, "door.opened", nil)
	_, spoof := event(t, r2, topic.Event, "door.opened", nil)
	_, otherEdge := event(t, labR1, topic.Event, "door.opened", nil)
	_, cmd := event(t, r1, topic.Command, "command", message.Command{Action: "unlock"})
	_, cfg := event(t, r1, topic.Config, "config", nil)
	url := g.url + gateway.PathEvents
	cases := []struct {
		name   string
		as     topic.Thing
		pass   string
		header http.Header
		body   []byte
		status int
		slug   string
		field  string
	}{
		{"no credentials", topic.Thing{}, "", ceHeader(), good, 401, gateway.SlugUnauthorized, ""},
		{"wrong password", r1, "wrong", ceHeader(), good, 401, gateway.SlugUnauthorized, ""},
		{"device of another edge", labR1, "", ceHeader(), otherEdge, 401, gateway.SlugUnauthorized, ""},
		{"another device's source", r1, "", ceHeader(), spoof, 403, gateway.SlugSubjectNotAllowed, "source"},
		{"a command", r1, "", ceHeader(), cmd, 403, gateway.SlugSubjectNotAllowed, "type"},
		{"a config", r1, "", ceHeader(), cfg, 403, gateway.SlugSubjectNotAllowed, "type"},
		{"too large", r1, "", ceHeader(), []byte(`{"pad":"` + strings.Repeat("x", 5000) + `"}`), 413, gateway.SlugTooLarge, ""},
		{"plain JSON", r1, "", http.Header{"Content-Type": {"application/json"}}, good, 415, gateway.SlugUnsupportedMedia, "Content-Type"},
		{"no content type", r1, "", nil, good, 415, gateway.SlugUnsupportedMedia, "Content-Type"},
		{"not JSON", r1, "", ceHeader(), []byte("{"), 422, gateway.SlugMalformed, ""},
		{"no id", r1, "", ceHeader(), []byte(`{"specversion":"1.0","source":"/acme/hq/reader/r1","type":"io.lintel.evt"}`), 422, gateway.SlugMalformed, "id"},
		{"bad time", r1, "", ceHeader(), []byte(`{"specversion":"1.0","id":"0190a0a0-0000-7000-8000-000000000001","source":"/acme/hq/reader/r1","type":"io.lintel.evt","time":"yesterday"}`), 422, gateway.SlugMalformed, "time"},
		{"bad version", r1, "", ceHeader(), []byte(`{"specversion":"0.3","id":"0190a0a0-0000-7000-8000-000000000001","source":"/acme/hq/reader/r1","type":"io.lintel.evt"}`), 422, gateway.SlugMalformed, "specversion"},
		{"batch not an array", r1, "", http.Header{"Content-Type": {gateway.ContentTypeCloudEventsBatch}}, good, 422, gateway.SlugMalformed, ""},
		{"binary without id", r1, "", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Source": {"/acme/hq/reader/r1"}, "Ce-Type": {"io.lintel.evt"}}, nil, 422, gateway.SlugMalformed, "id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := do(t, e, "POST", url, c.as, c.pass, c.header, c.body)
			if res.status != c.status {
				t.Fatalf("status %d, want %d: %s", res.status, c.status, res.body)
			}
			p := res.problem(t)
			if p.Slug() != c.slug || p.Status != c.status || p.Detail == "" {
				t.Errorf("problem %+v, want %s", p, c.slug)
			}
			if c.field != "" && p.Field != c.field {
				t.Errorf("problem field %q, want %q (%s)", p.Field, c.field, p.Detail)
			}
			if c.status == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without a Basic challenge")
			}
		})
	}
	if res := do(t, e, "GET", g.url+"/v1/nothing", r1, "", nil, nil); res.status != 404 || res.problem(t).Slug() != gateway.SlugNotFound {
		t.Errorf("unknown path: %d %s", res.status, res.body)
	}
	if res := do(t, e, "GET", g.url+gateway.PathCommands+"?wait=forever", r1, "", nil, nil); res.status != 400 || res.problem(t).Field != "wait" {
		t.Errorf("bad wait: %d %s", res.status, res.body)
	}
	if res := do(t, e, "GET", url, r1, "", nil, nil); res.status != 405 || res.problem(t).Slug() != gateway.SlugMethodNotAllowed || res.header.Get("Allow") != "POST" {
		t.Errorf("GET on the events endpoint: %d %s", res.status, res.body)
	}
	if got := storedEnvelopes(t, n.JetStream(), n.Names().EventStream, "acme.hq.reader.r2.evt"); len(got) != 0 {
		t.Fatalf("r2's subject holds %d events", len(got))
	}
	if s := g.Stats(); s.ServerErrors != 0 || s.Stored != 0 {
		t.Errorf("stats %+v: want no 5xx and nothing stored", s)
	}
}

// TestRateLimit exhausts a device's budget: the next request gets 429
// with Retry-After, while another device is unaffected.
func TestRateLimit(t *testing.T) {
	e := newEnv(t)
	n := startNode(t, e, nil)
	g := startGateway(t, e, n, func(c *gateway.Config) { c.Rate = 0.001; c.Burst = 3 })
	for i := range 3 {
		_, b := event(t, r1, topic.Event, "x", nil)
		if res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", ceHeader(), b); res.status != 200 {
			t.Fatalf("request %d: %d %s", i, res.status, res.body)
		}
	}
	_, b := event(t, r1, topic.Event, "x", nil)
	res := do(t, e, "POST", g.url+gateway.PathEvents, r1, "", ceHeader(), b)
	if res.status != http.StatusTooManyRequests || res.problem(t).Slug() != gateway.SlugRateLimited {
		t.Fatalf("over budget: %d %s", res.status, res.body)
	}
	if ra := res.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	_, b = event(t, r2, topic.Event, "x", nil)
	if res := do(t, e, "POST", g.url+gateway.PathEvents, r2, "", ceHeader(), b); res.status != 200 {
		t.Fatalf("another device: %d %s", res.status, res.body)
	}
}
