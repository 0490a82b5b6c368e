// Command quickstart shows harmonia doing its whole job, on an embedded
// server by default:
//
//	go run ./examples/quickstart
//
// It runs the built-in migrations, imports the sample inventory (package
// examples/inventory, copied to a temporary directory where one model file
// is then deliberately corrupted), publishes a version of every artifact,
// enqueues a validate job for each of them, runs a worker until they
// finish, and prints a summary. It exits 0 when everything behaved as
// expected: the corrupted file detected, every other artifact verified.
//
// With HARMONIA_MONGODB_URI set it uses that deployment (in a database
// named harmonia_quickstart, dropped first) instead of an embedded server.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/examples/internal/exampledb"
	"github.com/harmonia-ml/harmonia/examples/inventory"
	"github.com/harmonia-ml/harmonia/migrate"
	"github.com/harmonia-ml/harmonia/worker"
)

// corrupted is the sample file the quickstart damages before validating.
const corrupted = "models/yolo-tiny-0.9.0.onnx"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("• "+format+"\n", args...) }

func run(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()

	conn, err := exampledb.Connect(ctx, exampledb.Options{Database: "harmonia_quickstart"})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	if err := conn.DB.Drop(ctx); err != nil {
		return err
	}
	store, err := harmonia.Open(ctx, conn.DB, nil)
	if err != nil {
		return err
	}
	caps := store.Capabilities()
	step("connected to the %s server (%s %s, transactions: %t, job leases on the %s clock)", conn.Lane, caps.Topology, caps.ServerVersion, caps.Transactions, store.Queue().LeaseClock())

	runner, err := migrate.New(conn.DB, migrate.Builtin(), nil)
	if err != nil {
		return err
	}
	mrep, err := runner.Up(ctx, nil)
	if err != nil {
		return err
	}
	step("migrations: %d applied", len(mrep.Applied))

	dir, err := os.MkdirTemp("", "harmonia-quickstart-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	irep, err := inventory.Load(ctx, store, dir)
	if err != nil {
		return err
	}
	step("imported the sample inventory: %d licenses, %d datasets, %d artifacts, %d versions",
		irep.Licenses.Inserted, irep.Datasets.Inserted, irep.Artifacts.Inserted, irep.Versions.Inserted)

	if err := corrupt(filepath.Join(dir, corrupted)); err != nil {
		return err
	}
	step("corrupted %s on disk (one byte flipped): validation must catch it", corrupted)

	arts, err := store.ListArtifacts(ctx, harmonia.ArtifactFilter{Limit: harmonia.ListLimitMax})
	if err != nil {
		return err
	}
	dss, err := store.ListDatasets(ctx, harmonia.DatasetFilter{Limit: harmonia.ListLimitMax})
	if err != nil {
		return err
	}
	req := harmonia.PublishRequest{VersionTag: "quickstart-" + time.Now().UTC().Format("2006.01.02"), PublishedBy: "quickstart"}
	for _, a := range arts.Items {
		req.ArtifactIDs = append(req.ArtifactIDs, a.ID)
	}
	for _, d := range dss.Items {
		req.DatasetIDs = append(req.DatasetIDs, d.ID)
	}
	pub, err := store.Publish(ctx, req)
	if err != nil {
		return err
	}
	step("published %s: %d artifacts, %d datasets (%s publish)", pub.Version.VersionTag, len(req.ArtifactIDs), len(req.DatasetIDs), pub.Path)

	jobs, err := validateAll(ctx, store, dir, req.ArtifactIDs)
	if err != nil {
		return err
	}
	return summary(ctx, store, pub, jobs, time.Since(start))
}

// corrupt flips one byte in the middle of the file at path.
func corrupt(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b[len(b)/2] ^= 0xff
	return os.WriteFile(path, b, 0o644)
}

// validateAll enqueues one validate job per artifact, runs a worker with
// the built-in validate handler until every job has finished, and returns
// the finished jobs by artifact.
func validateAll(ctx context.Context, store *harmonia.Store, root string, ids []bson.ObjectID) (map[bson.ObjectID]*harmonia.Job, error) {
	params := make([]harmonia.EnqueueParams, len(ids))
	for i, id := range ids {
		params[i] = harmonia.EnqueueParams{Type: harmonia.JobValidate, Params: harmonia.ValidateParams{ArtifactID: id},
			Opts: &harmonia.EnqueueOpts{MaxAttempts: 1, UniqueKey: "validate:" + id.Hex()}}
	}
	enq, err := store.Queue().EnqueueMany(ctx, params)
	if err != nil {
		return nil, err
	}
	step("enqueued %d validate jobs", len(enq))

	validate, err := worker.ValidateHandler(store, root)
	if err != nil {
		return nil, err
	}
	w, err := worker.New(store, &worker.Options{
		Handlers:     map[harmonia.JobType]worker.Handler{harmonia.JobValidate: validate},
		Concurrency:  2,
		PollInterval: 50 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(runCtx) }()

	jobIDs := make([]bson.ObjectID, len(enq))
	for i, r := range enq {
		jobIDs[i] = r.Job.ID
	}
	finished, err := store.Queue().WaitJobs(ctx, jobIDs, &harmonia.WaitOpts{Progress: func(n, total int) {
		step("worker %s: %d of %d jobs finished", w.ID(), n, total)
	}})
	stop()
	if err := errors.Join(err, <-stopped); err != nil {
		return nil, err
	}
	jobs := make(map[bson.ObjectID]*harmonia.Job, len(finished))
	for i, j := range finished {
		jobs[ids[i]] = j
	}
	return jobs, nil
}

// summary prints the outcome and checks it is the expected one.
func summary(ctx context.Context, store *harmonia.Store, pub *harmonia.PublishResult, jobs map[bson.ObjectID]*harmonia.Job, took time.Duration) error {
	vc, err := store.VersionContentsByTag(ctx, pub.Version.VersionTag)
	if err != nil {
		return err
	}
	fmt.Printf("\nversion %s (published by %s, %s path)\n\n", vc.Version.VersionTag, vc.Version.PublishedBy, pub.Path)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "artifact\tlicense\tverification\tjob")
	var failed, verified []string
	for _, a := range vc.Artifacts {
		lic := "-"
		if l := vc.Licenses[a.LicenseID]; l != nil {
			lic = l.SPDXID
		}
		result := "not checked"
		switch {
		case a.VerifyError != "":
			reason, _, _ := strings.Cut(a.VerifyError, ":")
			result = "FAILED: " + reason
			failed = append(failed, a.Path)
		case a.VerifiedAt != nil:
			result = "verified"
			verified = append(verified, a.Path)
		}
		job := "-"
		if j := jobs[a.ID]; j != nil {
			job = fmt.Sprintf("%s (attempt %d)", j.Status, j.Attempt)
			var checked worker.VerifyResult
			if err := j.DecodeResult(&checked); err != nil {
				return err
			}
			if checked.Path != "" {
				job += fmt.Sprintf(", read %d bytes", checked.SizeBytes)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Key(), lic, result, job)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var succeeded, jobFailed int
	for _, j := range jobs {
		if j.Status == harmonia.JobSuccess {
			succeeded++
		} else {
			jobFailed++
		}
	}
	for _, j := range jobs {
		if j.Status == harmonia.JobFailed {
			fmt.Printf("\nfailed job %s: %s\n", j.ID.Hex(), j.Error)
		}
	}
	fmt.Printf("\njobs: %d succeeded, %d failed; %d datasets in the version; took %.1fs\n", succeeded, jobFailed, len(vc.Datasets), took.Seconds())

	if len(failed) != 1 || failed[0] != corrupted || len(verified) != len(vc.Artifacts)-1 {
		return fmt.Errorf("expected exactly %s to fail verification and the rest to pass; failed %v, verified %v", corrupted, failed, verified)
	}
	fmt.Println("as expected: the corrupted file was detected and every other artifact verified")
	return nil
}
