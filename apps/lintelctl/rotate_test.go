package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nkeys"
)

// rotateJSON runs lintelctl rotate on d at bcrypt cost 4 and returns the JSON
// summary.
func (d deployment) rotateJSON(t *testing.T, args ...string) rotateReport {
	t.Helper()
	r := mustCtl(t, append([]string{"rotate", "--inventory", d.inventory, "--out", d.out, "--cost", "4", "--output", "json"}, args...)...)
	var rep rotateReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("rotate --output json printed %q: %v", r.stdout, err)
	}
	return rep
}

// stateOf loads d's state file.
func (d deployment) stateOf(t *testing.T) *authz.State {
	t.Helper()
	st, err := authz.LoadState(d.state)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// changedFiles returns the paths whose content differs between two
// snapshots of secretFiles, and those only in one of them, sorted.
func changedFiles(before, after map[string]string) []string {
	var out []string
	for p, b := range before {
		if a, ok := after[p]; !ok || a != b {
			out = append(out, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func TestRotateDevicePassword(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	const user = "acme.hq.reader.front-in"
	rel := filepath.Join("devices", "acme-hq", user+".password")
	oldPW := readSecret(t, filepath.Join(d.out, rel))
	secretsBefore := secretFiles(t, d.out)

	start := time.Now()
	rep := d.rotateJSON(t, user)
	end := time.Now()

	if len(rep.Rotated) != 1 || rep.Rotated[0].Identity != user || rep.Rotated[0].Kind != "device" {
		t.Fatalf("rotated %+v, want %s, a device", rep.Rotated, user)
	}
	until := rep.Rotated[0].PreviousUntil
	if until.Before(start.Add(authz.DefaultOverlap).Truncate(time.Second)) || until.After(end.Add(authz.DefaultOverlap)) {
		t.Errorf("old password valid until %v, want %v after the rotation", until, authz.DefaultOverlap)
	}
	if !slices.Equal(rep.Secrets, []string{rel}) {
		t.Errorf("secrets written %q, want only %q", rep.Secrets, rel)
	}
	if got := changedFiles(secretsBefore, secretFiles(t, d.out)); !slices.Equal(got, []string{rel}) {
		t.Errorf("secret files changed: %q, want only %q", got, rel)
	}

	newPW := readSecret(t, filepath.Join(d.out, rel))
	if newPW == oldPW {
		t.Fatal("the password file did not change")
	}
	st := d.stateOf(t)
	cred := st.Passwords[user]
	now := time.Now()
	if !cred.Verify(newPW, now) {
		t.Error("the new password does not verify against the new state")
	}
	if !cred.Verify(oldPW, now) {
		t.Error("the old password does not verify within the overlap")
	}
	if cred.Verify(oldPW, cred.PreviousUntil) {
		t.Error("the old password still verifies when the overlap has ended")
	}
	if !cred.PreviousUntil.Equal(until) {
		t.Errorf("state says the old password is valid until %v, the report %v", cred.PreviousUntil, until)
	}
	// Central and the edge read copies of the state: they are the new one.
	want := mustRead(t, d.state)
	for _, dir := range []string{"central", filepath.Join("edges", "acme-hq")} {
		if got := mustRead(t, filepath.Join(d.out, dir, "state.json")); string(got) != string(want) {
			t.Errorf("%s/state.json is not the new state", dir)
		}
	}
	// Render afterwards keeps the rotated credential.
	if r := d.render(t); len(r.Created)+len(r.Rotated)+len(r.Removed) != 0 {
		t.Errorf("render after rotate changed credentials: %+v", r)
	}
	if !d.stateOf(t).Passwords[user].Verify(newPW, time.Now()) {
		t.Error("the new password does not verify after a render")
	}
}

func TestRotateWithoutOverlap(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	const user = "acme.hq.lock.front-lock"
	path := filepath.Join(d.out, "devices", "acme-hq", user+".password")
	oldPW := readSecret(t, path)

	r := mustCtl(t, "rotate", "-i", d.inventory, "-o", d.out, "--cost", "4", "--overlap", "0", "thing:hq.lock.front-lock")
	if !strings.Contains(r.stdout, user) || !strings.Contains(r.stdout, "stopped at once") || !strings.Contains(r.stdout, "devices/acme-hq/"+user+".password") {
		t.Errorf("table does not show the rotation, its end and the file:\n%s", r.stdout)
	}
	cred := d.stateOf(t).Passwords[user]
	if cred.PreviousHash != "" || !cred.PreviousUntil.IsZero() {
		t.Errorf("--overlap 0 kept the old hash until %v", cred.PreviousUntil)
	}
	if cred.Verify(oldPW, time.Now()) {
		t.Error("the old password still verifies with --overlap 0")
	}
	if !cred.Verify(readSecret(t, path), time.Now()) {
		t.Error("the new password does not verify")
	}
}

func TestRotateEdgeKeyAndService(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	leaf := filepath.Join(d.out, "edges", "acme-hq", "secrets", config.EdgeLeafSeed)
	central := filepath.Join(d.out, "central", "secrets", config.CentralPasswordFile(authz.ServiceUser("acme", "central")))
	oldSeed, oldPW := readSecret(t, leaf), readSecret(t, central)
	oldPub := d.stateOf(t).EdgeKeys["acme.hq"].PublicKey

	rep := d.rotateJSON(t, "--overlap", "1h", "edge:acme/hq", "service:central", "acme.hq") // the edge twice
	var ids []string
	for _, r := range rep.Rotated {
		ids = append(ids, r.Identity+" "+r.Kind)
	}
	if want := []string{"_svc.acme.central service", "acme.hq edge-key"}; !slices.Equal(ids, want) {
		t.Fatalf("rotated %q, want %q", ids, want)
	}

	st := d.stateOf(t)
	newSeed := readSecret(t, leaf)
	kp, err := nkeys.FromSeed([]byte(newSeed))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	k := st.EdgeKeys["acme.hq"]
	if newSeed == oldSeed || k.PublicKey != pub {
		t.Errorf("leaf.seed is not the state's new key")
	}
	if k.PreviousPublicKey != oldPub || !k.Accepts(oldPub, time.Now()) || k.Accepts(oldPub, k.PreviousUntil) {
		t.Errorf("the old key is not admitted for the overlap alone: %+v", k)
	}
	if got := k.PreviousUntil.Sub(k.Rotated); got != time.Hour {
		t.Errorf("overlap %v, want 1h", got)
	}
	newPW := readSecret(t, central)
	cred := st.Passwords[authz.ServiceUser("acme", "central")]
	if newPW == oldPW || !cred.Verify(newPW, time.Now()) {
		t.Error("central's password file is not the rotated password")
	}
}

func TestRotateRefusals(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	snapshot := func() map[string]string {
		files := secretFiles(t, d.out)
		for _, p := range []string{d.state, d.inventory, filepath.Join(d.out, "central", "state.json"), filepath.Join(d.out, "edges", "acme-hq", "state.json")} {
			files[p] = string(mustRead(t, p))
		}
		return files
	}
	before := snapshot()

	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string // in stderr
	}{
		{"unknown identities", []string{"acme.hq.reader.front-in", "acme.hq.reader.nope", "thing:hq.lock.ghost", "_svc.acme.nobody"}, exitError,
			[]string{"acme.hq.reader.nope", "thing:hq.lock.ghost (acme.hq.lock.ghost)", "_svc.acme.nobody", "nothing rotated"}},
		{"unknown edge", []string{"edge:nowhere"}, exitError, []string{`edge:nowhere: no edge "nowhere"`}},
		{"unknown service", []string{"service:nobody"}, exitError, []string{`service:nobody: no service "nobody"`}},
		{"unknown form", []string{"door:front"}, exitUsage, []string{`"door:front": unknown form "door:"`}},
		{"malformed thing", []string{"thing:front-in"}, exitUsage, []string{"want thing:ORG.EDGE.TYPE.CODE"}},
		{"empty form", []string{"edge:"}, exitUsage, []string{`"edge:": name the edge after the colon`}},
		{"no identity", nil, exitUsage, []string{"requires at least 1 arg(s)"}},
		{"negative overlap", []string{"--overlap", "-1h", "acme.hq"}, exitUsage, []string{"--overlap -1h0m0s"}},
		{"bad cost", []string{"--cost", "3", "acme.hq"}, exitUsage, []string{"--cost 3: want 4 to 31"}},
		{"bad output", []string{"--output", "xml", "acme.hq"}, exitUsage, []string{`--output "xml"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"rotate", "-i", d.inventory, "-o", d.out, "--cost", "4"}, tc.args...)
			r := ctl(t, args...)
			if r.code != tc.code {
				t.Fatalf("exit %d (%v), want %d", r.code, r.err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
			if after := snapshot(); !maps.Equal(before, after) {
				t.Errorf("a refused rotation changed %q", changedFiles(before, after))
			}
		})
	}

	r := ctl(t, "rotate", "-i", d.inventory, "-o", filepath.Join(d.dir, "elsewhere"), "--cost", "4", "acme.hq")
	if r.code != exitError || !strings.Contains(r.stderr, "holds no render") {
		t.Errorf("rotate into a directory without a render: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "elsewhere")); err == nil {
		t.Error("rotate into a directory without a render created it")
	}

	// An inventory changed since the render is refused until rendered.
	mustCtl(t, "add", "thing", "hq", "reader", "side-in", "-i", d.inventory)
	before = snapshot()
	r = ctl(t, "rotate", "-i", d.inventory, "-o", d.out, "--cost", "4", "acme.hq.reader.front-in")
	if r.code != exitError || !strings.Contains(r.stderr, "not rendered yet: acme.hq.reader.side-in") {
		t.Errorf("rotate with an unrendered inventory: exit %d, stderr %q", r.code, r.stderr)
	}
	if after := snapshot(); !reflect.DeepEqual(before, after) {
		t.Errorf("a refused rotation changed %q", changedFiles(before, after))
	}
}
