// Package bench measures harmonia against its baselines: the job queue
// against a plain driver loop doing the same claim and finish, file
// hashing against `openssl dgst -sha256`, and the inventory import against
// a plain InsertMany (with a generator of inventory files of any size, and
// the peak heap of a dry run). harmonia's Go benchmarks and the
// examples/bench program both call it, so that they measure the same
// thing.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/worker"
)

// JobType is the type of the no-op jobs the claim benchmark runs.
const JobType harmonia.JobType = "bench-noop"

// DriverCollection is the collection the plain driver loop works on.
const DriverCollection = "bench_driver_jobs"

// ClaimResult is one run of [ClaimAndFinish].
type ClaimResult struct {
	// Jobs is how many jobs each side ran; Workers how many workers or
	// goroutines ran them.
	Jobs, Workers int
	// Harmonia is the time harmonia's workers took to claim and finish
	// every job; Driver is the time of the plain driver loop.
	Harmonia, Driver time.Duration
}

// Ratio is harmonia's throughput over the driver loop's: 1 is parity.
func (r ClaimResult) Ratio() float64 { return r.Driver.Seconds() / r.Harmonia.Seconds() }

// ClaimAndFinish runs jobs no-op jobs through workers harmonia Workers (of
// concurrency 1), and the same number of jobs through workers goroutines
// of a plain driver loop doing the same findOneAndUpdate claim and
// updateOne finish, on the same server, and times both. The run that goes
// second is measurably faster on the embedded server, so an even round
// runs the driver loop first and an odd round harmonia: alternate rounds
// to cancel the order out. It replaces the jobs and events collections of
// db and the collection DriverCollection.
func ClaimAndFinish(ctx context.Context, db *mongo.Database, jobs, workers, round int) (ClaimResult, error) {
	r := ClaimResult{Jobs: jobs, Workers: workers}
	runs := []func() error{
		func() (err error) {
			if r.Driver, err = runDriver(ctx, db, jobs, workers); err != nil {
				err = fmt.Errorf("driver loop: %w", err)
			}
			return err
		},
		func() (err error) {
			if r.Harmonia, err = runHarmonia(ctx, db, jobs, workers); err != nil {
				err = fmt.Errorf("harmonia: %w", err)
			}
			return err
		},
	}
	if round%2 == 1 {
		runs[0], runs[1] = runs[1], runs[0]
	}
	for _, run := range runs {
		if err := run(); err != nil {
			return r, err
		}
	}
	return r, nil
}

func runHarmonia(ctx context.Context, db *mongo.Database, jobs, workers int) (time.Duration, error) {
	noop := func(context.Context, *harmonia.Job, *worker.JobLogger) (any, error) { return nil, nil }
	ws, err := harmoniaWorkers(ctx, db, jobs, workers, 1, noop)
	if err != nil {
		return 0, err
	}
	return runUntilDone(ctx, ws, jobs)
}

// harmoniaWorkers replaces the jobs and events collections of db with
// jobs enqueued jobs of JobType, and returns workers workers of
// concurrency that run them with h, sharing one Store.
func harmoniaWorkers(ctx context.Context, db *mongo.Database, jobs, workers, concurrency int, h worker.Handler) ([]*worker.Worker, error) {
	for _, c := range []string{harmonia.CollectionJobs, harmonia.CollectionEvents} {
		if err := db.Collection(c).Drop(ctx); err != nil {
			return nil, err
		}
	}
	store, err := harmonia.Open(ctx, db, nil)
	if err != nil {
		return nil, err
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		return nil, err
	}
	params := make([]harmonia.EnqueueParams, jobs)
	for i := range params {
		params[i] = harmonia.EnqueueParams{Type: JobType}
	}
	if _, err := store.Queue().EnqueueMany(ctx, params); err != nil {
		return nil, err
	}
	ws := make([]*worker.Worker, workers)
	for i := range ws {
		if ws[i], err = worker.New(store, &worker.Options{
			ID: fmt.Sprintf("bench-%d", i), Concurrency: concurrency, PollInterval: 10 * time.Millisecond,
			Handlers: map[harmonia.JobType]worker.Handler{JobType: h},
		}); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// runUntilDone runs ws until they have recorded the outcomes of jobs
// jobs, stops them, and returns how long the jobs took.
func runUntilDone(ctx context.Context, ws []*worker.Worker, jobs int) (time.Duration, error) {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	start := time.Now()
	for _, w := range ws {
		wg.Go(func() { _ = w.Run(runCtx) })
	}
	for done := int64(0); done < int64(jobs); {
		if err := ctx.Err(); err != nil {
			stop()
			wg.Wait()
			return 0, err
		}
		time.Sleep(time.Millisecond)
		done = 0
		for _, w := range ws {
			s := w.Stats()
			done += s.Succeeded + s.Failed
		}
	}
	elapsed := time.Since(start)
	stop()
	wg.Wait()
	return elapsed, nil
}

// runDriver is the baseline: the claim and the finish harmonia makes,
// written directly against the driver.
func runDriver(ctx context.Context, db *mongo.Database, jobs, workers int) (time.Duration, error) {
	col := db.Collection(DriverCollection)
	if err := col.Drop(ctx); err != nil {
		return 0, err
	}
	for _, ix := range harmonia.Indexes() {
		if ix.Collection == harmonia.CollectionJobs {
			o := options.Index().SetName(ix.Name).SetUnique(ix.Unique)
			if _, err := col.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.Keys, Options: o}); err != nil {
				return 0, err
			}
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	docs := make([]any, jobs)
	for i := range docs {
		id := bson.NewObjectID()
		docs[i] = bson.D{
			{Key: "_id", Value: id}, {Key: "schema_version", Value: harmonia.SchemaVersion}, {Key: "type", Value: JobType},
			{Key: "status", Value: harmonia.JobPending}, {Key: "priority", Value: 0}, {Key: "run_after", Value: now},
			{Key: "attempt", Value: 0}, {Key: "max_attempts", Value: harmonia.MaxAttemptsDefault},
			{Key: "created_at", Value: now}, {Key: "updated_at", Value: now}, {Key: "unique_lock", Value: "job:" + id.Hex()},
		}
	}
	if _, err := col.InsertMany(ctx, docs); err != nil {
		return 0, err
	}
	start := time.Now()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { errs[w] = driverLoop(ctx, col, fmt.Sprintf("driver-%d", w)) })
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

func driverLoop(ctx context.Context, col *mongo.Collection, worker string) error {
	types := []harmonia.JobType{JobType}
	sort := bson.D{{Key: "priority", Value: -1}, {Key: "run_after", Value: 1}, {Key: "_id", Value: 1}}
	for n := 0; ; n++ {
		now := time.Now().UTC().Truncate(time.Millisecond)
		token := fmt.Sprintf("%s-%d", worker, n)
		ofType := bson.E{Key: "type", Value: bson.D{{Key: "$in", Value: types}}}
		filter := bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "status", Value: harmonia.JobPending}, ofType, {Key: "run_after", Value: bson.D{{Key: "$lte", Value: now}}}},
			bson.D{{Key: "status", Value: harmonia.JobRunning}, ofType, {Key: "lease_expires_at", Value: bson.D{{Key: "$lt", Value: now}}}},
		}}}
		update := bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "status", Value: harmonia.JobRunning}, {Key: "worker_id", Value: worker}, {Key: "started_at", Value: now},
				{Key: "lease_token", Value: token}, {Key: "lease_expires_at", Value: now.Add(time.Minute)}, {Key: "updated_at", Value: now},
			}},
			{Key: "$inc", Value: bson.D{{Key: "attempt", Value: 1}}},
		}
		var job harmonia.Job
		err := col.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetSort(sort).SetReturnDocument(options.After)).Decode(&job)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil
		}
		if err != nil {
			return err
		}
		res, err := col.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: job.ID}, {Key: "lease_token", Value: token}, {Key: "status", Value: harmonia.JobRunning}},
			bson.D{
				{Key: "$set", Value: bson.D{{Key: "status", Value: harmonia.JobSuccess}, {Key: "finished_at", Value: now}, {Key: "updated_at", Value: now}}},
				{Key: "$unset", Value: bson.D{{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}}},
			})
		if err != nil {
			return err
		}
		if res.MatchedCount != 1 {
			return fmt.Errorf("job %s: lost its claim", job.ID.Hex())
		}
	}
}

// HashResult is one run of [HashVsOpenSSL].
type HashResult struct {
	// Bytes is the size of the file hashed.
	Bytes int64
	// Harmonia is the time of worker.HashFile; OpenSSL the time of
	// `openssl dgst -sha256`, process start included.
	Harmonia, OpenSSL time.Duration
}

// Ratio is HashFile's throughput over OpenSSL's: 1 is parity.
func (r HashResult) Ratio() float64 { return r.OpenSSL.Seconds() / r.Harmonia.Seconds() }

// ErrNoOpenSSL is returned by [HashVsOpenSSL] when no openssl command is
// on the PATH.
var ErrNoOpenSSL = errors.New("bench: no openssl command on the PATH")

// HashVsOpenSSL hashes the file at path with worker.HashFile and with
// `openssl dgst -sha256`, checks that they agree, and times both. Read the
// file once before, so that both find it in the page cache.
func HashVsOpenSSL(ctx context.Context, path string) (HashResult, error) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		return HashResult{}, ErrNoOpenSSL
	}
	var r HashResult
	start := time.Now()
	sum, n, err := worker.HashFile(ctx, path)
	r.Harmonia, r.Bytes = time.Since(start), n
	if err != nil {
		return r, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, openssl, "dgst", "-sha256", "-r", path)
	cmd.Stdout = &out
	start = time.Now()
	err = cmd.Run()
	r.OpenSSL = time.Since(start)
	if err != nil {
		return r, fmt.Errorf("openssl: %w", err)
	}
	if got, _, _ := strings.Cut(out.String(), " "); got != sum {
		return r, fmt.Errorf("digests differ: HashFile %s, openssl %s", sum, got)
	}
	return r, nil
}

// JobCommandsResult is one run of [JobCommands].
type JobCommandsResult struct {
	// Jobs is how many jobs ran, each logging two lines; Commands how
	// many server commands the workers sent to run them.
	Jobs, Commands int
	// Elapsed is the time the workers took.
	Elapsed time.Duration
}

// PerJob is the amortized number of commands per job.
func (r JobCommandsResult) PerJob() float64 { return float64(r.Commands) / float64(r.Jobs) }

// JobCommands enqueues jobs jobs whose handler logs two lines, runs them
// on workers Workers of the given concurrency sharing one Store on db, and
// returns how many commands the run took, as counted (a function that
// returns how many commands db's client sent so far): claims,
// heartbeats, log lines and outcomes, the enqueue not included. It
// replaces the jobs and events collections of db.
func JobCommands(ctx context.Context, db *mongo.Database, counted func() int, jobs, workers, concurrency int) (JobCommandsResult, error) {
	r := JobCommandsResult{Jobs: jobs}
	logTwo := func(ctx context.Context, _ *harmonia.Job, log *worker.JobLogger) (any, error) {
		if err := log.Log(ctx, harmonia.LevelInfo, "started"); err != nil {
			return nil, err
		}
		return nil, log.Log(ctx, harmonia.LevelInfo, "done")
	}
	ws, err := harmoniaWorkers(ctx, db, jobs, workers, concurrency, logTwo)
	if err != nil {
		return r, err
	}
	before := counted()
	elapsed, err := runUntilDone(ctx, ws, jobs)
	r.Commands, r.Elapsed = counted()-before, elapsed
	if err != nil {
		return r, err
	}
	n, err := db.Collection(harmonia.CollectionEvents).CountDocuments(ctx, bson.D{})
	if err != nil {
		return r, err
	}
	if n != int64(2*jobs) {
		return r, fmt.Errorf("%d log lines written, want %d", n, 2*jobs)
	}
	return r, nil
}
