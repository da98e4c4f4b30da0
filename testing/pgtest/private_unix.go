//go:build unix && !linux

package pgtest

import "syscall"

// procAttr runs a server binary as owner (nil: as this process), in a
// process group of its own.
func procAttr(owner *osUser) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if owner != nil {
		a.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid}
	}
	return a
}
