//go:build !unix

package pgtest

import "syscall"

// procAttr runs a server binary as this process; owner is always nil where
// there is no root to run as another user from.
func procAttr(*osUser) *syscall.SysProcAttr { return nil }
