package harmonia

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/harmonia-ml/harmonia/internal/textcut"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// LeaseOp is what a [LeaseWrite] does to its job. The zero LeaseOp is
// none: [Queue.WriteLeases] refuses it.
type LeaseOp int

// The writes of a lease holder.
const (
	// LeaseHeartbeat extends the job's lease to LeaseWrite.Lease from now,
	// on the Store's [LeaseClock].
	LeaseHeartbeat LeaseOp = iota + 1
	// LeaseComplete records the attempt's success, with LeaseWrite.Result.
	LeaseComplete
	// LeaseFail records the attempt's failure, LeaseWrite.Err: the job
	// runs again after a backoff below its maximum attempts unless the
	// error is [Permanent], and fails for good otherwise.
	LeaseFail
	// LeaseRelease gives the job back to the queue without using up the
	// attempt.
	LeaseRelease
)

// LeaseWrite is one write of the holder of a running job's lease, for
// [Queue.WriteLeases]: a heartbeat or an outcome, with the log lines
// buffered since the holder's last write.
type LeaseWrite struct {
	// Job is the running job, as claimed; a written op updates it.
	Job *Job
	// Op is what the write does.
	Op LeaseOp
	// Lease is a heartbeat's new lease.
	Lease time.Duration
	// Result is a success's result: a document, as for Enqueue's params,
	// or nil for none.
	Result any
	// Err is a failure's error; a [Permanent] error fails the job for
	// good.
	Err error
	// Lines are log lines of the job to insert with the write (see
	// [NewLogEvent]); they also go to the end of its log_tail.
	Lines []Event

	raw bson.Raw // Result, encoded
}

// leaseUpdate returns the update op makes at now, and a function that
// records it on op.Job once written.
func (s *Store) leaseUpdate(op *LeaseWrite, now time.Time) (bson.D, func()) {
	job := op.Job
	set := bson.D{{Key: "updated_at", Value: now}}
	var unset, push bson.D
	tail := job.LogTail
	if len(op.Lines) > 0 {
		tail = s.logTail(job.LogTail, op.Lines)
		set = append(set, bson.E{Key: "log_tail", Value: tail})
	}
	if op.Op != LeaseHeartbeat {
		unset = bson.D{{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}}
		set = append(set, bson.E{Key: "finished_lease", Value: job.LeaseToken})
	}
	var apply func()
	switch op.Op {
	case LeaseHeartbeat:
		expires := now.Add(op.Lease).Truncate(time.Millisecond)
		set = append(set, bson.E{Key: "lease_expires_at", Value: expires})
		apply = func() { job.LeaseExpiresAt = &expires }
	case LeaseComplete:
		set = append(set, bson.E{Key: "status", Value: JobSuccess}, bson.E{Key: "finished_at", Value: now},
			bson.E{Key: "unique_lock", Value: finishedLock(job.ID)})
		if op.raw != nil {
			set = append(set, bson.E{Key: "result", Value: op.raw})
		}
		unset = append(unset, bson.E{Key: "error", Value: ""})
		apply = func() {
			job.Status, job.FinishedAt, job.Result, job.Error = JobSuccess, &now, op.raw, ""
		}
	case LeaseFail:
		msg := "failed"
		if op.Err != nil {
			msg = textcut.Cut(op.Err.Error(), MaxErrorBytes)
		}
		ae := AttemptError{Attempt: job.Attempt, WorkerID: job.WorkerID, Error: msg, At: now}
		status, runAfter := JobFailed, job.RunAfter
		var finished *time.Time
		set = append(set, bson.E{Key: "error", Value: msg})
		if job.Attempt < job.MaxAttempts && !isPermanent(op.Err) {
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
	case LeaseRelease:
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
	if op.Op == LeaseRelease {
		update = append(update, bson.E{Key: "$inc", Value: bson.D{{Key: "attempt", Value: -1}}})
	}
	return update, func() {
		apply()
		job.LogTail, job.UpdatedAt = tail, now
		if op.Op != LeaseHeartbeat {
			job.LeaseToken, job.LeaseExpiresAt = "", nil
		}
	}
}

// leaseStatement is leaseUpdate as it is sent: a heartbeat's on the
// Store's lease clock.
func (s *Store) leaseStatement(op *LeaseWrite, now time.Time) (any, func(), error) {
	update, apply := s.leaseUpdate(op, now)
	if op.Op != LeaseHeartbeat {
		return update, apply, nil
	}
	sent, err := s.onLeaseClock(update, op.Lease)
	return sent, apply, err
}

// WriteLeases applies ops, the writes of a lease holder (a worker, or a
// loop that runs handlers itself), each conditioned on its job's lease,
// with one insert of their log lines into the events collection (first,
// so that a recorded outcome never lacks its lines; an event inserted
// again after a failed call is skipped as a duplicate) and one update
// command of one statement per op. Every write of a lease holder goes
// through it: [Queue.Heartbeat], [Queue.CompleteJob], [Queue.FailJob] and
// [Queue.ReleaseJob] are WriteLeases of one op.
//
// It returns one error per op, nil where it was written (and applied to
// its Job): [CodeInvalid] for a nil Job or a Result that is not a
// document (nothing written for it), [CodeConflict] wrapping
// [ErrLeaseLost] for a refused one (a cancelled job's also wraps
// [ErrJobCancelled]). Telling which
// were refused costs one more read, only when some were.
//
// Errors (the second result): [CodeInternal] when the write failed as a
// whole; the ops may then be written or not, and writing them again is
// safe (refused ones come back as lost leases).
func (q *Queue) WriteLeases(ctx context.Context, ops []*LeaseWrite) ([]error, error) {
	s := q.store
	errs := make([]error, len(ops))
	valid := make([]*LeaseWrite, 0, len(ops))
	idx := make([]int, 0, len(ops))
	for i, op := range ops {
		switch {
		case op == nil || op.Job == nil:
			errs[i] = nilArgument(EntityJob)
			continue
		case op.Op < LeaseHeartbeat || op.Op > LeaseRelease:
			errs[i] = invalidf(EntityJob, "op", "unknown lease op %d: use LeaseHeartbeat, LeaseComplete, LeaseFail or LeaseRelease", int(op.Op))
			continue
		case op.Op == LeaseComplete:
			raw, err := EncodeResult(op.Result)
			if err != nil {
				errs[i] = err
				continue
			}
			op.raw = raw
		}
		valid, idx = append(valid, op), append(idx, i)
	}
	res, err := s.writeLeases(ctx, valid)
	if err != nil {
		return nil, err
	}
	for k, i := range idx {
		errs[i] = res[k]
	}
	return errs, nil
}

// writeLeases is WriteLeases of valid ops.
func (s *Store) writeLeases(ctx context.Context, ops []*LeaseWrite) ([]error, error) {
	errs := make([]error, len(ops))
	if len(ops) == 0 {
		return errs, nil
	}
	var events []any
	for _, op := range ops {
		for i := range op.Lines {
			events = append(events, &op.Lines[i])
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
		filter := bson.D{{Key: "_id", Value: op.Job.ID}, {Key: "lease_token", Value: op.Job.LeaseToken}, {Key: "status", Value: JobRunning}}
		if op.Job.LeaseToken == "" {
			filter = bson.D{{Key: "_id", Value: bson.NilObjectID}}
		}
		models[i], applies[i], ids[i] = mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(sent), apply, op.Job.ID
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
func (s *Store) refusedLeases(ctx context.Context, ops []*LeaseWrite, ids []bson.ObjectID, errs []error) error {
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
		d, token := byID[op.Job.ID], op.Job.LeaseToken
		switch {
		case d == nil || token == "":
		case op.Op == LeaseHeartbeat && d.Status == JobRunning && d.LeaseToken == token:
			continue
		case op.Op != LeaseHeartbeat && d.FinishedLease == token:
			continue
		}
		if d != nil && d.Status == JobCancelled {
			errs[i] = &Error{Code: CodeConflict, Entity: EntityJob, Field: "status", Err: errors.Join(ErrJobCancelled, ErrLeaseLost),
				Reason: fmt.Sprintf("job %s (attempt %d) was cancelled while it ran", op.Job.ID.Hex(), op.Job.Attempt)}
			continue
		}
		errs[i] = leaseLost(op.Job, "write to")
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
		return wrapErr(EntityJob, "log", err)
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return wrapErr(EntityJob, "log", err)
		}
	}
	return nil
}

// leaseWrite applies update to job if the caller still holds its lease.
func (s *Store) leaseWrite(ctx context.Context, job *Job, op string, update any) error {
	if job.LeaseToken == "" {
		return leaseLost(job, op)
	}
	filter := bson.D{{Key: "_id", Value: job.ID}, {Key: "lease_token", Value: job.LeaseToken}, {Key: "status", Value: JobRunning}}
	res, err := s.cols.jobs.UpdateOne(ctx, filter, update)
	if err != nil {
		return wrapErr(EntityJob, op+" job", err)
	}
	if res.MatchedCount == 0 {
		return leaseLost(job, op)
	}
	return nil
}

func leaseLost(job *Job, op string) error {
	return &Error{Code: CodeConflict, Entity: EntityJob, Field: "lease_token", Err: ErrLeaseLost,
		Reason: fmt.Sprintf("cannot %s job %s (attempt %d): its lease expired and another worker claimed it, or it is no longer running",
			op, job.ID.Hex(), job.Attempt)}
}

// Heartbeat extends the lease of a running job to lease from now, on the
// Store's [LeaseClock].
//
// Errors: [CodeConflict] wrapping [ErrLeaseLost], [CodeInternal].
func (q *Queue) Heartbeat(ctx context.Context, job *Job, lease time.Duration) error {
	s := q.store
	if job == nil {
		return nilArgument(EntityJob)
	}
	return s.writeLease(ctx, &LeaseWrite{Job: job, Op: LeaseHeartbeat, Lease: lease})
}

// writeLease writes one op through WriteLeases.
func (s *Store) writeLease(ctx context.Context, op *LeaseWrite) error {
	errs, err := s.Queue().WriteLeases(ctx, []*LeaseWrite{op})
	if err != nil {
		return err
	}
	return errs[0]
}

// LeaseClock is the clock that job leases are measured on: the clock
// that sets a lease's expiry when a job is claimed or heart-beaten, and
// that later tells a claim whether the lease has expired (see "Leases"
// in the package documentation).
type LeaseClock int

const (
	// LeaseClockAuto measures leases on the server's clock where the
	// server offers one ([Capabilities.ServerClock]), and on the Store's
	// clock otherwise.
	LeaseClockAuto LeaseClock = iota
	// LeaseClockServer measures leases on the server's clock: claims and
	// heartbeats set lease_expires_at to the server's $$NOW plus the
	// lease, in an update pipeline, and claims compare it with $$NOW in
	// an $expr. Workers' clocks then need not agree. It needs MongoDB 4.2
	// or later (or the embedded server); [Open] refuses it elsewhere.
	LeaseClockServer
	// LeaseClockLocal measures leases on the clock of each Store (the
	// system clock, or TestOptions.Now): the clocks of all workers must
	// agree to well within a lease.
	LeaseClockLocal
)

// String returns "auto", "server" or "local".
func (c LeaseClock) String() string {
	switch c {
	case LeaseClockAuto:
		return "auto"
	case LeaseClockServer:
		return "server"
	case LeaseClockLocal:
		return "local"
	}
	return fmt.Sprintf("LeaseClock(%d)", int(c))
}

// resolveLeaseClock decides the clock of a Store's leases from the
// option and the server's capabilities.
func resolveLeaseClock(want LeaseClock, caps Capabilities) (LeaseClock, error) {
	switch want {
	case LeaseClockAuto:
		if caps.ServerClock {
			return LeaseClockServer, nil
		}
		return LeaseClockLocal, nil
	case LeaseClockServer:
		if !caps.ServerClock {
			return 0, invalidf("store", "lease_clock",
				"the server (%s %s) does not evaluate $$NOW in queries and update pipelines (MongoDB 4.2 or later does): use LeaseClockLocal or LeaseClockAuto", caps.Topology, caps.ServerVersion)
		}
		return LeaseClockServer, nil
	case LeaseClockLocal:
		return LeaseClockLocal, nil
	}
	return 0, invalidf("store", "lease_clock", "unknown lease clock %d", int(want))
}

// LeaseClock returns the clock this Store's job leases are measured on:
// LeaseClockServer or LeaseClockLocal.
func (q *Queue) LeaseClock() LeaseClock { return q.store.leaseClock }

// probeServerClock reports whether the server evaluates $$NOW in an
// $expr, with one find on a collection that does not exist. MongoDB
// added $$NOW and update pipelines together, in 4.2.
func probeServerClock(ctx context.Context, db *mongo.Database) (bool, error) {
	err := db.RunCommand(ctx, bson.D{
		{Key: "find", Value: "harmonia_capability_probe"},
		{Key: "filter", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$lt", Value: bson.A{"$t", "$$NOW"}}}}}},
		{Key: "limit", Value: 1}, {Key: "singleBatch", Value: true},
	}).Err()
	var ce mongo.CommandError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ce):
		return false, nil
	}
	return false, wrapErr("store", "probe $$NOW", err)
}

// leaseExpired is the condition, in a job filter, that the job's lease
// has expired by now (on the Store's clock) or by the server's $$NOW.
func (s *Store) leaseExpired(now time.Time) bson.E {
	if s.leaseClock == LeaseClockServer {
		return bson.E{Key: "$expr", Value: bson.D{{Key: "$lt", Value: bson.A{"$lease_expires_at", "$$NOW"}}}}
	}
	return bson.E{Key: "lease_expires_at", Value: bson.D{{Key: "$lt", Value: now}}}
}

// onLeaseClock returns update, which sets lease_expires_at, as it is to
// be sent: unchanged on the Store's clock; on the server's clock, as the
// update pipeline that does the same but sets lease_expires_at to the
// server's $$NOW plus lease. update may use $set, $inc, $push (of one
// value) and $unset.
func (s *Store) onLeaseClock(update bson.D, lease time.Duration) (any, error) {
	if s.leaseClock != LeaseClockServer {
		return update, nil
	}
	var set bson.D
	var unset bson.A
	for _, op := range update {
		fields, ok := op.Value.(bson.D)
		if !ok {
			return nil, &Error{Code: CodeInternal, Entity: EntityJob, Field: "lease_expires_at", Reason: fmt.Sprintf("update operator %s of a lease is not a document", op.Key)}
		}
		for _, f := range fields {
			var v any
			switch op.Key {
			case "$set":
				v = bson.D{{Key: "$literal", Value: f.Value}}
				if f.Key == "lease_expires_at" {
					v = bson.D{{Key: "$add", Value: bson.A{"$$NOW", lease.Milliseconds()}}}
				}
			case "$inc":
				v = bson.D{{Key: "$add", Value: bson.A{bson.D{{Key: "$ifNull", Value: bson.A{"$" + f.Key, 0}}}, f.Value}}}
			case "$push":
				v = bson.D{{Key: "$concatArrays", Value: bson.A{
					bson.D{{Key: "$ifNull", Value: bson.A{"$" + f.Key, bson.A{}}}},
					bson.A{bson.D{{Key: "$literal", Value: f.Value}}},
				}}}
			case "$unset":
				unset = append(unset, f.Key)
				continue
			default:
				return nil, &Error{Code: CodeInternal, Entity: EntityJob, Field: "lease_expires_at", Reason: fmt.Sprintf("update operator %s has no pipeline form here", op.Key)}
			}
			set = append(set, bson.E{Key: f.Key, Value: v})
		}
	}
	pipeline := mongo.Pipeline{{{Key: "$set", Value: set}}}
	if len(unset) > 0 {
		pipeline = append(pipeline, bson.D{{Key: "$unset", Value: unset}})
	}
	return pipeline, nil
}

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
