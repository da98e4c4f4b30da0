package central_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/edgekit/access"
)

// TestReadEdgeStatus: an edge linked to central is up, with its status
// report and its credentials received; an edge never linked is down and
// has neither; neither has errors.
func TestReadEdgeStatus(t *testing.T) {
	d := &deployment{passwords: map[string]authz.Secret{}, dir: t.TempDir(), orgs: map[string]central.OrgSecrets{}}
	d.generate(t, inventory("hq", "lab"))
	c, err := central.Start(ctx(t), central.Config{
		Inventory: d.inv, State: d.st, Orgs: d.orgs,
		Render: authz.RenderOptions{Host: "127.0.0.1", Port: -1, LeafHost: "127.0.0.1", LeafPort: -1,
			StoreDir: t.TempDir(), MaxFileStore: 256 << 20, PingInterval: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	hq := d.startEdge(t, "hq", c.LeafAddr())
	waitFor(t, "hq's link", hq.LinkUp)
	rev, err := c.Manager("acme").Put(ctx(t), "hq", &access.Credential{ID: strings.Repeat("a", 64), Holder: "carol", State: access.StateActive})
	if err != nil {
		t.Fatal(err)
	}

	var sts []central.EdgeStatus
	waitFor(t, "hq up, reporting, its credentials received", func() bool {
		sts = central.ReadEdgeStatus(ctx(t), c.JetStream("acme"), c.Hub("acme"), c.Manager("acme"), []string{"hq", "lab"})
		hq := sts[0]
		return hq.Link == "up" && hq.Status != nil && !hq.StatusAt.IsZero() && hq.CredentialVersion == rev &&
			hq.CredentialsReceived == rev && !hq.CredentialsSyncedAt.IsZero()
	})
	hq0, lab := sts[0], sts[1]
	if hq0.Edge != "hq" || hq0.LastHeard.IsZero() || len(hq0.Errors) > 0 {
		t.Fatalf("hq: %+v", hq0)
	}
	if lab.Edge != "lab" || lab.Link != "down" || lab.Status != nil || !lab.CredentialsSyncedAt.IsZero() || len(lab.Errors) > 0 {
		t.Fatalf("lab: %+v", lab)
	}
}
