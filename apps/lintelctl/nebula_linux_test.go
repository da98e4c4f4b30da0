//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lintel-io/lintel/testing/tooltest"
	"github.com/nats-io/nats.go"
	"golang.org/x/sys/unix"
)

// netnsDialer dials from the network namespace of process pid: the
// socket is created by a thread that entered it, and stays there.
type netnsDialer struct{ pid int }

// Dial implements nats.CustomDialer.
func (d netnsDialer) Dial(network, address string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, now in another namespace, ends with
		// this goroutine.
		runtime.LockOSThread()
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", d.pid))
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		c, err := net.DialTimeout(network, address, 3*time.Second)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// netns is a network namespace held open by a process of the test.
type netns struct {
	pid  int
	hold io.WriteCloser
}

// newNetns creates a network namespace with its loopback up, removed when
// the test ends.
func newNetns(t *testing.T) *netns {
	t.Helper()
	cmd := exec.Command("unshare", "--net", "sh", "-c", "ip link set lo up && exec cat >/dev/null")
	hold, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ns := &netns{pid: cmd.Process.Pid, hold: hold}
	t.Cleanup(func() {
		_ = hold.Close()
		_ = cmd.Wait()
	})
	// The holder is ready once it is in a network namespace of its own
	// (until unshare has run, its namespace is this process's, whose
	// loopback is up too) and its loopback is up.
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(nebulaWait)
	for {
		var out []byte
		own, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", ns.pid))
		if err == nil && own != self {
			out, err = exec.Command("nsenter", "-t", strconv.Itoa(ns.pid), "-n", "ip", "-o", "link", "show", "lo").CombinedOutput()
			if err == nil && bytes.Contains(out, []byte("UP")) {
				return ns
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("network namespace never came up: %v %s %s", err, out, stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // unshare is starting
	}
}

// run runs a command inside ns and fails the test if it fails.
func (ns *netns) run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(ns.pid), "-n"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("in netns: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// start starts a long-running command inside ns from dir, stopped when the
// test ends, and returns its output, which is logged if the test failed.
func (ns *netns) start(t *testing.T, dir, name string, args ...string) *syncBuffer {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(ns.pid), "-n"}, args...)...)
	cmd.Dir = dir
	out := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s:\n%s", name, out.String())
		}
	})
	return out
}

// syncBuffer is a bytes.Buffer safe for a process's two output streams.
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

const nebulaWait = 30 * time.Second

// cannotRun ends a test that this machine cannot run, saying what is
// missing: it skips, or fails when LINTEL_REQUIRE_TOOLS=1 (as in CI),
// where a missing privilege or device must not pass unnoticed.
func cannotRun(t testing.TB, missing string) {
	t.Helper()
	if os.Getenv("LINTEL_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s (LINTEL_REQUIRE_TOOLS=1 makes this a failure)", missing)
	}
	t.Skipf("%s (LINTEL_REQUIRE_TOOLS=1 makes this a failure)", missing)
}

// overlay is central (also the lighthouse) and one edge, each a nebula
// process with its TUN device in its own network namespace, linked by a
// veth pair as their underlay.
type overlay struct {
	site                nebulaSite
	central, edge       *netns
	centralLog, edgeLog *syncBuffer
}

// startOverlay starts an overlay from the configurations lintelctl nebula
// generates; with blockEdge, the plan blocklists the edge's certificate.
func startOverlay(t *testing.T, blockEdge bool) *overlay {
	t.Helper()
	tooltest.Path(t, "nebula", "nebula")
	tooltest.Path(t, "nebula-cert", "nebula")
	tooltest.Path(t, "unshare", "util-linux")
	tooltest.Path(t, "nsenter", "util-linux")
	tooltest.Path(t, "ip", "iproute2")
	if os.Geteuid() != 0 {
		cannotRun(t, "needs root: network namespaces, a veth pair and TUN devices need CAP_SYS_ADMIN and CAP_NET_ADMIN")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		cannotRun(t, fmt.Sprintf("no TUN device (%v): nebula cannot create its interface", err))
	}

	// Inside the namespaces the underlay is 192.168.242.0/24 and the
	// overlay 10.42.0.0/16: nothing here touches the host's network.
	plan := `{"network": "10.42.0.0/16", "central": [{"name": "central-1", "ip": "10.42.0.1", "lighthouse": true, "public": "192.168.242.1:4242"}],
		"edges": {"acme.hq": "10.42.1.1"}}`
	s := newNebulaSite(t, `{"orgs": [{"code": "acme"}], "edges": [{"org": "acme", "code": "hq"}], "things": [],
		"services": [{"name": "ingest", "kind": "central", "org": "acme"}]}`, plan)
	s.generate(t)
	s.issue(t)
	if blockEdge {
		fp := printCert(t, filepath.Join(s.out, "edge-acme-hq", "host.crt")).Fingerprint
		plan = strings.Replace(plan, `"network"`, `"blocklist": ["`+fp+`"], "network"`, 1)
		if err := os.WriteFile(s.plan, []byte(plan), 0o644); err != nil {
			t.Fatal(err)
		}
		s.generate(t)
	}
	o := &overlay{site: s, central: newNetns(t), edge: newNetns(t)}
	if out, err := exec.Command("ip", "link", "add", "name", "lnc", "netns", strconv.Itoa(o.central.pid),
		"type", "veth", "peer", "name", "lne", "netns", strconv.Itoa(o.edge.pid)).CombinedOutput(); err != nil {
		cannotRun(t, fmt.Sprintf("cannot create a veth pair between network namespaces here: %v: %s", err, out))
	}
	o.central.run(t, "ip", "addr", "add", "192.168.242.1/24", "dev", "lnc")
	o.central.run(t, "ip", "link", "set", "lnc", "up")
	o.edge.run(t, "ip", "addr", "add", "192.168.242.2/24", "dev", "lne")
	o.edge.run(t, "ip", "link", "set", "lne", "up")

	o.centralLog = o.central.start(t, filepath.Join(s.out, "central-1"), "nebula central-1", "nebula", "-config", nebulaConfigFile)
	o.edgeLog = o.edge.start(t, filepath.Join(s.out, "edge-acme-hq"), "nebula edge-acme-hq", "nebula", "-config", nebulaConfigFile)
	waitAddr := func(ns *netns, addr string) {
		deadline := time.Now().Add(nebulaWait)
		for {
			out, _ := exec.Command("nsenter", "-t", strconv.Itoa(ns.pid), "-n", "ip", "-o", "addr", "show", "dev", "nebula1").CombinedOutput()
			if bytes.Contains(out, []byte("inet "+addr+"/")) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("nebula1 never got %s: %s", addr, out)
			}
			time.Sleep(50 * time.Millisecond) // nebula is starting
		}
	}
	waitAddr(o.central, "10.42.0.1")
	waitAddr(o.edge, "10.42.1.1")
	return o
}

// TestNebulaCarriesLeafLink runs the overlay lintelctl nebula generates
// for real: central (also the lighthouse) and an edge, each a nebula
// process with its TUN device in its own network namespace, linked by a
// veth pair as their underlay. A nats-server on the edge links as a leaf
// node to a nats-server on central over the overlay, and messages
// published at the edge arrive at central. Central cannot open the edge's
// device port: the edge's firewall admits it from the site's group only.
func TestNebulaCarriesLeafLink(t *testing.T) {
	tooltest.Path(t, "nats-server", "nats-server")
	o := startOverlay(t, false)
	s, central, edge := o.site, o.central, o.edge

	// The ports are fixed, but inside namespaces of this test alone. The
	// leaf listener binds the overlay address only: it is reachable
	// through Nebula and nowhere else.
	conf := func(name, text string) string {
		p := filepath.Join(s.dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	central.start(t, s.dir, "nats-server central", "nats-server", "-c", conf("central.conf",
		"server_name: central\nlisten: \"127.0.0.1:4222\"\nleafnodes { listen: \"10.42.0.1:7422\" }\n"))
	edge.start(t, s.dir, "nats-server edge", "nats-server", "-c", conf("edge.conf",
		"server_name: edge\nlisten: \"0.0.0.0:4222\"\nleafnodes { reconnect: 1\n remotes: [{url: \"nats-leaf://10.42.0.1:7422\"}] }\n"))

	connect := func(ns *netns) *nats.Conn {
		deadline := time.Now().Add(nebulaWait)
		for {
			nc, err := nats.Connect("nats://127.0.0.1:4222", nats.SetCustomDialer(netnsDialer{ns.pid}), nats.Timeout(3*time.Second))
			if err == nil {
				t.Cleanup(nc.Close)
				return nc
			}
			if time.Now().After(deadline) {
				t.Fatalf("nats-server never answered: %v", err)
			}
			time.Sleep(50 * time.Millisecond) // nats-server is starting
		}
	}
	atCentral, atEdge := connect(central), connect(edge)
	sub, err := atCentral.SubscribeSync("acme.hq.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := atCentral.Flush(); err != nil {
		t.Fatal(err)
	}
	// Probe until the leaf link is up and central's interest reached the
	// edge, then count.
	deadline := time.Now().Add(nebulaWait)
	for {
		if err := atEdge.Publish("acme.hq.probe", nil); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.NextMsg(200 * time.Millisecond); err == nil && m.Subject == "acme.hq.probe" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no message crossed the overlay")
		}
	}
	for {
		if _, err := sub.NextMsg(500 * time.Millisecond); err != nil {
			break // drain the surplus probes
		}
	}
	const n = 50
	for i := range n {
		if err := atEdge.Publish("acme.hq.reader.r1.evt", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := atEdge.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, err := sub.NextMsg(nebulaWait)
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, n, err)
		}
		if string(m.Data) != strconv.Itoa(i) {
			t.Fatalf("message %d: %q", i, m.Data)
		}
	}

	// The edge's device port is open on its overlay address (the edge
	// reaches it), but Nebula drops central's attempt: central is not in
	// group site-acme-hq.
	if c, err := (netnsDialer{edge.pid}).Dial("tcp", "10.42.1.1:4222"); err != nil {
		t.Fatalf("edge cannot reach its own device port: %v", err)
	} else {
		c.Close()
	}
	c, err := (netnsDialer{central.pid}).Dial("tcp", "10.42.1.1:4222")
	if err == nil {
		c.Close()
		t.Fatal("central opened the edge's device port through the overlay")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("central's dial to the edge's device port: %v, want a timeout (dropped by the firewall)", err)
	}
}

// TestNebulaBlocklistRefusesEdge blocklists the edge's certificate in the
// plan: central's nebula refuses the edge's handshake.
func TestNebulaBlocklistRefusesEdge(t *testing.T) {
	o := startOverlay(t, true)
	deadline := time.Now().Add(nebulaWait)
	for !strings.Contains(o.centralLog.String(), "certificate has been blocked") {
		if strings.Contains(o.centralLog.String(), `"certName":"edge-acme-hq"`) {
			t.Fatal("central completed a handshake with a blocklisted edge")
		}
		if time.Now().After(deadline) {
			t.Fatal("central never refused the blocklisted edge")
		}
		time.Sleep(50 * time.Millisecond) // the edge is handshaking
	}
}

// cannotRunRecorder is a testing.TB that records how cannotRun ended the
// test.
type cannotRunRecorder struct {
	testing.TB
	how, msg string
}

func (r *cannotRunRecorder) Helper() {}

func (r *cannotRunRecorder) Fatalf(format string, args ...any) {
	r.how, r.msg = "failed", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *cannotRunRecorder) Skipf(format string, args ...any) {
	r.how, r.msg = "skipped", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestCannotRun: what the overlay tests lack (root, a TUN device, veth)
// skips them, but fails them under LINTEL_REQUIRE_TOOLS=1, naming it.
func TestCannotRun(t *testing.T) {
	for _, tc := range []struct{ env, how string }{{"", "skipped"}, {"1", "failed"}} {
		t.Setenv("LINTEL_REQUIRE_TOOLS", tc.env)
		r := &cannotRunRecorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			cannotRun(r, "no TUN device")
		}()
		<-done
		if r.how != tc.how || !strings.Contains(r.msg, "no TUN device") {
			t.Errorf("LINTEL_REQUIRE_TOOLS=%q: %s: %q", tc.env, r.how, r.msg)
		}
	}
}
