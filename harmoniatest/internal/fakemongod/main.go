// Command fakemongod stands in for mongod in harmoniatest's own tests of
// the mongod lane, where no mongod binary can be had: it takes the flags
// the lane passes to mongod (--replSet, --port, --dbpath, --bind_ip,
// --logpath) and serves harmonia's embedded server in its replica-set mode
// until SIGINT or SIGTERM, so that the lane's start, replica-set
// initiation, wait and clean-up run for real. It is a test program, not
// part of harmonia.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/harmonia-ml/harmonia/embedded"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakemongod:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("fakemongod", flag.ContinueOnError)
	replSet := fs.String("replSet", "", "replica set name")
	port := fs.String("port", "27017", "port")
	dbpath := fs.String("dbpath", "", "data directory")
	bindIP := fs.String("bind_ip", "127.0.0.1", "listen address")
	logpath := fs.String("logpath", "", "log file")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	logOut := os.Stderr
	if *logpath != "" {
		f, err := os.Create(*logpath)
		if err != nil {
			return err
		}
		defer f.Close()
		logOut = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := embedded.Start(ctx, embedded.Options{
		Dir:        *dbpath,
		Addr:       net.JoinHostPort(*bindIP, *port),
		ReplicaSet: *replSet,
		Logger:     slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return srv.Close()
}
