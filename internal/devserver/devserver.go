// Package devserver serves a development database, harmonia's embedded
// server (package embedded), until its context ends. The harmonia-devdb
// program and the harmonia command's devdb subcommand both run it, so they
// behave and print alike.
package devserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/harmonia-ml/harmonia/embedded"
)

// Defaults of [Options].
const (
	// DirDefault is the data directory when Options.Dir is empty.
	DirDefault = "./harmonia-data"
	// AddrDefault is the listen address when Options.Addr is empty.
	AddrDefault = "127.0.0.1:27017"
)

// ServingPrefix starts the line Serve prints when the server is up; the
// connection string follows it. Programs that run harmonia-devdb read
// the URI from that line.
const ServingPrefix = "harmonia-devdb: serving "

// Options says what to serve.
type Options struct {
	// Dir is the data directory, created if missing and kept across
	// restarts. Defaults to DirDefault.
	Dir string
	// Memory keeps no data: Dir is ignored and everything is discarded
	// when Serve returns. Defaults to false.
	Memory bool
	// Addr is the listen address. Defaults to AddrDefault.
	Addr string
	// ReplicaSet, when set, serves the primary of a one-member replica set
	// of that name, with multi-document transactions. Defaults to "".
	ReplicaSet string
	// NoJournal turns off the replica-set mode's transaction journal
	// (embedded.Options.NoJournal): transactions are then not
	// crash-atomic. Defaults to false.
	NoJournal bool
	// Logger receives the server's warnings. Defaults to discarding them.
	Logger *slog.Logger
}

// Serve starts the server, prints its connection string to out, serves
// until ctx ends, then stops it.
func Serve(ctx context.Context, o Options, out io.Writer) error {
	if o.Dir == "" {
		o.Dir = DirDefault
	}
	if o.Addr == "" {
		o.Addr = AddrDefault
	}
	opts := embedded.Options{Dir: o.Dir, Addr: o.Addr, ReplicaSet: o.ReplicaSet, NoJournal: o.NoJournal, Logger: o.Logger}
	where := "data in " + o.Dir
	if o.Memory {
		opts.Dir, opts.InMemory = "", true
		where = "data in memory, discarded on exit"
	}
	srv, err := embedded.Start(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s%s (%s)\n", ServingPrefix, srv.URI(), where)
	fmt.Fprintf(out, "connect with:  mongosh %s\n", srv.URI())
	fmt.Fprintln(out, "press Ctrl-C to stop")

	<-ctx.Done()
	fmt.Fprintln(out, "harmonia-devdb: stopping")
	return srv.Close()
}
