package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/nats-io/nats.go/jetstream"
)

// The edge's mirror of its credential bucket reads through a durable
// consumer on central (authz.EdgeNames.CredentialConsumer). Whenever the
// mirror sets up it sends central an empty CONSUMER.RESET, which nats-server
// answers by rewinding the consumer to its ack floor only; a mirror that
// holds less than that (a new store, a wiped one, writes lost to a power
// cut) then skips the difference for good: nats-server purges or skips the
// mirror up to what the consumer has delivered and ignores anything older
// that arrives later. Such a mirror cannot be filled in place. The edge
// notices it (checkMirror) and rebuilds it: it deletes its mirror, resets
// central's consumer to the first sequence the rebuilt mirror lacks (its
// last, none, plus one) and creates the mirror again, whose own empty reset
// then finds the consumer's ack floor where the edge put it.

// Bounds of the mirror's self-repair.
const (
	// repairStrikes is how many sync checks in a row must find the mirror
	// incomplete before the edge rebuilds it: one could be misled by a
	// change at central between its answer and the look at the mirror.
	repairStrikes = 2
	// repairBackoff is the least time between two rebuilds; it doubles
	// after each rebuild that does not make the mirror whole, up to
	// repairMaxBackoff, and starts again once the mirror is whole.
	repairBackoff    = time.Second
	repairMaxBackoff = time.Minute
	// repairResetFor bounds how long a rebuild keeps asking central to
	// reset the consumer (the link may be flapping) before it creates the
	// mirror again anyway and leaves the rest to the next rebuild.
	repairResetFor = 30 * time.Second
)

// mirrorRepair is the state of the edge's self-repair of its credential
// mirror.
type mirrorRepair struct {
	req      chan uint64 // central's last revision, to the watch: rebuild
	rebuilds atomic.Uint64
	// until is, while a rebuild is under way, central's revision that the
	// new set must reach before it replaces the old one; zero otherwise.
	// Meanwhile no sync is confirmed: the mirror may be whole while the
	// set in use is still the old, incomplete one.
	until atomic.Uint64

	mu      sync.Mutex
	strikes int       // consecutive sync checks that found the mirror incomplete
	next    time.Time // no rebuild before
	backoff time.Duration
	cfg     *jetstream.StreamConfig // the mirror's configuration, as the node created it
}

// errRebuilding is checkMirror's answer while a rebuild is under way.
var errRebuilding = fmt.Errorf("%w: credential mirror being rebuilt", ErrMirrorIncomplete)

// errRebuild ends a watch so that the mirror can be rebuilt.
type errRebuild struct{ last uint64 }

func (e *errRebuild) Error() string {
	return fmt.Sprintf("access: credential mirror to be rebuilt up to central's revision %d", e.last)
}

// mirrorWhole notes a sync check that found the mirror holding every entry
// central held.
func (s *Service) mirrorWhole() {
	s.repair.mu.Lock()
	s.repair.strikes, s.repair.backoff = 0, 0
	s.repair.mu.Unlock()
}

// mirrorLacking notes a sync check that found the mirror lacking entries
// central holds up to its revision last, and asks the watch for a rebuild
// once the mirror was found so repeatedly and the backoff allows it.
func (s *Service) mirrorLacking(last uint64) {
	r := &s.repair
	r.mu.Lock()
	r.strikes++
	now := time.Now()
	ask := r.strikes >= repairStrikes && !now.Before(r.next)
	if ask {
		r.strikes = 0
		r.backoff = min(max(2*r.backoff, repairBackoff), repairMaxBackoff)
		r.next = now.Add(r.backoff)
	}
	r.mu.Unlock()
	if ask {
		select {
		case r.req <- last:
		default:
		}
	}
}

// rebuildMirror deletes the edge's credential mirror, resets central's
// consumer to the first sequence the new mirror lacks and creates the
// mirror again with the configuration it had. It returns once the mirror
// exists again (or ctx ends); the new mirror then loads the whole bucket.
func (s *Service) rebuildMirror(ctx context.Context, last uint64) error {
	name := s.names.CredentialStream
	cfg, err := s.mirrorConfig(ctx)
	if err != nil {
		return err
	}
	s.repair.rebuilds.Add(1)
	s.repair.until.Store(max(last, 1))
	select { // a request made before this rebuild is answered by it
	case <-s.repair.req:
	default:
	}
	s.log.Warn("credential mirror incomplete: rebuilding it from central", logKeyVersion, last)
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err = s.js.DeleteStream(callCtx, name)
	cancel()
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("access: delete credential mirror %s: %w", name, err)
	}
	// The mirror now holds nothing: it lacks everything from sequence 1.
	resetErr := s.resetConsumer(ctx, 1)
	// Create the mirror again even when central was not reached, or the
	// service is stopping, so that the edge keeps a mirror; a mirror that
	// sets up against a consumer not reset is found incomplete again and
	// rebuilt after the backoff.
	callCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
	defer cancel()
	if _, err := s.js.CreateOrUpdateStream(callCtx, *cfg); err != nil {
		return fmt.Errorf("access: create credential mirror %s again: %w", name, err)
	}
	if resetErr != nil {
		return resetErr
	}
	s.log.Info("credential mirror rebuilt; loading the bucket from central", logKeyVersion, last)
	return nil
}

// ensureMirror creates the edge's mirror again when a rebuild deleted it
// and could not create it.
func (s *Service) ensureMirror(ctx context.Context) {
	s.repair.mu.Lock()
	cfg := s.repair.cfg
	s.repair.mu.Unlock()
	if cfg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if _, err := s.js.Stream(ctx, cfg.Name); !errors.Is(err, jetstream.ErrStreamNotFound) {
		return
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, *cfg); err != nil {
		s.log.Warn("credential mirror not created again", message.LogKeyError, err)
	}
}

// mirrorConfig returns the configuration of the edge's mirror as the node
// created it, read once from the mirror and kept for later rebuilds.
func (s *Service) mirrorConfig(ctx context.Context) (*jetstream.StreamConfig, error) {
	s.repair.mu.Lock()
	cfg := s.repair.cfg
	s.repair.mu.Unlock()
	if cfg != nil {
		return cfg, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	str, err := s.js.Stream(ctx, s.names.CredentialStream)
	if err != nil {
		return nil, fmt.Errorf("access: credential mirror %s: %w", s.names.CredentialStream, err)
	}
	c := str.CachedInfo().Config
	if c.Mirror == nil {
		return nil, fmt.Errorf("access: stream %s is not a mirror", s.names.CredentialStream)
	}
	// The server sets its own metadata again.
	for k := range c.Metadata {
		if strings.HasPrefix(k, "_nats.") {
			delete(c.Metadata, k)
		}
	}
	s.repair.mu.Lock()
	s.repair.cfg = &c
	s.repair.mu.Unlock()
	return &c, nil
}

// consumerResetReply is the part of nats-server's answer to a
// CONSUMER.RESET that the edge reads.
type consumerResetReply struct {
	ResetSeq uint64 `json:"reset_seq"`
	Error    *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// resetConsumer asks central to rewind the consumer the edge's mirror
// reads through so that it delivers from sequence seq on, trying again
// while central does not answer, for up to repairResetFor.
func (s *Service) resetConsumer(ctx context.Context, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, repairResetFor)
	defer cancel()
	body, _ := json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{seq})
	for {
		err := s.resetOnce(ctx, body, seq)
		if err == nil {
			return nil
		}
		s.log.Debug("credential consumer not reset yet", message.LogKeyError, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("access: reset credential consumer %s at central to %d: %w", s.names.CredentialConsumer, seq, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Service) resetOnce(ctx context.Context, body []byte, seq uint64) error {
	m, err := s.request(ctx, s.names.CredentialReset, body)
	if err != nil {
		return err
	}
	var r consumerResetReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("access: answer to the consumer reset: %w", err)
	}
	if r.Error != nil {
		return fmt.Errorf("access: consumer reset refused: %d %s", r.Error.Code, r.Error.Description)
	}
	if r.ResetSeq != seq {
		return fmt.Errorf("access: consumer reset to %d, asked %d", r.ResetSeq, seq)
	}
	return nil
}
