package authz

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// Log keys of [EdgeAuthenticator].
const (
	logKeyUser   = "user"
	logKeyUsers  = "users"
	logKeyReason = "reason"
	logKeyCount  = "count"
)

// EdgeAuthConfig configures an [EdgeAuthenticator]. The zero value is ready
// to use.
type EdgeAuthConfig struct {
	// Now returns the current time, against which the overlap windows of
	// rotated passwords ([PasswordCredential.PreviousUntil]) are judged. Nil
	// means time.Now.
	Now func() time.Time
	// DisableCache turns the verified-credential cache off, so that every
	// connection costs a bcrypt comparison, as with nats-server's own
	// password check. For comparison and tests.
	DisableCache bool
	// MaxConcurrentBcrypt bounds the bcrypt comparisons running at once.
	// Zero means runtime.GOMAXPROCS(0); negative means no bound.
	MaxConcurrentBcrypt int
	// MaxBcryptWait bounds how long a login waits for its bcrypt turn before
	// it is refused, so that a storm of logins with an empty cache sheds load
	// instead of starving every login past nats-server's own 2s timers (see
	// [EdgeAuthenticator]). Zero means [DefaultMaxBcryptWait]; negative means
	// wait as long as it takes.
	MaxBcryptWait time.Duration
	// FailureBurst is how many failed password checks one user name, and
	// one source address, may cost before further logins of that name or
	// from that address are refused without a check, until the bucket
	// refills by one every FailureRefill. Zero means
	// [DefaultFailureBurst] and [DefaultFailureRefill].
	FailureBurst  int
	FailureRefill time.Duration // see FailureBurst; zero means [DefaultFailureRefill]
	// FailureCacheTTL is how long a user and password that failed are
	// refused again without a check. Zero means [DefaultFailureCacheTTL].
	FailureCacheTTL time.Duration
	// DisableThrottle turns the failure throttling and the failure cache
	// off, for comparison and tests.
	DisableThrottle bool
	// Logger receives rejected logins (debug), throttled logins and
	// passwords [EdgeAuthenticator.VerifyPassword] refuses (warnings
	// marked with [LogKeySecurity], at most one a second of each) and
	// forced disconnects (info). Nil discards.
	Logger *slog.Logger
}

// AuthStats is a snapshot of an [EdgeAuthenticator]'s counters.
type AuthStats struct {
	Users       int    // users in the current credential table
	Accepted    uint64 // logins accepted
	Rejected    uint64 // logins rejected, Shed included
	Shed        uint64 // logins refused because no bcrypt turn came within MaxBcryptWait
	CacheHits   uint64 // logins accepted from the verified-credential cache
	Bcrypts     uint64 // bcrypt comparisons made
	Disconnects uint64 // connections closed by Update or at the end of an overlap window
	// Throttled counts logins refused without a password check: a user and
	// password that failed recently, or a user name or source address
	// whose failures exhausted its budget (see [EdgeAuthConfig].FailureBurst).
	Throttled uint64
}

// EdgeAuthenticator authenticates the devices, the edge service and the
// edge-scoped gateways of one edge for an embedded nats-server, as its
// CustomClientAuthentication hook.
//
// nats-server's own password check costs a bcrypt comparison per
// connection, and another for every connected client at each configuration
// reload: with bcrypt cost 11 a reconnect storm of a thousand devices after
// an outage, or one reload to add a device, keeps the edge's cores busy for
// over a minute. The authenticator instead
//
//   - keeps the credential table (from the [Inventory] and the [State]) in
//     memory and swaps it atomically with [EdgeAuthenticator.Update], so
//     adding, rotating and revoking credentials needs no reload;
//   - caches verified credentials, keyed by an HMAC (with a random
//     per-process key) of user and password, never the password itself,
//     and valid only while the hash it was verified against is still
//     accepted for that user: rotation and revocation invalidate it, and
//     failed logins never enter it;
//   - accepts a rotated-out password ([PasswordCredential.PreviousHash])
//     until its PreviousUntil, judged by the injected clock, and closes a
//     connection that logged in with it when the window ends;
//   - registers each client with its org's account and its generated
//     [Permissions].
//
// Only client connections with a user and password are accepted. The
// server's leaf-node remote to central and its system account do not pass
// through the hook and keep working.
//
// Two nats-server behaviours make the cache matter beyond reloads. A
// configuration reload that changes authorization (accounts, users) closes
// every client that nats-server cannot match to a configured user, which
// with a custom hook is every client: they reconnect at once. And a storm
// of bcrypt comparisons starves the server: a client whose CONNECT is not
// read within the authentication timeout (2s), or who gets the server's
// first PING (within 2.4s) while its login still waits for the CPU, fails
// and retries. Without the cache, a few dozen devices reconnecting at bcrypt
// cost 11 on two cores are enough for that (see BenchmarkReconnectStorm).
// The cache holds only what this process verified, so the first storm after
// an edge restart still pays in full. For that storm the authenticator
// bounds the comparisons running at once and refuses a login that waits
// longer than MaxBcryptWait for its turn ([AuthStats].Shed): refused devices
// retry (nats.go clients need nats.IgnoreAuthErrorAbort to keep retrying
// after two refusals), and each wave lets in what the CPU can verify,
// instead of every login timing out while all of them burn CPU.
//
// Create it with [NewEdgeAuthenticator], put it in the server options with
// [EdgeAuthenticator.Configure], and [EdgeAuthenticator.Attach] the server
// before clients connect (until then every login is rejected). Its methods
// are safe for concurrent use.
type EdgeAuthenticator struct {
	org, edge string
	central   bool // the central gateway's devices of org, not an edge's users
	now       func() time.Time
	log       *slog.Logger
	events    *eventLimiter // security events of floods, at most one a second
	noCache   bool
	macKey    []byte
	sem       chan struct{} // bcrypt turns; nil for no bound
	maxWait   time.Duration // negative: no bound
	throttle  *throttle     // nil when disabled

	table atomic.Pointer[authTable]
	srv   atomic.Pointer[server.Server]

	cacheMu sync.RWMutex
	cache   map[[sha256.Size]byte]cacheEntry

	mu     sync.Mutex // serialises Update and Close; guards timers and closed
	timers map[string]*time.Timer
	closed bool

	accepted, rejected, shed, hits, bcrypts, disconnects, throttled atomic.Uint64
}

var _ server.Authentication = (*EdgeAuthenticator)(nil)

// authTable is one immutable generation of the credential table.
type authTable struct {
	users map[string]*authUser
}

// authUser is one user's credentials and permissions. Unchanged users keep
// their pointer across tables.
type authUser struct {
	name      string
	account   string
	perms     Permissions
	server    *server.Permissions // shared, read-only, by every client of the user
	hash      string
	prevHash  string
	prevUntil time.Time
	mqttID    string // the MQTT client ID of a device allowed over MQTT; "" for none
}

// accepts reports whether the bcrypt hash h is accepted for u at now.
func (u *authUser) accepts(h string, now time.Time) bool {
	return h != "" && (h == u.hash || (h == u.prevHash && now.Before(u.prevUntil)))
}

type cacheEntry struct {
	user string
	hash string // the bcrypt hash the password was verified against
}

// NewEdgeAuthenticator returns an authenticator for edge at org with the
// credentials of inv and st. It returns an error wrapping [ErrEdgeNotFound]
// when inv does not list the edge, [ErrReservedName] for a name the
// topology keeps and [ErrInvalid] for a service of unknown kind. Users that
// st holds no credential for are left out (and logged): they cannot log in.
func NewEdgeAuthenticator(inv *Inventory, st *State, org, edge string, cfg EdgeAuthConfig) (*EdgeAuthenticator, error) {
	return newAuthenticator(inv, st, org, edge, false, cfg)
}

// newAuthenticator is NewEdgeAuthenticator, or with centralGateway the
// authenticator of the central gateway's devices of org (edge is "").
func newAuthenticator(inv *Inventory, st *State, org, edge string, centralGateway bool, cfg EdgeAuthConfig) (*EdgeAuthenticator, error) {
	a := &EdgeAuthenticator{
		org:     org,
		edge:    edge,
		central: centralGateway,
		now:     cfg.Now,
		log:     cfg.Logger,
		events:  newEventLimiter(time.Second),
		noCache: cfg.DisableCache,
		macKey:  make([]byte, 32),
		cache:   make(map[[sha256.Size]byte]cacheEntry),
		timers:  make(map[string]*time.Timer),
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	switch n := cfg.MaxConcurrentBcrypt; {
	case n == 0:
		a.sem = make(chan struct{}, runtime.GOMAXPROCS(0))
	case n > 0:
		a.sem = make(chan struct{}, n)
	}
	if !cfg.DisableThrottle {
		a.throttle = newThrottle(cfg.FailureBurst, cfg.FailureRefill, cfg.FailureCacheTTL)
	}
	a.maxWait = cfg.MaxBcryptWait
	if a.maxWait == 0 {
		a.maxWait = DefaultMaxBcryptWait
	}
	if _, err := rand.Read(a.macKey); err != nil {
		return nil, fmt.Errorf("authz: authenticator cache key: %w", err)
	}
	t, err := a.buildTable(inv, st, nil)
	if err != nil {
		return nil, err
	}
	a.table.Store(t)
	return a, nil
}

// Configure makes a the client authentication of opts, typically the
// result of [EdgeOptions]: it sets CustomClientAuthentication and drops the
// options' static users, which nats-server would ignore anyway.
func (a *EdgeAuthenticator) Configure(opts *server.Options) {
	opts.CustomClientAuthentication = a
	opts.Users = nil
	opts.Nkeys = nil
}

// Attach gives a the server it authenticates for, to look up accounts and
// to disconnect revoked users. Call it once, after server.NewServer and
// before clients connect.
func (a *EdgeAuthenticator) Attach(srv *server.Server) { a.srv.Store(srv) }

// Check authenticates one connection; nats-server calls it for every client
// connection (and again for each connected client at a configuration
// reload). It accepts a client connection whose user and password match
// the table, and registers it with the user's account and permissions.
func (a *EdgeAuthenticator) Check(c server.ClientAuthentication) bool {
	ok, reason, throttled := a.check(c)
	if ok {
		a.accepted.Add(1)
		return true
	}
	a.rejected.Add(1)
	user := ""
	if o := c.GetOpts(); o != nil {
		user = o.Username
	}
	if throttled {
		// nats-server logs the refused login itself (a login_failed
		// security event); this says why no password was checked.
		a.events.log(a.log, slog.LevelWarn, SecurityLoginThrottled, "authz: login throttled",
			logKeyUser, user, logKeySource, sourceOf(c.RemoteAddress()), logKeyReason, reason)
		return false
	}
	a.log.Debug("authz: login rejected", logKeyUser, user, logKeyReason, reason)
	return false
}

// check judges a login: whether it is accepted, why not, and whether the
// failure throttling refused it.
func (a *EdgeAuthenticator) check(c server.ClientAuthentication) (ok bool, reason string, throttled bool) {
	srv := a.srv.Load()
	if srv == nil {
		return false, ErrNotAttached.Error(), false
	}
	if c.Kind() != server.CLIENT {
		return false, "not a client connection", false
	}
	o := c.GetOpts()
	if o == nil || o.Username == "" || o.Password == "" {
		return false, "no user and password", false
	}
	t := a.table.Load()
	u := t.users[o.Username]
	if u == nil {
		return false, "unknown user", false
	}
	if ok, why := checkMQTT(c, u); !ok {
		return false, why, false
	}
	now := a.now()
	hash, err := a.verify(u, o.Password, now, sourceOf(c.RemoteAddress()))
	if err != nil {
		return false, err.Error(), isThrottled(err)
	}
	acc, err := srv.LookupAccount(u.account)
	if err != nil {
		return false, "account: " + err.Error(), false
	}
	reg := &server.User{Username: u.name, Account: acc, Permissions: u.server}
	if hash != u.hash {
		// Logged in with the previous password: close the connection when
		// its overlap window ends. The deadline is wall-clock time.
		reg.ConnectionDeadline = time.Now().Add(u.prevUntil.Sub(now))
	}
	c.RegisterUser(reg)
	// An Update may have swapped the table while we verified. Update closes
	// the connections it finds under the old table's users, but this one may
	// not have carried its user name yet when it looked: so re-judge it by
	// the new table.
	if t2 := a.table.Load(); t2 != t {
		if u2 := t2.users[u.name]; u2 != u && (u2 == nil || !u2.accepts(hash, a.now()) || !reflect.DeepEqual(u2.perms, u.perms)) {
			return false, "credentials changed during login", false
		}
	}
	return true, "", false
}

// Reasons verify gives for a refused login.
var (
	errWrongPassword = errors.New("wrong password")
	errBusy          = errors.New("no bcrypt turn within the wait bound")
)

// verify checks password against u's accepted hashes, through the cache,
// and returns the hash it matched.
func (a *EdgeAuthenticator) verify(u *authUser, password string, now time.Time, src string) (string, error) {
	var key [sha256.Size]byte
	if !a.noCache || a.throttle != nil {
		key = a.cacheKey(u.name, password)
	}
	if !a.noCache {
		a.cacheMu.RLock()
		e, ok := a.cache[key]
		a.cacheMu.RUnlock()
		if ok && e.user == u.name && u.accepts(e.hash, now) {
			a.hits.Add(1)
			return e.hash, nil
		}
	}
	if a.throttle != nil {
		if err := a.throttle.admit(u, src, key, now); err != nil {
			a.throttled.Add(1)
			return "", err
		}
	}
	if !a.acquire() {
		a.shed.Add(1)
		if a.throttle != nil {
			a.throttle.succeeded(u) // no check ran: give the token back
		}
		return "", errBusy
	}
	defer a.release()
	for _, h := range [...]string{u.hash, u.prevHash} {
		if !u.accepts(h, now) {
			continue
		}
		a.bcrypts.Add(1)
		if bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil {
			if !a.noCache {
				a.cacheMu.Lock()
				a.cache[key] = cacheEntry{user: u.name, hash: h}
				a.cacheMu.Unlock()
			}
			if a.throttle != nil {
				a.throttle.succeeded(u)
			}
			return h, nil
		}
	}
	if a.throttle != nil {
		a.throttle.failed(u, src, key, now)
	}
	return "", errWrongPassword
}

// acquire takes a bcrypt turn, waiting at most maxWait.
func (a *EdgeAuthenticator) acquire() bool {
	if a.sem == nil {
		return true
	}
	select {
	case a.sem <- struct{}{}:
		return true
	default:
	}
	if a.maxWait < 0 {
		a.sem <- struct{}{}
		return true
	}
	t := time.NewTimer(a.maxWait)
	defer t.Stop()
	select {
	case a.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (a *EdgeAuthenticator) release() {
	if a.sem != nil {
		<-a.sem
	}
}

func (a *EdgeAuthenticator) cacheKey(user, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.macKey)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// Update swaps in the credentials of a new inventory and state, without a
// server reload, and returns once the connections it invalidates are
// closed:
//
//   - users no longer in the table (removed from the inventory, or without a
//     credential in st) are disconnected;
//   - users whose permissions changed are disconnected, to log in again
//     with the new ones;
//   - users whose password changed without overlap, or whose overlap was
//     withdrawn, are disconnected;
//   - users whose password was rotated with an overlap window keep their
//     connections until the window ends (PreviousUntil by the injected
//     clock), when the connections made before the rotation are closed.
//
// Cached credentials are dropped for every user whose hashes changed. It
// returns the errors of [NewEdgeAuthenticator] and leaves the table as it
// was on error.
func (a *EdgeAuthenticator) Update(inv *Inventory, st *State) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.table.Load()
	t, err := a.buildTable(inv, st, old)
	if err != nil {
		return err
	}
	a.table.Store(t)

	now, wall := a.now(), time.Now()
	kick := make(map[string]struct{})
	changed := make(map[string]struct{})
	for name, ou := range old.users {
		nu := t.users[name]
		if nu == ou {
			continue
		}
		if nu == nil || !reflect.DeepEqual(nu.perms, ou.perms) || nu.mqttID != ou.mqttID {
			kick[name] = struct{}{}
			changed[name] = struct{}{}
			a.stopTimer(name)
			continue
		}
		if nu.hash == ou.hash && nu.prevHash == ou.prevHash && nu.prevUntil.Equal(ou.prevUntil) {
			continue
		}
		changed[name] = struct{}{}
		a.stopTimer(name)
		switch {
		case (ou.accepts(ou.prevHash, now) && !nu.accepts(ou.prevHash, now)) || !nu.accepts(ou.hash, now):
			// A password the old connections may have used is refused now.
			kick[name] = struct{}{}
		case ou.hash != nu.hash:
			// Rotated with overlap: the old password, and the connections
			// made with it before now, last until the window ends.
			if !a.closed {
				user := name
				a.timers[user] = time.AfterFunc(nu.prevUntil.Sub(now), func() {
					a.disconnect(map[string]struct{}{user: {}}, wall, "overlap window ended")
				})
			}
		}
	}
	a.purgeCache(changed, t, now)
	if len(kick) > 0 {
		a.disconnect(kick, time.Time{}, "credentials changed or revoked")
	}
	return nil
}

func (a *EdgeAuthenticator) stopTimer(user string) {
	if tm, ok := a.timers[user]; ok {
		tm.Stop()
		delete(a.timers, user)
	}
}

// purgeCache drops the cached credentials of users that t no longer
// accepts them for.
func (a *EdgeAuthenticator) purgeCache(users map[string]struct{}, t *authTable, now time.Time) {
	if len(users) == 0 {
		return
	}
	a.cacheMu.Lock()
	defer a.cacheMu.Unlock()
	for k, e := range a.cache {
		if _, ok := users[e.user]; !ok {
			continue
		}
		if u := t.users[e.user]; u == nil || !u.accepts(e.hash, now) {
			delete(a.cache, k)
		}
	}
}

// disconnect closes the open client connections of users that started
// before before (all of them when before is zero).
func (a *EdgeAuthenticator) disconnect(users map[string]struct{}, before time.Time, reason string) {
	srv := a.srv.Load()
	if srv == nil {
		return
	}
	const page = 1024
	var ids []uint64
	for offset := 0; ; offset += page {
		cz, err := srv.Connz(&server.ConnzOptions{Username: true, State: server.ConnOpen, Sort: server.ByCid, Offset: offset, Limit: page})
		if err != nil {
			a.log.Warn("authz: list connections to disconnect", logKeyReason, err.Error())
			return
		}
		for _, ci := range cz.Conns {
			if _, ok := users[ci.AuthorizedUser]; ok && (before.IsZero() || ci.Start.Before(before)) {
				ids = append(ids, ci.Cid)
			}
		}
		if len(cz.Conns) < page {
			break
		}
	}
	for _, id := range ids {
		if srv.DisconnectClientByID(id) == nil {
			a.disconnects.Add(1)
		}
	}
	if len(ids) > 0 {
		names := make([]string, 0, len(users))
		for u := range users {
			names = append(names, u)
		}
		a.log.Info("authz: disconnected clients", logKeyUsers, sortedUnique(names), logKeyCount, len(ids), logKeyReason, reason)
	}
}

// Stats returns a snapshot of a's counters.
func (a *EdgeAuthenticator) Stats() AuthStats {
	return AuthStats{
		Users:       len(a.table.Load().users),
		Accepted:    a.accepted.Load(),
		Rejected:    a.rejected.Load(),
		Shed:        a.shed.Load(),
		CacheHits:   a.hits.Load(),
		Bcrypts:     a.bcrypts.Load(),
		Disconnects: a.disconnects.Load(),
		Throttled:   a.throttled.Load(),
	}
}

// Close stops the timers that would close connections at the end of
// overlap windows. The authenticator keeps authenticating; close the
// server to stop it.
func (a *EdgeAuthenticator) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for u := range a.timers {
		a.stopTimer(u)
	}
}

// buildTable builds the credential table of a's edge, reusing the entries
// of prev that did not change.
func (a *EdgeAuthenticator) buildTable(inv *Inventory, st *State, prev *authTable) (*authTable, error) {
	if a.central {
		return a.buildCentralGatewayTable(inv, st, prev)
	}
	if err := findEdge(inv, a.org, a.edge); err != nil {
		return nil, err
	}
	if _, err := NamesFor(a.org, a.edge); err != nil {
		return nil, err
	}
	ids, err := identitiesOf(inv)
	if err != nil {
		return nil, err
	}
	t := &authTable{users: make(map[string]*authUser)}
	var missing []string
	for _, id := range ids {
		if id.org != a.org || id.edge != a.edge {
			continue
		}
		cred, ok := st.Passwords[id.user]
		if !ok || cred.Hash == "" {
			missing = append(missing, id.user)
			continue
		}
		u := &authUser{
			name:      id.user,
			account:   id.org,
			perms:     id.perms,
			hash:      cred.Hash,
			prevHash:  cred.PreviousHash,
			prevUntil: cred.PreviousUntil,
		}
		if id.mqtt {
			if th, err := topic.Parse(id.user + "." + string(topic.Event)); err == nil {
				u.mqttID = MQTTClientID(th.Thing)
			}
		}
		if prev != nil {
			if p := prev.users[id.user]; p != nil && p.hash == u.hash && p.prevHash == u.prevHash &&
				p.prevUntil.Equal(u.prevUntil) && reflect.DeepEqual(p.perms, u.perms) && p.mqttID == u.mqttID {
				u = p
			}
		}
		if u.server == nil {
			u.server = u.perms.Server()
		}
		t.users[id.user] = u
	}
	if len(missing) > 0 {
		a.log.Warn("authz: users without credentials cannot log in", logKeyUsers, missing)
	}
	return t, nil
}
