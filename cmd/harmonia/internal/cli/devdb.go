package cli

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia/internal/devserver"
)

func (a *app) devdbCommand() *cobra.Command {
	var o devserver.Options
	cmd := &cobra.Command{
		Use:   "devdb",
		Short: "Serve a development database (the embedded server) until interrupted",
		Long: `devdb serves harmonia's embedded MongoDB-compatible server on --addr,
with its data in the directory --data (kept across restarts; --memory
keeps nothing), as a one-member replica set with transactions, until
SIGINT or SIGTERM. It prints the connection string: give it to other
harmonia commands with --uri, to mongosh, or to a service under
development. It is for development and tests, not production: see the
embedded package's documentation for what it lacks. It is the same server
as the harmonia-devdb program.`,
		Example: `  harmonia devdb
  harmonia devdb --data /tmp/inv --addr 127.0.0.1:27018
  harmonia --uri 'mongodb://127.0.0.1:27017/?replicaSet=rs0' versions list`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := o
			opts.Dir, opts.NoPrefix = a.data, true
			opts.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			return devserver.Serve(cmd.Context(), opts, a.stdout)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Addr, "addr", devserver.AddrDefault, "listen address")
	fl.BoolVar(&o.Memory, "memory", false, "keep no data: ignore --data and discard everything on exit")
	fl.StringVar(&o.ReplicaSet, "replset", embeddedReplicaSet, `replica set name ("" serves a standalone server without transactions)`)
	return cmd
}
