package harmonia

import (
	"context"
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
