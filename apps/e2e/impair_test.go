package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// gatewayBin is apps/gateway's binary, built once beside the others.
var gatewayBin struct {
	once sync.Once
	path string
	err  error
}

func buildGateway(t testing.TB) string {
	t.Helper()
	dir := build(t)
	gatewayBin.once.Do(func() {
		p := filepath.Join(dir, "gateway")
		if out, err := exec.Command("go", "build", "-o", p, "github.com/lintel-io/lintel/apps/gateway").CombinedOutput(); err != nil {
			gatewayBin.err = fmt.Errorf("go build gateway: %v\n%s", err, out)
			return
		}
		gatewayBin.path = p
	})
	if gatewayBin.err != nil {
		t.Fatal(gatewayBin.err)
	}
	return gatewayBin.path
}

// siteGateway is the site's HTTP gateway, a process in front of the
// edge's device listener, configured beside the edge's rendered files.
type siteGateway struct {
	bin, config, listen, admin string
	proc                       *process
}

func startGateway(t *testing.T, s *site) *siteGateway {
	t.Helper()
	g := &siteGateway{bin: buildGateway(t), config: filepath.Join(s.dir, "edges/acme-hq/gateway.json"),
		listen: freeAddr(t), admin: freeAddr(t)}
	writeJSON(t, g.config, map[string]any{
		"org": "acme", "edge": "hq", "inventory": "inventory.json", "state": "state.json",
		"edge_urls": []string{"tls://" + s.device}, "edge_ca_file": s.ca.CAFile,
		"listen": g.listen, "admin_listen": g.admin, "log": map[string]string{"format": "json"},
	})
	g.start(t)
	return g
}

func (g *siteGateway) start(t *testing.T) {
	t.Helper()
	g.proc = start(t, g.bin, "-config", g.config)
	waitFor(t, "the gateway ready", ready(g.admin))
}

func (g *siteGateway) kill() {
	_ = g.proc.cmd.Process.Kill()
	<-g.proc.done
}

// httpDevice publishes events through the gateway with net/http, one at
// a time, each with a payload key of its own. It sends an event again,
// under the same id, until the gateway answers 2xx, and only then counts it
// acknowledged and goes on to the next.
type httpDevice struct {
	thing  topic.Thing
	url    string
	user   string
	pass   string
	client *http.Client

	mu      sync.Mutex
	acked   map[message.ID]string
	lastAck time.Time
	retries int
	dups    int            // 2xx answers that the edge's stream dropped a retry
	refused map[string]int // why attempts failed: status code or transport error
}

func newHTTPDevice(t *testing.T, s *site, g *siteGateway, th topic.Thing) *httpDevice {
	t.Helper()
	user := authz.DeviceUser(th)
	return &httpDevice{thing: th, url: "http://" + g.listen + gateway.PathEvents, user: user, pass: s.password(t, user),
		client: &http.Client{Timeout: 10 * time.Second}, acked: make(map[message.ID]string), refused: make(map[string]int)}
}

// run publishes every 40 ms until ctx ends.
func (d *httpDevice) run(ctx context.Context) {
	defer d.client.CloseIdleConnections()
	var ids message.IDGenerator
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		key := d.thing.Code + "-" + strconv.Itoa(n)
		e := &message.Envelope{ID: ids.New(), Time: time.Now().UTC(), Source: d.thing, Type: topic.Event, Name: "door.opened"}
		if err := message.SetPayload(e, map[string]string{"key": key}); err != nil {
			panic(err) // a map of strings always encodes
		}
		body, err := e.AppendCloudEvent(nil)
		if err != nil {
			panic(err)
		}
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				d.mu.Lock()
				d.retries++
				d.mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			why, dup := d.post(ctx, body)
			d.mu.Lock()
			if why == "" {
				d.acked[e.ID] = key
				d.lastAck = time.Now()
				if dup {
					d.dups++
				}
			} else if ctx.Err() == nil {
				d.refused[why]++
			}
			d.mu.Unlock()
			if why == "" {
				break
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// post sends one structured CloudEvent and returns "" for a 2xx answer,
// else why it failed, and whether the answer says the edge's stream had
// the event already.
func (d *httpDevice) post(ctx context.Context, body []byte) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return err.Error(), false
	}
	req.Header.Set("Content-Type", message.ContentTypeCloudEventsJSON)
	req.SetBasicAuth(d.user, d.pass)
	res, err := d.client.Do(req)
	if err != nil {
		return "transport error", false
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, res.Body)
		return strconv.Itoa(res.StatusCode), false
	}
	var stored struct {
		Duplicate bool `json:"duplicate"`
	}
	_ = json.NewDecoder(res.Body).Decode(&stored) // 2xx is the acknowledgement; the body only informs
	_, _ = io.Copy(io.Discard, res.Body)
	return "", stored.Duplicate
}

// ackedSince reports whether an event was acknowledged after t.
func (d *httpDevice) ackedSince(t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastAck.After(t)
}

// summary says how many events were acknowledged and why attempts failed.
func (d *httpDevice) summary() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	whys := make([]string, 0, len(d.refused))
	for why, n := range d.refused {
		whys = append(whys, fmt.Sprintf("%s: %d", why, n))
	}
	sort.Strings(whys)
	return fmt.Sprintf("%d events acknowledged, %d attempts sent again (failed: %s), %d retries answered as duplicates",
		len(d.acked), d.retries, strings.Join(whys, ", "), d.dups)
}

// edgeLinkUp reports whether the edge's /readyz says its link to central
// is up.
func edgeLinkUp(admin string) bool {
	r, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return false
	}
	defer r.Body.Close()
	var body struct {
		Detail edgekit.NodeStatus `json:"detail"`
	}
	return json.NewDecoder(r.Body).Decode(&body) == nil && body.Detail.LinkUp
}

// leafPing returns the ping interval and the most unanswered pings of the
// edge's nats-server, read from the configuration authz renders for it,
// as the edge binary does, from the site's rendered inventory and state.
func leafPing(t *testing.T, s *site) (time.Duration, int) {
	t.Helper()
	dir := filepath.Join(s.dir, "edges/acme-hq")
	inv, err := config.LoadInventory(filepath.Join(dir, "inventory.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := authz.LoadState(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := authz.RenderEdge(inv, st, "acme", "hq", authz.RenderOptions{HubURLs: []string{"nats-leaf://" + s.leaf}})
	if err != nil {
		t.Fatalf("render the edge's server configuration: %v", err)
	}
	var interval time.Duration
	var most int
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch k {
		case "ping_interval":
			interval, err = time.ParseDuration(v)
		case "ping_max":
			most, err = strconv.Atoi(v)
		}
		if err != nil {
			t.Fatalf("the edge's %s: %v", k, err)
		}
	}
	if interval <= 0 || most <= 0 {
		t.Fatalf("no ping_interval and ping_max in the edge's server configuration:\n%s", conf)
	}
	return interval, most
}
