package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/docdb"
	"github.com/harmonia-ml/harmonia/worker"
)

// Enqueue a validate job and run a worker with the built-in validate
// handler: it checks the artifact's file under the worker's root and
// records verified_at on the artifact.
func ExampleWorker() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	// A model file under the directory the worker's handlers work in.
	root, err := os.MkdirTemp("", "harmonia-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	model := []byte("model weights")
	if err := os.WriteFile(filepath.Join(root, "tiny.onnx"), model, 0o644); err != nil {
		log.Fatal(err)
	}
	sum := sha256.Sum256(model)
	a := &harmonia.ModelArtifact{Name: "tiny", Version: "1.0.0", Path: "tiny.onnx",
		SizeBytes: int64(len(model)), Hashes: harmonia.Hashes{SHA256: hex.EncodeToString(sum[:])}}
	if err := store.CreateArtifact(ctx, a); err != nil {
		log.Fatal(err)
	}

	res, err := store.Queue().Enqueue(ctx, harmonia.JobValidate, harmonia.ValidateParams{ArtifactID: a.ID},
		&harmonia.EnqueueOpts{UniqueKey: "validate:" + a.Key()})
	if err != nil {
		log.Fatal(err)
	}

	validate, err := worker.ValidateHandler(store, root)
	if err != nil {
		log.Fatal(err)
	}
	w, err := worker.New(store, &worker.Options{
		Handlers: map[harmonia.JobType]worker.Handler{harmonia.JobValidate: validate},
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(runCtx) }()
	jobs, err := store.Queue().WaitJobs(ctx, []bson.ObjectID{res.Job.ID}, &harmonia.WaitOpts{PollInterval: 10 * time.Millisecond})
	stop() // a graceful shutdown: Run returns once its handlers have
	if err := errors.Join(err, <-stopped); err != nil {
		log.Fatal(err)
	}
	job := jobs[0]
	var result worker.VerifyResult
	if err := job.DecodeResult(&result); err != nil {
		log.Fatal(err)
	}

	fmt.Println(job.Status, "at attempt", job.Attempt, "checked", result.Path, result.SizeBytes, "bytes")
	events, err := store.Queue().JobLog(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range events {
		fmt.Println(ev.Level, ev.Message)
	}
	got, err := store.GetArtifact(ctx, a.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", got.VerifiedAt != nil)
	// Output:
	// success at attempt 1 checked tiny.onnx 13 bytes
	// info validating tiny@1.0.0: tiny.onnx, 13 bytes
	// info size and sha256 match
	// verified: true
}

// Hash a file as the validate and download handlers do: streamed through
// a pooled buffer, so memory does not grow with the file.
func ExampleHashFile() {
	dir, err := os.MkdirTemp("", "harmonia-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "weights.bin")
	if err := os.WriteFile(path, []byte("test"), 0o644); err != nil {
		log.Fatal(err)
	}
	sum, size, err := worker.HashFile(context.Background(), path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(size, sum)
	// Output:
	// 4 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
}
