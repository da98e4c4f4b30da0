// Command demo is Lintel's all-in-one demo of access control. Everything runs
// in-process, on random loopback ports, with stores in a temporary directory
// that is removed at the end:
//
//  1. central (an embedded nats-server, JetStream domain "hub") and edge "hq",
//     a leaf node of central through a proxy that can cut the link, with door
//     "front" (reader r1, lock l1, door contact ds1) and sounder s1;
//  2. central enrols alice's card (stored only as its keyed hash);
//  3. reader r1 presents it and is granted, and lock l1 gets the unlock
//     command; an unknown card is denied;
//  4. central puts a rule on the edge: a forced door sounds the sounder;
//  5. the link is cut and central revokes alice's card: the edge, offline,
//     still grants it; once the link is back it denies it;
//  6. central's auditor reports the revoked grant and verifies the edge's
//     audit chain.
//
// Usage:
//
//	go run ./apps/demo
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run runs the demo, printing its transcript to stdout and the libraries'
// errors to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: the demo takes none", args)
	}
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	dir, err := os.MkdirTemp("", "lintel-demo-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	s, err := startSite(ctx, fail, dir, log)
	if err != nil {
		return err
	}
	defer s.close()

	d := &demo{site: s, out: stdout}
	for _, step := range []func(context.Context) error{d.setup, d.enrol, d.present, d.forcedDoor, d.outage, d.audit} {
		d.begin()
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}
