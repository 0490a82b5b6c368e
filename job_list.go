package harmonia

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// jobStatuses lists every job status, in the order of a job's life.
var jobStatuses = []JobStatus{JobPending, JobRunning, JobSuccess, JobFailed, JobCancelled}

// JobFilter selects jobs for [Queue.ListJobs]; zero fields do not filter.
// Results are ordered by id (the order jobs were enqueued); pass the
// previous page's Next as After to read the following page.
type JobFilter struct {
	// Statuses keeps jobs in any of these statuses.
	Statuses []JobStatus
	// Types keeps jobs of any of these types.
	Types []JobType
	// WorkerID keeps jobs last claimed by this worker.
	WorkerID string
	// UniqueKey keeps jobs enqueued with this unique key (finished ones
	// included: the key is free again once its job finished, so several
	// jobs may carry it).
	UniqueKey string
	// CreatedFrom and CreatedBefore bound created_at: From ≤ t < Before.
	CreatedFrom, CreatedBefore *time.Time
	// After is the pagination cursor: only ids greater than it.
	After bson.ObjectID
	// Limit bounds the page size: 0 to ListLimitMax, where 0 takes the
	// default. Defaults to ListLimitDefault; outside the range, the list
	// call fails with [CodeInvalid].
	Limit int
}

// ListJobs returns one page of the jobs f selects, in id order, in one
// server command.
//
// The query leads with the job's status and worker so that the
// {status, worker_id} index serves it: a filter by worker without
// statuses asks for every status, which selects the same jobs through
// the index instead of a collection scan.
//
// Errors: [CodeInvalid] naming the field (an unknown status, a malformed
// type, an empty or reversed created range, a limit out of range; nothing
// read), [CodeInternal].
func (q *Queue) ListJobs(ctx context.Context, f JobFilter) (*Page[*Job], error) {
	s := q.store
	filter, err := jobFilterDoc(f)
	if err != nil {
		return nil, err
	}
	return listPage(ctx, s.cols.jobs, EntityJob, filter, f.Limit, func(j *Job) bson.ObjectID { return j.ID })
}

// jobFilterDoc checks f and turns it into a query document whose fields
// follow the {status, worker_id} index.
func jobFilterDoc(f JobFilter) (bson.D, error) {
	if _, err := pageLimit(EntityJob, f.Limit); err != nil {
		return nil, err
	}
	for _, st := range f.Statuses {
		if !slices.Contains(jobStatuses, st) {
			return nil, invalidf(EntityJob, "status", "unknown job status %q: use pending, running, success, failed or cancelled", st)
		}
	}
	for _, t := range f.Types {
		if !validJobType(string(t)) {
			return nil, invalidf(EntityJob, "type", "job type %q must be lowercase letters, digits, _ . - and start with a letter", t)
		}
	}
	if f.CreatedFrom != nil && f.CreatedBefore != nil && !f.CreatedFrom.Before(*f.CreatedBefore) {
		return nil, invalidf(EntityJob, "created_at", "the range from %s to before %s is empty: CreatedFrom must be before CreatedBefore",
			f.CreatedFrom.UTC().Format(time.RFC3339Nano), f.CreatedBefore.UTC().Format(time.RFC3339Nano))
	}
	statuses := f.Statuses
	if len(statuses) == 0 && f.WorkerID != "" {
		statuses = jobStatuses
	}
	d := bson.D{}
	if len(statuses) > 0 {
		d = append(d, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: statuses}}})
	}
	if f.WorkerID != "" {
		d = append(d, bson.E{Key: "worker_id", Value: f.WorkerID})
	}
	if len(f.Types) > 0 {
		d = append(d, bson.E{Key: "type", Value: bson.D{{Key: "$in", Value: f.Types}}})
	}
	if f.UniqueKey != "" {
		d = append(d, bson.E{Key: "unique_key", Value: f.UniqueKey})
	}
	// The created range and the cursor, as the other lists write them.
	return append(d, filterDoc(ArtifactFilter{CreatedFrom: f.CreatedFrom, CreatedBefore: f.CreatedBefore, After: f.After})...), nil
}

// WaitPollIntervalDefault is how often [Queue.WaitJobs] reads the jobs it
// waits for when WaitOpts.PollInterval is 0.
const WaitPollIntervalDefault = 100 * time.Millisecond

// WaitOpts are the options of [Queue.WaitJobs]. A nil *WaitOpts takes
// every default.
type WaitOpts struct {
	// PollInterval is how long WaitJobs waits between two reads of the
	// jobs. Defaults to WaitPollIntervalDefault.
	PollInterval time.Duration
	// Progress, when set, is called after each read that found more jobs
	// finished, with how many of them are finished. Defaults to none.
	Progress func(finished, total int)
}

// IsFinal reports whether st is a final status: success, failed or
// cancelled. A failed attempt with attempts left is pending, not final.
func (st JobStatus) IsFinal() bool {
	return st == JobSuccess || st == JobFailed || st == JobCancelled
}

// WaitJobs waits until every job in ids has a final status ([JobStatus.IsFinal])
// and returns them, in the order of ids. It reads the jobs not yet finished
// with one command per poll interval; it runs no jobs itself, so a worker
// (in this process or another) must be running. Cancel ctx, or give it a
// deadline, to stop waiting.
//
// Errors: [CodeInvalid] (a negative PollInterval), [CodeNotFound] naming
// the ids that are not jobs, [CodeInternal] (also when ctx ends first,
// with ctx's error as the cause).
func (q *Queue) WaitJobs(ctx context.Context, ids []bson.ObjectID, opts *WaitOpts) ([]*Job, error) {
	s := q.store
	var o WaitOpts
	if opts != nil {
		o = *opts
	}
	if o.PollInterval < 0 {
		return nil, invalidf(EntityJob, "PollInterval", "must not be negative (0 takes the default)")
	}
	if o.PollInterval == 0 {
		o.PollInterval = WaitPollIntervalDefault
	}
	done := make(map[bson.ObjectID]*Job, len(ids))
	first, reported := true, 0
	for {
		var todo []bson.ObjectID
		for _, id := range ids {
			if done[id] == nil {
				todo = append(todo, id)
			}
		}
		jobs, err := byIDs[Job](ctx, s.cols.jobs, EntityJob, todo)
		if err != nil {
			return nil, err
		}
		if first && len(jobs) < len(uniqueIDs(todo)) {
			seen := make(map[bson.ObjectID]bool, len(jobs))
			for _, j := range jobs {
				seen[j.ID] = true
			}
			var missing []bson.ObjectID
			for _, id := range uniqueIDs(todo) {
				if !seen[id] {
					missing = append(missing, id)
				}
			}
			return nil, notFoundf(EntityJob, "no job with id %s", hexList(missing))
		}
		first = false
		for i := range jobs {
			if jobs[i].Status.IsFinal() {
				done[jobs[i].ID] = &jobs[i]
			}
		}
		finished := 0
		for _, id := range ids {
			if done[id] != nil {
				finished++
			}
		}
		if o.Progress != nil && finished != reported {
			reported = finished
			o.Progress(finished, len(ids))
		}
		if finished == len(ids) {
			out := make([]*Job, len(ids))
			for i, id := range ids {
				out[i] = done[id]
			}
			return out, nil
		}
		t := time.NewTimer(o.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &Error{Code: CodeInternal, Entity: EntityJob,
				Reason: fmt.Sprintf("stopped waiting with %d of %d jobs finished", finished, len(ids)), Err: context.Cause(ctx)}
		case <-t.C:
		}
	}
}

// uniqueIDs returns ids without repetitions, in their order.
func uniqueIDs(ids []bson.ObjectID) []bson.ObjectID {
	seen := make(map[bson.ObjectID]bool, len(ids))
	out := make([]bson.ObjectID, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
