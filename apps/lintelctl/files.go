package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lintel-io/lintel/internal/atomicfile"
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
// error (see atomicfile.WriteFile).
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return atomicfile.WriteFile(path, data, perm)
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
