package harmonia

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

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
