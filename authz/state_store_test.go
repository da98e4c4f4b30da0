package authz_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nkeys"
)

func TestStateSaveLoadRoundTrip(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock)
	first := mustGenerate(t, g, loadExample(t), nil)
	rot, err := g.Rotate(t.Context(), first.State, "acme.hq", "_svc.acme.api")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.json")
	if err := authz.SaveState(path, rot.State); err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode %o, want 600", mode)
	}
	loaded, err := authz.LoadState(path)
	if err != nil {
		t.Fatalf("LoadState: %v", err)
	}
	if got, want := stateJSON(t, loaded), stateJSON(t, rot.State); !bytes.Equal(got, want) {
		t.Errorf("round trip differs:\n%s\nwant\n%s", got, want)
	}
	onDisk, _ := os.ReadFile(path)
	if !bytes.Equal(onDisk, stateJSON(t, rot.State)) {
		t.Errorf("file is not MarshalState's output")
	}
	// Loaded credentials still verify.
	c := loaded.Passwords["_svc.acme.api"]
	if !c.Verify(rot.Secrets.Passwords["_svc.acme.api"].Reveal(), clock.Now()) ||
		!c.Verify(first.Secrets.Passwords["_svc.acme.api"].Reveal(), clock.Now()) {
		t.Errorf("loaded credential does not verify")
	}
	if !loaded.EdgeKeys["acme.hq"].Accepts(first.State.EdgeKeys["acme.hq"].PublicKey, clock.Now()) {
		t.Errorf("loaded edge key lost its previous key")
	}
}

func TestSaveStateReplacesWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := authz.SaveState(path, authz.NewState()); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode %o after replacing a 0644 file, want 600", mode)
	}
}

func TestLoadStateMissingIsEmpty(t *testing.T) {
	st, err := authz.LoadState(filepath.Join(t.TempDir(), "none.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != authz.StateVersion || st.Passwords == nil || st.EdgeKeys == nil || len(st.Passwords)+len(st.EdgeKeys) != 0 {
		t.Errorf("LoadState(missing) = %+v, want an empty state", st)
	}
}

// dirEntries lists dir's file names.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveStateWritesNothingOnFailure(t *testing.T) {
	valid := mustGenerate(t, credGenerator(newCredClock()), invFixture(), nil).State
	clearText := valid.Clone()
	pc := clearText.Passwords["acme.hq.reader.r1"]
	pc.Hash = "correct-horse-battery-staple"
	clearText.Passwords["acme.hq.reader.r1"] = pc

	t.Run("invalid state leaves the old file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		if err := authz.SaveState(path, valid); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		err := authz.SaveState(path, clearText)
		if !errors.Is(err, authz.ErrInvalidState) {
			t.Fatalf("SaveState = %v, want ErrInvalidState", err)
		}
		if strings.Contains(err.Error(), "correct-horse") {
			t.Errorf("error repeats the value: %v", err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Errorf("file changed")
		}
		if names := dirEntries(t, dir); len(names) != 1 {
			t.Errorf("directory holds %v", names)
		}
	})
	t.Run("nil state", func(t *testing.T) {
		dir := t.TempDir()
		if err := authz.SaveState(filepath.Join(dir, "s.json"), nil); !errors.Is(err, authz.ErrInvalidState) {
			t.Errorf("SaveState(nil) = %v", err)
		}
		if names := dirEntries(t, dir); len(names) != 0 {
			t.Errorf("directory holds %v", names)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := authz.SaveState(filepath.Join(dir, "no", "s.json"), valid); err == nil {
			t.Errorf("SaveState into a missing directory succeeded")
		}
		if names := dirEntries(t, dir); len(names) != 0 {
			t.Errorf("directory holds %v", names)
		}
	})
	t.Run("rename fails late", func(t *testing.T) {
		// The target is a non-empty directory: everything up to the rename
		// succeeds, then the rename fails and the temporary file must go.
		dir := t.TempDir()
		target := filepath.Join(dir, "state.json")
		if err := os.MkdirAll(filepath.Join(target, "x"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := authz.SaveState(target, valid); err == nil {
			t.Errorf("SaveState over a directory succeeded")
		}
		if names := dirEntries(t, dir); len(names) != 1 || names[0] != "state.json" {
			t.Errorf("directory holds %v, want only state.json", names)
		}
	})
	t.Run("unwritable directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into read-only directories")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
		if err := authz.SaveState(filepath.Join(dir, "s.json"), valid); err == nil {
			t.Errorf("SaveState into a read-only directory succeeded")
		}
		if names := dirEntries(t, dir); len(names) != 0 {
			t.Errorf("directory holds %v", names)
		}
	})
}

func TestParseStateErrors(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	acct, _ := nkeys.CreateAccount()
	acctPub, _ := acct.PublicKey()
	const hash = `$2a$04$Ke4SE4nnyXh8nZMsEX6qxOkGr3tF0N58CUkm1ofRUtAMc0CHLqeC6`
	tests := []struct {
		name string
		in   string
		want string
		is   error
	}{
		{"wrong version", `{"version": 2, "passwords": {}, "edge_keys": {}}`,
			`authz: invalid credential state: version 2, this package reads version 1`, nil},
		{"no version", `{}`, `authz: invalid credential state: version 0, this package reads version 1`, nil},
		{"clear password", `{"version": 1, "passwords": {"u": {"hash": "hunter2", "created": "2026-01-01T00:00:00Z"}}}`,
			`authz: invalid credential state: passwords["u"]: hash is not a bcrypt hash`, nil},
		{"previous without until", `{"version": 1, "passwords": {"u": {"hash": "` + hash + `", "previous_hash": "` + hash + `", "created": "2026-01-01T00:00:00Z"}}}`,
			`authz: invalid credential state: passwords["u"]: previous_hash and previous_until must be set together`, nil},
		{"account key for an edge", `{"version": 1, "edge_keys": {"acme.hq": {"public_key": "` + acctPub + `", "created": "2026-01-01T00:00:00Z"}}}`,
			`authz: invalid credential state: edge_keys["acme.hq"]: public_key is not a user NKey`, nil},
		{"seed instead of key", `{"version": 1, "edge_keys": {"acme.hq": {"public_key": "SUAAA", "created": "2026-01-01T00:00:00Z"}}}`,
			`authz: invalid credential state: edge_keys["acme.hq"]: public_key is not a user NKey`, nil},
		{"unknown key", `{"version": 1, "edge_keys": {"acme.hq": {"public_key": "` + pub + `", "create": "2026-01-01T00:00:00Z"}}}`,
			`authz: invalid credential state: edge_keys["acme.hq"]: unknown key "create" (did you mean "created"?) (line 1)`, authz.ErrUnknownKey},
		{"duplicate user", `{"version": 1, "passwords": {"u": {"hash": "` + hash + `"}, "u": {"hash": "` + hash + `"}}}`,
			`authz: invalid credential state: passwords: key "u" given twice (line 1)`, authz.ErrDuplicateKey},
		{"bad time", `{"version": 1, "passwords": {"u": {"hash": "` + hash + `", "created": "yesterday"}}}`,
			`authz: invalid credential state: passwords["u"].created: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006" (line 1)`, authz.ErrMalformed},
		{"version as string", `{"version": "1"}`,
			`authz: invalid credential state: version: want an integer, got a string (line 1)`, authz.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := authz.ParseState([]byte(tt.in))
			if st != nil || err == nil {
				t.Fatalf("ParseState = %+v, %v; want an error", st, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			if !errors.Is(err, authz.ErrInvalidState) {
				t.Errorf("errors.Is(err, ErrInvalidState) = false")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
		})
	}
}

func TestStateCloneIsDeep(t *testing.T) {
	st := mustGenerate(t, credGenerator(newCredClock()), invFixture(), nil).State
	c := st.Clone()
	delete(c.Passwords, "acme.hq.reader.r1")
	c.EdgeKeys["acme.hq"] = authz.EdgeKey{}
	if _, ok := st.Passwords["acme.hq.reader.r1"]; !ok || st.EdgeKeys["acme.hq"].PublicKey == "" {
		t.Errorf("Clone shares maps with its source")
	}
	var nilState *authz.State
	if e := nilState.Clone(); e == nil || e.Passwords == nil || e.Version != authz.StateVersion {
		t.Errorf("nil.Clone() = %+v", e)
	}
}

func TestWriteSeedFile(t *testing.T) {
	res := mustGenerate(t, credGenerator(newCredClock()), invFixture(), nil)
	seed := res.Secrets.EdgeSeeds["acme.hq"]
	dir := t.TempDir()
	path := filepath.Join(dir, "hq.nk")
	if err := authz.WriteSeedFile(path, seed); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode %o, want 600", mode)
	}
	data, _ := os.ReadFile(path)
	if string(data) != seed.Reveal()+"\n" {
		t.Errorf("file holds %d bytes, not the seed and a newline", len(data))
	}
	kp, err := nkeys.ParseDecoratedUserNKey(data)
	if err != nil {
		t.Fatalf("nkeys cannot read the file: %v", err)
	}
	if pub, _ := kp.PublicKey(); pub != res.State.EdgeKeys["acme.hq"].PublicKey {
		t.Errorf("file's key %s is not the state's", pub)
	}

	acct, _ := nkeys.CreateAccount()
	acctSeed, _ := acct.Seed()
	for name, bad := range map[string]authz.Secret{
		"empty":        {},
		"garbage":      authz.NewSecret("SUnot-a-seed"),
		"account seed": authz.NewSecret(string(acctSeed)),
		"public key":   authz.NewSecret(res.State.EdgeKeys["acme.hq"].PublicKey),
	} {
		p := filepath.Join(dir, "bad.nk")
		if err := authz.WriteSeedFile(p, bad); !errors.Is(err, authz.ErrInvalidSeed) {
			t.Errorf("%s: WriteSeedFile = %v, want ErrInvalidSeed", name, err)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: file written", name)
		}
	}
	if names := dirEntries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v", names)
	}
}

func TestPruneKeepsLiveOverlap(t *testing.T) {
	clock := newCredClock()
	g := credGenerator(clock)
	st := mustGenerate(t, g, invFixture(), nil).State
	r1, err := g.Rotate(t.Context(), st, "acme.hq.reader.r1")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(12 * time.Hour)
	r2, err := g.Rotate(t.Context(), r1.State, "acme.hq.lock.l1")
	if err != nil {
		t.Fatal(err)
	}
	p := r2.State.Prune(clock.Now().Add(13 * time.Hour)) // r1's window closed, l1's open
	if p.Passwords["acme.hq.reader.r1"].PreviousHash != "" {
		t.Errorf("expired previous hash kept")
	}
	if p.Passwords["acme.hq.lock.l1"].PreviousHash == "" {
		t.Errorf("live previous hash dropped")
	}
	if err := p.Validate(); err != nil {
		t.Errorf("pruned state invalid: %v", err)
	}
}
