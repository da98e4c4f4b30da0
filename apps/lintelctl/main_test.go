package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// result is the outcome of one in-process run of lintelctl.
type result struct {
	stdout, stderr string
	err            error
	code           int
}

// lintelctl runs lintelctl with args in-process.
func lintelctl(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err, code: exitCode(err)}
}

// mustRun runs lintelctl and fails the test unless it succeeds.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := lintelctl(t, args...)
	if r.err != nil {
		t.Fatalf("lintelctl %s: exit %d: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.err, r.stdout, r.stderr)
	}
	return r
}

func TestUsageErrorsExitTwo(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"init", "--bogus"}, "unknown flag: --bogus"},
		{"unexpected argument", []string{"init", "extra"}, `unknown command "extra"`},
		{"render without out", []string{"render", "--inventory", dir + "/inventory.json"}, `"out" not set`},
		{"render without inventory", []string{"render", "--out", dir}, `"inventory" not set`},
		{"cost too low", []string{"render", "--inventory", dir + "/i.json", "--out", dir, "--cost", "3"}, "--cost 3: want 4 to 31"},
		{"cost not a number", []string{"render", "--inventory", dir + "/i.json", "--out", dir, "--cost", "x"}, `invalid argument "x"`},
		{"bad output", []string{"render", "--inventory", dir + "/i.json", "--out", dir, "--output", "xml"}, `--output "xml": want table or json`},
		{"backup without state", []string{"backup", "--out", dir + "/b.tar.gz"}, `"state" not set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := lintelctl(t, tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d (%v), want %d", r.code, r.err, exitUsage)
			}
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "--help' for usage") {
				t.Fatalf("stderr %q does not name the problem (%q) and point to --help", r.stderr, tc.want)
			}
		})
	}
}

func TestHelpHasExamples(t *testing.T) {
	// Every command of the tree, groups included.
	var all [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		all = append(all, path)
		for _, sub := range c.Commands() {
			if sub.Name() != "help" {
				walk(sub, append(slices.Clone(path), sub.Name()))
			}
		}
	}
	walk((&app{}).rootCommand(), []string{})
	if len(all) < 30 {
		t.Fatalf("only %d commands found", len(all))
	}
	for _, cmd := range all {
		t.Run(strings.Join(append([]string{"lintelctl"}, cmd...), " "), func(t *testing.T) {
			r := mustRun(t, append(cmd, "--help")...)
			if !strings.Contains(r.stdout, "Examples:\n  ") {
				t.Fatalf("help has no examples:\n%s", r.stdout)
			}
		})
	}
	for _, cmd := range []string{"render", "backup"} {
		r := mustRun(t, cmd, "--help")
		if !strings.Contains(strings.ToLower(r.stdout), "crown jewels") {
			t.Errorf("lintelctl %s --help does not say what the crown jewels are:\n%s", cmd, r.stdout)
		}
	}
	if r := mustRun(t, "backup", "--help"); !strings.Contains(r.stdout, "central/secrets/") || !strings.Contains(r.stdout, "state file") {
		t.Errorf("lintelctl backup --help does not say where the crown jewels live:\n%s", r.stdout)
	}
}

func TestCompletion(t *testing.T) {
	r := mustRun(t, "completion", "bash")
	if !strings.Contains(r.stdout, "__start_lintelctl") {
		t.Fatalf("bash completion script lacks its entry function:\n%.300s", r.stdout)
	}
}
