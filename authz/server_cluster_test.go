package authz_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/internal/freeaddr"
	"github.com/lintel-io/lintel/testing/natstest"
)

// freePorts returns n loopback ports free a moment ago: route URLs must
// be known before the nodes start.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ports = append(ports, freeaddr.Port(t))
	}
	return ports
}

// clusterNode starts central node i, routed to ports (its own first),
// with password and route TLS from ca.
func clusterNode(t *testing.T, inv *authz.Inventory, c *natsCreds, i int, ports []int, password string, ca *natstest.CA) (*natstest.Server, *logCapture) {
	t.Helper()
	ro := testRender(t)
	ro.ServerName = fmt.Sprintf("central-%d", i)
	own := ports[0]
	var routes []string
	for _, p := range ports { // its own route twice: deduplicated
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	ro.Cluster = &authz.ClusterOptions{Host: "127.0.0.1", Port: own, Routes: routes,
		Password: authz.NewSecret(password),
		TLS:      &authz.TLSFiles{CertFile: ca.ServerCertFile, KeyFile: ca.ServerKeyFile, ClientCAFile: ca.CAFile}}
	opts, err := authz.CentralOptions(inv, c.st, ro)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog = os.Getenv("DBGLOG") == ""
	srv := natstest.Run(t, opts)
	return srv, captureLog(srv)
}

// TestClusterRoutes: three central nodes rendered with Cluster form a
// JetStream cluster over authenticated TLS routes and place an R3 stream;
// a node with the wrong route password, or with a certificate of another
// CA, is refused by the others.
func TestClusterRoutes(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, 4)
	ca, other := natstest.TempCA(t), natstest.TempCA(t)
	ports := freePorts(t, 5)
	var nodes []*natstest.Server
	for i := range 3 {
		srv, l := clusterNode(t, inv, c, i, append([]int{ports[i]}, ports[:3]...), "route-secret", ca)
		nodes = append(nodes, srv)
		t.Cleanup(func() {
			if t.Failed() {
				l.mu.Lock()
				t.Logf("node %d:\n%s", i, strings.Join(l.lines, "\n"))
				l.mu.Unlock()
			}
		})
	}
	waitFor(t, "three routed nodes", func() bool {
		for _, n := range nodes {
			if len(peers(t, n)) != 2 {
				return false
			}
		}
		return true
	})
	svc := authz.ServiceUser("acme", "ingest")
	nc, err := nats.Connect(nodes[0].ClientURL(), nats.UserInfo(svc, c.passwords[svc]),
		nats.CustomInboxPrefix(authz.UserInboxPrefix(svc)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var str jetstream.Stream
	waitFor(t, "an R3 stream placed on the cluster", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		str, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "r3", Subjects: []string{"acme.central.r3"}, Replicas: 3})
		return err == nil
	})
	info := str.CachedInfo()
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream placed as %+v", info.Cluster)
	}

	// Wrong password, and right password with a certificate of another
	// CA: the nodes refuse the route. (The refused node lists, for a
	// moment, each connection it keeps dialling, so the check is on the
	// cluster's side.)
	_, badLog := clusterNode(t, inv, c, 3, append([]int{ports[3]}, ports[:3]...), "wrong", ca)
	badLog.wait(t, "Authorization Violation")
	_, strangerLog := clusterNode(t, inv, c, 4, append([]int{ports[4]}, ports[:3]...), "route-secret", other)
	strangerLog.wait(t, "certificate")
	for i, n := range nodes {
		for _, p := range peers(t, n) {
			if p == "central-3" || p == "central-4" {
				t.Errorf("node %d is routed to the refused %s", i, p)
			}
		}
		jsz, err := n.Server().Jsz(&server.JSzOptions{})
		if err != nil || jsz.Meta == nil {
			t.Fatalf("node %d: JetStream cluster: %v", i, err)
		}
		if jsz.Meta.Size != 3 {
			t.Errorf("node %d: the JetStream cluster has %d peers, want 3", i, jsz.Meta.Size)
		}
	}
}

// peers returns the names of the servers srv has routes to.
func peers(t *testing.T, srv *natstest.Server) []string {
	t.Helper()
	rz, err := srv.Server().Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range rz.Routes {
		if !seen[r.RemoteName] {
			seen[r.RemoteName] = true
			out = append(out, r.RemoteName)
		}
	}
	return out
}

// TestRenderCluster: the rendered text of a clustered central names the
// cluster, its TLS and the included route credentials; WriteClusterConf
// writes them with mode 0600, no password in clear but in the route URLs;
// nats-server -t accepts the pair.
func TestRenderCluster(t *testing.T) {
	inv := natsInv()
	c := newNatsCreds(t, inv, 4)
	ca := natstest.TempCA(t)
	dir := t.TempDir()
	ro := testRender(t)
	ro.Port, ro.LeafPort = 4222, 7422
	ro.ConfigDir = dir
	ro.Cluster = &authz.ClusterOptions{Routes: []string{"nats-route://10.42.0.1:6222", "nats-route://10.42.0.2:6222"},
		Password: authz.NewSecret("route-secret"),
		TLS:      &authz.TLSFiles{CertFile: ca.ServerCertFile, KeyFile: ca.ServerKeyFile, ClientCAFile: ca.CAFile}}
	text, err := authz.RenderCentral(inv, c.st, ro)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`name: "lintel-central"`, "port: 6222", "verify: true", `include "cluster.conf"`} {
		if !strings.Contains(string(text), want) {
			t.Errorf("rendered text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(string(text), "route-secret") {
		t.Fatal("the rendered text holds the route password")
	}
	if err := authz.WriteClusterConf(ro); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "cluster.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("cluster.conf has mode %v", fi.Mode().Perm())
	}
	conf := filepath.Join(dir, "central.conf")
	if err := os.WriteFile(conf, text, 0o600); err != nil {
		t.Fatal(err)
	}
	natsServerConfigTest(t, conf)

	// Bad options are named.
	for name, cl := range map[string]*authz.ClusterOptions{
		"Routes":       {Password: authz.NewSecret("x")},
		"credentials":  {Routes: []string{"nats-route://u:p@10.42.0.1:6222"}, Password: authz.NewSecret("x")},
		"ClientCAFile": {Routes: []string{"nats-route://10.42.0.1:6222"}, TLS: &authz.TLSFiles{CertFile: ca.ServerCertFile, KeyFile: ca.ServerKeyFile}},
	} {
		ro.Cluster = cl
		if _, err := authz.RenderCentral(inv, c.st, ro); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	ro.Cluster = &authz.ClusterOptions{Routes: []string{"nats-route://10.42.0.1:6222"}}
	if _, err := authz.CentralOptions(inv, c.st, ro); err == nil || !strings.Contains(err.Error(), "Password") {
		t.Errorf("no password: got %v", err)
	}
}
