// Command harmonia-devdb serves a development database: harmonia's
// embedded MongoDB-compatible server (package embedded), for mongosh,
// Compass or a service under development to connect to. It is not for
// production; see the embedded package documentation for what it lacks.
//
// Usage:
//
//	go run ./embedded/cmd/harmonia-devdb [-dir ./harmonia-data] [-addr 127.0.0.1:27017] [-memory] [-replset rs0] [-nojournal] [-exit-with-stdin]
//
// It prints the connection string and serves until interrupted (SIGINT or
// SIGTERM), or, with -exit-with-stdin, until its standard input closes (so
// a parent process that dies takes the server with it; package
// harmoniatest uses this). Data in -dir survives restarts; -memory keeps
// nothing. With -replset NAME it serves as the primary of a one-member
// replica set named NAME, with multi-document transactions; connect with
// the printed URI, which names the set. Those transactions are journaled
// in -dir, so that a crash leaves none of them half done; -nojournal turns
// that off, to measure what it costs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/harmonia-ml/harmonia/internal/devserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "harmonia-devdb:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", devserver.DirDefault, "data directory, created if missing; kept across restarts")
	addr := flag.String("addr", devserver.AddrDefault, "listen address")
	memory := flag.Bool("memory", false, "keep no data: ignore -dir and discard everything on exit")
	withStdin := flag.Bool("exit-with-stdin", false, "stop when standard input closes")
	replSet := flag.String("replset", "", "serve as the primary of a one-member replica set of this name, with transactions")
	noJournal := flag.Bool("nojournal", false, "with -replset: no transaction journal, so a crash during a transaction leaves part of it (for measurements)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *withStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	return devserver.Serve(ctx, devserver.Options{
		Dir: *dir, Addr: *addr, Memory: *memory, ReplicaSet: *replSet, NoJournal: *noJournal,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, os.Stdout)
}
