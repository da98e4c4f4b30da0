package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// app is one run of lintelctl: where it writes, and whether stderr is a
// terminal (for the progress bar).
type app struct {
	stdout, stderr io.Writer
	terminal       bool
	// ran is set once a command's own code starts: an error before that
	// is cobra refusing the command line, a usage error.
	ran bool
}

// execute builds the command tree, runs the command args name, prints its
// error and returns it, as a [*usageError] when the command line was at
// fault.
func (a *app) execute(ctx context.Context, args []string) error {
	root := a.rootCommand()
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	var ue *usageError
	if !a.ran && !errors.As(err, &ue) {
		err = &usageError{err: err}
	}
	fmt.Fprintln(a.stderr, "lintelctl:", err)
	if errors.As(err, &ue) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return err
}

// rootCommand returns lintelctl's command tree.
func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "lintelctl",
		Short: "Operate a Lintel deployment: inventory, credentials, live view, history",
		Long: `lintelctl is the operator's tool for a Lintel deployment.

It writes a starter inventory (init), turns the inventory into credentials
and into the files central and every edge read (render), and archives the
state and the secrets (backup).

Against a running deployment, as an operator (a service of kind "operator"
in the inventory) named by a context file (--context, or $LINTEL_CONTEXT;
the demo writes one), it shows the org's messages live (tail), each edge's
link, backlog and credential sync (status), sends commands (command send),
manages door credentials (cred) and queries the history (query). When the
context names central's HTTP API (api_url, api_token_file), these commands
go through the API instead of NATS, with the same output. Every command
that prints data takes --output json.

The state file (state.json beside the inventory, by default) and the secret
directories render writes are the deployment's crown jewels: without them
every device and edge has to be re-keyed. Back them up after every render.

Exit codes: 0 success, 1 error, 2 usage error.`,
		Example: `  lintelctl init --out deploy/inventory.json
  lintelctl render --inventory deploy/inventory.json --out deploy/out
  lintelctl backup --state deploy/state.json --secrets deploy/out --out backup.tar.gz
  export LINTEL_CONTEXT=deploy/ops.context.json
  lintelctl status
  lintelctl tail 'hq.reader.*.evt'
  lintelctl command send hq.lock.l1 unlock --wait`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	root.AddCommand(a.initCommand(), a.validateCommand(), a.addCommand(), a.removeCommand(), a.renderCommand(), a.rotateCommand(), a.backupCommand(), a.nebulaCommand(),
		a.tailCommand(), a.statusCommand(), a.commandCommand(), a.credCommand(), a.rulesCommand(), a.auditCommand(), a.queryCommand(), a.simCommand(), a.benchCommand())
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = `  source <(lintelctl completion bash)
  lintelctl completion zsh > "${fpath[1]}/_lintelctl"
  lintelctl completion fish > ~/.config/fish/completions/lintelctl.fish`
		for _, sub := range c.Commands() {
			sub.Example = completionExample(sub.Name())
		}
	}
	return root
}

// completionExample returns the example of cobra's completion command for
// shell.
func completionExample(shell string) string {
	switch shell {
	case "bash":
		return "  source <(lintelctl completion bash)"
	case "zsh":
		return `  lintelctl completion zsh > "${fpath[1]}/_lintelctl"`
	case "fish":
		return "  lintelctl completion fish | source"
	case "powershell":
		return "  lintelctl completion powershell | Out-String | Invoke-Expression"
	}
	return "  lintelctl completion " + shell
}

// runE adapts a command's function to cobra, recording that the command
// line was accepted.
func (a *app) runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		return fn(cmd, args)
	}
}
