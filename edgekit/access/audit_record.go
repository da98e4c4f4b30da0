package access

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bounds of the re-publishing of audit records that were not confirmed
// stored.
const (
	// maxUnstored bounds the records being re-published at once; beyond
	// it, a record that cannot be stored is logged and counted as lost
	// (its decision was not carried out unless AnswerBeforeStored).
	maxUnstored = 1024
	// retryMaxBackoff bounds the pause between two publishes of one record.
	retryMaxBackoff = 2 * time.Second
)

// auditRecord is one decision record on its way to the platform stream.
type auditRecord struct {
	env   *message.Envelope // the record
	msg   *nats.Msg         // as published: on the platform subject, signed
	reply *nats.Msg         // what the reader gets: see decisionReply
	seq   uint64            // its AuditSeq
	fut   jetstream.PubAckFuture
}

// record chains *d into the audit trail (setting its AuditSeq and
// AuditPrev), signs its record and publishes it into the edge's platform
// stream. It returns the record, or nil when it could not be published at
// all; the chain head is then unchanged.
//
// The record is an event of [DecisionThing] of the reader, on
// "{org}.{edge}._access.{reader}.evt": the platform stream captures it
// from the edge's platform subject ([authz.EdgeNames.PlatformSubject]),
// which no device may publish, and stores it on that subject.
func (s *Service) record(req message.Envelope, d *message.AccessDecision) *auditRecord {
	switch {
	case d.Granted:
		s.stats.granted.Add(1)
	default:
		s.stats.denied.Add(1)
	}
	if d.Fallback {
		s.stats.fallback.Add(1)
	}
	if d.Offline {
		s.stats.offline.Add(1)
	}
	now := s.now()
	thing := DecisionThing(s.org, s.edge, req.Source.Code)
	env := &message.Envelope{ID: s.ids.NewAt(now), Time: now.UTC(), Source: thing, Type: topic.Event,
		Name: d.MessageName(), CorrelationID: req.ID}
	reply, rerr := decisionReply(req.Source, env, *d)
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	d.AuditSeq, d.AuditPrev = s.head.Next()
	var msg *nats.Msg
	err := message.SetPayload(env, *d)
	if err == nil {
		msg, err = env.ToMsg(nil)
	}
	if err == nil {
		err = SignRecord(s.cfg.AuditKey, msg.Subject, msg)
	}
	var fut jetstream.PubAckFuture
	if err == nil {
		err = rerr
	}
	if err == nil {
		msg.Subject = s.names.PlatformSubject(thing, topic.Event)
		fut, err = s.js.PublishMsgAsync(msg, jetstream.WithExpectStream(s.names.PlatformStream))
	}
	if err != nil {
		s.stats.auditFailures.Add(1)
		s.log.Error("decision not recorded; the door fails closed", logKeyDoor, d.Door, logKeyReader, req.Source.Code, message.LogKeyError, err)
		return nil
	}
	s.head = ChainHead{Seq: d.AuditSeq, Hash: EventHash(msg.Data)}
	return &auditRecord{env: env, msg: msg, reply: reply, seq: d.AuditSeq, fut: fut}
}

// decisionReply returns the reply the reader gets for decision d, recorded
// as env: an envelope with env's ID, name and correlation, from the reader,
// whose payload tells the reader what it needs to act (granted or why not,
// the door, offline or fallback, the set version and last sync) and
// nothing else. It leaves out the holder, the credential's keyed hash and
// the audit link (AuditSeq, AuditPrev): the reader never learns the exact
// bytes of the record, nor so the chain's head.
func decisionReply(reader topic.Thing, env *message.Envelope, d message.AccessDecision) (*nats.Msg, error) {
	r := message.AccessDecision{Granted: d.Granted, Reason: d.Reason, Door: d.Door,
		CredentialSetVersion: d.CredentialSetVersion, Offline: d.Offline, Fallback: d.Fallback, SyncedAt: d.SyncedAt}
	e := &message.Envelope{ID: env.ID, Time: env.Time, Source: reader, Type: topic.Event,
		Name: env.Name, CorrelationID: env.CorrelationID}
	if err := message.SetPayload(e, r); err != nil {
		return nil, err
	}
	return e.ToMsg(nil)
}

// awaitStored waits for the platform stream to store rec, then writes the
// chain head to the state bucket. It reports whether rec was stored within
// Timeout; if not, rec is published again in the background until it is
// (see retryRecord), and the caller must not carry out its decision unless
// it already has.
func (s *Service) awaitStored(rec *auditRecord) bool {
	t := time.NewTimer(s.cfg.Timeout)
	defer t.Stop()
	select {
	case ack := <-rec.fut.Ok():
		s.saveHead(ChainHead{Seq: rec.seq, Hash: EventHash(rec.msg.Data)}, ack.Sequence)
		return true
	case err := <-rec.fut.Err():
		s.log.Error("decision record not stored; publishing it again", message.LogKeyError, err, message.LogKeyMsgID, rec.env.ID.String())
	case <-t.C:
		s.log.Error("decision record not stored in time; publishing it again", message.LogKeyMsgID, rec.env.ID.String())
	}
	s.stats.auditFailures.Add(1)
	s.retryRecord(rec)
	return false
}

// retryRecord publishes rec again, with the same message ID (so the
// platform stream stores it once), until the stream confirms it or the
// service stops. At most maxUnstored records are retried at once; beyond
// that, and at a stop, a record not stored is logged as lost: a gap central
// will report in the chain.
func (s *Service) retryRecord(rec *auditRecord) {
	if s.unstored.Add(1) > maxUnstored {
		s.unstored.Add(-1)
		s.stats.auditLost.Add(1)
		s.log.Error("decision record lost: too many records waiting to be stored", message.LogKeyMsgID, rec.env.ID.String())
		return
	}
	s.handles.Add(1)
	go func() {
		defer s.handles.Done()
		defer s.unstored.Add(-1)
		backoff := 50 * time.Millisecond
		for {
			if s.stopped.Load() {
				s.stats.auditLost.Add(1)
				s.log.Error("decision record lost: the service stopped before it was stored", message.LogKeyMsgID, rec.env.ID.String())
				return
			}
			ctx, cancel := s.opContext()
			ack, err := s.js.PublishMsg(ctx, rec.msg, jetstream.WithExpectStream(s.names.PlatformStream))
			cancel()
			if err == nil {
				s.saveHead(ChainHead{Seq: rec.seq, Hash: EventHash(rec.msg.Data)}, ack.Sequence)
				s.log.Info("decision record stored after a retry", message.LogKeyMsgID, rec.env.ID.String())
				return
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, retryMaxBackoff)
		}
	}()
}

// saveHead writes head, stored at platform stream sequence seq, to the
// state bucket unless a later head was written already.
func (s *Service) saveHead(head ChainHead, seq uint64) {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	if head.Seq <= s.headSaved {
		return
	}
	s.headSaved = head.Seq
	data, _ := json.Marshal(struct {
		ChainHead
		StreamSeq uint64 `json:"stream_seq"`
	}{head, seq})
	if _, err := s.js.PublishAsync("$KV."+StateBucket(s.org, s.edge)+"."+stateKeyHead, data); err != nil {
		s.log.Warn("audit chain head not written", message.LogKeyError, err)
	}
}

// opContext returns the context of one of the service's own JetStream
// calls, bounded by Timeout.
func (s *Service) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.Timeout)
}
