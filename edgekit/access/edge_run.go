package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// watch keeps the set up to date with the edge's credential mirror, for as
// long as ctx lasts, starting over after a failure (a store that cannot be
// read leaves the set unloaded, and the doors in their fallback mode).
func (s *Service) watch(ctx context.Context) {
	for first := true; ; first = false {
		err := s.watchOnce(ctx, first)
		if ctx.Err() != nil {
			return
		}
		var rb *errRebuild
		if errors.As(err, &rb) {
			// The new set replaces the old one once it holds what central
			// held when the mirror was found lacking.
			if err = s.rebuildMirror(ctx, rb.last); err == nil {
				continue
			}
			if ctx.Err() != nil {
				return
			}
		}
		s.log.Warn("credential set: watch of the local mirror failed; retrying", message.LogKeyError, err)
		if s.repair.until.Load() != 0 {
			s.ensureMirror(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// The first watch fills the service's set. A later one (after a failure)
// fills a new set, which replaces the old one once it is complete, so that
// an entry deleted meanwhile cannot linger; decisions use the old set until
// then. After a rebuild of the mirror the new set is complete only once it
// has also applied the revision central had when the mirror was found
// lacking. A watch ends with an [*errRebuild] when the sync checks ask for
// the mirror to be rebuilt.
func (s *Service) watchOnce(ctx context.Context, first bool) error {
	until := s.repair.until.Load()
	set := s.set.Load()
	if !first {
		set = NewSet()
	}
	loaded := false   // the watch has delivered what the mirror held when it began
	complete := false // set is the service's set, complete
	replace := func() {
		if complete || !loaded || set.Version() < until {
			return
		}
		complete = true
		swapped := s.set.Swap(set) != set
		s.repair.until.CompareAndSwap(until, 0)
		s.markLoaded()
		if swapped {
			s.applied(set.Version())
		}
	}
	kv, err := s.js.KeyValue(ctx, s.names.CredentialBucket)
	if err != nil {
		return fmt.Errorf("access: credential mirror %s: %w", s.names.CredentialBucket, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("access: watch %s: %w", s.names.CredentialBucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case last := <-s.repair.req:
			return &errRebuild{last: last}
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("access: watch closed")
			}
			if e == nil {
				loaded = true
				replace()
				continue
			}
			deleted := e.Operation() != jetstream.KeyValuePut
			if _, err := set.Apply(e.Key(), e.Value(), e.Revision(), deleted); err != nil {
				s.stats.applyErrors.Add(1)
				s.log.Error("credential set: entry applied fail-secure", "key", e.Key(), logKeyVersion, e.Revision(), message.LogKeyError, err)
			}
			if s.set.Load() == set {
				s.applied(e.Revision())
			} else {
				replace()
			}
		}
	}
}

// markLoaded records that the watch has delivered the whole mirror.
func (s *Service) markLoaded() {
	s.mu.Lock()
	first := !s.loaded
	s.loaded = true
	if p := s.pendingSync; p != nil && s.set.Load().Version() >= p.Version {
		if p.At.After(s.syncedAt) {
			s.syncedAt = p.At
		}
		s.pendingSync = nil
	}
	s.mu.Unlock()
	if first {
		s.log.Info("credential set loaded", logKeyVersion, s.set.Load().Version(), "credentials", s.set.Load().Len())
	}
}

// applied notes that the set has applied revision rev: if central reported
// that revision as its last, the sync it was asked for is now confirmed.
func (s *Service) applied(rev uint64) {
	s.mu.Lock()
	if s.target == 0 || rev < s.target {
		s.mu.Unlock()
		return
	}
	at, last, msgs := s.targetAt, s.target, s.targetMsgs
	s.target = 0
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	if s.checkMirror(ctx, msgs, last) == nil {
		s.confirm(at)
	}
}

// confirm records a sync confirmed as of at: the set held every change
// central had made when it was asked at at.
func (s *Service) confirm(at time.Time) {
	s.mu.Lock()
	if at.After(s.syncedAt) {
		s.syncedAt = at
	}
	if s.awaiting && !at.Before(s.linkAt) {
		s.awaiting = false
	}
	write := at.Sub(s.persist) >= syncPersistEvery
	if write {
		s.persist = at
	}
	s.mu.Unlock()
	if write {
		data, _ := json.Marshal(syncRecord{At: at, Version: s.set.Load().Version()})
		if _, err := s.js.PublishAsync("$KV."+StateBucket(s.org, s.edge)+"."+stateKeySync, data); err != nil {
			s.log.Warn("last confirmed sync not written", message.LogKeyError, err)
		}
	}
}

// observeLink looks at the leaf link and notes when it comes back up,
// also when it dropped and came back between two looks: each connection of
// the link has an epoch of its own.
func (s *Service) observeLink() bool {
	epoch := s.node.LinkEpoch()
	up := epoch != 0
	s.mu.Lock()
	came := up && epoch != s.linkEpoch
	s.linkUp, s.linkEpoch = up, epoch
	if came {
		s.awaiting = true
		s.linkAt = s.now()
	}
	s.mu.Unlock()
	if came {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return up
}

// syncLoop watches the link and asks central how far the edge's bucket is:
// at once when the link comes up, then every SyncInterval.
func (s *Service) syncLoop(ctx context.Context) {
	tick := time.NewTicker(linkPoll)
	defer tick.Stop()
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.kick:
		}
		if !s.observeLink() {
			continue
		}
		s.mu.Lock()
		awaiting := s.awaiting
		s.mu.Unlock()
		if now := s.now(); awaiting || !now.Before(next) {
			next = now.Add(s.cfg.SyncInterval)
			if err := s.checkSync(ctx); err != nil && ctx.Err() == nil {
				s.log.Debug("sync check failed", message.LogKeyError, err)
			}
		}
	}
}

// call sends a JetStream API request to central with a reply subject in
// the edge's sync namespace and waits for the answer, at most two seconds
// (or Timeout, if shorter).
func (s *Service) call(ctx context.Context, subject string) (*nats.Msg, error) {
	return s.request(ctx, subject, nil)
}

// request is call with a request body.
func (s *Service) request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	ch := make(chan *nats.Msg, 1)
	s.callMu.Lock()
	s.callSeq++
	reply := s.names.SyncReplyPrefix + "." + strconv.FormatUint(s.callSeq, 10)
	s.calls[reply] = ch
	s.callMu.Unlock()
	defer func() {
		s.callMu.Lock()
		delete(s.calls, reply)
		s.callMu.Unlock()
	}()
	if err := s.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: reply, Data: data}); err != nil {
		return nil, err
	}
	wait := time.NewTimer(min(s.cfg.Timeout, 2*time.Second))
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, fmt.Errorf("access: no answer from central to %s", subject)
	case m := <-ch:
		return m, nil
	}
}

// onReply hands an answer from central to the call waiting for it.
func (s *Service) onReply(m *nats.Msg) {
	s.callMu.Lock()
	ch := s.calls[m.Subject]
	s.callMu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default:
		}
	}
}

// streamInfoReply is the part of a JetStream stream info response the sync
// check reads.
type streamInfoReply struct {
	State struct {
		Msgs    uint64 `json:"messages"`
		LastSeq uint64 `json:"last_seq"`
	} `json:"state"`
	Error *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// checkSync asks central for the last revision of the edge's bucket.
func (s *Service) checkSync(ctx context.Context) error {
	s.stats.syncChecks.Add(1)
	sent := s.now()
	m, err := s.call(ctx, s.names.CredentialInfo)
	if err != nil {
		return err
	}
	var r streamInfoReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("access: stream info of %s: %w", s.names.CredentialStream, err)
	}
	if r.Error != nil {
		return fmt.Errorf("access: stream info of %s: %d %s", s.names.CredentialStream, r.Error.Code, r.Error.Description)
	}
	if err := s.checkMirror(ctx, r.State.Msgs, r.State.LastSeq); err != nil {
		return err
	}
	s.reported(r.State.LastSeq, r.State.Msgs, sent)
	return nil
}

// centralEntry reads the current entry of credential id in the edge's
// bucket at central: the credential (nil if central holds none, or a delete
// marker) and its revision.
func (s *Service) centralEntry(ctx context.Context, id string) (*Credential, uint64, error) {
	m, err := s.call(ctx, s.names.CredentialGet+".$KV."+s.names.CredentialBucket+"."+CredentialKey(id))
	if err != nil {
		return nil, 0, err
	}
	if st := m.Header.Get("Status"); st != "" {
		if st == "404" {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("access: direct get of %s at central: status %s %s", id, st, m.Header.Get("Description"))
	}
	rev, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("access: direct get of %s at central: sequence: %w", id, err)
	}
	switch m.Header.Get("KV-Operation") {
	case "DEL", "PURGE":
		return nil, rev, nil
	}
	c, err := ParseCredential(id, m.Data)
	if err != nil {
		return nil, rev, err
	}
	c.Revision = rev
	return c, rev, nil
}

// checkMirror compares the edge's mirror with central's bucket, which holds
// msgs entries up to last: a mirror that has reached last with fewer
// entries lost some, and the edge must not count as in sync. It happens to
// an edge whose store was replaced or wiped while central's consumer for
// its mirror had already delivered the bucket to the old store: nats-server
// then skips what it cannot deliver again. The edge rebuilds such a mirror
// by itself (see resync.go).
func (s *Service) checkMirror(ctx context.Context, msgs, last uint64) error {
	str, err := s.js.Stream(ctx, s.names.CredentialStream)
	if err != nil {
		return fmt.Errorf("access: credential mirror %s: %w", s.names.CredentialStream, err)
	}
	if s.repair.until.Load() != 0 {
		return errRebuilding
	}
	st := str.CachedInfo().State
	if st.LastSeq < last || st.Msgs >= msgs {
		s.mirrorGap.Store(0)
		if st.LastSeq >= last {
			s.mirrorWhole()
		}
		return nil
	}
	s.stats.mirrorIncomplete.Add(1)
	missing := msgs - st.Msgs
	if s.mirrorGap.Swap(missing) != missing {
		s.log.Error("credential mirror incomplete: it reached central's last revision with entries missing; "+
			"the edge does not count as in sync, and rebuilds its mirror",
			"missing", missing, "central_entries", msgs, "mirror_entries", st.Msgs, logKeyVersion, last)
	}
	s.mirrorLacking(last)
	return fmt.Errorf("%w: credential mirror lacks %d of central's %d entries", ErrMirrorIncomplete, missing, msgs)
}

// reported takes central's last revision and entry count, asked at at:
// confirmed at once if the set has applied it, or when it does (and the
// mirror then holds every entry).
func (s *Service) reported(last, msgs uint64, at time.Time) {
	if s.set.Load().Version() >= last {
		s.confirm(at)
		return
	}
	s.mu.Lock()
	s.target, s.targetMsgs, s.targetAt = last, msgs, at
	s.mu.Unlock()
	if s.set.Load().Version() >= last { // applied meanwhile
		s.applied(last)
	}
}

// situation returns what the service knows for a decision now, and
// whether the link is up without a sync confirmed since it came up.
func (s *Service) situation() (Situation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Situation{Now: s.now(), Location: s.loc, Available: s.loaded, SyncedAt: s.syncedAt},
		s.awaiting && s.linkUp
}

// onRequest takes in a request and handles it in a goroutine of its own,
// at most MaxInFlight at once.
func (s *Service) onRequest(m *nats.Msg) {
	s.gate.RLock()
	if s.stopped.Load() {
		s.gate.RUnlock()
		return
	}
	s.handles.Add(1)
	s.gate.RUnlock()
	s.sem <- struct{}{}
	go func() {
		defer s.handles.Done()
		defer func() { <-s.sem }()
		s.handle(m)
	}()
}

// handle decides one request, stores its audit event, answers it and, on
// a grant, unlocks the door.
func (s *Service) handle(m *nats.Msg) {
	if !s.replyAllowed(m) {
		return
	}
	start := time.Now()
	var req message.Envelope
	if err := message.DecodeMsg(m, &req, nil); err != nil {
		s.reject(m, "malformed request: "+err.Error())
		return
	}
	if req.Name != message.NameAccessRequested {
		return // another service's request
	}
	s.stats.requests.Add(1)
	ar, err := message.DecodePayload[message.AccessRequest](&req)
	if err != nil {
		s.reject(m, "malformed access request: "+err.Error())
		return
	}
	if ar.Door == "" {
		s.reject(m, "malformed access request: no door")
		return
	}
	d, dr := s.decide(req.Source, ar)
	rec := s.record(req, &d)
	if rec == nil || (!s.cfg.AnswerBeforeStored && !s.awaitStored(rec)) {
		s.answer(m, nil, d) // not recorded: the door fails closed
		s.observe(false, start)
		return
	}
	s.answer(m, rec.reply, d)
	s.observe(d.Granted, start)
	if d.Granted && dr != nil {
		s.unlock(req.Source, rec.env, dr, d.Door)
	}
	if s.cfg.AnswerBeforeStored {
		s.awaitStored(rec)
	}
}

// observe reports an answered request to ServiceConfig.ObserveDecision.
func (s *Service) observe(granted bool, start time.Time) {
	if s.cfg.ObserveDecision != nil {
		s.cfg.ObserveDecision(granted, time.Since(start))
	}
}

// decide makes the decision for reader's request.
func (s *Service) decide(reader topic.Thing, ar message.AccessRequest) (message.AccessDecision, *door) {
	id := ar.Credential.Hash(s.cfg.HashKey)
	dr, ok := s.doors[ar.Door]
	up := s.observeLink()
	sit, awaiting := s.situation()
	if !ok || !dr.readers[reader.Code] {
		return message.AccessDecision{Reason: message.DenyUnknownDoor, Door: ar.Door, Credential: id,
			CredentialSetVersion: s.set.Load().Version(), SyncedAt: sit.SyncedAt, Offline: !up || awaiting}, nil
	}
	d := s.set.Load().Decide(ar.Door, dr.policy, id, sit)
	offline := !up || awaiting
	if d.Granted && awaiting {
		// The link is back but the set has not caught up: a revocation
		// may be on its way. Read the credential at central first.
		s.stats.syncWaits.Add(1)
		if checked, ok := s.checkCentral(id, dr.policy, d, sit); ok {
			d, offline = checked, false
		}
	}
	d.Offline = offline
	return d, dr
}

// checkCentral re-checks a would-be grant d against the credential's
// current entry at central. It reports false when central did not answer.
func (s *Service) checkCentral(id string, policy DoorPolicy, d message.AccessDecision, sit Situation) (message.AccessDecision, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SyncWait)
	defer cancel()
	var c *Credential
	var rev uint64
	for {
		var err error
		c, rev, err = s.centralEntry(ctx, id)
		var fe *FieldError
		if errors.As(err, &fe) {
			c = nil // an entry that does not parse grants nothing, as in the set
			break
		}
		if err == nil {
			break
		}
		// Just after the link came up central may not hear the edge's
		// requests yet ("no responders"): try again within SyncWait.
		select {
		case <-ctx.Done():
			s.log.Warn("credential not checked at central after reconnecting", message.LogKeyError, err)
			return d, false
		case <-time.After(10 * time.Millisecond):
		}
	}
	set := s.set.Load()
	if cur, ok := set.Credential(id); ok && cur.Revision >= rev {
		// The set has caught up with central's entry meanwhile: decide
		// again from it.
		return set.Decide(d.Door, policy, id, sit), true
	}
	return set.decideWith(c, d, sit), true
}

// answer replies to the request with msg, the reply made for the decision
// (see record), or with an error header when msg is nil.
func (s *Service) answer(m *nats.Msg, msg *nats.Msg, d message.AccessDecision) {
	if m.Reply == "" || !topic.ReplyAllowed(m.Subject, m.Reply) {
		return
	}
	r := &nats.Msg{Subject: m.Reply}
	if msg != nil {
		r.Header, r.Data = msg.Header, msg.Data
	} else {
		r.Header = nats.Header{}
		r.Header.Set(HeaderError, "decision "+string(d.Reason)+" not recorded in the audit trail")
	}
	if err := s.rc.PublishMsg(r); err != nil {
		s.log.Warn("decision not answered", logKeyDoor, d.Door, message.LogKeyError, err)
	}
}

// reject answers a request the service cannot read.
func (s *Service) reject(m *nats.Msg, why string) {
	s.stats.malformed.Add(1)
	s.log.Warn("access request rejected", message.LogKeySubject, m.Subject, message.LogKeyError, why)
	if m.Reply == "" || !topic.ReplyAllowed(m.Subject, m.Reply) {
		return
	}
	r := &nats.Msg{Subject: m.Reply, Header: nats.Header{}}
	r.Header.Set(HeaderError, why)
	_ = s.rc.PublishMsg(r)
}

// unlock sends each of the door's locks an unlock command for the grant
// event.
func (s *Service) unlock(reader topic.Thing, grant *message.Envelope, dr *door, doorCode string) {
	now := s.now()
	for _, lock := range dr.locks {
		cmd := message.Command{
			Action:         ActionUnlock,
			Params:         map[string]string{"duration": dr.policy.UnlockFor.String(), "door": doorCode},
			Deadline:       now.Add(s.cfg.UnlockDeadline).UTC(),
			IdempotencyKey: grant.ID.String() + "/" + lock.Code,
			RequestedBy:    "access:" + reader.String(),
		}
		e := &message.Envelope{ID: s.ids.NewAt(now), Time: now.UTC(), Source: lock, Type: topic.Command,
			Name: message.NameCommand, CorrelationID: grant.ID}
		if err := message.SetPayload(e, cmd); err != nil {
			continue
		}
		msg, err := e.ToMsg(nil)
		if err == nil {
			err = s.node.SignCommand(msg, lock)
		}
		if err == nil {
			err = s.nc.PublishMsg(msg)
		}
		if err != nil {
			s.log.Error("unlock command not sent", logKeyDoor, doorCode, "lock", lock.Code, message.LogKeyError, err)
			continue
		}
		s.stats.unlocks.Add(1)
	}
}
