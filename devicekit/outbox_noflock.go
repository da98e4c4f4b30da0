//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package devicekit

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// errWouldBlock is what lockFile returns when another client holds the lock.
var errWouldBlock = errors.New("devicekit: lock held")

// lockFile fails: outboxes need flock(2), which this platform lacks.
func lockFile(*os.File) error {
	return fmt.Errorf("outboxes are not supported on %s", runtime.GOOS)
}
