// Command service is a small HTTP JSON service of one's own built on
// harmonia, to show how a service composes harmonia into its own units of
// work. For harmonia's HTTP API itself (every entity, aliases with
// compare-and-set and a watch, jobs, an OpenAPI document, scoped tokens)
// mount package httpapi or run `harmonia serve`. This one does, as a team
// would run it: list and search artifacts, show a version and its
// contents, publish (with the service's own audit record in the same
// transaction), and validate artifacts with a job worker in the same
// process. It shuts down gracefully on SIGINT or SIGTERM.
//
//	go run ./examples/service [-addr 127.0.0.1:8080] [-uri mongodb://…] [-root DIR]
//
//	GET  /artifacts?tag=vision&name_prefix=res&limit=50&after=ID
//	GET  /versions
//	GET  /versions/{tag}
//	POST /versions            {"version_tag": "2026.12.0", "artifacts": ["<id>"], "published_by": "me"}
//	POST /artifacts/{id}/validate
//	GET  /jobs/{id}
//
// Errors map harmonia's codes to HTTP: invalid 400, not found 404,
// conflict 409, anything else 500, with the entity, field and reason in
// the body: {"error": {"code": "invalid", "entity": …, "field": …, "reason": …}}.
//
// Without -uri (or HARMONIA_MONGODB_URI) it starts the embedded server as a
// replica set and imports the sample inventory (examples/inventory), whose
// files the worker then validates under a temporary -root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/examples/internal/exampledb"
	"github.com/harmonia-ml/harmonia/examples/inventory"
	"github.com/harmonia-ml/harmonia/migrate"
	"github.com/harmonia-ml/harmonia/worker"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	uri := flag.String("uri", "", "MongoDB URI (default $HARMONIA_MONGODB_URI, else an embedded server with the sample inventory)")
	root := flag.String("root", "", "directory the validate jobs read artifact files in (default: the sample inventory's, in a temporary directory)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, log, *addr, *uri, *root, nil); err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled, then shuts down: the HTTP server
// finishes its requests, the worker gives its running jobs back. ready, if
// not nil, receives the address the service listens on.
func run(ctx context.Context, log *slog.Logger, addr, uri, root string, ready chan<- string) (err error) {
	conn, err := exampledb.Connect(ctx, exampledb.Options{URI: uri})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	store, err := harmonia.Open(ctx, conn.DB, &harmonia.Options{Logger: log})
	if err != nil {
		return err
	}
	runner, err := migrate.New(conn.DB, migrate.Builtin(), nil)
	if err != nil {
		return err
	}
	if _, err := runner.Up(ctx, nil); err != nil {
		return err
	}
	if root == "" {
		if root, err = os.MkdirTemp("", "harmonia-service-"); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(root)) }()
		if err := sampleInventory(ctx, store, root, conn.Lane == exampledb.LaneEmbedded); err != nil {
			return err
		}
	}

	validate, err := worker.ValidateHandler(store, root)
	if err != nil {
		return err
	}
	worker, err := worker.New(store, &worker.Options{
		Handlers: map[harmonia.JobType]worker.Handler{harmonia.JobValidate: validate}, Logger: log})
	if err != nil {
		return err
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: NewService(store, log).Handler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	var workerErr error
	wg.Go(func() { workerErr = worker.Run(ctx) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serving", "addr", "http://"+ln.Addr().String(), "database", conn.Lane, "root", root, "transactions", store.Capabilities().Transactions)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = srv.Shutdown(shutdownCtx)
	}
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	log.Info("stopped")
	return errors.Join(err, workerErr)
}

// sampleInventory copies the sample inventory's files under root and, on
// a database of the example's own, imports its entries.
func sampleInventory(ctx context.Context, store *harmonia.Store, root string, load bool) error {
	if !load {
		return os.CopyFS(root, inventory.FS)
	}
	_, err := inventory.Load(ctx, store, root)
	return err
}
