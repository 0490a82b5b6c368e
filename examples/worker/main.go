// Command worker runs harmonia's job worker until SIGINT or SIGTERM: it
// claims validate and download jobs from the queue, runs them with the
// built-in handlers on files under -root, and on a signal stops claiming,
// cancels its running handlers and gives their jobs back to the queue.
//
//	go run ./examples/worker -uri mongodb://localhost:27017 -root /srv/models
//
// Download jobs fetch only from the directories and hosts named with
// -allow-dir and -allow-host (each repeatable); without them every
// download is refused:
//
//	go run ./examples/worker -root /srv/models -allow-dir /srv/incoming -allow-host models.example.com
//
// Every worker process also runs the built-in audit schedule (validate
// jobs for the published artifacts, daily at 03:00 UTC, enqueued once
// between all the processes); -audit=false turns it off.
//
// Without -uri (or HARMONIA_MONGODB_URI) it starts an embedded server and,
// so that there is something to do, enqueues a validate job for a small
// file it writes under -root.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/examples/internal/exampledb"
	"github.com/harmonia-ml/harmonia/worker"
)

func main() {
	uri := flag.String("uri", "", "MongoDB URI (default $HARMONIA_MONGODB_URI, else an embedded server with a demo job)")
	root := flag.String("root", "", "directory the handlers read and write artifact files in (default: a temporary one)")
	concurrency := flag.Int("concurrency", worker.ConcurrencyDefault, "jobs run at once")
	audit := flag.Bool("audit", true, "run the built-in audit schedule (once per period across all processes)")
	sources := worker.DownloadOptions{Client: &http.Client{Timeout: 10 * time.Minute}}
	flag.Func("allow-dir", "a directory download jobs may read file:// sources from (repeatable; default none)", func(v string) error {
		sources.AllowedDirs = append(sources.AllowedDirs, v)
		return nil
	})
	flag.Func("allow-host", "a host[:port] download jobs may fetch http(s) sources from (repeatable; default none)", func(v string) error {
		sources.AllowedHosts = append(sources.AllowedHosts, v)
		return nil
	})
	flag.Parse()

	// SIGINT or SIGTERM cancels ctx: the worker shuts down gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *uri, *root, *concurrency, *audit, &sources); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, uri, root string, concurrency int, audit bool, sources *worker.DownloadOptions) (err error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	conn, err := exampledb.Connect(ctx, exampledb.Options{URI: uri})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	store, err := harmonia.Open(ctx, conn.DB, &harmonia.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		return err
	}
	if root == "" {
		if root, err = os.MkdirTemp("", "harmonia-worker-"); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(root)) }()
	}
	if conn.Lane == exampledb.LaneEmbedded {
		if err := demoJob(ctx, store, root); err != nil {
			return err
		}
	}

	validate, err := worker.ValidateHandler(store, root)
	if err != nil {
		return err
	}
	download, err := worker.DownloadHandler(store, root, sources)
	if err != nil {
		return err
	}
	w, err := worker.New(store, &worker.Options{
		Handlers: map[harmonia.JobType]worker.Handler{
			harmonia.JobValidate: validate,
			harmonia.JobDownload: download,
		},
		Concurrency: concurrency,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	if audit {
		sc, err := worker.NewScheduler(store, &worker.SchedulerOptions{
			Schedules: []worker.Schedule{worker.AuditSchedule(nil)}, Logger: log})
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		wg.Go(func() { _ = sc.Run(ctx) }) // until ctx is cancelled
		defer wg.Wait()
	}
	log.Info("worker running; Ctrl-C to stop", "id", w.ID(), "server", conn.Lane, "root", root)
	err = w.Run(ctx) // returns after a graceful shutdown once ctx is cancelled
	s := w.Stats()
	log.Info("worker stopped", "claimed", s.Claimed, "succeeded", s.Succeeded, "failed", s.Failed, "released", s.Released)
	return err
}

// demoJob writes a small model file and enqueues a validate job for it.
func demoJob(ctx context.Context, store *harmonia.Store, root string) error {
	data := []byte("demo model weights\n")
	if err := os.WriteFile(filepath.Join(root, "demo.onnx"), data, 0o644); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	a := &harmonia.ModelArtifact{Name: "demo", Version: "1.0.0", Path: "demo.onnx", SizeBytes: int64(len(data)),
		Hashes: harmonia.Hashes{SHA256: hex.EncodeToString(sum[:])}}
	if err := store.CreateArtifact(ctx, a); err != nil {
		return err
	}
	_, err := store.Queue().Enqueue(ctx, harmonia.JobValidate, harmonia.ValidateParams{ArtifactID: a.ID}, nil)
	return err
}
