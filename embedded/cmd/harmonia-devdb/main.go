// Command harmonia-devdb serves a development database: harmonia's
// embedded MongoDB-compatible server (package embedded), for mongosh,
// Compass or a service under development to connect to. It is not for
// production; see the embedded package documentation for what it lacks.
//
// Usage:
//
//	go run ./embedded/cmd/harmonia-devdb [-dir ./harmonia-data] [-addr 127.0.0.1:27017] [-memory] [-replset rs0] [-exit-with-stdin]
//
// It prints the connection string and serves until interrupted (SIGINT or
// SIGTERM), or, with -exit-with-stdin, until its standard input closes (so
// a parent process that dies takes the server with it; package
// harmoniatest uses this). Data in -dir survives restarts; -memory keeps
// nothing. With -replset NAME it serves as the primary of a one-member
// replica set named NAME, with multi-document transactions; connect with
// the printed URI, which names the set.
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

	"github.com/harmonia-ml/harmonia/embedded"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "harmonia-devdb:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "./harmonia-data", "data directory, created if missing; kept across restarts")
	addr := flag.String("addr", "127.0.0.1:27017", "listen address")
	memory := flag.Bool("memory", false, "keep no data: ignore -dir and discard everything on exit")
	withStdin := flag.Bool("exit-with-stdin", false, "stop when standard input closes")
	replSet := flag.String("replset", "", "serve as the primary of a one-member replica set of this name, with transactions")
	flag.Parse()

	opts := embedded.Options{
		Dir:        *dir,
		Addr:       *addr,
		ReplicaSet: *replSet,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	where := "data in " + *dir
	if *memory {
		opts.Dir, opts.InMemory = "", true
		where = "data in memory, discarded on exit"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *withStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	srv, err := embedded.Start(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Printf("harmonia-devdb: serving %s (%s)\n", srv.URI(), where)
	fmt.Printf("connect with:  mongosh %s\n", srv.URI())
	fmt.Println("press Ctrl-C to stop")

	<-ctx.Done()
	fmt.Println("harmonia-devdb: stopping")
	return srv.Close()
}
