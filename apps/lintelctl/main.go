// Command lintelctl is the operator's tool for a Lintel deployment: it
// writes and checks the inventory, renders it into credentials and the
// files central and the edges read, rotates and backs up what cannot be
// recreated; and, against a running deployment as an operator named by a
// context file, it tails the org's messages, shows each edge's status,
// sends commands, manages door credentials, rules and audit, queries the
// history and runs simulated devices.
//
// Usage:
//
//	lintelctl init --out deploy/inventory.json
//	lintelctl render --inventory deploy/inventory.json --out deploy/out
//	lintelctl backup --state deploy/state.json --secrets deploy/out --out backup.tar.gz
//	export LINTEL_CONTEXT=ops.context.json
//	lintelctl status
//	lintelctl tail 'hq.reader.*.evt'
//	lintelctl command send hq.lock.l1 unlock --wait
//
// Exit codes: 0 success, 1 error, 2 usage error. The commands, the context
// file and the exit codes are described in docs/lintelctl.md, the layout
// render writes in docs/deployment.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// run runs lintelctl with args (without the program name), writing results
// to stdout and errors, help on errors and progress to stderr. The error it
// returns has already been printed; [exitCode] maps it to the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := &app{stdout: stdout, stderr: stderr, terminal: isTerminal(stderr)}
	return a.execute(ctx, args)
}

// usageError is a command line that cannot be run: an unknown command or
// flag, a missing or bad argument. lintelctl exits with status 2 for it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a [*usageError].
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// exitCode returns the exit status for run's error.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitError
}

// isTerminal reports whether w is a terminal (a character device), where a
// progress bar may be drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
