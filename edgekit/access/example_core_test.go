package access_test

import (
	"fmt"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
)

func ExampleSet_Decide() {
	// The org's hash key; in production, ReadHashKey reads it from a file.
	key := []byte("an example key of at least 32 bytes!")
	card := message.Credential("04:A2:19:7C").Hash(key)

	// The edge applies the entries of its credential bucket in revision
	// order, as its watcher delivers them.
	set := access.NewSet()
	set.Apply(access.ScheduleKey("office"), []byte(`{"intervals": [
		{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "07:00", "until": "19:00"}]}`), 1, false)
	set.Apply(access.GroupKey("staff"), []byte(`{"doors": ["front", "lab"]}`), 2, false)
	set.Apply(access.CredentialKey(card), []byte(`{"holder": "Ada Lovelace", "state": "active",
		"groups": ["staff"], "schedules": ["office"]}`), 3, false)

	berlin, _ := time.LoadLocation("Europe/Berlin")
	monday := time.Date(2026, 6, 8, 9, 0, 0, 0, berlin)
	sit := access.Situation{Now: monday, Location: berlin, Available: true, SyncedAt: monday.Add(-time.Minute)}
	policy := access.DoorPolicy{} // defaults: stale after 24h, fallback deny

	show := func(d message.AccessDecision) {
		fmt.Printf("%s: granted=%v reason=%q holder=%q version=%d fallback=%v\n",
			d.Door, d.Granted, d.Reason, d.Holder, d.CredentialSetVersion, d.Fallback)
	}
	show(set.Decide("lab", policy, card, sit))
	show(set.Decide("vault", policy, card, sit))

	sit.Now = monday.Add(11 * time.Hour) // 20:00
	show(set.Decide("lab", policy, card, sit))

	// Central revokes the card; a later revision replaces the entry.
	set.Apply(access.CredentialKey(card), []byte(`{"holder": "Ada Lovelace", "state": "revoked", "reason": "lost"}`), 4, false)
	sit.Now = monday
	show(set.Decide("lab", policy, card, sit))

	// Two days without a sync: the set is too stale to trust.
	sit.Now = monday.Add(48 * time.Hour)
	show(set.Decide("front", policy, card, sit))

	// Output:
	// lab: granted=true reason="" holder="Ada Lovelace" version=3 fallback=false
	// vault: granted=false reason="door_not_allowed" holder="Ada Lovelace" version=3 fallback=false
	// lab: granted=false reason="outside_schedule" holder="Ada Lovelace" version=3 fallback=false
	// lab: granted=false reason="revoked" holder="Ada Lovelace" version=4 fallback=false
	// front: granted=false reason="stale" holder="Ada Lovelace" version=4 fallback=true
}
