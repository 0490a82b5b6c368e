// Package cli is the harmonia command: its command tree, run in-process by
// [Execute] so that tests drive it with arguments and captured output.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia"
)

// Exit codes of the harmonia command.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitInternal: the server, the network or a file failed
	// (harmonia.CodeInternal and every error that is not harmonia's).
	ExitInternal = 1
	// ExitInvalid: the input broke a rule: a bad flag or argument, an
	// entry of an import file rejected, a validation error
	// (harmonia.CodeInvalid).
	ExitInvalid = 2
	// ExitNotFound: what the command names does not exist
	// (harmonia.CodeNotFound).
	ExitNotFound = 3
	// ExitConflict: the command contradicts the stored state: a
	// duplicate, a change to published content, an alias moved by someone
	// else, a data directory in use (harmonia.CodeConflict).
	ExitConflict = 4
	// ExitCheckFailed: a check ran and found a problem: verify found a
	// file that does not match its artifact, or a digest that drifted.
	ExitCheckFailed = 5
)

// EnvURI is the environment variable that names the deployment when
// --uri is not given.
const EnvURI = "HARMONIA_MONGODB_URI"

const exitCodesHelp = `Exit codes:
  0  success
  1  internal error: the server, the network or a file failed
  2  invalid input: a bad flag or argument, a rejected import entry, a
     validation error (the message names the entity, the field and why)
  3  not found: the version, artifact, alias or job named does not exist
  4  conflict: the command contradicts the stored state (a duplicate, a
     change to published content, an alias moved by someone else, a data
     directory in use by another process)
  5  check failed: verify found a file that does not match its artifact,
     or a version whose content digest drifted`

// app is one run of the command: its streams, its global flags and the
// connection it opened, closed when the run ends.
type app struct {
	stdout, stderr io.Writer
	env            func(string) string

	uri, db, data string
	json          bool
	// txnLifetime is the transaction lifetime of the run's own embedded
	// server.
	txnLifetime time.Duration

	conn *conn
	// started is set once a command's own code runs: errors before that
	// are cobra's (unknown command or flag, wrong argument count).
	started bool
}

// Execute runs the harmonia command with args (without the program name),
// writing to stdout and stderr and reading the environment through env,
// and returns the exit code. Cancelling ctx stops long-running commands
// (worker, devdb, alias watch) gracefully.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	if env == nil {
		env = func(string) string { return "" }
	}
	a := &app{stdout: stdout, stderr: stderr, env: env}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if cerr := a.close(); err == nil {
		err = cerr
	}
	if err == nil {
		return ExitOK
	}
	code := a.exitCode(err)
	fmt.Fprintln(stderr, errorText(err))
	switch {
	case code == ExitInvalid && !a.started:
		fmt.Fprintln(stderr, "Run 'harmonia --help' or 'harmonia COMMAND --help' for usage.")
	case errors.Is(err, harmonia.ErrIndexesMissing):
		fmt.Fprintln(stderr, "Run 'harmonia migrate up' once on this database first.")
	}
	return code
}

// exitError carries an exit code chosen by a command, for outcomes that
// are results rather than harmonia errors (a failed check).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitCode maps err to the command's exit code.
func (a *app) exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var he *harmonia.Error
	if errors.As(err, &he) {
		switch he.Code {
		case harmonia.CodeInvalid:
			return ExitInvalid
		case harmonia.CodeNotFound:
			return ExitNotFound
		case harmonia.CodeConflict:
			return ExitConflict
		}
		return ExitInternal
	}
	if !a.started {
		return ExitInvalid // cobra's: unknown command or flag, argument count
	}
	return ExitInternal
}

// errorText is what the command prints for err: harmonia's error text
// (entity, field, reason and code), with the cause of an internal error.
func errorText(err error) string {
	msg := err.Error()
	var he *harmonia.Error
	if errors.As(err, &he) && he.Code == harmonia.CodeInternal && he.Err != nil {
		msg += ": " + he.Err.Error()
	}
	if !strings.HasPrefix(msg, "harmonia") {
		msg = "harmonia: " + msg
	}
	return msg
}

// invalidArg is the error of a bad argument or flag value.
func invalidArg(field, format string, args ...any) error {
	return &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "command", Field: field, Reason: fmt.Sprintf(format, args...)}
}

// exactArgs is cobra.ExactArgs with harmonia's error, naming the
// arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) && len(names) == 0 {
			return invalidArg("arguments", "%s takes no arguments, got %q", cmd.CommandPath(), args)
		}
		if len(args) != len(names) {
			return invalidArg("arguments", "%s takes %d argument(s) (%s), got %d", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "harmonia",
		Short: "Operate a harmonia model inventory from a terminal or a CI script",
		Long: `harmonia operates a model inventory kept by the harmonia library on MongoDB:
it runs schema migrations, imports and exports the combined inventory file,
publishes versions, lists and compares them, moves aliases, checks files
against their recorded digests, and inspects and runs jobs.

Connection: --uri (or $` + EnvURI + `) names a deployment and --db the
database. With neither, harmonia starts an embedded server on the data
directory --data (default ./harmonia-data), migrates it, and stops it when
the command ends: import, then list, then diff work across invocations
with nothing installed. Against a deployment given by --uri, run
'harmonia migrate up' once first.

Output: aligned tables for people; --json prints one JSON document with
stable snake_case field names for scripts. Long work (import, export,
verify) shows a progress bar when standard error is a terminal, and plain
progress lines otherwise.

` + exitCodesHelp,
		Example: `  harmonia import examples/inventory/combined_inventory.json
  harmonia versions list
  harmonia versions diff 2026.10.0 2026.11.0
  harmonia --uri mongodb://db.example:27017/?replicaSet=rs0 migrate up`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return invalidArg("flags", "%v", err)
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.uri, "uri", "", "MongoDB connection string (default $"+EnvURI+"; with neither, an embedded server on --data)")
	pf.StringVar(&a.db, "db", "harmonia", "database name")
	pf.StringVar(&a.data, "data", "./harmonia-data", "data directory of the embedded server, used when no --uri is given")
	pf.DurationVar(&a.txnLifetime, "txn-lifetime", txnLifetimeDefault,
		"how long a transaction (a publish, an import's version) may run on the embedded server started on --data before it is aborted (with --uri, the server's own limit applies)")
	pf.BoolVar(&a.json, "json", false, "print one JSON document (stable snake_case field names) instead of a table")
	root.AddCommand(
		a.migrateCommand(),
		a.importCommand(),
		a.exportCommand(),

		a.publishCommand(),
		a.versionsCommand(),
		a.artifactsCommand(),
		a.aliasCommand(),
		a.verifyCommand(),
		a.jobsCommand(),
		a.workerCommand(),
		a.devdbCommand(),
	)
	a.markStarts(root)
	return root
}

// group makes cmd a command that only holds subcommands: without one it
// prints its help, and an unknown one is an error (exit code 2).
func group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	cmd.AddCommand(subs...)
	return cmd
}

// markStarts makes every command's RunE record that the command's own
// code runs, after cobra has checked the arguments and flags.
func (a *app) markStarts(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			a.started = true
			return run(cmd, args)
		}
	}
	for _, c := range cmd.Commands() {
		a.markStarts(c)
	}
}
