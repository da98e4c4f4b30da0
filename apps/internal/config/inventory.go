package config

import (
	"fmt"
	"os"

	"github.com/lintel-io/lintel/authz"
)

// LoadInventory reads an inventory file, which may carry whole-line "//"
// comments (as lintelctl init writes it), with authz's strict checks.
func LoadInventory(path string) (*authz.Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: inventory: %w", ErrInvalid, err)
	}
	inv, err := authz.ParseInventory(StripComments(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
	}
	return inv, nil
}
