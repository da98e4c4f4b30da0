//go:build linux

package pgtest

import "syscall"

// procAttr runs a server binary as owner (nil: as this process), in a
// process group of its own, and sends it SIGQUIT, PostgreSQL's immediate
// shutdown, when this process dies.
func procAttr(owner *osUser) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if owner != nil {
		a.Credential = &syscall.Credential{Uid: owner.uid, Gid: owner.gid}
	}
	return a
}
