package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Modes of what lintelctl writes: secrets and the state readable by their
// owner only, in directories only the owner may enter.
const (
	modeSecret    fs.FileMode = 0o600
	modeSecretDir fs.FileMode = 0o700
	modePublic    fs.FileMode = 0o644
	modePublicDir fs.FileMode = 0o755
)

// writeFileAtomic replaces path with data, or leaves it untouched on
// error: it writes a temporary file in path's directory with mode perm,
// syncs it, renames it over path and syncs the directory. The temporary
// file is removed on every error.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return &fs.PathError{Op: "write", Path: path, Err: errors.New("is a directory")}
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may be closed already
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The file is in place; failing to sync the directory only weakens
	// durability across a crash.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// mkdirSecret creates the secret directory dir (mode 0700) and its
// parents (0755), and sets mode 0700 on dir if it existed with another, so
// that a secret directory is never left open.
func mkdirSecret(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), modePublicDir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, modeSecretDir); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	if fi.Mode().Perm() != modeSecretDir {
		return os.Chmod(dir, modeSecretDir)
	}
	return nil
}

// exists reports whether path exists; errors other than "does not exist"
// are returned.
func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}
