package harmonia

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/harmonia-ml/harmonia/internal/textcut"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CompleteJob records the success of a running job's attempt, with result
// (a document, as for Enqueue's params; nil for none).
//
// Errors: [CodeInvalid] (result is not a document; nothing written),
// [CodeConflict] wrapping [ErrLeaseLost], [CodeInternal].
func (s *Store) CompleteJob(ctx context.Context, job *Job, result any) error {
	if job == nil {
		return nilArgument(EntityJob)
	}
	raw, err := encodeDoc(result)
	if err != nil {
		return invalidCause(EntityJob, "result", err, "must encode as a BSON document (a struct, map, bson.D or bson.Raw)")
	}
	now := s.Now()
	set := bson.D{
		{Key: "status", Value: JobSuccess}, {Key: "finished_at", Value: now}, {Key: "updated_at", Value: now},
		{Key: "unique_lock", Value: finishedLock(job.ID)},
	}
	if raw != nil {
		set = append(set, bson.E{Key: "result", Value: raw})
	}
	update := bson.D{{Key: "$set", Value: set}, {Key: "$unset", Value: bson.D{
		{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}, {Key: "error", Value: ""},
	}}}
	if err := s.leaseWrite(ctx, job, "complete", update); err != nil {
		return err
	}
	job.Status, job.FinishedAt, job.UpdatedAt, job.Result = JobSuccess, &now, now, raw
	job.LeaseToken, job.LeaseExpiresAt, job.Error = "", nil, ""
	return nil
}

// FailJob records the failure of a running job's attempt with the text of
// cause, kept in the job's errors with every earlier attempt's. Below the
// job's maximum attempts, and unless cause is [Permanent], the job goes
// back to pending and may run again after a backoff (see
// Options.JobBackoffBase); otherwise it stays failed. job tells which:
// its Status and RunAfter are updated.
//
// Errors: [CodeConflict] wrapping [ErrLeaseLost], [CodeInternal].
func (s *Store) FailJob(ctx context.Context, job *Job, cause error) error {
	if job == nil {
		return nilArgument(EntityJob)
	}
	msg := "failed"
	if cause != nil {
		msg = textcut.Cut(cause.Error(), MaxErrorBytes)
	}
	now := s.Now()
	ae := AttemptError{Attempt: job.Attempt, WorkerID: job.WorkerID, Error: msg, At: now}
	retry := job.Attempt < job.MaxAttempts && !isPermanent(cause)
	set := bson.D{{Key: "error", Value: msg}, {Key: "updated_at", Value: now}}
	runAfter, status := job.RunAfter, JobFailed
	var finished *time.Time
	if retry {
		status, runAfter = JobPending, now.Add(s.backoff(job.Attempt)).Truncate(time.Millisecond)
		set = append(set, bson.E{Key: "status", Value: status}, bson.E{Key: "run_after", Value: runAfter})
	} else {
		finished = &now
		set = append(set, bson.E{Key: "status", Value: status}, bson.E{Key: "finished_at", Value: now},
			bson.E{Key: "unique_lock", Value: finishedLock(job.ID)})
	}
	update := bson.D{
		{Key: "$set", Value: set},
		{Key: "$unset", Value: bson.D{{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}}},
		{Key: "$push", Value: bson.D{{Key: "errors", Value: ae}}},
	}
	if err := s.leaseWrite(ctx, job, "fail", update); err != nil {
		return err
	}
	job.Status, job.RunAfter, job.FinishedAt, job.UpdatedAt = status, runAfter, finished, now
	job.Error, job.Errors = msg, append(slices.Clip(job.Errors), ae)
	job.LeaseToken, job.LeaseExpiresAt = "", nil
	return nil
}

// ReleaseJob gives a running job back to the queue without using up its
// attempt: it is pending again, with its run-after unchanged, for any
// worker to claim. Workers release their jobs when they shut down.
//
// Errors: [CodeConflict] wrapping [ErrLeaseLost], [CodeInternal].
func (s *Store) ReleaseJob(ctx context.Context, job *Job) error {
	if job == nil {
		return nilArgument(EntityJob)
	}
	now := s.Now()
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "status", Value: JobPending}, {Key: "updated_at", Value: now}}},
		{Key: "$unset", Value: bson.D{{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}}},
		{Key: "$inc", Value: bson.D{{Key: "attempt", Value: -1}}},
	}
	if err := s.leaseWrite(ctx, job, "release", update); err != nil {
		return err
	}
	job.Status, job.Attempt, job.UpdatedAt = JobPending, job.Attempt-1, now
	job.LeaseToken, job.LeaseExpiresAt = "", nil
	s.enqueued.wake()
	return nil
}

// CancelJob cancels a pending job: its status becomes [JobCancelled], no
// worker will claim it, and its unique key is free again. A running or
// finished job cannot be cancelled.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeNotFound], [CodeConflict] (not pending), [CodeInternal].
func (s *Store) CancelJob(ctx context.Context, id bson.ObjectID) (*Job, error) {
	now := s.Now()
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: JobCancelled}, {Key: "finished_at", Value: now},
		{Key: "updated_at", Value: now}, {Key: "unique_lock", Value: finishedLock(id)},
	}}}
	var j Job
	err := s.cols.jobs.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: JobPending}}, update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&j)
	if err == nil {
		return &j, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, wrapErr(EntityJob, "cancel", err)
	}
	cur, err := s.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	return nil, conflictf(EntityJob, "status", "job %s is %s: only a pending job can be cancelled", id.Hex(), cur.Status)
}

// backoff returns the wait after failed attempt number attempt: the base
// doubled per earlier attempt, capped, and drawn from its upper half.
func (s *Store) backoff(attempt int) time.Duration {
	d := s.opts.JobBackoffBase
	for i := 1; i < attempt && d < s.opts.JobBackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.opts.JobBackoffMax)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(s.randInt64N(int64(half)))
}

func (s *Store) randInt64N(n int64) int64 {
	if s.opts.Rand == nil {
		return mrand.Int64N(n)
	}
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.opts.Rand.Int64N(n)
}
