package rules

import (
	"context"
	"fmt"

	"github.com/lintel-io/lintel/message"
	"github.com/nats-io/nats.go/jetstream"
)

// ConfigKey is the key under which the edge's configuration bucket holds
// its rule document.
const ConfigKey = "rules"

// Watch keeps e's rules in step with key of kv, the edge's (mirrored)
// configuration bucket, until ctx ends or e stops: the value the key
// holds when Watch starts, and every new one, is put in force with
// [Engine.Reload]; deleting or purging the key puts an empty rule set in
// force. Watch is a blocking call, unlike [Start]: it returns only then,
// so run it in a goroutine and end it with ctx (ending it leaves e
// running). A document Reload refuses is reported to onError (nil means the
// engine's logger), wrapped with the key and revision, and e keeps the
// rules it had. When the key does not exist yet, e keeps its rules until
// it does.
//
// Watch returns nil when ctx ends or e stops, an error when the watch
// cannot start, and one wrapping ErrWatchClosed when the watch ends on its
// own, such as when the bucket is deleted.
func Watch(ctx context.Context, kv jetstream.KeyValue, key string, e *Engine, onError func(error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := kv.Watch(ctx, key)
	if err != nil {
		return fmt.Errorf("rules: watch %s %s: %w", kv.Bucket(), key, err)
	}
	defer func() { _ = w.Stop() }()
	report := func(err error) {
		if onError != nil {
			onError(err)
			return
		}
		e.log.Error("rule document refused; rules unchanged", message.LogKeyError, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.Done():
			return nil
		case ent, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("%w: %s %s", ErrWatchClosed, kv.Bucket(), key)
			}
			if ent == nil {
				continue // the initial value, if any, has been delivered
			}
			switch ent.Operation() {
			case jetstream.KeyValuePut:
				if err := e.Reload(ent.Value()); err != nil {
					report(fmt.Errorf("rules: %s %s revision %d: %w", kv.Bucket(), key, ent.Revision(), err))
				}
			case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
				if err := e.Load(nil); err != nil {
					report(err)
				}
				e.log.Info("rule document deleted; no rules in force", "revision", ent.Revision())
			}
		}
	}
}
