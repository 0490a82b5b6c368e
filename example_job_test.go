package harmonia_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/docdb"
)

// Run jobs with a loop of one's own: claim, write as the lease holder,
// finish. A second enqueue with the same unique key returns the pending
// job instead of queueing another.
func ExampleQueue_ClaimJob() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	opts := &harmonia.EnqueueOpts{UniqueKey: "reindex", MaxAttempts: 2}
	first, err := store.Queue().Enqueue(ctx, "reindex", bson.D{{Key: "shard", Value: 3}}, opts)
	if err != nil {
		log.Fatal(err)
	}
	again, err := store.Queue().Enqueue(ctx, "reindex", bson.D{{Key: "shard", Value: 3}}, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("duplicate:", again.Duplicate, again.Job.ID == first.Job.ID)

	job, err := store.Queue().ClaimJob(ctx, "worker-1", []harmonia.JobType{"reindex"}, time.Minute)
	if err != nil || job == nil {
		log.Fatal("no job: ", err)
	}
	var p struct {
		Shard int `bson:"shard"`
	}
	if err := job.DecodeParams(&p); err != nil {
		log.Fatal(err)
	}
	if err := store.Queue().AppendLog(ctx, job, harmonia.LevelInfo, fmt.Sprintf("reindexing shard %d", p.Shard)); err != nil {
		log.Fatal(err)
	}
	if err := store.Queue().CompleteJob(ctx, job, bson.D{{Key: "documents", Value: 1200}}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.Status, job.Attempt, job.Result.Lookup("documents").Int32())

	// The lease is gone with the finish: a late write is refused.
	err = store.Queue().Heartbeat(ctx, job, time.Minute)
	fmt.Println(errors.Is(err, harmonia.ErrLeaseLost))
	// Output:
	// duplicate: true true
	// success 1 1200
	// true
}

// Cancel a pending job: it is taken off the queue with the status
// cancelled, and its unique key is free again. A running job can be
// cancelled too: its lease ends, so its worker's next heartbeat (or its
// outcome) is refused, and a Worker cancels the handler's context with
// ErrJobCancelled.
func ExampleQueue_CancelJob() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	opts := &harmonia.EnqueueOpts{UniqueKey: "rebuild-index"}
	res, err := store.Queue().Enqueue(ctx, "rebuild", nil, opts)
	if err != nil {
		log.Fatal(err)
	}
	cancelled, err := store.Queue().CancelJob(ctx, res.Job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cancelled.Status)
	again, err := store.Queue().Enqueue(ctx, "rebuild", nil, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the key is free:", !again.Duplicate)
	job, err := store.Queue().ClaimJob(ctx, "worker-1", []harmonia.JobType{"rebuild"}, time.Minute)
	if err != nil || job == nil {
		log.Fatal("no job: ", err)
	}
	if _, err := store.Queue().CancelJob(ctx, job.ID); err != nil {
		log.Fatal(err)
	}
	err = store.Queue().Heartbeat(ctx, job, time.Minute)
	fmt.Println("heartbeat refused:", errors.Is(err, harmonia.ErrLeaseLost))
	// Output:
	// cancelled
	// the key is free: true
	// heartbeat refused: true
}

// Claim a batch of jobs and record their outcomes together: two commands
// for the claim (a find and one update stamping every job), one for the
// outcomes, however many jobs. An outcome whose lease was lost would be
// refused alone.
func ExampleQueue_ClaimJobs() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()
	batch := make([]harmonia.EnqueueParams, 5)
	for i := range batch {
		batch[i] = harmonia.EnqueueParams{Type: "thumbnail", Params: bson.D{{Key: "n", Value: i}}}
	}
	if _, err := store.Queue().EnqueueMany(ctx, batch); err != nil {
		log.Fatal(err)
	}

	jobs, err := store.Queue().ClaimJobs(ctx, "worker-1", []harmonia.JobType{"thumbnail"}, 4, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	outcomes := make([]*harmonia.LeaseWrite, len(jobs))
	for i, job := range jobs {
		outcomes[i] = &harmonia.LeaseWrite{Job: job, Op: harmonia.LeaseComplete, Result: bson.D{{Key: "n", Value: job.Params.Lookup("n").Int32()}}}
		if i == 3 {
			outcomes[i] = &harmonia.LeaseWrite{Job: job, Op: harmonia.LeaseFail, Err: harmonia.Permanent(errors.New("corrupt image"))}
		}
	}
	errs, err := store.Queue().WriteLeases(ctx, outcomes)
	if err != nil {
		log.Fatal(err)
	}
	for i, job := range jobs {
		fmt.Println(job.Params.Lookup("n").Int32(), job.Status, errs[i])
	}
	// Output:
	// 0 success <nil>
	// 1 success <nil>
	// 2 success <nil>
	// 3 failed <nil>
}

// A failed attempt is retried after a backoff, unless the error is
// Permanent: then the job fails for good, whatever attempts it has left.
// (The Store's clock is set here to skip the backoff.)
func ExamplePermanent() {
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	store, done := docdb.Store(ctx, &harmonia.Options{Test: &harmonia.TestOptions{Now: func() time.Time { return now }}})
	defer done()
	if _, err := store.Queue().Enqueue(ctx, "convert", bson.D{{Key: "format", Value: "tflite"}}, &harmonia.EnqueueOpts{MaxAttempts: 5}); err != nil {
		log.Fatal(err)
	}
	claim := func() *harmonia.Job {
		job, err := store.Queue().ClaimJob(ctx, "worker-1", []harmonia.JobType{"convert"}, time.Minute)
		if err != nil || job == nil {
			log.Fatal("no job: ", err)
		}
		return job
	}

	job := claim()
	if err := store.Queue().FailJob(ctx, job, errors.New("converter busy")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.Status, "after attempt", job.Attempt, "of", job.MaxAttempts)

	now = now.Add(time.Hour) // past the backoff
	job = claim()
	if err := store.Queue().FailJob(ctx, job, harmonia.Permanent(errors.New("unsupported format: tflite"))); err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.Status, "after attempt", job.Attempt, "of", job.MaxAttempts, "-", job.Error)
	// Output:
	// pending after attempt 1 of 5
	// failed after attempt 2 of 5 - unsupported format: tflite
}
