package access_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/message"
)

// TestRulesFromCentral: the edge's rules live in its bucket at central
// (key rules.ConfigKey) and reach the engine through the edge's mirror;
// a new document takes effect without a restart, and a malformed one is
// refused with the rule and field named while the rules in force stay.
func TestRulesFromCentral(t *testing.T) {
	s := newSite(t, siteOptions{noService: true})
	eng, err := rules.Start(siteCtx(t), rules.Config{Org: "acme", Edge: "hq", Conn: s.node.Conn(), JetStream: s.node.JetStream(), SignCommand: s.node.SignCommand}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	kv, err := s.node.JetStream().KeyValue(siteCtx(t), s.node.Names().CredentialBucket)
	if err != nil {
		t.Fatal(err)
	}
	rejected := make(chan error, 4)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- rules.Watch(ctx, kv, rules.ConfigKey, eng, func(err error) { rejected <- err }) }()
	t.Cleanup(func() { cancel(); <-watched })

	sounder := s.device(siteS1)
	sounds := make(chan devicekit.Command, 8)
	if _, err := sounder.HandleCommands(siteCtx(t), devicekit.HandlerFunc(func(_ context.Context, c devicekit.Command) error {
		sounds <- c
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	contact := s.device(siteDS1)
	forced := func() {
		t.Helper()
		if _, err := contact.PublishEvent(siteCtx(t), message.NameDoorForcedOpen, message.DoorState{Door: "front", Open: true, Forced: true}); err != nil {
			t.Fatal(err)
		}
	}
	doc := func(pattern string) []byte {
		return []byte(`{"rules": [{"name": "door-forced", "match": "acme.hq.door_sensor.*.evt",
			"when": "name == 'door.forced_open'",
			"actions": [{"command": {"target": "sounder.s1", "action": "sound", "params": {"pattern": "` + pattern + `"}, "ttl": "30s"}}]}]}`)
	}
	expect := func(pattern string) {
		t.Helper()
		select {
		case c := <-sounds:
			if c.Action != "sound" || c.Params["pattern"] != pattern {
				t.Fatalf("sounder got %+v, want pattern %q", c.Command, pattern)
			}
		case <-time.After(siteWait):
			t.Fatalf("the sounder got no command with pattern %q", pattern)
		}
	}

	s.putRaw(rules.ConfigKey, doc("alarm"))
	waitFor(t, "the rules to load", func() bool { return eng.Rules().Len() == 1 })
	forced()
	expect("alarm")

	s.putRaw(rules.ConfigKey, doc("siren")) // reloaded, no restart
	waitFor(t, "the new rules", func() bool {
		d := eng.Rules().Document()
		return len(d.Rules) == 1 && len(d.Rules[0].Actions) == 1 && d.Rules[0].Actions[0].Command.Params["pattern"] == "siren"
	})
	forced()
	expect("siren")

	s.putRaw(rules.ConfigKey, []byte(`{"rules": [{"name": "broken", "match": "acme.hq.door_sensor.*.evt", "when": "payload.open +", "actions": [{"event": {"name": "x"}}]}]}`))
	select {
	case err := <-rejected:
		if msg := err.Error(); !strings.Contains(msg, `"broken"`) || !strings.Contains(msg, `"when"`) {
			t.Errorf("rejection %q does not name the rule and the field", msg)
		}
	case <-time.After(siteWait):
		t.Fatal("a malformed document was not rejected")
	}
	forced()
	expect("siren") // the rules in force stayed
}
