package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Defaults of [ServiceConfig].
const (
	// DefaultSyncInterval is how often the edge confirms its sync with
	// central while the link is up.
	DefaultSyncInterval = time.Second
	// DefaultSyncWait is how long a request that would be granted waits,
	// after the link came back and before the edge has caught up with
	// central, for central's current entry of the credential.
	DefaultSyncWait = time.Second
	// DefaultUnlockDeadline is how long after a grant the lock may still
	// carry out its unlock command; later, the holder has gone and the lock
	// must not open.
	DefaultUnlockDeadline = 3 * time.Second
	// DefaultMaxInFlight bounds the requests the service handles at once.
	DefaultMaxInFlight = 1024
	// DefaultServiceTimeout bounds the service's own JetStream calls, the
	// storing of a decision's audit event included.
	DefaultServiceTimeout = 5 * time.Second
	// linkPoll is how often the service looks at the leaf link.
	linkPoll = 50 * time.Millisecond
	// syncPersistEvery is how often, at most, the last confirmed sync is
	// written to the edge's state bucket.
	syncPersistEvery = 10 * time.Second
)

// ActionUnlock is the action of the command the edge sends a door's locks
// on a grant, with parameter "duration" (a Go duration, the door's
// [DoorPolicy].UnlockFor) and "door".
const ActionUnlock = "unlock"

// Keys of the edge's own state bucket ([StateBucket]).
const (
	stateKeyHead = "head" // the audit chain head, with its stream sequence
	stateKeySync = "sync" // the last confirmed sync, with the set version it confirmed
)

// StateBucket returns the name of the KV bucket in which the edge's access
// service keeps its own state on the edge: the head of its audit chain and
// its last confirmed sync with central, "access-{org}-{edge}".
func StateBucket(org, edge string) string { return "access-" + org + "-" + edge }

// ServiceConfig configures the edge's access service. HashKey and
// Inventory are required; the zero value of every other field means its
// default.
type ServiceConfig struct {
	// HashKey is the org's credential hash key ([ReadHashKey]): the edge
	// hashes each presented credential with it ([message.Credential.Hash])
	// and looks the hash up in its set.
	HashKey []byte
	// AuditKey is the edge's audit key ([ReadAuditKey], the seed of its
	// authz.AuditKey): the service signs every record of its audit trail
	// with it ([SignRecord]), and central's [Auditor] verifies them with
	// the edge's public keys. Required.
	AuditKey nkeys.KeyPair
	// Inventory is the deployment's inventory: the edge's doors, their
	// readers and locks, and the site's time zone.
	Inventory *authz.Inventory
	// Doors are the door policies by door code. A door of the inventory
	// without one gets DefaultPolicy.
	Doors map[string]DoorPolicy
	// DefaultPolicy is the policy of the doors Doors does not list.
	DefaultPolicy DoorPolicy
	// SyncInterval is how often the edge confirms its sync with central
	// while the link is up; [DefaultSyncInterval] if zero.
	SyncInterval time.Duration
	// SyncWait bounds how long a request that would be granted waits, once
	// the link is back and before the edge has caught up with central, for
	// central's current entry of the credential; [DefaultSyncWait] if zero.
	// See [Service].
	SyncWait time.Duration
	// UnlockDeadline is the deadline of unlock commands, from the grant;
	// [DefaultUnlockDeadline] if zero.
	UnlockDeadline time.Duration
	// AnswerBeforeStored answers a request, and unlocks the door, as soon
	// as the decision's audit event has been published, without waiting
	// for the event stream to confirm that it stored (and fsynced) it. It
	// saves the fsync in the reader's wait (see BenchmarkDecision) at the
	// price of a window in which a door may open on a decision whose event
	// a power loss of the edge then loses; central sees such a loss as a
	// gap in the audit chain. Off by default.
	AnswerBeforeStored bool
	// ObserveDecision, when set, is called after each answered request
	// with its outcome and the time from the request's arrival to its
	// answer (for a latency histogram). It runs on the request's
	// goroutine and must not block.
	ObserveDecision func(granted bool, latency time.Duration)
	// MaxInFlight bounds the requests handled at once; [DefaultMaxInFlight]
	// if zero.
	MaxInFlight int
	// Timeout bounds the service's JetStream calls; [DefaultServiceTimeout]
	// if zero.
	Timeout time.Duration
	// Logger receives the service's log; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IDs makes the IDs of the envelopes the service publishes; nil means
	// a generator of its own, using Now.
	IDs *message.IDGenerator
}

// ServiceStats is a snapshot of a [Service]'s counters.
type ServiceStats struct {
	Requests      uint64 // access requests received
	Granted       uint64 // grants
	Denied        uint64 // denials
	Fallback      uint64 // decisions made by a door's fallback mode
	Offline       uint64 // decisions made without a sync confirmed since the link came up
	SyncWaits     uint64 // would-be grants checked at central after the link came back
	Malformed     uint64 // requests that could not be read (answered with an error header)
	AuditFailures uint64 // decision records not stored at once (not carried out unless AnswerBeforeStored; published again)
	AuditLost     uint64 // decision records given up on: never stored (see [Service], "The audit trail")
	Unlocks       uint64 // unlock commands sent
	SyncChecks    uint64 // sync confirmations asked of central
	ApplyErrors   uint64 // entries of the bucket that did not parse (applied fail-secure)
	// MirrorIncomplete counts sync checks that found the edge's mirror
	// lacking entries central holds; the edge does not count as in sync
	// then, and rebuilds its mirror.
	MirrorIncomplete uint64
	// MirrorRebuilds counts the times the edge rebuilt its incomplete
	// mirror and asked central for everything it lacked (see
	// [Service], "A replaced or wiped store").
	MirrorRebuilds uint64
	// RepliesRefused counts requests dropped unanswered because their reply
	// subject was not the requester's own inbox ([topic.ReplyAllowed]).
	RepliesRefused uint64
}

// HeaderError is the header of a reply to a request the edge could not
// read; its value says what is wrong.
const HeaderError = "Lintel-Error"

// Keys of the package's log records besides the shared ones of package
// message (message.LogKeyError, LogKeyOrg, LogKeyEdge, LogKeySubject,
// LogKeyMsgID) and authz.LogKeySecurity.
const (
	logKeyDoor    = "door"
	logKeyReader  = "reader"
	logKeyVersion = "version"
	// logKeyCredential is the key of a credential id.
	logKeyCredential = "credential"
	// logKeyReply is the reply subject a request named.
	logKeyReply = "reply"
)

// door is what the service knows of one door.
type door struct {
	policy  DoorPolicy
	readers map[string]bool // reader codes
	locks   []topic.Thing
}

// Service is the access service of an edge: it keeps the edge's copy of its
// credential set, decides access requests from it, unlocks doors, and
// records every decision in a tamper-evident audit trail. Start one per
// edge node with [StartService].
//
// # Requests and decisions
//
// A reader sends a [message.AccessRequest] as a request ([topic.Request],
// [message.NameAccessRequested]) on its req subject. The service hashes the
// credential with the org's key, decides from its set ([Set.Decide]) and
// answers with a [message.AccessDecision] whose CorrelationID is the
// request's ID. A request from a thing that is not one of the door's
// readers is denied [message.DenyUnknownDoor]. A request whose reply
// subject is not the reader's own inbox ([topic.ReplyAllowed]) is dropped
// unanswered and undecided, counted (RepliesRefused) and logged; requests
// are taken and answered on the node's responder connection
// ([edgekit.Node.ResponderConn]), which may publish only into devices'
// inboxes. On a grant the service sends
// each of the door's locks an [ActionUnlock] command with a short deadline,
// directly on the lock's cmd subject (not through central).
//
// # The audit trail
//
// Every decision is also recorded ([message.NameAccessGranted] or
// [message.NameAccessDenied], Type [topic.Event], Source the reader's
// [DecisionThing], so on "{org}.{edge}._access.{reader}.evt") in the edge's
// platform stream ([authz.EdgeNames].PlatformStream), which no device can
// write and which central sources like the event stream. The service chains
// the records: each carries the hash of the previous one's exact bytes
// ([ChainHead]), and signs each with the edge's audit key
// ([RecordSigningBytes]), so that central can tell the edge's records from
// anything else ([Auditor]). The chain head is kept in the edge's state
// bucket and recovered from the platform stream at start, so a restart
// continues the chain. The reader's reply carries the decision, not the
// record: neither the holder, nor the credential's hash, nor the chain
// link.
//
// The reply and the unlock go out only after the platform stream has
// stored the record (fsynced when the node runs with sync "always", its
// default), so that a door never opens on a decision the audit trail lacks
// (ServiceConfig.AnswerBeforeStored trades that for the fsync's latency).
// If the record is not stored within Timeout, the door fails closed: the
// reader gets an error reply, no lock is unlocked, and the record is
// published again (same message ID, so it is stored once) until the stream
// takes it; records given up on (the service stopped, or more than 1024
// waiting) are counted (ServiceStats.AuditLost) and logged, and central
// sees a gap in the chain.
//
// # Sync with central and staleness
//
// The set is the edge's mirror of its credential bucket on central, read
// through a watch: a change at central reaches the edge's set within
// milliseconds while the link is up. Every SyncInterval while the link is up
// the service asks central for the last revision of the bucket; once its
// set has applied that revision, the time the question was sent is the
// edge's last confirmed sync, which each decision records (SyncedAt) and
// against which each door's staleness limit ([DoorPolicy].StaleAfter) is
// measured. An edge cut off from central keeps deciding from its set until
// a door's limit has passed since the last confirmed sync; from then on
// that door decides by its fallback mode. The last confirmed sync is kept
// in the edge's state bucket, so a restart during an outage does not make
// the set look older or newer than it is.
//
// # After reconnection: revocations first
//
// When the service sees the link come back up, it asks central at once how
// far the bucket is. Until its set is confirmed to hold everything central
// had when asked (normally within milliseconds, but nats-server may take
// seconds to resume a mirror after a reconnection), a request that the set
// would grant is first checked against the credential's current entry at
// central, read directly from central's bucket ([authz.EdgeNames].CredentialGet,
// one round trip): a revocation or suspension stored there, or the
// credential's removal, denies the request as the set will once it has
// caught up. So once the edge knows the link is up, it grants nothing that
// a revocation stored at central before then would deny. If central does
// not answer within SyncWait (central slow, link flapping), the request is
// decided as while offline: from the set, within the door's staleness
// limit, and marked Offline; central reports such grants of credentials it
// had revoked when the decision arrives ([Auditor]). The link is looked at
// on every request and every 50 ms; a link that drops and comes back
// between two looks is not noticed as a reconnection, but the next periodic
// sync check still bounds the staleness.
//
// # A replaced or wiped store
//
// The edge's mirror reads through a durable consumer on central that
// remembers what it delivered; a new or wiped store (or one that lost its
// last writes to a power cut) would get only what came after. When a sync
// check finds the mirror at central's last revision with fewer entries than
// central holds, twice in a row, the edge does not count as in sync and
// rebuilds the mirror by itself: it deletes it, asks central to reset the
// consumer to the first sequence it lacks, creates the mirror again, and
// replaces its set with the new one once that holds what central held
// ([ServiceStats].MirrorRebuilds). Decisions use the old set meanwhile,
// within the doors' staleness limits. Rebuilds that do not make the mirror
// whole are retried after a backoff of one second, doubling up to a minute.
//
// # When the edge cannot decide
//
// Until the set has been loaded (at start-up, or if the local store cannot
// be read) every door decides by its fallback mode, as it does when its
// set is too stale: deny everything, or grant only the door's short list of
// always-allowed credentials. A fresh edge that has never confirmed a sync
// counts as stale until it does: normally within a round trip to central
// after it starts. A network outage never changes a lock's state
// by itself: the service only ever sends unlock commands on a grant, and
// free egress and fire-alarm release belong to the lock hardware, never to
// NATS.
type Service struct {
	cfg   ServiceConfig
	node  *edgekit.Node
	names authz.EdgeNames
	nc    *nats.Conn
	rc    *nats.Conn // the node's responder: takes requests, answers them
	js    jetstream.JetStream
	log   *slog.Logger
	now   func() time.Time
	ids   *message.IDGenerator
	set   atomic.Pointer[Set] // replaced whole after a new watch
	loc   *time.Location
	doors map[string]*door
	org   string
	edge  string

	state jetstream.KeyValue // the edge's own state bucket

	mu         sync.Mutex
	loaded     bool
	syncedAt   time.Time
	linkUp     bool      // as last seen
	linkEpoch  uint64    // the link's connection as last seen (Node.LinkEpoch)
	linkAt     time.Time // when the link was last seen coming up
	awaiting   bool      // link up, sync not confirmed since
	target     uint64    // revision central reported, not yet applied
	targetMsgs uint64    // central's entries when it reported target
	targetAt   time.Time // when that was asked
	persist    time.Time // when the last sync was last written
	// pendingSync is the last confirmed sync read back from the state
	// bucket at start; it counts once the set has applied its version.
	pendingSync *syncRecord

	auditMu   sync.Mutex
	head      ChainHead
	headMu    sync.Mutex
	headSaved uint64       // chain seq of the head last written to the state bucket
	unstored  atomic.Int64 // records being published again (audit_record.go)

	mirrorGap atomic.Uint64 // entries the mirror was last found to lack
	repair    mirrorRepair  // the mirror's self-repair: see resync.go

	repliesRefused atomic.Uint64 // see reply.go

	gate sync.RWMutex // held for reading while a request is taken in

	kick    chan struct{}
	callMu  sync.Mutex
	calls   map[string]chan *nats.Msg // waiting calls to central, by reply subject
	callSeq uint64
	sem     chan struct{}
	handles sync.WaitGroup
	cancel  context.CancelFunc
	done    chan struct{}
	stopped atomic.Bool

	stats struct {
		requests, granted, denied, fallback, offline, syncWaits, malformed,
		auditFailures, auditLost, unlocks, syncChecks, applyErrors, mirrorIncomplete atomic.Uint64
	}
}

// StartService starts the access service of node: it opens the edge's
// state bucket, recovers the head of the audit chain, starts watching the
// edge's credential mirror and subscribes to its readers' requests. It
// returns without waiting for the set to load (see [Service.Loaded]); until
// then doors decide by their fallback mode. ctx bounds the start only
// (with ServiceConfig.Timeout): the service runs until [Service.Stop], or
// until its node stops. It returns an error wrapping [ErrInvalid] for a
// bad configuration (a door policy, a time zone), or the JetStream or NATS
// error of a step that failed; nothing is left running then.
func StartService(ctx context.Context, node *edgekit.Node, cfg ServiceConfig) (*Service, error) {
	if node == nil || node.Conn() == nil || node.ResponderConn() == nil {
		return nil, fmt.Errorf("%w: node not started", ErrInvalid)
	}
	if cfg.AuditKey == nil {
		return nil, fmt.Errorf("%w: no audit key", ErrInvalid)
	}
	if pub, err := cfg.AuditKey.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("%w: audit key is not a user NKey", ErrInvalid)
	}
	key, err := message.SigningKey(cfg.AuditKey)
	if err != nil {
		return nil, fmt.Errorf("%w: audit key cannot sign (a public key only?): %w", ErrInvalid, err)
	}
	cfg.AuditKey = key
	if len(cfg.HashKey) < HashKeySize {
		return nil, fmt.Errorf("%w: hash key of %d bytes, want at least %d", ErrInvalid, len(cfg.HashKey), HashKeySize)
	}
	if cfg.Inventory == nil {
		return nil, fmt.Errorf("%w: no inventory", ErrInvalid)
	}
	setDefault(&cfg.SyncInterval, DefaultSyncInterval)
	setDefault(&cfg.SyncWait, DefaultSyncWait)
	setDefault(&cfg.UnlockDeadline, DefaultUnlockDeadline)
	setDefault(&cfg.Timeout, DefaultServiceTimeout)
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IDs == nil {
		cfg.IDs = &message.IDGenerator{Now: cfg.Now}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	names := node.Names()
	s := &Service{
		cfg: cfg, node: node, names: names, nc: node.Conn(), rc: node.ResponderConn(), js: node.JetStream(),
		log: log.With(message.LogKeyOrg, names.Org, message.LogKeyEdge, names.Edge),
		now: cfg.Now, ids: cfg.IDs, org: names.Org, edge: names.Edge,
		kick: make(chan struct{}, 1), calls: make(map[string]chan *nats.Msg),
		sem: make(chan struct{}, cfg.MaxInFlight), done: make(chan struct{}),
	}
	s.set.Store(NewSet())
	s.repair.req = make(chan uint64, 1)
	if err := s.loadSite(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := s.openState(ctx); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	s.cancel = stop
	replySub, err := s.nc.Subscribe(names.SyncReplyPrefix+".*", s.onReply)
	if err != nil {
		stop()
		return nil, fmt.Errorf("access: subscribe to sync replies: %w", err)
	}
	reqSub, err := s.rc.Subscribe(s.org+"."+s.edge+".*.*."+string(topic.Request), s.onRequest)
	if err != nil {
		stop()
		_ = replySub.Unsubscribe()
		return nil, fmt.Errorf("access: subscribe to requests: %w", err)
	}
	var loops sync.WaitGroup
	loops.Add(2)
	go func() { defer loops.Done(); s.watch(runCtx) }()
	go func() { defer loops.Done(); s.syncLoop(runCtx) }()
	go func() {
		<-runCtx.Done()
		_ = reqSub.Unsubscribe()
		_ = replySub.Unsubscribe()
		loops.Wait()
		s.handles.Wait()
		// Let the last chain head and sync reach the state bucket.
		select {
		case <-s.js.PublishAsyncComplete():
		case <-time.After(s.cfg.Timeout):
		case <-node.Done():
		}
		close(s.done)
	}()
	go func() {
		select {
		case <-node.Done():
			s.Stop()
		case <-s.done:
		}
	}()
	return s, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// loadSite reads the edge's doors and time zone from the inventory.
func (s *Service) loadSite() error {
	s.loc = time.UTC
	for _, e := range s.cfg.Inventory.Edges {
		if e.Org == s.org && e.Code == s.edge && e.TimeZone != "" {
			loc, err := time.LoadLocation(e.TimeZone)
			if err != nil {
				return fmt.Errorf("%w: edge %s time zone %q: %w", ErrInvalid, s.edge, e.TimeZone, err)
			}
			s.loc = loc
		}
	}
	types := make(map[string]string)
	for _, t := range s.cfg.Inventory.Things {
		if t.Org == s.org && t.Edge == s.edge {
			types[t.Code] = t.Type
		}
	}
	s.doors = make(map[string]*door)
	for _, d := range s.cfg.Inventory.Doors {
		if d.Org != s.org || d.Edge != s.edge {
			continue
		}
		p, ok := s.cfg.Doors[d.Code]
		if !ok {
			p = s.cfg.DefaultPolicy
		}
		if err := p.Validate(d.Code); err != nil {
			return err
		}
		p.UnlockFor = p.EffectiveUnlockFor()
		dd := &door{policy: p, readers: make(map[string]bool)}
		for _, r := range d.Readers {
			dd.readers[r] = true
		}
		for _, l := range d.Locks {
			dd.locks = append(dd.locks, topic.Thing{Org: s.org, Edge: s.edge, Type: types[l], Code: l})
		}
		s.doors[d.Code] = dd
	}
	for code := range s.cfg.Doors {
		if _, ok := s.doors[code]; !ok {
			return &FieldError{Kind: "door policy", Name: code, Reason: "no such door at edge " + s.edge + " in the inventory", Err: ErrInvalid}
		}
	}
	return nil
}

// openState opens (creating it when missing) the edge's state bucket and
// recovers the audit chain head and the last confirmed sync.
func (s *Service) openState(ctx context.Context) error {
	bucket := StateBucket(s.org, s.edge)
	if _, err := s.js.CreateOrUpdateStream(ctx, stateStreamConfig(bucket)); err != nil {
		return fmt.Errorf("access: state bucket %s: %w", bucket, err)
	}
	kv, err := s.js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("access: state bucket %s: %w", bucket, err)
	}
	s.state = kv
	var rec struct {
		ChainHead
		StreamSeq uint64 `json:"stream_seq"`
	}
	if e, err := kv.Get(ctx, stateKeyHead); err == nil {
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return fmt.Errorf("access: audit chain head in %s: %w", bucket, err)
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("access: audit chain head in %s: %w", bucket, err)
	}
	s.head = rec.ChainHead
	if err := s.recoverHead(ctx, rec.StreamSeq); err != nil {
		return err
	}
	if e, err := kv.Get(ctx, stateKeySync); err == nil {
		var st syncRecord
		if json.Unmarshal(e.Value(), &st) == nil {
			s.pendingSync = &st
		}
	}
	return nil
}

// syncRecord is the last confirmed sync as the state bucket keeps it: it
// counts only once the set has applied Version again after a restart.
type syncRecord struct {
	At      time.Time `json:"at"`
	Version uint64    `json:"version"`
}

// recoverHead moves the chain head past decision records that the
// platform stream stored after the head was last written (the head is
// written asynchronously, after each record is stored).
func (s *Service) recoverHead(ctx context.Context, after uint64) error {
	stream, err := s.js.Stream(ctx, s.names.PlatformStream)
	if err != nil {
		return fmt.Errorf("access: platform stream %s: %w", s.names.PlatformStream, err)
	}
	st := stream.CachedInfo().State
	seq := max(after+1, st.FirstSeq)
	for ; seq <= st.LastSeq && st.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("access: recover audit chain from %s at %d: %w", s.names.PlatformStream, seq, err)
		}
		var e message.Envelope
		if message.DecodeMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, &e, nil) != nil {
			continue
		}
		if e.Type != topic.Event || e.Source.Type != topic.ThingTypeAccess ||
			(e.Name != message.NameAccessGranted && e.Name != message.NameAccessDenied) {
			continue
		}
		d, err := message.DecodePayload[message.AccessDecision](&e)
		if err != nil || d.AuditSeq <= s.head.Seq {
			continue
		}
		s.head = ChainHead{Seq: d.AuditSeq, Hash: EventHash(m.Data)}
	}
	return nil
}

// stateStreamConfig is the stream of the edge's state bucket: a KV bucket
// as nats.go makes one, persisted asynchronously (its content is
// recoverable: see recoverHead).
func stateStreamConfig(bucket string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       "Lintel access service state of the edge",
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          1,
		AllowRollup:       true,
		DenyDelete:        true,
		AllowDirect:       true,
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
		PersistMode:       jetstream.AsyncPersistMode,
	}
}

// Stop stops the service: no new request is taken, requests in progress
// are answered, and the watch and the sync checks end. It returns once
// everything has stopped, and is idempotent.
func (s *Service) Stop() {
	s.gate.Lock()
	first := s.stopped.CompareAndSwap(false, true)
	s.gate.Unlock()
	if first {
		s.cancel()
	}
	<-s.done
}

// Done is closed when the service has stopped (also when its node stops).
func (s *Service) Done() <-chan struct{} { return s.done }

// Loaded reports whether the set has been loaded from the edge's mirror.
func (s *Service) Loaded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded
}

// Version returns the version of the set: the last revision of the edge's
// bucket it has applied.
func (s *Service) Version() uint64 { return s.set.Load().Version() }

// SyncedAt returns the edge's last confirmed sync with central, or zero.
func (s *Service) SyncedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncedAt
}

// Set returns the service's credential set, for inspection.
func (s *Service) Set() *Set { return s.set.Load() }

// Head returns the head of the edge's audit chain: the last decision event
// chained.
func (s *Service) Head() ChainHead {
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	return s.head
}

// Stats returns a snapshot of the service's counters.
func (s *Service) Stats() ServiceStats {
	return ServiceStats{
		Requests: s.stats.requests.Load(), Granted: s.stats.granted.Load(), Denied: s.stats.denied.Load(),
		Fallback: s.stats.fallback.Load(), Offline: s.stats.offline.Load(), SyncWaits: s.stats.syncWaits.Load(),
		Malformed: s.stats.malformed.Load(), AuditFailures: s.stats.auditFailures.Load(), AuditLost: s.stats.auditLost.Load(),
		Unlocks: s.stats.unlocks.Load(), SyncChecks: s.stats.syncChecks.Load(), ApplyErrors: s.stats.applyErrors.Load(),
		MirrorIncomplete: s.stats.mirrorIncomplete.Load(), MirrorRebuilds: s.repair.rebuilds.Load(),
		RepliesRefused: s.repliesRefused.Load(),
	}
}
