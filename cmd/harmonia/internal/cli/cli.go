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
	"github.com/spf13/pflag"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/textcut"
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
	// else, a data directory in use by a process that does not say its
	// address (harmonia.CodeConflict).
	ExitConflict = 4
	// ExitCheckFailed: a check ran and found a problem: verify found a
	// file that does not match its artifact, or a digest that drifted;
	// check found a broken invariant that remains.
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
     directory in use by a process that does not say its address)
  5  check failed: verify found a file that does not match its artifact,
     or a version whose content digest drifted; check found a broken
     invariant (that --repair did not repair)`

// app is one run of the command: its streams, its global flags and the
// connection it opened, closed when the run ends.
type app struct {
	stdout, stderr io.Writer
	env            func(string) string

	uri, db, data string
	json          bool
	// wait makes a command wait for a data directory in use instead of
	// connecting to the server that holds it.
	wait bool
	// serverTO is --server-timeout (0: $HARMONIA_SERVER_TIMEOUT or the
	// default).
	serverTO time.Duration
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
	err := unknownLeadingFlag(root, args)
	if err == nil {
		err = root.ExecuteContext(ctx)
	}
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

// unknownLeadingFlag checks the flags before the command's name
// ("harmonia --bogus versions list"): cobra would take "versions" for
// the value of --bogus and report an unknown command "list" instead of
// the unknown flag.
func unknownLeadingFlag(root *cobra.Command, args []string) error {
	fs := root.PersistentFlags()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" || !strings.HasPrefix(arg, "-") || arg == "-" {
			return nil
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		var f *pflag.Flag
		if strings.HasPrefix(arg, "--") {
			f = fs.Lookup(name)
		} else if len(name) == 1 {
			f = fs.ShorthandLookup(name)
		}
		if name == "help" || name == "h" {
			return nil
		}
		if f == nil {
			return invalidArg("flags", "unknown flag %s", echo(arg))
		}
		if !hasValue && f.NoOptDefVal == "" {
			i++ // the flag's value
		}
	}
	return nil
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
	var sel topology.ServerSelectionError
	if errors.As(err, &sel) {
		cause := "no server answered"
		for _, s := range sel.Desc.Servers {
			if s.LastError != nil {
				cause = s.Addr.String() + ": " + s.LastError.Error()
				break
			}
		}
		return fmt.Sprintf("harmonia: server unreachable (%s); --server-timeout or $%s waits longer (internal)", cause, EnvServerTimeout)
	}
	msg := err.Error()
	var he *harmonia.Error
	if errors.As(err, &he) && he.Code == harmonia.CodeInternal && he.Err != nil {
		if cause := he.Err.Error(); !strings.Contains(msg, cause) {
			msg += ": " + cause
		}
	}
	if !strings.HasPrefix(msg, "harmonia") {
		msg = "harmonia: " + msg
	}
	return msg
}

// echo cuts input repeated in a message to harmonia.EchoMax characters.
func echo(s string) string { return textcut.Runes(s, harmonia.EchoMax) }

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
'harmonia migrate up' once first. While another harmonia process serves
the directory (a worker, alias watch, devdb), a command connects to its
server (the address it keeps in the directory); --wait waits for the
directory instead. A server that does not answer within --server-timeout
(default 5s, or $` + EnvServerTimeout + `) ends the command with exit code 1.

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
	pf.BoolVar(&a.wait, "wait", false, "when another harmonia process serves --data, wait until it ends instead of connecting to its server")
	pf.DurationVar(&a.serverTO, "server-timeout", 0, "how long to wait for an unreachable server before failing (default 5s, or $"+EnvServerTimeout+")")
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
		a.checkCommand(),
		a.jobsCommand(),
		a.workerCommand(),
		a.devdbCommand(),
		a.serveCommand(),
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
