// Package devserver serves a development database, harmonia's embedded
// server (package embedded), until its context ends. The harmonia-devdb
// program and the harmonia command's devdb subcommand both run it, so they
// behave and print alike.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

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

// URIFile is the file, in a data directory, that holds the connection
// string of the server that serves the directory, for as long as it does
// (beside the embedded server's lock file). Another process that finds
// the directory in use connects to that server instead.
const URIFile = "harmonia-server.uri"

// PublishURI writes uri to dir's URIFile (atomically: a reader sees the
// whole URI or no file) and returns the function that removes it, to call
// before the server stops.
func PublishURI(dir, uri string) (remove func(), err error) {
	path := filepath.Join(dir, URIFile)
	tmp, err := os.CreateTemp(dir, URIFile+".*")
	if err != nil {
		return nil, err
	}
	_, werr := tmp.WriteString(uri + "\n")
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return nil, err
	}
	return func() { _ = os.Remove(path) }, nil
}

// ReadURI returns the connection string PublishURI wrote in dir, or an
// error when there is none.
func ReadURI(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, URIFile))
	if err != nil {
		return "", err
	}
	uri := strings.TrimSpace(string(b))
	if uri == "" {
		return "", fmt.Errorf("%s is empty", filepath.Join(dir, URIFile))
	}
	return uri, nil
}

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
	// NoPrefix leaves out the "harmonia-devdb: " that starts the lines
	// Serve prints (the harmonia command's devdb speaks for itself).
	// Defaults to false.
	NoPrefix bool
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
	if !o.Memory {
		remove, err := PublishURI(o.Dir, srv.URI())
		if err != nil {
			return errors.Join(fmt.Errorf("write %s: %w", URIFile, err), srv.Close())
		}
		defer remove()
	}
	prefix := ServingPrefix
	if o.NoPrefix {
		prefix = strings.TrimPrefix(prefix, "harmonia-devdb: ")
	}
	fmt.Fprintf(out, "%s%s (%s)\n", prefix, srv.URI(), where)
	fmt.Fprintf(out, "connect with:  mongosh %s\n", srv.URI())
	fmt.Fprintln(out, "press Ctrl-C to stop")

	<-ctx.Done()
	if o.NoPrefix {
		fmt.Fprintln(out, "stopping")
	} else {
		fmt.Fprintln(out, "harmonia-devdb: stopping")
	}
	return srv.Close()
}
