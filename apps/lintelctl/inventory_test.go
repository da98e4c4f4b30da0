package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/spf13/cobra"
)

// ctl runs lintelctl with args in-process, like lintelctl(t, args...),
// with the commands of inventory.go and rotate.go, which root.go does not
// add yet; the command line is handled as execute handles it (usage errors,
// the error printed). Once root.go adds them, ctl is lintelctl.
func ctl(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr}
	root := &cobra.Command{Use: "lintelctl", SilenceErrors: true, SilenceUsage: true}
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	root.AddCommand(a.validateCommand(), a.addCommand(), a.removeCommand(), a.rotateCommand())
	root.SetArgs(append([]string{}, args...))
	_, err := root.ExecuteContextC(context.Background())
	var ue *usageError
	if err != nil && !a.ran && !errors.As(err, &ue) {
		err = &usageError{err: err}
	}
	if err != nil {
		fmt.Fprintln(&stderr, "lintelctl:", err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err, code: exitCode(err)}
}

// mustCtl runs ctl and fails the test unless it succeeds.
func mustCtl(t *testing.T, args ...string) result {
	t.Helper()
	r := ctl(t, args...)
	if r.err != nil {
		t.Fatalf("lintelctl %s: exit %d: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.err, r.stdout, r.stderr)
	}
	return r
}

// mustRead returns the content of path.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadInv parses the inventory file at path as the apps do.
func loadInv(t *testing.T, path string) *authz.Inventory {
	t.Helper()
	inv, err := config.LoadInventory(path)
	if err != nil {
		t.Fatalf("the inventory does not load: %v", err)
	}
	return inv
}

// starterHeader is the leading comment block lintelctl init writes.
func starterHeader(t *testing.T) string {
	t.Helper()
	i := strings.Index(starterInventory, "\n{")
	if i < 0 {
		t.Fatal("starter inventory without an opening brace on its own line")
	}
	return starterInventory[:i+1]
}

// entryName matches the start of a problem naming its entry.
var entryName = regexp.MustCompile(`^(orgs|edges|things|doors|services)\[\d+\] \(`)

func TestValidateGood(t *testing.T) {
	d := newDeployment(t)
	r := mustCtl(t, "validate", "--inventory", d.inventory)
	if want := d.inventory + ": 1 org, 1 edge, 4 things, 1 door, 1 service\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}

	r = mustCtl(t, "validate", "-i", d.inventory, "-o", "json")
	var rep validateReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("validate -o json printed %q: %v", r.stdout, err)
	}
	want := validateReport{Inventory: d.inventory, Valid: true, Errors: []string{},
		Counts: &inventoryCounts{Orgs: 1, Edges: 1, Things: 4, Doors: 1, Services: 1}}
	if !reflect.DeepEqual(rep, want) {
		t.Errorf("report %+v, want %+v", rep, want)
	}
}

// brokenInventory breaks authz's rules four times and render's twice.
const brokenInventory = `// A comment, as the apps allow.
{
  "orgs": [{"code": "acme"}, {"code": "a-b"}, {"code": "a"}],
  "edges": [
    {"org": "acme", "code": "hq", "timezone": "Mars/Olympus"},
    {"org": "a-b", "code": "c"},
    {"org": "a", "code": "b-c"}
  ],
  "things": [
    {"org": "acme", "edge": "hq", "type": "reader", "code": "r1"},
    {"org": "acme", "edge": "hq", "type": "lock", "code": "r1"},
    {"org": "acme", "edge": "nowhere", "type": "reader", "code": "r2"}
  ],
  "doors": [{"org": "acme", "edge": "hq", "code": "front", "readers": ["r9"]}],
  "services": [{"name": "central", "kind": "central", "org": "acme"}, {"name": "central", "kind": "central", "org": "a"}]
}
`

func TestValidateBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	if err := os.WriteFile(path, []byte(brokenInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	wantProblems := []string{
		`edges[0] (acme.hq): timezone "Mars/Olympus"`,
		`things[1] (acme.hq.lock.r1): thing code "r1" already used`,
		`things[2] (acme.nowhere.reader.r2): edge "nowhere" is not in edges`,
		`doors[0] (acme.hq.front): reader "r9": no thing`,
		`orgs[1] (a-b): org "a-b" has no central service`,
		`edges[2] (a.b-c): edge "c" of org "a-b" and edge "b-c" of org "a" would share the directory edges/a-b-c`,
	}

	r := ctl(t, "validate", "--inventory", path)
	if r.code != exitError {
		t.Fatalf("exit %d (%v), want %d", r.code, r.err, exitError)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if want := fmt.Sprintf("lintelctl: %s: %d problems:", path, len(wantProblems)); lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	for _, l := range lines[1:] {
		if !entryName.MatchString(strings.TrimPrefix(l, "  ")) {
			t.Errorf("problem %q does not start with its entry", l)
		}
	}
	for _, p := range wantProblems {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "  "+p) }) {
			t.Errorf("stderr lacks a line starting %q:\n%s", p, r.stderr)
		}
	}

	r = ctl(t, "validate", "--inventory", path, "--output", "json")
	if r.code != exitError {
		t.Fatalf("--output json: exit %d (%v), want %d", r.code, r.err, exitError)
	}
	var rep validateReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("validate --output json printed %q: %v", r.stdout, err)
	}
	if rep.Valid || len(rep.Errors) != len(wantProblems) {
		t.Errorf("valid %v with %d errors, want false with %d: %q", rep.Valid, len(rep.Errors), len(wantProblems), rep.Errors)
	}
	if want := (&inventoryCounts{Orgs: 3, Edges: 3, Things: 3, Doors: 1, Services: 2}); !reflect.DeepEqual(rep.Counts, want) {
		t.Errorf("counts %+v, want %+v", rep.Counts, want)
	}
	for _, e := range rep.Errors {
		if !entryName.MatchString(e) {
			t.Errorf("error %q does not start with its entry", e)
		}
	}
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("with --output json, stderr should be one line; got %q", r.stderr)
	}
}

func TestValidateUndecodable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	bad := strings.Replace(starterInventory, `"type": "lock"`, `"kind": "lock"`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	r := ctl(t, "validate", "--inventory", path, "-o", "json")
	var rep validateReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("validate -o json printed %q: %v", r.stdout, err)
	}
	if r.code != exitError || rep.Valid || rep.Counts != nil || len(rep.Errors) != 1 {
		t.Fatalf("exit %d, report %+v; want exit 1, invalid, no counts, one error", r.code, rep)
	}
	if want := `things[1]: unknown key "kind"`; !strings.HasPrefix(rep.Errors[0], want) || !strings.Contains(rep.Errors[0], "(line ") {
		t.Errorf("error %q, want it to start %q and name the line", rep.Errors[0], want)
	}
}

func TestInventoryUsageErrors(t *testing.T) {
	d := newDeployment(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"validate without inventory", []string{"validate"}, `"inventory" not set`},
		{"validate bad output", []string{"validate", "-i", d.inventory, "-o", "xml"}, `--output "xml": want table or json`},
		{"validate extra argument", []string{"validate", "-i", d.inventory, "extra"}, `unknown command "extra"`},
		{"add without inventory", []string{"add", "edge", "acme", "x"}, `"inventory" not set`},
		{"add thing missing code", []string{"add", "thing", "hq", "reader", "-i", d.inventory}, "accepts 3 arg(s), received 2"},
		{"add service without kind", []string{"add", "service", "x", "-i", d.inventory}, `"kind" not set`},
		{"add service bad kind", []string{"add", "service", "x", "--kind", "admin", "-i", d.inventory}, `--kind "admin": want central, gateway or operator`},
		{"add unknown kind of entry", []string{"add", "org", "x"}, `unknown command "org" for "lintelctl add"`},
		{"add nothing", []string{"add"}, "add what? name one: edge, thing, service or door"},
		{"remove unknown kind of entry", []string{"remove", "org", "x"}, `unknown command "org" for "lintelctl remove"`},
		{"remove unknown flag", []string{"remove", "edge", "acme", "hq", "--bogus", "-i", d.inventory}, "unknown flag: --bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ctl(t, tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d (%v), want %d", r.code, r.err, exitUsage)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr %q does not name the problem (%q)", r.stderr, tc.want)
			}
		})
	}
	if got := mustRead(t, d.inventory); string(got) != starterInventory {
		t.Error("a refused command line changed the inventory")
	}
}

func TestAddRemoveRoundTrip(t *testing.T) {
	d := newDeployment(t)
	orig := loadInv(t, d.inventory)
	if err := os.Chmod(d.inventory, 0o640); err != nil {
		t.Fatal(err)
	}

	r := mustCtl(t, "add", "edge", "acme", "branch", "--name", "Branch & annex", "--timezone", "Europe/Paris", "-i", d.inventory)
	if !strings.Contains(r.stdout, "added edges[1] (acme.branch)") || !strings.Contains(r.stdout, "lintelctl render") {
		t.Errorf("add edge printed %q, want the entry added and a pointer to render", r.stdout)
	}
	// init's file has comments inside the object: they go, and say so.
	if !strings.Contains(r.stdout, "comment lines outside the leading comment block not kept") {
		t.Errorf("add edge did not say that comments were dropped: %q", r.stdout)
	}
	mustCtl(t, "add", "thing", "branch", "reader", "b-in", "--name", "Branch entry", "--mqtt", "-i", d.inventory)
	mustCtl(t, "add", "thing", "branch", "lock", "b-lock", "-i", d.inventory)
	mustCtl(t, "add", "door", "branch", "entry", "--reader", "b-in", "--lock", "b-lock", "-i", d.inventory)
	mustCtl(t, "add", "service", "gw-branch", "--kind", "gateway", "--edge", "branch", "-i", d.inventory)
	r = mustCtl(t, "add", "service", "ops", "--kind", "operator", "-i", d.inventory)
	if strings.Contains(r.stdout, "comment lines") {
		t.Errorf("no comments left to drop, yet: %q", r.stdout)
	}

	data := mustRead(t, d.inventory)
	if !bytes.HasPrefix(data, []byte(starterHeader(t)+"{\n")) {
		t.Errorf("the leading comment block was not kept:\n%s", data)
	}
	for _, line := range []string{
		`    {"org": "acme", "code": "branch", "name": "Branch & annex", "timezone": "Europe/Paris"}`,
		`    {"org": "acme", "edge": "branch", "type": "reader", "code": "b-in", "name": "Branch entry", "mqtt": true},`,
		`    {"org": "acme", "edge": "branch", "code": "entry", "readers": ["b-in"], "locks": ["b-lock"]}`,
		`    {"name": "gw-branch", "kind": "gateway", "org": "acme", "edge": "branch"},`,
	} {
		if !bytes.Contains(data, []byte(line+"\n")) {
			t.Errorf("the inventory lacks the line\n%s\nin:\n%s", line, data)
		}
	}
	wantMode(t, d.inventory, 0o640)
	inv := loadInv(t, d.inventory)
	if want := append(slices.Clone(orig.Things),
		authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "branch", Type: "reader", Code: "b-in"}, Name: "Branch entry", MQTT: true},
		authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "branch", Type: "lock", Code: "b-lock"}}); !reflect.DeepEqual(inv.Things, want) {
		t.Errorf("things %+v, want %+v", inv.Things, want)
	}
	if got, want := inv.Doors[1], (authz.Door{Org: "acme", Edge: "branch", Code: "entry", Readers: []string{"b-in"}, Locks: []string{"b-lock"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("door %+v, want %+v", got, want)
	}
	if got, want := inv.Services[1:], []authz.Service{
		{Name: "gw-branch", Kind: authz.ServiceGateway, Org: "acme", Edge: "branch"},
		{Name: "ops", Kind: authz.ServiceOperator, Org: "acme"},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("services %+v, want %+v", got, want)
	}
	mustCtl(t, "validate", "-i", d.inventory)

	// An edge with things is kept without --cascade, and the file with it.
	before := mustRead(t, d.inventory)
	r = ctl(t, "remove", "edge", "acme", "branch", "-i", d.inventory)
	if r.code != exitError {
		t.Fatalf("remove edge with things: exit %d (%v), want %d", r.code, r.err, exitError)
	}
	for _, e := range []string{"edges[1] (acme.branch)", "things[4] (acme.branch.reader.b-in)", "things[5] (acme.branch.lock.b-lock)",
		"doors[1] (acme.branch.entry)", "services[1] (_svc.acme.gw-branch)", "--cascade"} {
		if !strings.Contains(r.stderr, e) {
			t.Errorf("refusal does not name %s: %q", e, r.stderr)
		}
	}
	if !bytes.Equal(mustRead(t, d.inventory), before) {
		t.Fatal("a refused remove changed the inventory")
	}

	r = mustCtl(t, "remove", "edge", "acme", "branch", "--cascade", "-i", d.inventory)
	for _, e := range []string{"removed edges[1] (acme.branch)", "removed things[4] (acme.branch.reader.b-in)",
		"removed things[5] (acme.branch.lock.b-lock)", "removed doors[1] (acme.branch.entry)", "removed services[1] (_svc.acme.gw-branch)"} {
		if !strings.Contains(r.stdout, e) {
			t.Errorf("remove --cascade does not list %q: %q", e, r.stdout)
		}
	}
	mustCtl(t, "remove", "service", "ops", "-i", d.inventory)
	if got := loadInv(t, d.inventory); !reflect.DeepEqual(got, orig) {
		t.Errorf("after adding and removing, the inventory is\n%+v\nwant the original\n%+v", got, orig)
	}
	if data := mustRead(t, d.inventory); !bytes.HasPrefix(data, []byte(starterHeader(t))) {
		t.Errorf("the leading comment block was lost:\n%s", data)
	}
}

func TestRemoveThingAndDoor(t *testing.T) {
	d := newDeployment(t)

	r := ctl(t, "remove", "thing", "hq", "reader", "front-in", "-i", d.inventory)
	if r.code != exitError || !strings.Contains(r.stderr, "doors[0] (acme.hq.front) lists it as reader") {
		t.Fatalf("removing a door's reader: exit %d, stderr %q; want 1 naming the door", r.code, r.stderr)
	}
	if string(mustRead(t, d.inventory)) != starterInventory {
		t.Fatal("a refused remove changed the inventory")
	}
	r = mustCtl(t, "remove", "thing", "hq", "reader", "front-in", "--cascade", "-i", d.inventory)
	if !strings.Contains(r.stdout, "removed things[0] (acme.hq.reader.front-in)") || !strings.Contains(r.stdout, "doors[0] (acme.hq.front) as reader") {
		t.Errorf("remove thing --cascade printed %q", r.stdout)
	}
	inv := loadInv(t, d.inventory)
	if len(inv.Things) != 3 || len(inv.Doors[0].Readers) != 0 || len(inv.Doors[0].Locks) != 1 {
		t.Errorf("after removing the reader: things %+v, door %+v", inv.Things, inv.Doors[0])
	}

	r = ctl(t, "remove", "thing", "hq", "lock", "front-in", "-i", d.inventory)
	if r.code != exitError || !strings.Contains(r.stderr, "no thing acme.hq.lock.front-in") {
		t.Errorf("removing a missing thing: exit %d, stderr %q", r.code, r.stderr)
	}
	mustCtl(t, "remove", "door", "hq", "front", "-i", d.inventory)
	if inv := loadInv(t, d.inventory); len(inv.Doors) != 0 || len(inv.Things) != 3 {
		t.Errorf("after removing the door: doors %+v, things %+v", inv.Doors, inv.Things)
	}
}

func TestAddRemoveRefusals(t *testing.T) {
	d := newDeployment(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"duplicate thing", []string{"add", "thing", "hq", "lock", "front-in"},
			[]string{`things[4] (acme.hq.lock.front-in): thing code "front-in" already used at edge "hq" by things[0] (acme.hq.reader.front-in)`}},
		{"thing at unknown edge", []string{"add", "thing", "nowhere", "reader", "r1"},
			[]string{`things[4] (acme.nowhere.reader.r1): edge "nowhere" is not in edges`}},
		{"edge of unknown org", []string{"add", "edge", "globex", "plant"},
			[]string{`edges[1] (globex.plant): org "globex" is not in orgs`}},
		{"duplicate edge", []string{"add", "edge", "acme", "hq"},
			[]string{`edges[1] (acme.hq): edge code "hq" already used by edges[0] (acme.hq)`}},
		{"bad time zone", []string{"add", "edge", "acme", "x", "--timezone", "Mars/Olympus"},
			[]string{`edges[1] (acme.x): timezone "Mars/Olympus"`}},
		{"bad token", []string{"add", "thing", "hq", "reader", "front door"},
			[]string{`things[4] (acme.hq.reader.front door): thing_code "front door"`}},
		{"door with unknown lock", []string{"add", "door", "hq", "back", "--lock", "nope"},
			[]string{`doors[1] (acme.hq.back): lock "nope": no thing with that code at edge "hq"`}},
		{"gateway at unknown edge", []string{"add", "service", "gw", "--kind", "gateway", "--edge", "nowhere"},
			[]string{`services[1] (_svc.acme.gw): edge "nowhere" is not in edges`}},
		{"last central service", []string{"remove", "service", "central"},
			[]string{"removed services[0] (_svc.acme.central): refused", `orgs[0] (acme): org "acme" has no central service`}},
		{"unknown edge", []string{"remove", "edge", "acme", "nowhere"}, []string{`no edge "nowhere" of org "acme"`}},
		{"unknown service", []string{"remove", "service", "nope"}, []string{`no service "nope"`}},
		{"unknown door", []string{"remove", "door", "hq", "nope"}, []string{"no door acme.hq.nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ctl(t, append(tc.args, "-i", d.inventory)...)
			if r.code != exitError {
				t.Fatalf("exit %d (%v), want %d", r.code, r.err, exitError)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
			if string(mustRead(t, d.inventory)) != starterInventory {
				t.Fatal("a refused change was written")
			}
		})
	}
}

func TestAddRefusesBrokenInventory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.json")
	if err := os.WriteFile(path, []byte(brokenInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	r := ctl(t, "add", "thing", "hq", "reader", "r3", "-i", path)
	if r.code != exitError || !strings.Contains(r.stderr, "does not load") || !strings.Contains(r.stderr, "things[2] (acme.nowhere.reader.r2)") {
		t.Fatalf("exit %d, stderr %q; want 1, naming the problems", r.code, r.stderr)
	}
	if string(mustRead(t, path)) != brokenInventory {
		t.Fatal("the inventory changed")
	}
}

func TestAddDryRun(t *testing.T) {
	d := newDeployment(t)
	r := mustCtl(t, "add", "thing", "hq", "reader", "side-in", "--dry-run", "-i", d.inventory)
	if string(mustRead(t, d.inventory)) != starterInventory {
		t.Fatal("--dry-run changed the inventory")
	}
	inv, err := authz.ParseInventory(config.StripComments([]byte(r.stdout)))
	if err != nil {
		t.Fatalf("--dry-run printed an inventory that does not parse: %v\n%s", err, r.stdout)
	}
	if !slices.Contains(inv.Things, authz.Thing{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "side-in"}}) {
		t.Errorf("--dry-run printed an inventory without the new thing:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "added things[4] (acme.hq.reader.side-in)") || !strings.Contains(r.stderr, "dry run") {
		t.Errorf("--dry-run should say on stderr what it would change; got %q", r.stderr)
	}
}

func TestMarshalInventoryRoundTrip(t *testing.T) {
	inv := &authz.Inventory{
		Orgs:   []authz.Org{{Code: "acme", Name: `Quotes "and", colons: & <tags> \ back`}},
		Edges:  []authz.Edge{{Org: "acme", Code: "hq"}},
		Things: []authz.Thing{},
	}
	data, err := marshalInventory([]byte("// head\n"), inv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := authz.ParseInventory(config.StripComments(data))
	if err != nil {
		t.Fatalf("%v in\n%s", err, data)
	}
	if !reflect.DeepEqual(got, inv) {
		t.Errorf("round trip gave %+v, want %+v\n%s", got, inv, data)
	}
	want := "// head\n{\n  \"orgs\": [\n    {\"code\": \"acme\", \"name\": \"Quotes \\\"and\\\", colons: & <tags> \\\\ back\"}\n  ],\n\n" +
		"  \"edges\": [\n    {\"org\": \"acme\", \"code\": \"hq\"}\n  ],\n\n  \"things\": []\n}\n"
	if string(data) != want {
		t.Errorf("marshalled\n%s\nwant\n%s", data, want)
	}
}

func TestCommentHeader(t *testing.T) {
	for _, tc := range []struct {
		name, in, header string
		dropped          int
	}{
		{"none", "{\n  // inside\n}\n", "", 1},
		{"blank lines only", "\n\n{}\n", "", 0},
		{"block", "// a\n\n  // b\n{\n// c\n}\n// d\n", "// a\n\n  // b\n", 2},
		{"no newline at end", "// only", "// only\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n := commentHeader([]byte(tc.in))
			if string(h) != tc.header || n != tc.dropped {
				t.Errorf("commentHeader(%q) = %q, %d; want %q, %d", tc.in, h, n, tc.header, tc.dropped)
			}
		})
	}
}
