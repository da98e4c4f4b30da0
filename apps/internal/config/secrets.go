package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lintel-io/lintel/authz"
)

// ReadSecret reads a secret file (a password or an NKey seed, as lintelctl
// render writes them), refusing one that other users may read.
func ReadSecret(path string) (authz.Secret, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return authz.Secret{}, fmt.Errorf("%w: secret: %w", ErrInvalid, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return authz.Secret{}, fmt.Errorf("%w: secret %s: mode %v lets other users read it; want 0600", ErrInvalid, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return authz.Secret{}, fmt.Errorf("%w: secret: %w", ErrInvalid, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return authz.Secret{}, fmt.Errorf("%w: secret %s is empty", ErrInvalid, path)
	}
	return authz.NewSecret(s), nil
}

// CentralService returns the name of org's central service: the first
// service of kind authz.ServiceCentral the inventory lists for it.
func CentralService(inv *authz.Inventory, org string) (string, error) {
	for _, s := range inv.Services {
		if s.Org == org && s.Kind == authz.ServiceCentral {
			return s.Name, nil
		}
	}
	return "", fmt.Errorf("%w: org %s has no service of kind %q in the inventory: central needs one to act as", ErrInvalid, org, authz.ServiceCentral)
}

// SecretPath returns the path of a file in a secrets directory.
func SecretPath(dir, name string) string { return filepath.Join(dir, name) }
