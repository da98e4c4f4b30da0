package authz

import (
	"crypto/sha256"
	"errors"
	"net"
	"sync"
	"time"
)

// Defaults of the login checks and throttling of [EdgeAuthenticator]
// (see [EdgeAuthConfig]).
const (
	// DefaultMaxBcryptWait is how long a login waits for a bcrypt comparison
	// by default: less than the 2s after which nats-server gives up on a
	// client that has not completed its login.
	DefaultMaxBcryptWait = 1500 * time.Millisecond
	// DefaultFailureBurst is how many failed password checks a user name,
	// or a source address, may cost before it is throttled.
	DefaultFailureBurst = 5
	// DefaultFailureRefill is how often a throttled user name or source
	// address earns one more password check.
	DefaultFailureRefill = time.Second
	// DefaultFailureCacheTTL is how long a user and password that failed
	// are refused again without a password check.
	DefaultFailureCacheTTL = time.Minute
	// failureCacheMax bounds the remembered failures; the oldest go first.
	failureCacheMax = 4096
	// throttleKeysMax bounds the tracked user names and addresses; full
	// buckets are dropped first.
	throttleKeysMax = 1 << 16
)

// Reasons for a throttled login.
var (
	errRecentFailure = errors.New("the same user and password failed recently")
	errThrottledUser = errors.New("too many failed logins for the user")
	errThrottledAddr = errors.New("too many failed logins from the source address")
)

// isThrottled reports whether err is the throttle's refusal.
func isThrottled(err error) bool {
	return errors.Is(err, errRecentFailure) || errors.Is(err, errThrottledUser) || errors.Is(err, errThrottledAddr)
}

// throttle limits what failed logins cost: each user name and each source
// address has a bucket of password checks that failures drain (DefaultFailureBurst,
// refilled one per DefaultFailureRefill), and a user and password that just
// failed are refused again without a check. A login whose credentials are
// in the verified cache never meets it, so a device that logged in before
// keeps logging in during a flood against its name.
type throttle struct {
	burst  float64
	refill time.Duration
	ttl    time.Duration

	mu       sync.Mutex
	buckets  map[string]*bucket
	failures map[[sha256.Size]byte]failure
	order    [][sha256.Size]byte // failures, oldest first (may hold stale keys)
}

type bucket struct {
	tokens float64
	at     time.Time
}

// failure is a remembered failed password, valid while the user's hashes
// are those it was checked against.
type failure struct {
	user, hash, prevHash string
	until                time.Time
}

func newThrottle(burst int, refill, ttl time.Duration) *throttle {
	if burst == 0 {
		burst = DefaultFailureBurst
	}
	if refill == 0 {
		refill = DefaultFailureRefill
	}
	if ttl == 0 {
		ttl = DefaultFailureCacheTTL
	}
	return &throttle{burst: float64(burst), refill: refill, ttl: ttl,
		buckets: make(map[string]*bucket), failures: make(map[[sha256.Size]byte]failure)}
}

// sourceOf returns the host of a client's remote address, or "" when it
// has none (an in-process client).
func sourceOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	return host
}

// admit decides whether a password check may run for u from src, taking
// the user's token; the caller returns it with succeeded or keeps it spent
// with failed.
func (t *throttle) admit(u *authUser, src string, key [sha256.Size]byte, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f, ok := t.failures[key]; ok {
		if f.user == u.name && f.hash == u.hash && f.prevHash == u.prevHash && now.Before(f.until) {
			return errRecentFailure
		}
		delete(t.failures, key)
	}
	ub := t.bucketLocked("u:"+u.name, now)
	var sb *bucket
	if src != "" {
		sb = t.bucketLocked("a:"+src, now)
	}
	switch {
	case ub.tokens < 1:
		return errThrottledUser
	case sb != nil && sb.tokens < 1:
		return errThrottledAddr
	}
	// The user's token is taken now, so that parallel guesses for one
	// user cannot outrun its budget; one user rarely logs in twice at once.
	// The address's is taken only on failure: many devices behind one
	// address (a NAT, a gateway) may log in at once.
	ub.tokens--
	return nil
}

// succeeded returns the user's token admit took.
func (t *throttle) succeeded(u *authUser) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.buckets["u:"+u.name]; b != nil {
		b.tokens = min(b.tokens+1, t.burst)
	}
}

// failed remembers a failed password of u, from src, and charges src.
func (t *throttle) failed(u *authUser, src string, key [sha256.Size]byte, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if src != "" {
		t.bucketLocked("a:"+src, now).tokens--
	}
	if _, ok := t.failures[key]; !ok {
		t.order = append(t.order, key)
	}
	t.failures[key] = failure{user: u.name, hash: u.hash, prevHash: u.prevHash, until: now.Add(t.ttl)}
	for len(t.failures) > failureCacheMax && len(t.order) > 0 {
		delete(t.failures, t.order[0])
		t.order = t.order[1:]
	}
	if len(t.order) > 2*failureCacheMax {
		live := t.order[:0]
		for _, k := range t.order {
			if _, ok := t.failures[k]; ok {
				live = append(live, k)
			}
		}
		t.order = live
	}
}

// bucketLocked returns key's bucket, refilled up to now.
func (t *throttle) bucketLocked(key string, now time.Time) *bucket {
	b := t.buckets[key]
	if b == nil {
		if len(t.buckets) >= throttleKeysMax {
			t.pruneLocked(now)
		}
		b = &bucket{tokens: t.burst, at: now}
		t.buckets[key] = b
		return b
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(t.burst, b.tokens+float64(d)/float64(t.refill))
		b.at = now
	}
	return b
}

// pruneLocked drops the buckets that are full by now.
func (t *throttle) pruneLocked(now time.Time) {
	for k, b := range t.buckets {
		if b.tokens+float64(now.Sub(b.at))/float64(t.refill) >= t.burst {
			delete(t.buckets, k)
		}
	}
}
