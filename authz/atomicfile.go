package authz

import (
	"fmt"
	"io/fs"

	"github.com/lintel-io/lintel/internal/atomicfile"
)

// writeFileAtomic replaces path with data, or leaves it untouched on error
// (see atomicfile.WriteFile).
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := atomicfile.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("authz: %w", err)
	}
	return nil
}
