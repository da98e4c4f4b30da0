package authz

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

const (
	// DefaultCost is the bcrypt cost [Generator] uses when Cost is zero:
	// about 0.1 s per hash on a current core.
	DefaultCost = 11
	// DefaultOverlap is how long a rotated-out credential keeps working when
	// [Generator] Overlap is zero.
	DefaultOverlap = 24 * time.Hour
	// PasswordBytes is the entropy of a generated password: 24 random bytes
	// (192 bits), encoded as 32 characters of unpadded base64url.
	PasswordBytes = 24
)

// Log keys used by [Generator].
const (
	logKeyCreated = "created"
	logKeyRotated = "rotated"
	logKeyRemoved = "removed"
)

// Generator creates and rotates credentials. Its zero value is ready to use
// with the defaults; set fields before the first call and do not change them
// afterwards. A Generator is safe for concurrent use if Rand is.
type Generator struct {
	// Cost is the bcrypt cost of new password hashes, from bcrypt.MinCost
	// (4, for tests) to bcrypt.MaxCost (31). Zero means [DefaultCost].
	Cost int
	// Overlap is how long a rotated-out password or edge key keeps working
	// after [Generator.Rotate]. Zero means [DefaultOverlap]; a negative
	// value means none: the old credential stops at once.
	Overlap time.Duration
	// Workers is how many passwords are hashed in parallel. Zero means
	// runtime.GOMAXPROCS(0).
	Workers int
	// Now returns the current time, stamped on new and rotated credentials.
	// Nil means time.Now.
	Now func() time.Time
	// Rand is the source of passwords and NKey seeds. Nil means
	// crypto/rand.Reader; anything else is for tests only.
	Rand io.Reader
	// Logger receives one line per generation or rotation, naming the
	// identities affected, never their secrets. Nil discards.
	Logger *slog.Logger
	// Progress, when set, is called after each new password is hashed,
	// with done counting from 1 up to total, the number of passwords the
	// call hashes (it stops short if the call fails or its context ends);
	// it is not called when a call hashes none. Calls come from the
	// hashing goroutines, one at a time and in order of done, so Progress
	// need not be safe for concurrent use, but it holds up the hashing
	// while it runs and should return quickly. Nil reports nothing.
	Progress func(done, total int)

	// hash replaces bcrypt.GenerateFromPassword in tests, to count calls.
	hash func(password []byte, cost int) ([]byte, error)
}

// Result is what a generation or rotation produced. Only State should be
// kept; Secrets must be handed to their owners once and then dropped.
type Result struct {
	// State is the new credential state; save it with [SaveState].
	State *State
	// Secrets holds the new passwords and edge seeds in clear.
	Secrets *Secrets
	// Created lists the identities (user names and edge key IDs) that got
	// their first credential, sorted.
	Created []string
	// Rotated lists the identities whose credential was rotated, sorted.
	Rotated []string
	// Removed lists the identities whose credential was dropped because they
	// are no longer in the inventory, sorted: this is how access is revoked.
	Removed []string
}

// LogValue logs which identities were created, rotated and removed, never
// the state's hashes or the secrets.
func (r *Result) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any(logKeyCreated, r.Created),
		slog.Any(logKeyRotated, r.Rotated),
		slog.Any(logKeyRemoved, r.Removed),
	)
}

// settings is a Generator with its defaults applied.
type settings struct {
	cost     int
	overlap  time.Duration
	workers  int
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
	progress func(done, total int)
	hash     func([]byte, int) ([]byte, error)
}

func (g *Generator) settings() (settings, error) {
	s := settings{cost: g.Cost, overlap: g.Overlap, workers: g.Workers, now: g.Now, rand: g.Rand, log: g.Logger, progress: g.Progress, hash: g.hash}
	switch {
	case s.cost == 0:
		s.cost = DefaultCost
	case s.cost < bcrypt.MinCost || s.cost > bcrypt.MaxCost:
		return s, fmt.Errorf("%w: bcrypt cost %d, want %d to %d", ErrInvalidOption, s.cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	switch {
	case s.overlap == 0:
		s.overlap = DefaultOverlap
	case s.overlap < 0:
		s.overlap = 0
	}
	switch {
	case s.workers == 0:
		s.workers = runtime.GOMAXPROCS(0)
	case s.workers < 0:
		return s, fmt.Errorf("%w: %d workers", ErrInvalidOption, s.workers)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hash == nil {
		s.hash = bcrypt.GenerateFromPassword
	}
	return s, nil
}

// Identities returns the identities inv defines, each sorted: the NATS user
// names of its devices ([DeviceUser]), listed services ([ServiceUser]) and
// implicit edge services ([EdgeServiceUser]), and the [EdgeKeyID] of each
// edge. It does not validate inv; a nil inv defines none.
func (inv *Inventory) Identities() (users, edgeKeys []string) {
	if inv == nil {
		return nil, nil
	}
	users = make([]string, 0, len(inv.Things)+len(inv.Services)+len(inv.Edges))
	for _, t := range inv.Things {
		users = append(users, DeviceUser(t.Thing))
	}
	for _, s := range inv.Services {
		users = append(users, ServiceUser(s.Org, s.Name))
	}
	edgeKeys = make([]string, 0, len(inv.Edges))
	for _, e := range inv.Edges {
		users = append(users, EdgeServiceUser(e.Org, e.Code))
		edgeKeys = append(edgeKeys, EdgeKeyID(e.Org, e.Code))
	}
	slices.Sort(users)
	slices.Sort(edgeKeys)
	return users, edgeKeys
}

// Generate returns the credential state for inv, starting from st (nil for
// none). Identities that st already holds keep their credentials unchanged,
// byte for byte, so only new identities cost a bcrypt hash; each new user
// gets a random password and each new edge an NKey, returned once in the
// result's Secrets. Credentials of identities no longer in inv are dropped
// and listed in Removed. The same inv and st always give the same State.
//
// Generate validates inv first and returns the errors of
// [Inventory.Validate]; it returns [State.Validate]'s for a bad st, and the
// context's error if ctx ends while hashing. st is never modified, and on
// error nothing is returned.
func (g *Generator) Generate(ctx context.Context, inv *Inventory, st *State) (*Result, error) {
	cfg, err := g.settings()
	if err != nil {
		return nil, err
	}
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		st = NewState()
	} else if err := st.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := cfg.stamp()
	users, edgeKeys := inv.Identities()
	res := &Result{
		State:   NewState(),
		Secrets: &Secrets{Passwords: make(map[string]Secret), EdgeSeeds: make(map[string]Secret)},
	}

	var newUsers []string
	for _, u := range users {
		if c, ok := st.Passwords[u]; ok {
			res.State.Passwords[u] = c
		} else {
			newUsers = append(newUsers, u)
		}
	}
	hashes, err := cfg.newPasswords(ctx, newUsers, res.Secrets)
	if err != nil {
		return nil, err
	}
	for i, u := range newUsers {
		res.State.Passwords[u] = PasswordCredential{Hash: hashes[i], Created: now}
	}
	res.Created = append(res.Created, newUsers...)

	for _, id := range edgeKeys {
		if k, ok := st.EdgeKeys[id]; ok {
			res.State.EdgeKeys[id] = k
			continue
		}
		pub, err := cfg.newEdgeKey(id, res.Secrets)
		if err != nil {
			return nil, err
		}
		res.State.EdgeKeys[id] = EdgeKey{PublicKey: pub, Created: now}
		res.Created = append(res.Created, id)
	}
	if err := cfg.auditKeys(edgeKeys, st, res, now); err != nil {
		return nil, err
	}
	if err := cfg.commandKeys(inv, st, res, now); err != nil {
		return nil, err
	}

	for _, u := range sortedKeys(st.Passwords) {
		if _, ok := res.State.Passwords[u]; !ok {
			res.Removed = append(res.Removed, u)
		}
	}
	for _, id := range sortedKeys(st.EdgeKeys) {
		if _, ok := res.State.EdgeKeys[id]; !ok {
			res.Removed = append(res.Removed, id)
		}
	}
	slices.Sort(res.Created)
	slices.Sort(res.Removed)
	// Revocations are logged by name; creations, possibly thousands on a
	// first run, by count, with the names at debug level.
	cfg.log.InfoContext(ctx, "authz: credentials generated",
		slog.Int("identities", len(users)+len(edgeKeys)),
		slog.Int(logKeyCreated, len(res.Created)),
		slog.Any(logKeyRemoved, res.Removed))
	cfg.log.DebugContext(ctx, "authz: credentials created", slog.Any(logKeyCreated, res.Created))
	return res, nil
}

// Rotate returns a copy of st in which each identity named (a user name, or
// an [EdgeKeyID] for an edge's NKey) has a new password or key, returned
// once in the result's Secrets. The old password hash moves to
// PreviousHash, and the old public key to PreviousPublicKey, both valid
// until PreviousUntil = now + Overlap; a previous credential from an earlier
// rotation is dropped. With a negative Overlap the old credential stops at
// once.
//
// It returns [ErrUnknownIdentity] naming every identity that st holds no
// credential for, [State.Validate]'s errors for a bad st, and the context's
// error if ctx ends while hashing. st is never modified, and on error
// nothing is returned.
func (g *Generator) Rotate(ctx context.Context, st *State, identities ...string) (*Result, error) {
	cfg, err := g.settings()
	if err != nil {
		return nil, err
	}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	ids := slices.Compact(slices.Sorted(slices.Values(identities)))
	var users, edges, unknown []string
	for _, id := range ids {
		if _, ok := st.Passwords[id]; ok {
			users = append(users, id)
		} else if _, ok := st.EdgeKeys[id]; ok {
			edges = append(edges, id)
		} else {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: no credential for %q", ErrUnknownIdentity, unknown)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := cfg.stamp()
	var until time.Time
	if cfg.overlap > 0 {
		until = now.Add(cfg.overlap)
	}
	res := &Result{
		State:   st.Clone(),
		Secrets: &Secrets{Passwords: make(map[string]Secret), EdgeSeeds: make(map[string]Secret)},
		Rotated: ids,
	}
	hashes, err := cfg.newPasswords(ctx, users, res.Secrets)
	if err != nil {
		return nil, err
	}
	for i, u := range users {
		c := res.State.Passwords[u]
		c.PreviousHash, c.PreviousUntil = "", time.Time{}
		if !until.IsZero() {
			c.PreviousHash, c.PreviousUntil = c.Hash, until
		}
		c.Hash, c.Rotated = hashes[i], now
		res.State.Passwords[u] = c
	}
	for _, id := range edges {
		pub, err := cfg.newEdgeKey(id, res.Secrets)
		if err != nil {
			return nil, err
		}
		k := res.State.EdgeKeys[id]
		k.PreviousPublicKey, k.PreviousUntil = "", time.Time{}
		if !until.IsZero() {
			k.PreviousPublicKey, k.PreviousUntil = k.PublicKey, until
		}
		k.PublicKey, k.Rotated = pub, now
		res.State.EdgeKeys[id] = k
	}
	cfg.log.InfoContext(ctx, "authz: credentials rotated", slog.Any(logKeyRotated, res.Rotated))
	return res, nil
}

// stamp returns the current time in the form stored in State: UTC, without
// a monotonic reading.
func (s settings) stamp() time.Time { return s.now().UTC().Round(0) }

// newPasswords creates a random password for each user, records it in
// secrets, and returns the bcrypt hashes in the same order. Passwords are
// drawn in order (so an injected Rand gives the same passwords every time)
// and hashed by s.workers goroutines.
func (s settings) newPasswords(ctx context.Context, users []string, secrets *Secrets) ([]string, error) {
	if len(users) == 0 {
		return nil, nil
	}
	pws := make([][]byte, len(users))
	buf := make([]byte, PasswordBytes)
	for i, u := range users {
		if _, err := io.ReadFull(s.rand, buf); err != nil {
			return nil, fmt.Errorf("authz: password for %s: %w", u, err)
		}
		pws[i] = make([]byte, base64.RawURLEncoding.EncodedLen(PasswordBytes))
		base64.RawURLEncoding.Encode(pws[i], buf)
		secrets.Passwords[u] = NewSecret(string(pws[i]))
	}
	clear(buf)
	defer func() {
		for _, pw := range pws {
			clear(pw)
		}
	}()

	hashes := make([]string, len(pws))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	var progressMu sync.Mutex // serialises s.progress; guards done
	done := 0
	for range min(s.workers, len(pws)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(pws) {
					return
				}
				h, err := s.hash(pws[i], s.cost)
				if err != nil {
					cancel(fmt.Errorf("authz: hash password for %s: %w", users[i], err))
					return
				}
				hashes[i] = string(h)
				if s.progress != nil {
					progressMu.Lock()
					done++
					s.progress(done, len(pws))
					progressMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return hashes, nil
}

// newEdgeKey creates a user NKey for edge id, records its seed in secrets
// and returns its public key.
func (s settings) newEdgeKey(id string, secrets *Secrets) (string, error) {
	raw := make([]byte, 32) // an ed25519 seed
	defer clear(raw)
	if _, err := io.ReadFull(s.rand, raw); err != nil {
		return "", fmt.Errorf("authz: nkey for edge %s: %w", id, err)
	}
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, raw)
	if err != nil {
		return "", fmt.Errorf("authz: nkey for edge %s: %w", id, err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("authz: nkey for edge %s: %w", id, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("authz: nkey for edge %s: %w", id, err)
	}
	secrets.EdgeSeeds[id] = NewSecret(string(seed)) // string() copies before Wipe
	return pub, nil
}
