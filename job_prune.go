package harmonia

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Batch sizes of [Queue.PruneJobs].
const (
	// PruneBatchSizeDefault is how many jobs one round of PruneJobs
	// deletes when PruneOpts.BatchSize is 0.
	PruneBatchSizeDefault = 500
	// PruneBatchSizeMax is the largest PruneOpts.BatchSize.
	PruneBatchSizeMax = 5000
)

// Names of the TTL indexes [Queue.EnsureJobTTL] creates.
const (
	// JobTTLIndex is the TTL index on the finished_at of jobs.
	JobTTLIndex = "ttl_finished_at"
	// EventTTLIndex is the TTL index on the at of events.
	EventTTLIndex = "ttl_at"
)

// ErrTTLUnsupported is the cause of the error [Queue.EnsureJobTTL]
// returns on a server without TTL indexes (the embedded server, FerretDB
// v1, refuses expireAfterSeconds). Call [Queue.PruneJobs] on a schedule
// there instead. Test for it with
//
//	errors.Is(err, harmonia.ErrTTLUnsupported)
var ErrTTLUnsupported = errors.New("TTL indexes unsupported")

// PruneOpts are the options of [Queue.PruneJobs]. A nil *PruneOpts takes
// every default.
type PruneOpts struct {
	// BatchSize is how many jobs one round deletes, with their events:
	// three commands per round whatever its size. Defaults to
	// PruneBatchSizeDefault; at most PruneBatchSizeMax.
	BatchSize int
}

// PruneResult counts what [Queue.PruneJobs] deleted.
type PruneResult struct {
	// Jobs is how many jobs were deleted.
	Jobs int64
	// Events is how many log lines of those jobs were deleted.
	Events int64
	// Batches is how many rounds found jobs to delete.
	Batches int
}

// PruneJobs deletes the finished jobs (success, failed or cancelled: see
// [JobStatus.IsFinal]) whose finished_at is before olderThan, with their
// log lines in the events collection, in rounds of at most
// PruneOpts.BatchSize jobs, so that no single command grows with the
// backlog. Each round reads the ids of a batch, deletes their events,
// then deletes the jobs, the delete conditioned again on a final status:
// a job that is pending or running when its delete runs is kept, whatever
// the read saw, so pruning is safe while workers claim and finish jobs.
// (harmonia never takes a job out of a final status; the condition guards
// against writers outside it, and such a job may lose its log lines.)
//
// Events go first: a crash between the two deletes leaves finished jobs
// without their log lines, which the next run deletes, rather than log
// lines without a job. Pending and running jobs, and failed attempts
// waiting for a retry, have no finished_at and are never pruned.
//
// Run it from a scheduled job or a cron; several processes may run it at
// once. Where the server has TTL indexes, [Queue.EnsureJobTTL] lets the
// server do the same continuously.
//
// Errors: [CodeInvalid] (a zero olderThan, a batch size out of range;
// nothing deleted), [CodeInternal]. On an error after some rounds, the
// result counts what those rounds deleted.
func (q *Queue) PruneJobs(ctx context.Context, olderThan time.Time, opts *PruneOpts) (*PruneResult, error) {
	s := q.store
	var o PruneOpts
	if opts != nil {
		o = *opts
	}
	switch {
	case olderThan.IsZero():
		return nil, invalidf(EntityJob, "older_than", "a cutoff time is required: jobs that finished before it are deleted")
	case o.BatchSize < 0 || o.BatchSize > PruneBatchSizeMax:
		return nil, invalidf(EntityJob, "batch_size", "%d is outside 0 to %d (0 takes the default, %d)", o.BatchSize, PruneBatchSizeMax, PruneBatchSizeDefault)
	case o.BatchSize == 0:
		o.BatchSize = PruneBatchSizeDefault
	}
	final := bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: finalStatuses()}}}
	filter := bson.D{final, {Key: "finished_at", Value: bson.D{{Key: "$lt", Value: olderThan}}}}
	res := &PruneResult{}
	for {
		ids, err := findIDs(ctx, s.cols.jobs, EntityJob, filter, o.BatchSize)
		if err != nil {
			return res, err
		}
		if len(ids) == 0 {
			return res, nil
		}
		if h := s.hooks.pruneRead; h != nil {
			h(ctx, ids)
		}
		in := bson.D{{Key: "$in", Value: ids}}
		ev, err := s.cols.events.DeleteMany(ctx, bson.D{{Key: "job_id", Value: in}})
		if err != nil {
			return res, wrapErr(EntityJob, "prune events", err)
		}
		res.Events += ev.DeletedCount
		del, err := s.cols.jobs.DeleteMany(ctx, bson.D{{Key: "_id", Value: in}, final})
		if err != nil {
			return res, wrapErr(EntityJob, "prune", err)
		}
		res.Jobs += del.DeletedCount
		res.Batches++
		if len(ids) < o.BatchSize {
			return res, nil
		}
	}
}

// finalStatuses lists the statuses [JobStatus.IsFinal] reports final.
func finalStatuses() []JobStatus {
	var out []JobStatus
	for _, st := range jobStatuses {
		if st.IsFinal() {
			out = append(out, st)
		}
	}
	return out
}

// EnsureJobTTL creates TTL indexes that let the server delete finished
// jobs expireAfter after their finished_at ([JobTTLIndex]) and log lines
// expireAfter after their time ([EventTTLIndex]), as [Queue.PruneJobs]
// does on demand. Pending and running jobs have no finished_at, so the
// server never deletes them; a log line, though, goes expireAfter after
// it was written even if its job still runs, so choose expireAfter longer
// than any job runs. MongoDB deletes expired documents in the background,
// about once a minute. Run again with another duration, it changes the
// indexes' expiry.
//
// The indexes are not part of [Indexes]: retention is the deployment's
// choice. On a server without TTL indexes (the embedded server) it creates
// nothing and returns [ErrTTLUnsupported]; prune with PruneJobs there.
//
// Errors: [CodeInvalid] (expireAfter under a second; or the server has no
// TTL indexes, with cause [ErrTTLUnsupported]), [CodeInternal].
func (q *Queue) EnsureJobTTL(ctx context.Context, expireAfter time.Duration) error {
	s := q.store
	if expireAfter < time.Second {
		return invalidf("index", "expire_after", "must be at least a second (got %s)", expireAfter)
	}
	secs := int32(min(expireAfter/time.Second, 1<<31-1))
	for _, ix := range []struct {
		col   *mongo.Collection
		name  string
		field string
	}{{s.cols.jobs, JobTTLIndex, "finished_at"}, {s.cols.events, EventTTLIndex, "at"}} {
		if err := ensureTTL(ctx, ix.col, ix.name, ix.field, secs); err != nil {
			return err
		}
	}
	return nil
}

// ensureTTL creates the TTL index name on field of col, or sets its
// expiry to secs when it exists with another.
func ensureTTL(ctx context.Context, col *mongo.Collection, name, field string, secs int32) error {
	specs, err := col.Indexes().ListSpecifications(ctx)
	var ce mongo.CommandError
	if err != nil && !(errors.As(err, &ce) && ce.Code == 26) { // NamespaceNotFound
		return wrapErr("index", "list indexes of "+col.Name(), err)
	}
	for _, spec := range specs {
		if spec.Name != name {
			continue
		}
		if spec.ExpireAfterSeconds != nil && *spec.ExpireAfterSeconds == secs {
			return nil
		}
		cmd := bson.D{{Key: "collMod", Value: col.Name()}, {Key: "index", Value: bson.D{{Key: "name", Value: name}, {Key: "expireAfterSeconds", Value: secs}}}}
		if err := col.Database().RunCommand(ctx, cmd).Err(); err != nil {
			return wrapErr("index", "change the expiry of "+name+" on "+col.Name(), err)
		}
		return nil
	}
	_, err = col.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: field, Value: 1}},
		Options: options.Index().SetName(name).SetExpireAfterSeconds(secs)})
	if errors.As(err, &ce) && (ce.Code == 238 || ce.Code == 115) { // NotImplemented, CommandNotSupported
		return &Error{Code: CodeInvalid, Entity: "index", Field: "expire_after", Err: fmt.Errorf("%w: %w", ErrTTLUnsupported, err),
			Reason: "the server has no TTL indexes (expireAfterSeconds): call Store.PruneJobs on a schedule instead"}
	}
	if err != nil {
		return wrapErr("index", "create index "+name+" on "+col.Name(), err)
	}
	return nil
}
