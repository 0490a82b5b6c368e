package harmonia

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ClaimJob takes the next job of one of types for the worker workerID and
// returns it, or nil when there is none. The claim is one
// findOneAndUpdate: it takes the pending job with the highest priority
// (then the earliest run-after, then the oldest) whose run-after has
// passed, or a running job whose lease has expired, sets it running under
// a fresh lease token that expires lease from now (on the Store's
// [LeaseClock]), and counts the
// attempt. Every later write for the job (Heartbeat, AppendLog,
// CompleteJob, FailJob, ReleaseJob) must present that token.
//
// Taking over an expired lease records "lease expired" as the error of the
// attempt that lost it (one more command). When that was the job's last
// attempt the job fails instead, and ClaimJob looks for another.
//
// Errors: [CodeInvalid] (no worker id, no types, lease under a
// millisecond), [CodeInternal].
func (s *Store) ClaimJob(ctx context.Context, workerID string, types []JobType, lease time.Duration) (*Job, error) {
	if err := checkClaim(workerID, types, lease); err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, wrapErr(EntityJob, "claim", err)
		}
		job, prev, err := s.claimOne(ctx, workerID, types, lease)
		if err != nil || job == nil {
			return nil, err
		}
		if prev == nil {
			return job, nil
		}
		if ok, err := s.takeOver(ctx, job, prev); err != nil || ok {
			return job, err
		}
	}
}

// claimOne runs the claim. It returns the claimed job and, when the claim
// took over an expired lease, the job as it was before.
func (s *Store) claimOne(ctx context.Context, workerID string, types []JobType, lease time.Duration) (*Job, *Job, error) {
	now := s.Now()
	expires := now.Add(lease).Truncate(time.Millisecond)
	token := rand.Text()
	update, err := s.onLeaseClock(bson.D{{Key: "$set", Value: claimSet(workerID, token, now, expires)}, {Key: "$inc", Value: bson.D{{Key: "attempt", Value: 1}}}}, lease)
	if err != nil {
		return nil, nil, err
	}
	// The document before the update tells a fresh claim from a take-over;
	// the claimed state is known from the update itself.
	o := options.FindOneAndUpdate().SetReturnDocument(options.Before).SetSort(claimSort)
	var before Job
	if err := s.cols.jobs.FindOneAndUpdate(ctx, s.claimableFilter(types, now), update, o).Decode(&before); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, nil, nil
		}
		return nil, nil, wrapErr(EntityJob, "claim", err)
	}
	job := before
	job.Status, job.WorkerID, job.StartedAt, job.LeaseToken = JobRunning, workerID, &now, token
	job.LeaseExpiresAt, job.UpdatedAt, job.Attempt = &expires, now, before.Attempt+1
	if before.Status == JobRunning {
		return &job, &before, nil
	}
	return &job, nil, nil
}

// takeOver records the expired attempt of prev on the job just claimed
// from it. It returns false when the job is not for the claimer after all:
// that was its last attempt (the job is now failed) or the claim was lost.
func (s *Store) takeOver(ctx context.Context, job, prev *Job) (bool, error) {
	now := s.Now()
	ae := expiredAttempt(prev, now)
	if prev.Attempt >= prev.MaxAttempts {
		update := append(expiredLastUpdate(job.ID, prev.LeaseToken, ae, now), bson.E{Key: "$inc", Value: bson.D{{Key: "attempt", Value: -1}}})
		err := s.leaseWrite(ctx, job, "fail", update)
		if errors.Is(err, ErrLeaseLost) {
			err = nil
		}
		return false, err
	}
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "error", Value: ae.Error}, {Key: "updated_at", Value: now}}},
		{Key: "$push", Value: bson.D{{Key: "errors", Value: ae}}},
	}
	if err := s.leaseWrite(ctx, job, "record expired attempt of", update); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			return false, nil
		}
		return false, err
	}
	job.Error, job.Errors, job.UpdatedAt = ae.Error, append(slices.Clip(job.Errors), ae), now
	return true, nil
}
