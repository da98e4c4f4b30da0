// Package appmain is what the Lintel apps' main packages share: their
// flags, exit codes and signal handling.
package appmain

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of the apps.
const (
	ExitOK      = 0 // a clean stop, or -check passed
	ExitFailed  = 1 // stopping failed, or the app failed while running
	ExitUsage   = 2 // bad usage or configuration
	ExitNoStart = 3 // the app could not start
)

// Flags parses the apps' flags, -config (default defConfig) and -check,
// from args. On a usage error it has printed the reason and usage to
// stderr and returns ok false.
func Flags(name, about, defConfig string, args []string, stderr io.Writer) (config string, check, ok bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defConfig, "configuration `file`")
	chk := fs.Bool("check", false, "check the configuration and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [-config FILE] [-check]\n\n%s\n\nFlags:\n", name, about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return "", false, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", name, fs.Args())
		return "", false, false
	}
	return *path, *chk, true
}

// Serve waits until SIGTERM or SIGINT, calling reload on each SIGHUP, or
// until done is closed (the app stopped on its own), and reports which:
// failed is true in the second case.
func Serve(done <-chan struct{}, reload func(), log *slog.Logger) (failed bool) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload()
				continue
			}
			log.Info("stopping", "signal", s.String())
			return false
		case <-done:
			log.Error("stopped on its own")
			return true
		}
	}
}
