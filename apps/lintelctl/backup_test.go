package main

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// archiveEntry is one entry of a backup archive.
type archiveEntry struct {
	mode fs.FileMode
	dir  bool
	data string
}

// readArchive returns the entries of the .tar.gz at path by name.
func readArchive(t *testing.T, path string) map[string]archiveEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	entries := make(map[string]archiveEntry)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = archiveEntry{mode: h.FileInfo().Mode().Perm(), dir: h.Typeflag == tar.TypeDir, data: string(b)}
	}
}

// archiveName is how backup names path in its archive.
func archiveName(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(filepath.ToSlash(abs), "/")
}

func TestBackupArchivesStateAndSecrets(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	archive := filepath.Join(d.dir, "backup.tar.gz")
	mustRun(t, "backup", "--state", d.state, "--secrets", d.out, "--out", archive)
	wantMode(t, archive, 0o600)

	entries := readArchive(t, archive)
	state, _ := os.ReadFile(d.state)
	if e, ok := entries[archiveName(t, d.state)]; !ok || e.data != string(state) || e.mode != 0o600 {
		t.Fatalf("state entry %+v (present %v), want the state with mode 0600", e, ok)
	}
	secrets := filepath.Join(d.out, "central", "secrets")
	if e := entries[archiveName(t, secrets)+"/"]; !e.dir || e.mode != 0o700 {
		t.Errorf("central/secrets entry %+v, want a directory of mode 0700", e)
	}
	for rel, content := range secretFiles(t, d.out) {
		e, ok := entries[archiveName(t, filepath.Join(d.out, rel))]
		if !ok || e.data != content || e.mode != 0o600 {
			t.Errorf("%s: entry present %v, mode %04o, same content %v; want it with mode 0600", rel, ok, e.mode, e.data == content)
		}
	}

	// An existing archive is kept unless --force.
	r := lintelctl(t, "backup", "--state", d.state, "--out", archive)
	if r.code != exitError || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("backup over an existing archive: exit %d, stderr %q", r.code, r.stderr)
	}
	mustRun(t, "backup", "--state", d.state, "--out", archive, "--force")
	if got := readArchive(t, archive); len(got) != 1 {
		t.Fatalf("backup of the state alone holds %d entries, want 1", len(got))
	}
}

func TestBackupArchiveInsideSecrets(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	archive := filepath.Join(d.out, "services", "backup.tar.gz")
	mustRun(t, "backup", "--state", d.state, "--secrets", d.out, "--out", archive)
	for name := range readArchive(t, archive) {
		if strings.Contains(name, "backup.tar.gz") {
			t.Fatalf("the archive holds itself (or its temporary file): %s", name)
		}
	}
}

func TestBackupRefusesBadInput(t *testing.T) {
	d := newDeployment(t)
	d.render(t)
	out := filepath.Join(d.dir, "b.tar.gz")
	bad := filepath.Join(d.dir, "bad-state.json")
	if err := os.WriteFile(bad, []byte(`{"version": 1, "passwords": {"x": {"hash": "cleartext"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing state", []string{"--state", filepath.Join(d.dir, "none.json")}, exitError, "none.json"},
		{"invalid state", []string{"--state", bad}, exitError, "not a bcrypt hash"},
		{"missing secrets dir", []string{"--state", d.state, "--secrets", filepath.Join(d.dir, "nowhere")}, exitError, "nowhere"},
		{"secrets not a dir", []string{"--state", d.state, "--secrets", d.state}, exitUsage, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := lintelctl(t, append([]string{"backup", "--out", out}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("archive written by a failed backup (%v)", err)
			}
		})
	}
}
