package edgekit_test

import (
	"slices"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// TestHubEventStreamSubjects checks that central's event stream captures
// exactly central's own event subjects (authz.CentralEventSubjects) however
// it was created and whatever the hub does to its sources, and that
// Provision gives them to a stream created by an earlier version, which had
// none (nats-server had given it a subject of its own name).
func TestHubEventStreamSubjects(t *testing.T) {
	want := authz.CentralEventSubjects(hubOrg)
	tests := []struct {
		name string
		old  *jetstream.StreamConfig // the stream as an earlier version left it; nil for none
	}{
		{name: "new stream"},
		{name: "stream of an earlier version", old: &jetstream.StreamConfig{Name: "events-" + hubOrg, Storage: jetstream.FileStorage}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Run(t, nil)
			nc, err := srv.Connect()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			ctx := hubCtx(t)
			if tt.old != nil {
				s, err := js.CreateStream(ctx, *tt.old)
				if err != nil {
					t.Fatal(err)
				}
				if got := s.CachedInfo().Config.Subjects; slices.Equal(got, want) {
					t.Fatalf("the old stream already has subjects %v", got)
				}
			}
			inv := &authz.Inventory{Orgs: []authz.Org{{Code: hubOrg}}, Edges: []authz.Edge{{Org: hubOrg, Code: "hq"}, {Org: hubOrg, Code: "lab"}}}
			hub, err := edgekit.NewHub(js, edgekit.HubConfig{Org: hubOrg, Inventory: inv})
			if err != nil {
				t.Fatal(err)
			}
			check := func(when string, sources int) {
				t.Helper()
				s, err := js.Stream(ctx, hub.EventStream())
				if err != nil {
					t.Fatal(err)
				}
				cfg := s.CachedInfo().Config
				if !slices.Equal(cfg.Subjects, want) || len(cfg.Sources) != sources {
					t.Fatalf("%s: subjects %v and %d sources, want %v and %d", when, cfg.Subjects, len(cfg.Sources), want, sources)
				}
			}
			if err := hub.Provision(ctx); err != nil {
				t.Fatal(err)
			}
			check("provisioned without edges", 0)
			if err := hub.Provision(ctx, "hq", "lab"); err != nil {
				t.Fatal(err)
			}
			check("provisioned with two edges", 6) // events, telemetry and platform records of each
			if err := hub.Kick(ctx, "hq"); err != nil {
				t.Fatal(err)
			}
			check("after a kick", 6)
			if err := hub.RemoveEdge(ctx, "hq"); err != nil {
				t.Fatal(err)
			}
			check("after removing an edge", 3)
			if err := hub.RemoveEdge(ctx, "lab"); err != nil {
				t.Fatal(err)
			}
			check("after removing every edge", 0)

			// Central's own event about an edge is stored.
			if _, err := js.Publish(ctx, hubOrg+".hq._sys.audit.evt", []byte("x")); err != nil {
				t.Fatalf("central's event about an edge: %v", err)
			}
		})
	}
}
