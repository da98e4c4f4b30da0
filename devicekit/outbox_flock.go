//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package devicekit

import (
	"os"
	"syscall"
)

// errWouldBlock is what lockFile returns when another process, or another
// open file of this one, holds the lock.
var errWouldBlock = syscall.EWOULDBLOCK

// lockFile takes an exclusive flock(2) on f without waiting; closing f
// releases it, as the end of the process does.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
