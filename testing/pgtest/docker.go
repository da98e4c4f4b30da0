package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

const (
	// dockerPingTimeout bounds the whole Docker probe: a missing or dead
	// daemon must cost well under a second, never a hang.
	dockerPingTimeout = 500 * time.Millisecond
	// containerStartTimeout bounds pulling and starting the container.
	containerStartTimeout = 3 * time.Minute
)

// ContainerStarter starts a PostgreSQL server with TimescaleDB from the
// container image image and returns the connection string of a superuser
// on it. The container must be removed when the test process ends,
// however it ends; ctx bounds the start.
type ContainerStarter func(ctx context.Context, image string) (dsn string, err error)

// starter is the registered ContainerStarter, if any.
var starter struct {
	sync.Mutex
	start ContainerStarter
}

// UseContainers lets pgtest start a TimescaleDB container when a Docker
// daemon answers and no server is configured (see the package
// documentation). Importing the package
// github.com/lintel-io/lintel/testing/pgtest/pgdocker, a module of its own
// built on testcontainers, registers its starter; without it pgtest never
// starts a container, and its module needs no container library.
func UseContainers(start ContainerStarter) {
	starter.Lock()
	defer starter.Unlock()
	starter.start = start
}

// containerStarter returns the registered ContainerStarter, or nil.
func containerStarter() ContainerStarter {
	starter.Lock()
	defer starter.Unlock()
	return starter.start
}

// dockerWanted reports whether a container can be started: a
// ContainerStarter is registered and a Docker daemon answers, unless
// EnvNoDocker forbids looking. It costs a stat of the socket when there is
// none, and at most dockerPingTimeout when there is one.
func dockerWanted() bool {
	if truthy(EnvNoDocker) || containerStarter() == nil {
		return false
	}
	return dockerPing(context.Background(), os.Getenv("DOCKER_HOST"), dockerSockets()) == nil
}

// dockerSockets lists the usual places of the Docker socket: the system
// one, Docker Desktop's, and rootless Docker's.
func dockerSockets() []string {
	socks := []string{"/var/run/docker.sock"}
	if home, err := os.UserHomeDir(); err == nil {
		socks = append(socks,
			filepath.Join(home, ".docker", "run", "docker.sock"),
			filepath.Join(home, ".docker", "desktop", "docker.sock"))
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		socks = append(socks, filepath.Join(rt, "docker.sock"))
	}
	return socks
}

// dockerPing calls the daemon's /_ping endpoint through host (a DOCKER_HOST
// value: unix:// or tcp://), or when host is empty through the first of
// sockets that exists. It returns nil when the daemon answers 200 OK within
// dockerPingTimeout.
func dockerPing(ctx context.Context, host string, sockets []string) error {
	network, addr := "", ""
	switch {
	case host != "":
		u, err := url.Parse(host)
		if err != nil {
			return fmt.Errorf("DOCKER_HOST %q: %w", host, err)
		}
		switch u.Scheme {
		case "unix":
			network, addr = "unix", u.Path
		case "tcp", "http":
			network, addr = "tcp", u.Host
		default:
			return fmt.Errorf("DOCKER_HOST %q: unsupported scheme (tls and ssh are not probed)", host)
		}
	default:
		for _, s := range sockets {
			if fi, err := os.Stat(s); err == nil && fi.Mode()&os.ModeSocket != 0 {
				network, addr = "unix", s
				break
			}
		}
		if addr == "" {
			return errors.New("no Docker socket")
		}
	}
	if network == "unix" {
		if _, err := os.Stat(addr); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, dockerPingTimeout)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("Docker at %s %s: %w", network, addr, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("Docker at %s %s: ping: %s", network, addr, resp.Status)
	}
	return nil
}

// containerServer starts, once per process, a TimescaleDB container through
// the registered ContainerStarter and returns it as a server.
func containerServer(ctx context.Context) (*server, error) {
	servers.containerOnce.Do(func() {
		servers.container, servers.containerErr = startContainer(ctx)
	})
	return servers.container, servers.containerErr
}

func startContainer(ctx context.Context) (*server, error) {
	start := containerStarter()
	if start == nil {
		return nil, errors.New("no container starter (import github.com/lintel-io/lintel/testing/pgtest/pgdocker)")
	}
	img := os.Getenv(EnvTimescaleImage)
	if img == "" {
		img = DefaultTimescaleImage
	}
	ctx, cancel := context.WithTimeout(ctx, containerStartTimeout)
	defer cancel()
	dsn, err := start(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", img, err)
	}
	s, err := probe(ctx, dsn, "container "+img)
	if err != nil {
		return nil, err
	}
	if !s.timescale {
		return nil, fmt.Errorf("container %s has no timescaledb extension", img)
	}
	return s, nil
}
