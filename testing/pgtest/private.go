package pgtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// serverStartTimeout bounds StartServer: initdb and the first start.
	serverStartTimeout = 2 * time.Minute
	// serverStopTimeout bounds the stop in cleanup.
	serverStopTimeout = 30 * time.Second
	// serverPortAttempts is how many ports StartServer tries when the one
	// it chose is taken before the server binds it.
	serverPortAttempts = 3
	// serverOSUser is the account the server runs as when the test runs
	// as root, which PostgreSQL refuses.
	serverOSUser = "postgres"
)

// errNoBinaries reports that the PostgreSQL server binaries are not on this
// machine. StartServer skips the test with it, or fails when
// LINTEL_REQUIRE_DB=1.
var errNoBinaries = errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres)")

// Server is a PostgreSQL server of the test's own, for tests that stop,
// crash and restart the server, which the shared server of [New] must
// never be. Its cluster lives in a temporary directory of the test; it
// listens on 127.0.0.1 on a port of its own, with trust authentication for
// the user postgres. Its methods may be called from any goroutine.
type Server struct {
	bindir  string
	base    string // the test's directory: data, log
	dataDir string
	sockDir string
	logPath string
	port    int
	owner   *osUser // the account the server runs as; nil: this process's

	mu   sync.Mutex // serialises Start, Stop and Kill
	proc *postmaster
}

// osUser is an account to run the server binaries as.
type osUser struct {
	uid, gid uint32
}

// postmaster is one run of the server process.
type postmaster struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, set before done is closed
}

// StartServer initialises a new cluster in a temporary directory of the
// test with the machine's PostgreSQL binaries (pg_config --bindir, else
// the newest /usr/lib/postgresql/*/bin, else initdb and postgres on the
// PATH), starts it and returns once it accepts connections. Cleanup stops
// it; the directory goes with the test's.
//
// When the test runs as root, initdb and the server run as the OS user
// postgres, which must exist (PostgreSQL refuses to run as root). When the
// binaries are missing, the test is skipped with a message, or fails when
// LINTEL_REQUIRE_DB=1 ([EnvRequireDB]).
//
// On Linux the server is this process's child and gets SIGQUIT (an
// immediate shutdown) if the process dies, so a test killed by its timeout
// leaves no server running.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	bindir, err := findBindir()
	if err != nil {
		if !truthy(EnvRequireDB) {
			tb.Skipf("%v (set %s=1 to make this a failure)", err, EnvRequireDB)
		}
		tb.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), serverStartTimeout)
	defer cancel()
	s, err := newServer(ctx, tb, bindir)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), serverStopTimeout)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			tb.Errorf("%v", err)
			s.killProcess()
		}
		if tb.Failed() {
			tb.Logf("pgtest: server log:\n%s", tail(s.Log(), 8<<10))
		}
	})
	return s
}

func newServer(ctx context.Context, tb testing.TB, bindir string) (*Server, error) {
	s := &Server{bindir: bindir, base: tb.TempDir()}
	s.dataDir = filepath.Join(s.base, "data")
	s.logPath = filepath.Join(s.base, "postgres.log")
	// A Unix socket path is limited to about 100 bytes; a long test name
	// makes the temporary directory too long for one.
	s.sockDir = filepath.Join(s.base, "sock")
	if len(s.sockDir)+len("/.s.PGSQL.65535.lock") > 100 {
		dir, err := os.MkdirTemp("", "pgtest")
		if err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		tb.Cleanup(func() { _ = os.RemoveAll(dir) })
		s.sockDir = dir
	}
	if err := os.MkdirAll(s.sockDir, 0o700); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := os.Mkdir(s.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if os.Geteuid() == 0 {
		u, err := lookupOSUser(serverOSUser)
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root, the server must run as another user: %w", err)
		}
		s.owner = u
		// The test's temporary directories are private to root: let the
		// server's user through to its own directories.
		for _, d := range []string{filepath.Dir(s.base), s.base} {
			if err := allowTraverse(d); err != nil {
				return nil, fmt.Errorf("pgtest: %w", err)
			}
		}
		for _, d := range []string{s.dataDir, s.sockDir} {
			if err := os.Chown(d, int(u.uid), int(u.gid)); err != nil {
				return nil, fmt.Errorf("pgtest: %w", err)
			}
		}
	}

	initdb := s.command(filepath.Join(bindir, "initdb"), "-D", s.dataDir, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb %s: %w\n%s", s.dataDir, err, out)
	}
	// Small, so that several servers of parallel tests fit the machine.
	conf := "\n# pgtest\nshared_buffers = 32MB\nmax_connections = 50\nmax_wal_size = 256MB\n"
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}

	// A port another process takes between the choice and the bind fails
	// the start; choose another.
	for attempt := 1; ; attempt++ {
		if s.port, err = choosePort(); err != nil {
			return nil, err
		}
		err = s.Start(ctx)
		if err == nil {
			return s, nil
		}
		if attempt == serverPortAttempts || !strings.Contains(s.Log(), "Address already in use") {
			return nil, err
		}
	}
}

// DSN returns a connection string for the database postgres of the
// server, as the user postgres. It stays the same across restarts.
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Log returns what the server has written to its log so far, over all its
// starts.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Start starts the server if it is stopped and returns once it accepts
// connections, which after [Server.Kill] includes crash recovery from the
// WAL. It returns an error if the server exits while starting, or ctx ends
// first; ctx bounds only the start, never the server's run.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer log.Close() // the child has its own descriptor
	cmd := s.command(filepath.Join(s.bindir, "postgres"), "-D", s.dataDir, "-p", strconv.Itoa(s.port),
		"-k", s.sockDir, "-c", "listen_addresses=127.0.0.1")
	cmd.Stdout, cmd.Stderr = log, log
	p, err := startPostmaster(cmd)
	if err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	for {
		if err := s.ping(ctx); err == nil {
			s.proc = p
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("pgtest: postgres exited while starting (%v); its log ends:\n%s", p.err, tail(s.Log(), 4<<10))
		case <-ctx.Done():
			p.kill()
			return fmt.Errorf("pgtest: start postgres: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts the server down in fast mode, as pg_ctl stop -m fast does:
// it disconnects every client, rolls back their transactions, writes a
// checkpoint and exits. It returns once the server has exited, or an error
// when ctx ends first. Stopping a stopped server does nothing.
func (s *Server) Stop(ctx context.Context) error {
	return s.shutdown(ctx, os.Interrupt, "fast")
}

// Kill shuts the server down in immediate mode, as pg_ctl stop -m
// immediate does: every server process exits at once without a
// checkpoint, as in a crash, and the next [Server.Start] recovers from the
// WAL. It returns once the server has exited, or an error when ctx ends
// first. Killing a stopped server does nothing.
func (s *Server) Kill(ctx context.Context) error {
	return s.shutdown(ctx, syscall.SIGQUIT, "immediate")
}

// Restart stops the server in fast mode ([Server.Stop]) and starts it
// again ([Server.Start]).
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(ctx); err != nil {
		return err
	}
	return s.Start(ctx)
}

// CrashRestart shuts the server down in immediate mode ([Server.Kill]) and
// starts it again ([Server.Start]), which runs crash recovery.
func (s *Server) CrashRestart(ctx context.Context) error {
	if err := s.Kill(ctx); err != nil {
		return err
	}
	return s.Start(ctx)
}

func (s *Server) shutdown(ctx context.Context, sig os.Signal, mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: %s shutdown: %w", mode, err)
	}
	select {
	case <-p.done:
		s.proc = nil
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pgtest: %s shutdown: %w", mode, ctx.Err())
	}
}

// killProcess ends the server process with SIGQUIT, or SIGKILL if it
// lingers, and waits for it.
func (s *Server) killProcess() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// kill sends SIGQUIT (an immediate shutdown, which ends the server's
// other processes too), then SIGKILL if the process lingers, and waits
// for it to exit.
func (p *postmaster) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// ping connects to the server once and checks that it is this one, not
// another server that took its port.
func (s *Server) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(ctx) }()
	var dir string
	if err := c.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
		return err
	}
	if dir != s.dataDir {
		return fmt.Errorf("pgtest: 127.0.0.1:%d is the server of %s", s.port, dir)
	}
	return nil
}

// command returns cmd for a server binary, run as the server's account.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.base
	cmd.SysProcAttr = procAttr(s.owner)
	return cmd
}

// startPostmaster starts cmd and reaps it when it exits. The goroutine
// that starts it keeps its OS thread until then: the parent-death signal
// (see procAttr) fires when the thread that forked the child exits, not
// only the process.
func startPostmaster(cmd *exec.Cmd) (*postmaster, error) {
	p := &postmaster{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// findBindir returns the directory of the PostgreSQL server binaries.
func findBindir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	var tried []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if has(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	} else {
		tried = append(tried, "pg_config --bindir")
	}
	// Debian and Ubuntu install each major version apart; take the newest.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	tried = append(tried, "/usr/lib/postgresql/*/bin")
	if p, err := exec.LookPath("initdb"); err == nil {
		// Resolve links, so that postgres is looked for beside the real initdb.
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		if dir := filepath.Dir(p); has(dir) {
			return dir, nil
		}
	}
	tried = append(tried, "initdb on the PATH")
	return "", fmt.Errorf("%w: tried %s", errNoBinaries, strings.Join(tried, ", "))
}

// choosePort returns a free port on 127.0.0.1 below the kernel's range of
// ephemeral ports when it can, where no outgoing connection and no
// listener on port 0 takes it while the server is stopped.
func choosePort() (int, error) {
	low := ephemeralLow()
	const from = 20000
	if low-from >= 1000 {
		for range 100 {
			port := from + rand.IntN(low-from)
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				_ = l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: choose a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow returns the lowest port the kernel hands out on its own.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768 // Linux's default, and below the IANA range of others
}

// lookupOSUser returns the account name.
func lookupOSUser(name string) (*osUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return &osUser{uid: uint32(uid), gid: uint32(gid)}, nil
}

// allowTraverse lets every user pass through dir, without listing it.
func allowTraverse(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	m := fi.Mode()
	if m.Perm()&0o111 == 0o111 {
		return nil
	}
	return os.Chmod(dir, m.Perm()|0o111|m&(os.ModeSticky|os.ModeSetgid|os.ModeSetuid))
}

// tail returns the last n bytes of s, from a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
