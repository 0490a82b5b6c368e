package harmonia

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/harmonia-ml/harmonia/internal/textcut"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// JobOutcome is the outcome of one attempt, for [Store.FinishJobs]: a
// success with Result when Err is nil, otherwise a failure with Err, as
// [Store.CompleteJob] and [Store.FailJob] record them.
type JobOutcome struct {
	// Job is the running job, as claimed; FinishJobs updates it as
	// CompleteJob and FailJob do.
	Job *Job
	// Result is the success's result document (nil for none).
	Result any
	// Err is the failure; a [Permanent] error fails the job for good.
	Err error
}

// FinishJobs records many outcomes with one update command, one
// statement per job, each conditioned on the job's own lease as
// CompleteJob and FailJob are: a job whose lease was lost (or that was
// cancelled) is refused alone, and the others are recorded. It returns
// one error per outcome, nil where it was recorded: [CodeInvalid] for a
// result that is not a document (nothing written for it),
// [CodeConflict] wrapping [ErrLeaseLost] or [ErrJobCancelled] for a
// refused one. Telling which were refused costs one more read, only when
// some were.
//
// Errors (the second result): [CodeInternal] when the write failed as a
// whole; the outcomes may then be recorded or not, and writing them again
// is safe (refused ones come back as lost leases).
func (s *Store) FinishJobs(ctx context.Context, outcomes []JobOutcome) ([]error, error) {
	errs := make([]error, len(outcomes))
	ops := make([]*leaseOp, 0, len(outcomes))
	idx := make([]int, 0, len(outcomes))
	for i, o := range outcomes {
		switch {
		case o.Job == nil:
			errs[i] = nilArgument(EntityJob)
		case o.Err != nil:
			ops, idx = append(ops, &leaseOp{job: o.Job, kind: opFail, cause: o.Err}), append(idx, i)
		default:
			raw, err := encodeResult(o.Result)
			if err != nil {
				errs[i] = err
				continue
			}
			ops, idx = append(ops, &leaseOp{job: o.Job, kind: opComplete, result: raw}), append(idx, i)
		}
	}
	res, err := s.writeLeases(ctx, ops)
	if err != nil {
		return nil, err
	}
	for k, i := range idx {
		errs[i] = res[k]
	}
	return errs, nil
}

// leaseKind is what a lease holder's write does.
type leaseKind int

const (
	opHeartbeat leaseKind = iota
	opComplete
	opFail
	opRelease
)

// leaseOp is one write of a lease holder: a heartbeat or an outcome,
// with the log lines buffered since its last write.
type leaseOp struct {
	job    *Job
	kind   leaseKind
	lease  time.Duration // of a heartbeat
	result bson.Raw      // of a success
	cause  error         // of a failure
	lines  []Event       // buffered log lines, written with the op
}

// leaseUpdate returns the update op makes at now, and a function that
// records it on op.job once written.
func (s *Store) leaseUpdate(op *leaseOp, now time.Time) (bson.D, func()) {
	job := op.job
	set := bson.D{{Key: "updated_at", Value: now}}
	var unset, push bson.D
	tail := job.LogTail
	if len(op.lines) > 0 {
		tail = s.logTail(job.LogTail, op.lines)
		set = append(set, bson.E{Key: "log_tail", Value: tail})
	}
	if op.kind != opHeartbeat {
		unset = bson.D{{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}}
		set = append(set, bson.E{Key: "finished_lease", Value: job.LeaseToken})
	}
	var apply func()
	switch op.kind {
	case opHeartbeat:
		expires := now.Add(op.lease).Truncate(time.Millisecond)
		set = append(set, bson.E{Key: "lease_expires_at", Value: expires})
		apply = func() { job.LeaseExpiresAt = &expires }
	case opComplete:
		set = append(set, bson.E{Key: "status", Value: JobSuccess}, bson.E{Key: "finished_at", Value: now},
			bson.E{Key: "unique_lock", Value: finishedLock(job.ID)})
		if op.result != nil {
			set = append(set, bson.E{Key: "result", Value: op.result})
		}
		unset = append(unset, bson.E{Key: "error", Value: ""})
		apply = func() {
			job.Status, job.FinishedAt, job.Result, job.Error = JobSuccess, &now, op.result, ""
		}
	case opFail:
		msg := "failed"
		if op.cause != nil {
			msg = textcut.Cut(op.cause.Error(), MaxErrorBytes)
		}
		ae := AttemptError{Attempt: job.Attempt, WorkerID: job.WorkerID, Error: msg, At: now}
		status, runAfter := JobFailed, job.RunAfter
		var finished *time.Time
		set = append(set, bson.E{Key: "error", Value: msg})
		if job.Attempt < job.MaxAttempts && !isPermanent(op.cause) {
			status, runAfter = JobPending, now.Add(s.backoff(job.Attempt)).Truncate(time.Millisecond)
			set = append(set, bson.E{Key: "status", Value: status}, bson.E{Key: "run_after", Value: runAfter})
		} else {
			finished = &now
			set = append(set, bson.E{Key: "status", Value: status}, bson.E{Key: "finished_at", Value: now},
				bson.E{Key: "unique_lock", Value: finishedLock(job.ID)})
		}
		push = bson.D{{Key: "errors", Value: ae}}
		apply = func() {
			job.Status, job.RunAfter, job.FinishedAt = status, runAfter, finished
			job.Error, job.Errors = msg, append(slices.Clip(job.Errors), ae)
		}
	case opRelease:
		set = append(set, bson.E{Key: "status", Value: JobPending})
		apply = func() { job.Status, job.Attempt = JobPending, job.Attempt-1 }
	}
	update := bson.D{{Key: "$set", Value: set}}
	if unset != nil {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	if push != nil {
		update = append(update, bson.E{Key: "$push", Value: push})
	}
	if op.kind == opRelease {
		update = append(update, bson.E{Key: "$inc", Value: bson.D{{Key: "attempt", Value: -1}}})
	}
	return update, func() {
		apply()
		job.LogTail, job.UpdatedAt = tail, now
		if op.kind != opHeartbeat {
			job.LeaseToken, job.LeaseExpiresAt = "", nil
		}
	}
}

// leaseStatement is leaseUpdate as it is sent: a heartbeat's on the
// Store's lease clock.
func (s *Store) leaseStatement(op *leaseOp, now time.Time) (any, func(), error) {
	update, apply := s.leaseUpdate(op, now)
	if op.kind != opHeartbeat {
		return update, apply, nil
	}
	sent, err := s.onLeaseClock(update, op.lease)
	return sent, apply, err
}

// writeLeases applies ops, each conditioned on its job's lease, with one
// insert of their buffered log lines into the events collection (first,
// so that a recorded outcome never lacks its lines; an event inserted
// again after a failed call is skipped as a duplicate) and one update
// command of one statement per op. When fewer statements matched than
// were sent, one read tells which: those get a [CodeConflict] error
// wrapping [ErrLeaseLost] or [ErrJobCancelled]; the others are applied to
// their jobs. The second result is an error that left ops unwritten or
// unknown; ops may then be written again.
func (s *Store) writeLeases(ctx context.Context, ops []*leaseOp) ([]error, error) {
	errs := make([]error, len(ops))
	if len(ops) == 0 {
		return errs, nil
	}
	var events []any
	for _, op := range ops {
		for i := range op.lines {
			events = append(events, &op.lines[i])
		}
	}
	if err := s.insertEvents(ctx, events); err != nil {
		return nil, err
	}
	now := s.Now()
	models := make([]mongo.WriteModel, len(ops))
	applies := make([]func(), len(ops))
	ids := make([]bson.ObjectID, len(ops))
	for i, op := range ops {
		sent, apply, err := s.leaseStatement(op, now)
		if err != nil {
			return nil, err
		}
		filter := bson.D{{Key: "_id", Value: op.job.ID}, {Key: "lease_token", Value: op.job.LeaseToken}, {Key: "status", Value: JobRunning}}
		if op.job.LeaseToken == "" {
			filter = bson.D{{Key: "_id", Value: bson.NilObjectID}}
		}
		models[i], applies[i], ids[i] = mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(sent), apply, op.job.ID
	}
	res, err := s.cols.jobs.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil {
		return nil, wrapErr(EntityJob, "write leases of", err)
	}
	if int(res.MatchedCount) < len(ops) {
		if err := s.refusedLeases(ctx, ops, ids, errs); err != nil {
			return nil, err
		}
	}
	for i, apply := range applies {
		if errs[i] == nil {
			apply()
		}
	}
	return errs, nil
}

// refusedLeases reads the jobs of ops once and sets errs[i] for each op
// that was not written: a heartbeat was written if the job still runs
// under its lease, an outcome if the job records that lease as its last
// finished one (a token is never reused).
func (s *Store) refusedLeases(ctx context.Context, ops []*leaseOp, ids []bson.ObjectID, errs []error) error {
	o := options.Find().SetProjection(bson.D{{Key: "status", Value: 1}, {Key: "lease_token", Value: 1}, {Key: "finished_lease", Value: 1}})
	docs, err := findAll[jobDoc](ctx, s.cols.jobs, EntityJob, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: uniqueIDs(ids)}}}}, len(ids), o)
	if err != nil {
		return err
	}
	byID := make(map[bson.ObjectID]*jobDoc, len(docs))
	for i := range docs {
		byID[docs[i].ID] = &docs[i]
	}
	for i, op := range ops {
		d, token := byID[op.job.ID], op.job.LeaseToken
		switch {
		case d == nil || token == "":
		case op.kind == opHeartbeat && d.Status == JobRunning && d.LeaseToken == token:
			continue
		case op.kind != opHeartbeat && d.FinishedLease == token:
			continue
		}
		if d != nil && d.Status == JobCancelled {
			errs[i] = &Error{Code: CodeConflict, Entity: EntityJob, Field: "status", Err: ErrJobCancelled,
				Reason: fmt.Sprintf("job %s (attempt %d) was cancelled while it ran", op.job.ID.Hex(), op.job.Attempt)}
			continue
		}
		errs[i] = leaseLost(op.job, "write to")
	}
	return nil
}

// insertEvents inserts log events unordered, skipping those inserted
// already.
func (s *Store) insertEvents(ctx context.Context, events []any) error {
	if len(events) == 0 {
		return nil
	}
	_, err := s.cols.events.InsertMany(ctx, events, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if err == nil || !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return wrapErrIf(EntityJob, "log", err)
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return wrapErr(EntityJob, "log", err)
		}
	}
	return nil
}

// wrapErrIf is wrapErr for a possibly nil err.
func wrapErrIf(entity, op string, err error) error {
	if err == nil {
		return nil
	}
	return wrapErr(entity, op, err)
}
