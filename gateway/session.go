package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxQueuedCommands bounds the commands a session holds for its device
// between two polls.
const maxQueuedCommands = 256

// session is one device's NATS connection to the edge, logged in as the
// device itself, shared by the device's HTTP requests.
type session struct {
	g     *Gateway
	thing topic.Thing
	pwSum [sha256.Size]byte
	ready chan struct{} // closed once connected (or not: err)
	err   error
	nc    *nats.Conn
	js    jetstream.JetStream
	ids   message.IDGenerator

	mu      sync.Mutex
	perms   authz.Permissions
	inUse   int
	last    time.Time
	dead    bool
	waiters int
	sub     *nats.Subscription
	linger  *time.Timer // ends the subscription once no poll is open
	queue   []*command
	changed chan struct{} // closed and replaced when queue grows, a newer poll or stream opens, or the session dies
	// gen counts the polls and streams opened: only the newest takes
	// commands (see feed).
	gen uint64
}

// command is a command the edge handed to the session for its device:
// the message as it came, and env and cmd when it decodes as a command.
type command struct {
	msg *nats.Msg
	env *message.Envelope
	cmd message.Command
	jm  jetstream.Msg // at the central gateway: the command in the command stream, acknowledged once handed over
}

// session returns t's session, connecting it first when there is none (or
// the one there was made with another password, or died). The caller
// releases it.
func (g *Gateway) session(ctx context.Context, t topic.Thing, perms authz.Permissions, r *http.Request) (*session, error) {
	_, pass, _ := r.BasicAuth()
	sum := sha256.Sum256([]byte(pass))
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	s := g.devs[t]
	var old *session
	if s != nil && (s.pwSum != sum || s.isDead()) {
		old, s = s, nil
		delete(g.devs, t)
	}
	fresh := s == nil
	if fresh {
		s = &session{g: g, thing: t, pwSum: sum, ready: make(chan struct{}), changed: make(chan struct{})}
		g.devs[t] = s
	}
	s.acquire(g.cfg.Now())
	g.mu.Unlock()
	if old != nil {
		old.close()
	}
	if fresh {
		s.err = s.connect(pass)
		close(s.ready)
	} else {
		select {
		case <-s.ready:
		case <-ctx.Done():
			s.release()
			return nil, ctx.Err()
		}
	}
	if s.err != nil {
		s.release()
		g.mu.Lock()
		if g.devs[t] == s {
			delete(g.devs, t)
		}
		g.mu.Unlock()
		return nil, s.err
	}
	s.mu.Lock()
	s.perms = perms
	s.mu.Unlock()
	return s, nil
}

// sessionProblem maps a session error to its problem.
func sessionProblem(err error) *Problem {
	switch {
	case errors.Is(err, ErrEdgeRefused):
		return newProblem(http.StatusUnauthorized, SlugUnauthorized, "login refused", "the edge refused the device's credentials")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return newProblem(http.StatusServiceUnavailable, SlugUnavailable, "edge unavailable", err.Error())
	default:
		p := newProblem(http.StatusServiceUnavailable, SlugUnavailable, "edge unavailable", err.Error())
		p.retryAfter = time.Second
		return p
	}
}

func (s *session) connect(pass string) error {
	g := s.g
	user := authz.DeviceUser(s.thing)
	opts := append([]nats.Option{
		nats.UserInfo(user, pass),
		nats.CustomInboxPrefix(s.thing.InboxPrefix()),
		nats.Name("lintel-gateway " + user),
		nats.Timeout(g.cfg.PublishTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ClosedHandler(func(*nats.Conn) { s.die() }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			g.log.Debug("device connection", logKeyThing, s.thing.String(), logKeyErr, err)
		}),
	}, g.cfg.NATSOptions...)
	nc, err := nats.Connect(strings.Join(g.cfg.URLs, ","), opts...)
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			return fmt.Errorf("%w: %s: %w", ErrEdgeRefused, user, err)
		}
		return fmt.Errorf("%w: %s: %w", ErrEdgeUnavailable, user, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("%w: %s: %w", ErrEdgeUnavailable, user, err)
	}
	s.nc, s.js = nc, js
	g.log.Debug("device connected through the gateway", logKeyThing, s.thing.String())
	return nil
}

func (s *session) acquire(now time.Time) {
	s.mu.Lock()
	s.inUse++
	s.last = now
	s.mu.Unlock()
}

func (s *session) release() {
	now := s.g.cfg.Now()
	s.mu.Lock()
	s.inUse--
	s.last = now
	s.mu.Unlock()
}

// idleSince returns how long the session has had no request, or 0 while it
// has one (or is dead, which closes it at once).
func (s *session) idleSince(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return 1<<63 - 1
	}
	if s.inUse > 0 {
		return 0
	}
	return now.Sub(s.last)
}

func (s *session) isDead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dead
}

// permissions returns the device's permissions as of its last request.
func (s *session) permissions() authz.Permissions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perms
}

// die marks the session dead, wakes its waiters and forgets it: the
// device's next request connects anew.
func (s *session) die() {
	s.mu.Lock()
	if !s.dead {
		s.dead = true
		close(s.changed)
	}
	s.mu.Unlock()
	g := s.g
	g.mu.Lock()
	if g.devs[s.thing] == s {
		delete(g.devs, s.thing)
	}
	g.mu.Unlock()
}

// close closes the session's connection. Commands it received but did not
// hand over are acked failed first, so that central learns of them.
func (s *session) close() {
	<-s.ready
	if s.nc == nil {
		return
	}
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	if s.linger != nil {
		s.linger.Stop()
	}
	s.mu.Unlock()
	for _, c := range q {
		s.ackCommand(c, message.AckFailed, "the device's HTTP session ended before the command was handed over")
	}
	s.nc.Close()
	s.die()
}
