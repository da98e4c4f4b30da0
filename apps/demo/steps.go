package main

import (
	"context"
	"fmt"
	"io"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/message"
)

// Cards as the reader reads them. They travel only from the reader to the
// edge, which hashes them; they are never printed, stored or sent on.
const (
	aliceCard   = "04A2197C5E3B80"
	unknownCard = "04FFEE0011DD22"
)

// rulesDocument is edge hq's rule document: a forced door sounds s1.
const rulesDocument = `{"rules": [
 {"name": "door-forced", "match": "acme.hq.door_sensor.*.evt",
  "when": "name == 'door.forced_open'",
  "actions": [{"command": {"target": "sounder.s1", "action": "sound", "params": {"pattern": "alarm"}, "ttl": "30s"}}]}
]}`

// demo runs the steps on a started site and prints what happens.
type demo struct {
	*site
	out   io.Writer
	step  int    // the step being printed
	fresh bool   // nothing printed yet in this step
	alice string // the keyed hash of alice's card: her credential id
}

// begin starts the next numbered step of the transcript.
func (d *demo) begin() { d.step, d.fresh = d.step+1, true }

// printf prints one line of the transcript: the first of a step numbered,
// the others indented.
func (d *demo) printf(format string, args ...any) {
	prefix := "   "
	if d.fresh {
		prefix, d.fresh = fmt.Sprintf("%d. ", d.step), false
	}
	fmt.Fprintf(d.out, prefix+format+"\n", args...)
}

// setup says what runs.
func (d *demo) setup(context.Context) error {
	d.printf("central: embedded nats-server (JetStream domain %s); edge %s: its leaf node through a proxy (domain %s)",
		authz.HubDomain, edge, d.node.Names().Domain)
	d.printf("edge %s: door %s (reader %s, lock %s, door contact %s), sounder %s; %d passwords (bcrypt), %d leaf NKey",
		edge, door, reader.Code, lock.Code, contact.Code, sounder.Code, len(d.secrets.Users()), len(d.secrets.Edges()))
	return nil
}

// enrol makes central enrol alice's card at edge hq.
func (d *demo) enrol(ctx context.Context) error {
	id, err := d.manager.Hash(message.Credential(aliceCard))
	if err != nil {
		return err
	}
	d.alice = id
	rev, err := d.manager.Put(ctx, edge, &access.Credential{ID: id, Holder: "alice", Kind: message.CredentialCard,
		State: access.StateActive, Doors: []string{door}})
	if err != nil {
		return fmt.Errorf("enrol alice: %w", err)
	}
	d.printf("central: enrolled alice's card for door %s as credential %s… (its keyed hash, not the card number); set version %d",
		door, id[:8], rev)
	return d.synced(ctx, rev)
}

// present presents alice's card, then an unknown one, at reader r1.
func (d *demo) present(ctx context.Context) error {
	if err := d.request(ctx, "alice's card", aliceCard); err != nil {
		return err
	}
	if err := d.unlocked(ctx); err != nil {
		return err
	}
	return d.request(ctx, "an unknown card", unknownCard)
}

// forcedDoor has central put the rule document, which the edge's engine
// loads from its mirror; the door contact then reports the door forced
// open.
func (d *demo) forcedDoor(ctx context.Context) error {
	if _, err := rules.Parse([]byte(rulesDocument), rules.Scope{Org: org, Edge: edge}); err != nil {
		return fmt.Errorf("the demo's rules: %w", err)
	}
	rev, err := d.manager.PutRules(ctx, edge, []byte(rulesDocument))
	if err != nil {
		return fmt.Errorf("put the rules: %w", err)
	}
	if err := waitFor(ctx, "the edge to load the rules", func() bool { return d.engine.Rules().Len() == 1 }); err != nil {
		return err
	}
	d.printf("central: put rule door-forced (set version %d), loaded by edge %s: a door contact's %s sounds %s",
		rev, edge, message.NameDoorForcedOpen, sounder.Code)
	if err := d.synced(ctx, rev); err != nil {
		return err
	}
	if _, err := d.contact.PublishEvent(ctx, message.NameDoorForcedOpen, message.DoorState{Door: door, Open: true, Locked: true, Forced: true}); err != nil {
		return fmt.Errorf("door contact %s: %w", contact.Code, err)
	}
	d.printf("door contact %s: %s at door %s", contact.Code, message.NameDoorForcedOpen, door)
	c, err := receive(ctx, "the sounder's command", d.sounds)
	if err != nil {
		return err
	}
	d.printf("sounder %s: received command %s (pattern %s), requested by %s", sounder.Code, c.Action, c.Params["pattern"], c.RequestedBy)
	return nil
}

// outage cuts the link, has central revoke alice's card, presents it at
// the offline edge, then restores the link and presents it again.
func (d *demo) outage(ctx context.Context) error {
	d.proxy.Cut()
	if err := waitFor(ctx, "the link to drop", func() bool { return !d.node.LinkUp() }); err != nil {
		return err
	}
	revs, err := d.manager.Revoke(ctx, d.alice, "card reported lost")
	if err != nil {
		return fmt.Errorf("revoke alice's card: %w", err)
	}
	d.printf("link cut; central revoked alice's card (set version %d), which edge %s cannot hear", revs[edge], edge)
	if err := d.request(ctx, "alice's card", aliceCard); err != nil {
		return err
	}
	if err := d.unlocked(ctx); err != nil {
		return err
	}

	d.proxy.Restore()
	if err := waitFor(ctx, "the link to come back", d.node.LinkUp); err != nil {
		return err
	}
	if err := d.synced(ctx, revs[edge]); err != nil {
		return err
	}
	d.printf("link restored: edge %s caught up to set version %d", edge, revs[edge])
	return d.request(ctx, "alice's card", aliceCard)
}

// audit prints central's revoked-grant alarm and the auditor's verdict on
// the edge's audit chain.
func (d *demo) audit(ctx context.Context) error {
	a, err := d.revokedGrant(ctx)
	if err != nil {
		return err
	}
	mode := "online"
	if a.Offline {
		mode = "offline"
	}
	d.printf("central auditor: alarm %s: door %s, holder %s, %s grant at set version %d, revoked at version %d (%s)",
		access.NameRevokedGrant, a.Door, a.Holder, mode, a.DecisionVersion, a.RevokedVersion, a.Reason)
	const decisions = 4 // granted, unknown, offline grant, revoked
	if err := waitFor(ctx, "the auditor to verify every decision", func() bool {
		st := d.auditor.Stats()
		return st.Verified+st.Breaks >= decisions
	}); err != nil {
		return err
	}
	st := d.auditor.Stats()
	verdict := "intact"
	if st.Breaks > 0 {
		verdict = "BROKEN"
	}
	d.printf("central auditor: %d decisions of edge %s verified, audit chain %s (%d breaks); revoked grants: %d",
		st.Verified, edge, verdict, st.Breaks, st.RevokedGrants)
	return nil
}

// request presents card at reader r1 (for door front) and prints the
// decision as the reader gets it: granted or why not, never the holder.
func (d *demo) request(ctx context.Context, what, card string) error {
	e, err := d.reader.Request(ctx, message.NameAccessRequested,
		message.AccessRequest{Door: door, Kind: message.CredentialCard, Credential: message.Credential(card)})
	if err != nil {
		return fmt.Errorf("reader %s: %w", reader.Code, err)
	}
	dec, err := message.DecodePayload[message.AccessDecision](e)
	if err != nil {
		return fmt.Errorf("reader %s: decision: %w", reader.Code, err)
	}
	switch {
	case dec.Granted && dec.Offline:
		d.printf("reader %s, %s: granted (offline decision, set version %d)", reader.Code, what, dec.CredentialSetVersion)
	case dec.Granted:
		d.printf("reader %s, %s: granted (set version %d)", reader.Code, what, dec.CredentialSetVersion)
	default:
		d.printf("reader %s, %s: denied: %s", reader.Code, what, dec.Reason)
	}
	return nil
}

// unlocked waits for the lock's next command and prints it.
func (d *demo) unlocked(ctx context.Context) error {
	c, err := receive(ctx, "the lock's unlock command", d.unlocks)
	if err != nil {
		return err
	}
	d.printf("lock %s: received %s command for door %s, %s, from %s", lock.Code, c.Action, c.Params["door"], c.Params["duration"], c.RequestedBy)
	return nil
}

// synced waits until the edge's access service has applied revision rev of
// its credential bucket.
func (d *demo) synced(ctx context.Context, rev uint64) error {
	return waitFor(ctx, fmt.Sprintf("the edge to apply set version %d", rev), func() bool { return d.service.Version() >= rev })
}

// revokedGrant waits for central's next alarm about edge hq, which must be
// a revoked grant.
func (d *demo) revokedGrant(ctx context.Context) (access.RevokedGrantAlarm, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	m, err := d.alarms.NextMsgWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return access.RevokedGrantAlarm{}, fmt.Errorf("waiting for the revoked-grant alarm: %w", err)
	}
	e, err := message.FromMsg(m)
	if err != nil {
		return access.RevokedGrantAlarm{}, fmt.Errorf("alarm: %w", err)
	}
	if e.Name != access.NameRevokedGrant {
		return access.RevokedGrantAlarm{}, fmt.Errorf("central raised %s, not %s", e.Name, access.NameRevokedGrant)
	}
	return message.DecodePayload[access.RevokedGrantAlarm](e)
}
