package api_test

import (
	"slices"
	"testing"

	"github.com/lintel-io/lintel/central/api"
)

// testScanBudget: without a database, a page reads at most the scan
// budget of central's event stream, oldest first as newest first: a
// filter that matches little returns short pages, each with a cursor,
// and following the cursors yields every match once, in order.
func testScanBudget(t *testing.T, f *fixture) {
	dev := f.device(t, reader)
	var want []string
	for i := range 8 {
		name := "scan.other"
		if i == 5 || i == 7 {
			name = "scan.target"
		}
		id, err := dev.PublishEvent(ctx(t), name, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if name == "scan.target" {
			want = append(want, id.String())
		}
	}
	v := f.prov.Token(t, "vera", "viewer")
	read := func(desc bool) (ids []string, pages int) {
		items, pages := f.eventPages(t, v, api.PathPrefix+"/events?thing=hq.reader.r1&name=scan.target&since=1h", 50, desc)
		return eventIDs(items), pages
	}
	waitFor(t, "the events at central", func() bool { ids, _ := read(false); return len(ids) == len(want) })

	restore := api.SetScanBudget(3)
	defer restore()
	got, pages := read(false)
	if !slices.Equal(got, want) || pages < 3 {
		t.Fatalf("oldest first, 3 messages a page: %v in %d pages, want %v in at least 3", got, pages, want)
	}
	rev := slices.Clone(want)
	slices.Reverse(rev)
	if got, pages := read(true); !slices.Equal(got, rev) || pages < 2 {
		t.Fatalf("newest first, 3 messages a page: %v in %d pages, want %v in at least 2", got, pages, rev)
	}
}
