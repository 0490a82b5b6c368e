package harmonia

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CompleteJob records the success of a running job's attempt, with result
// (a document, as for Enqueue's params; nil for none).
//
// Errors: [CodeInvalid] (result is not a document; nothing written),
// [CodeConflict] wrapping [ErrLeaseLost], [CodeInternal].
func (q *Queue) CompleteJob(ctx context.Context, job *Job, result any) error {
	s := q.store
	if job == nil {
		return nilArgument(EntityJob)
	}
	return s.writeLease(ctx, &LeaseWrite{Job: job, Op: LeaseComplete, Result: result})
}

// EncodeResult encodes a job's result (a handler's, for example) as a
// document, as [Queue.CompleteJob] stores it.
//
// Errors: [CodeInvalid] when result does not encode as a document.
func EncodeResult(result any) (bson.Raw, error) {
	raw, err := encodeDoc(result)
	if err != nil {
		return nil, invalidCause(EntityJob, "result", err, "must encode as a BSON document (a struct, map, bson.D or bson.Raw)")
	}
	return raw, nil
}

// FailJob records the failure of a running job's attempt with the text of
// cause, kept in the job's errors with every earlier attempt's. Below the
// job's maximum attempts, and unless cause is [Permanent], the job goes
// back to pending and may run again after a backoff (see
// Options.JobBackoffBase); otherwise it stays failed. job tells which:
// its Status and RunAfter are updated.
//
// Errors: [CodeConflict] wrapping [ErrLeaseLost], [CodeInternal].
func (q *Queue) FailJob(ctx context.Context, job *Job, cause error) error {
	s := q.store
	if job == nil {
		return nilArgument(EntityJob)
	}
	return s.writeLease(ctx, &LeaseWrite{Job: job, Op: LeaseFail, Err: cause})
}

// ReleaseJob gives a running job back to the queue without using up its
// attempt: it is pending again, with its run-after unchanged, for any
// worker to claim. Workers release their jobs when they shut down.
//
// Errors: [CodeConflict] wrapping [ErrLeaseLost], [CodeInternal].
func (q *Queue) ReleaseJob(ctx context.Context, job *Job) error {
	s := q.store
	if job == nil {
		return nilArgument(EntityJob)
	}
	if err := s.writeLease(ctx, &LeaseWrite{Job: job, Op: LeaseRelease}); err != nil {
		return err
	}
	s.enqueued.wake()
	return nil
}

// CancelJob cancels a pending or running job: its status becomes
// [JobCancelled], no worker will claim it, and its unique key is free
// again. A running job's lease ends: its worker's next heartbeat finds the
// job cancelled and cancels the handler's context, with the cause
// [ErrJobCancelled], and the handler's outcome is not recorded. A finished
// job cannot be cancelled.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeNotFound], [CodeConflict] (finished already), [CodeInternal].
func (q *Queue) CancelJob(ctx context.Context, id bson.ObjectID) (*Job, error) {
	s := q.store
	now := s.Now()
	update := bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "status", Value: JobCancelled}, {Key: "finished_at", Value: now},
			{Key: "updated_at", Value: now}, {Key: "unique_lock", Value: finishedLock(id)},
		}},
		{Key: "$unset", Value: bson.D{{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}}},
	}
	active := bson.D{{Key: "$in", Value: bson.A{JobPending, JobRunning}}}
	var j Job
	err := s.cols.jobs.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: active}}, update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&j)
	if err == nil {
		return &j, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, wrapErr(EntityJob, "cancel", err)
	}
	cur, err := s.Queue().GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	return nil, conflictf(EntityJob, "status", "job %s is %s: only a pending or running job can be cancelled", id.Hex(), cur.Status)
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
	if s.opts.Test == nil || s.opts.Test.Rand == nil {
		return mrand.Int64N(n)
	}
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.opts.Test.Rand.Int64N(n)
}
