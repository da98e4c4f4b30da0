// Command demo runs Lintel's access control system in one process, on
// random loopback ports, with stores in a temporary directory that is
// removed when it stops: central (an embedded nats-server, JetStream
// domain "hub"), and edge "hq", a leaf node of central through a proxy
// that can cut the link, with its access service and rules engine.
//
// By default it runs the system until Ctrl-C: a simulated site of a few
// dozen devices, a kiosk that speaks HTTP through the edge's gateway and a
// sensor that speaks MQTT. It prints a line per access decision, command,
// ack and rule firing, a telemetry summary every ten seconds and, every
// -cycle, a forced door and a cut of the link for -outage, with the edge's
// catch-up. Central keeps history in PostgreSQL (-database,
// $LINTEL_DATABASE_URL, or a database lintel_demo on 127.0.0.1:5432 if one
// answers), else in JetStream only. Once up, it prints the URL of central's
// console and API with an admin token, a lintelctl context for an operator
// (export LINTEL_CONTEXT=...) and a nats CLI command to watch the traffic.
//
// With -once it runs a scripted story instead and exits:
//
//  1. central and edge hq, with door "front" (reader r1, lock l1, door
//     contact ds1) and sounder s1;
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
//	go run ./apps/demo [-database URL|none] [-speed N] [-cycle 30s] [-outage 5s]
//	go run ./apps/demo -once
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run runs the demo with its command-line arguments args, printing what
// happens to stdout and the libraries' errors to stderr. The live mode
// runs until ctx ends and then returns nil; -once returns after its story.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./apps/demo [flags]\n\n"+
			"Runs Lintel's system in one process until interrupted; with -once, a scripted story that exits.\n\n")
		fs.PrintDefaults()
	}
	once := fs.Bool("once", false, "run the scripted story (enrol, present, forced door, outage, audit) and exit")
	var o liveOptions
	fs.StringVar(&o.database, "database", "", "PostgreSQL URL for central's history, or \"none\" for JetStream only\n(default $"+envDatabaseURL+", else PostgreSQL on 127.0.0.1:5432 if one answers, in a database "+demoDatabase+")")
	fs.Float64Var(&o.speed, "speed", 1, "how fast the simulated devices act: 2 doubles every device's rate")
	fs.DurationVar(&o.cycle, "cycle", 30*time.Second, "how often a door is forced and the link to central cut; 0 for never")
	fs.DurationVar(&o.outage, "outage", 5*time.Second, "how long each cut of the link lasts")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("arguments: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: the demo takes only flags (-h lists them)", fs.Args())
	}
	if *once {
		var live []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "once" {
				live = append(live, "-"+f.Name)
			}
		})
		if len(live) > 0 {
			return fmt.Errorf("%v: only for the live mode, not with -once", live)
		}
	} else if err := o.check(); err != nil {
		return err
	}

	parent := ctx
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	dir, err := os.MkdirTemp("", "lintel-demo-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	if *once {
		return runOnce(ctx, fail, dir, stdout, log)
	}
	if err := runLive(ctx, fail, o, dir, stdout, log); err != nil {
		return err
	}
	// The live mode ends with ctx: the caller's (Ctrl-C), or a background
	// failure's, which is the demo's error.
	if parent.Err() == nil {
		return context.Cause(ctx)
	}
	return nil
}

// runOnce runs the scripted story on a site started under dir.
func runOnce(ctx context.Context, fail context.CancelCauseFunc, dir string, stdout io.Writer, log *slog.Logger) error {
	s, err := startSite(ctx, fail, dir, log, siteOptions{})
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
