package access_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/edgekit/access"
)

func TestHashKeyRoundTrip(t *testing.T) {
	k1, err := access.GenerateHashKey()
	if err != nil {
		t.Fatalf("GenerateHashKey: %v", err)
	}
	k2, _ := access.GenerateHashKey()
	if len(k1) != access.HashKeySize || bytes.Equal(k1, k2) {
		t.Fatalf("GenerateHashKey: %d bytes, two keys equal: %v", len(k1), bytes.Equal(k1, k2))
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "hash.key")
	if err := access.WriteHashKey(path, k1); err != nil {
		t.Fatalf("WriteHashKey: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(k1) + "\n"; string(data) != want {
		t.Errorf("file holds %q, want %q", data, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	got, err := access.ReadHashKey(path)
	if err != nil || !bytes.Equal(got, k1) {
		t.Fatalf("ReadHashKey = %x, %v; want %x", got, err, k1)
	}

	// Replacing the key leaves the new key and no temporary file behind.
	if err := access.WriteHashKey(path, k2); err != nil {
		t.Fatalf("WriteHashKey (replace): %v", err)
	}
	if got, err := access.ReadHashKey(path); err != nil || !bytes.Equal(got, k2) {
		t.Errorf("after replace ReadHashKey = %x, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after writing, want 1", len(entries))
	}

	// Longer keys are fine.
	long := bytes.Repeat([]byte{0xab}, 64)
	if err := access.WriteHashKey(path, long); err != nil {
		t.Fatalf("WriteHashKey(64 bytes): %v", err)
	}
	if got, err := access.ReadHashKey(path); err != nil || !bytes.Equal(got, long) {
		t.Errorf("ReadHashKey(64 bytes) = %x, %v", got, err)
	}
}

func TestWriteHashKeyErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hash.key")
	err := access.WriteHashKey(path, make([]byte, access.HashKeySize-1))
	if !errors.Is(err, access.ErrInvalid) || !strings.Contains(err.Error(), path) {
		t.Errorf("short key: %v, want ErrInvalid naming the path", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a rejected key left a file: %v", err)
	}
	err = access.WriteHashKey(filepath.Join(dir, "missing", "hash.key"), make([]byte, access.HashKeySize))
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Errorf("missing directory: %v, want a *fs.PathError", err)
	}
}

func TestReadHashKey(t *testing.T) {
	key := bytes.Repeat([]byte{0x5a}, access.HashKeySize)
	hexKey := hex.EncodeToString(key)
	tests := []struct {
		name    string
		content string
		ok      bool
	}{
		{"newline", hexKey + "\n", true},
		{"no newline", hexKey, true},
		{"trailing space and CRLF", hexKey + " \t\r\n", true},
		{"upper case", strings.ToUpper(hexKey) + "\n", true},
		{"leading space", " " + hexKey, false},
		{"short", hexKey[:62] + "\n", false},
		{"empty", "", false},
		{"odd length", hexKey + "a\n", false},
		{"not hex", hexKey[:63] + "g\n", false},
		{"two lines", hexKey + "\n" + hexKey + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hash.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := access.ReadHashKey(path)
			if tt.ok {
				if err != nil || !bytes.Equal(got, key) {
					t.Errorf("ReadHashKey = %x, %v", got, err)
				}
				return
			}
			if !errors.Is(err, access.ErrInvalid) {
				t.Fatalf("ReadHashKey error = %v, want ErrInvalid", err)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != path || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v does not name the path", err)
			}
			if len(tt.content) > 8 && strings.Contains(err.Error(), tt.content[:8]) {
				t.Errorf("error %v quotes the key", err)
			}
		})
	}
	_, err := access.ReadHashKey(filepath.Join(t.TempDir(), "absent"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: %v, want fs.ErrNotExist", err)
	}
}
