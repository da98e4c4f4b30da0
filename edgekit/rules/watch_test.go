package rules_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/nats-io/nats.go/jetstream"
)

func TestWatchReloads(t *testing.T) {
	b := startBus(t)
	ctx := testCtx(t)
	kv, err := b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "config-acme-hq", Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	out := b.record(t, edgeEvt)
	eng := b.engine(t, "", nil) // no rules until the bucket has some
	errs := make(chan error, 10)
	wctx, stop := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() { watchDone <- rules.Watch(wctx, kv, rules.ConfigKey, eng, func(err error) { errs <- err }) }()

	doc := func(event string) []byte {
		return []byte(`{"rules": [{"name": "ping", "match": "acme.hq.door_sensor.*.evt", "when": "name == 'ping'", "actions": [{"event": {"name": "` + event + `"}}]}]}`)
	}
	put := func(data []byte) {
		t.Helper()
		if _, err := kv.Put(ctx, rules.ConfigKey, data); err != nil {
			t.Fatal(err)
		}
	}
	// ping publishes a ping and waits for the engine to have evaluated it.
	ping := func() {
		t.Helper()
		n := eng.Stats().Inputs
		b.event(t, doorD1, "ping")
		waitFor(t, "the ping", func() bool { return eng.Stats().Inputs > n })
	}
	loads := func(n uint64) func() bool { return func() bool { return eng.Stats().Loads == n } }

	put(doc("v1"))
	waitFor(t, "version 1", loads(2))
	ping()
	waitFor(t, "v1's event", func() bool { return len(out.all()) == 1 })

	put(doc("v2"))
	waitFor(t, "version 2", loads(3))
	ping()
	waitFor(t, "v2's event", func() bool { return len(out.all()) == 2 })

	// An invalid document is reported; version 2 stays in force.
	put([]byte(`{"rules": [{"name": "ping", "match": "acme.hq.door_sensor.*.evt", "when": "name = 'ping'", "actions": [{"event": {"name": "v3"}}]}]}`))
	var rerr error
	select {
	case rerr = <-errs:
	case <-ctx.Done():
		t.Fatal("no error reported for an invalid document")
	}
	var re *rules.RuleError
	if !errors.As(rerr, &re) || re.Rule != "ping" || re.Field != "when" || !errors.Is(rerr, rules.ErrInvalid) {
		t.Errorf("reported %v, want a RuleError of ping's when", rerr)
	}
	ping()
	waitFor(t, "v2's second event", func() bool { return len(out.all()) == 3 })
	if got := out.names(t); !slices.Equal(got, []string{"v1", "v2", "v2"}) {
		t.Errorf("events %v, want v1, v2, v2", got)
	}
	if st := eng.Stats(); st.Loads != 3 || st.ReloadErrors != 1 {
		t.Errorf("stats %+v", st)
	}

	// Deleting the document leaves no rules.
	if err := kv.Delete(ctx, rules.ConfigKey); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the empty rule set", loads(4))
	if n := eng.Rules().Len(); n != 0 {
		t.Errorf("%d rules after the document was deleted", n)
	}

	stop()
	if err := <-watchDone; err != nil {
		t.Errorf("Watch returned %v when its context ended", err)
	}
}

// A document already in the bucket is in force as soon as Watch starts.
func TestWatchInitialValue(t *testing.T) {
	b := startBus(t)
	ctx := testCtx(t)
	kv, err := b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "config-acme-hq", Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, rules.ConfigKey, []byte(exampleDoc)); err != nil {
		t.Fatal(err)
	}
	eng := b.engine(t, "", nil)
	done := make(chan error, 1)
	go func() { done <- rules.Watch(ctx, kv, rules.ConfigKey, eng, nil) }()
	waitFor(t, "the document", func() bool { return eng.Rules().Len() == 3 })
	eng.Stop() // Watch ends with the engine
	if err := <-done; err != nil {
		t.Errorf("Watch returned %v when the engine stopped", err)
	}
}
