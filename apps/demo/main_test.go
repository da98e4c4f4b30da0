package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/testing/leaktest"
)

// TestMain fails the tests when the demo leaves any goroutine of Lintel's
// packages, or of its own (frames of package main), running after run
// returns.
func TestMain(m *testing.M) {
	os.Exit(leaktest.Main(m, "github.com/lintel-io/lintel/", "\nmain."))
}

func TestRunOnce(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // to see that the demo removes its directories
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-once"}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	text := stdout.String()
	rest := text
	for _, want := range []string{
		"reader r1, alice's card: granted (set version 1)",
		"lock l1: received unlock command for door front",
		"reader r1, an unknown card: denied: unknown",
		"sounder s1: received command sound (pattern alarm), requested by rule:door-forced",
		"reader r1, alice's card: granted (offline decision, set version 2)",
		"lock l1: received unlock command for door front",
		"reader r1, alice's card: denied: revoked",
		"central auditor: alarm access.revoked_grant: door front, holder alice, offline grant at set version 2, revoked at version 3",
		"central auditor: 4 decisions of edge hq verified, audit chain intact (0 breaks); revoked grants: 1",
	} {
		_, after, ok := strings.Cut(rest, want)
		if !ok {
			t.Fatalf("output lacks %q after the lines before it:\n%s", want, text)
		}
		rest = after
	}
	if strings.Contains(text, aliceCard) || strings.Contains(text, unknownCard) {
		t.Errorf("the transcript shows a card number:\n%s", text)
	}
	if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	noneLeft(t, tmp)
}

func TestRunRejectsArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error
	}{
		{"argument", []string{"extra"}, "unexpected arguments"},
		{"unknown flag", []string{"-bogus"}, "-bogus"},
		{"live flag with once", []string{"-once", "-speed", "2"}, "-speed"},
		{"speed zero", []string{"-speed", "0"}, "-speed"},
		{"speed negative", []string{"-speed", "-1"}, "-speed"},
		{"negative cycle", []string{"-cycle", "-1s"}, "-cycle"},
		{"no outage", []string{"-outage", "0s"}, "-outage"},
		{"bad duration", []string{"-outage", "soon"}, "-outage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("run accepted %q", tc.args)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want an error naming %q", tc.args, err, tc.want)
			}
		})
	}
}

// noneLeft fails t if dir is not empty.
func noneLeft(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind in the temporary directory: %s", e.Name())
	}
}
