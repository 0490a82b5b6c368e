package harmonia

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// EnqueueOpts are the per-job options of [Queue.Enqueue]. A nil
// *EnqueueOpts takes every default.
type EnqueueOpts struct {
	// Priority orders the claimable jobs: higher first. Defaults to 0.
	Priority int
	// RunAfter is the earliest time a worker may claim the job. Defaults
	// to now.
	RunAfter time.Time
	// MaxAttempts is how many attempts the job gets before it stays
	// failed. Defaults to MaxAttemptsDefault; at most 1000.
	MaxAttempts int
	// UniqueKey, when set, makes the enqueue return the job with this key
	// that is pending or running, if there is one, instead of a new job.
	// Once that job has finished (or was cancelled) the key is free again.
	// Defaults to none.
	UniqueKey string
}

// EnqueueParams is one job of [Queue.EnqueueMany].
type EnqueueParams struct {
	// Type is the job's type.
	Type JobType
	// Params is the job's input, as for [Queue.Enqueue].
	Params any
	// Opts are the job's options; nil takes every default.
	Opts *EnqueueOpts
}

// EnqueueResult is the outcome of enqueueing one job.
type EnqueueResult struct {
	// Job is the enqueued job, or the pending or running job with the
	// same unique key.
	Job *Job
	// Duplicate is true when Job is an existing job with the same unique
	// key: nothing was enqueued.
	Duplicate bool
}

// Enqueue adds a job of type t to the queue. params is the job's input: a
// struct with bson tags, a bson.D or bson.M, a bson.Raw document, or nil.
// When params has a Validate() error method (as the built-in params types
// [ValidateParams], [DownloadParams] and [InferenceParams] do; a pointer
// receiver will do), Enqueue calls it and refuses the job on error; the
// handler checks its params again when it runs. With a unique key, a pending or running job with the same key
// is returned instead (EnqueueResult.Duplicate); this holds under
// concurrent enqueues, on every deployment.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeInvalid] (nothing written), [CodeInternal].
func (q *Queue) Enqueue(ctx context.Context, t JobType, params any, opts *EnqueueOpts) (*EnqueueResult, error) {
	s := q.store
	res, err := s.Queue().EnqueueMany(ctx, []EnqueueParams{{Type: t, Params: params, Opts: opts}})
	if err != nil {
		return nil, err
	}
	return &res[0], nil
}

// EnqueueMany adds many jobs with a few commands whatever their number:
// the inserts in batches, and one read for the unique keys that were
// taken. The results are in the order of jobs. Several jobs of one call
// may share a unique key: the first is enqueued, the others return it.
// Every job is validated before anything is written.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeInvalid] naming the index of the first invalid job
// (nothing written), [CodeConflict] when unique keys keep being taken and
// freed under it (rare; retry), [CodeInternal].
func (q *Queue) EnqueueMany(ctx context.Context, jobs []EnqueueParams) ([]EnqueueResult, error) {
	s := q.store
	now := s.Now()
	docs := make([]jobDoc, len(jobs))
	for i, p := range jobs {
		j, err := newJob(p, now)
		if err != nil {
			if len(jobs) > 1 {
				var he *Error
				if errors.As(err, &he) {
					he.Reason = fmt.Sprintf("job %d: %s", i, he.Reason)
				}
			}
			return nil, err
		}
		docs[i] = jobDoc{Job: *j, UniqueLock: activeLock(j)}
	}
	if err := s.requireUnique(ctx, EntityJob, CollectionJobs); err != nil {
		return nil, err
	}
	if err := s.checkJobArtifacts(ctx, jobs); err != nil {
		return nil, err
	}
	results := make([]EnqueueResult, len(jobs))
	todo := make([]int, len(jobs))
	for i := range todo {
		todo[i] = i
	}
	// A taken key whose job finishes before we read it is free again:
	// insert once more. Each round needs a job to finish in that window.
	const rounds = 5
	for round := 0; len(todo) > 0; round++ {
		if round == rounds {
			return nil, conflictf(EntityJob, "unique_key", "unique key %q kept being taken and freed during the enqueue; retry", docs[todo[0]].UniqueKey)
		}
		taken, err := s.insertJobs(ctx, docs, todo)
		if err != nil {
			return nil, err
		}
		for _, i := range todo {
			if _, found := slices.BinarySearch(taken, i); !found {
				results[i] = EnqueueResult{Job: &docs[i].Job}
			}
		}
		holders, err := s.lockHolders(ctx, docs, taken)
		if err != nil {
			return nil, err
		}
		todo = todo[:0]
		for _, i := range taken {
			if h, ok := holders[docs[i].UniqueLock]; ok {
				results[i] = EnqueueResult{Job: h, Duplicate: true}
			} else {
				todo = append(todo, i)
			}
		}
	}
	s.enqueued.wake()
	return results, nil
}

// checkJobArtifacts refuses, with one command, jobs whose params are of a
// built-in params type ([ValidateParams], [DownloadParams],
// [InferenceParams]) naming an artifact that does not exist.
func (s *Store) checkJobArtifacts(ctx context.Context, jobs []EnqueueParams) error {
	var ids []bson.ObjectID
	for _, p := range jobs {
		if ap, ok := paramsValidator(p.Params).(artifactParams); ok {
			ids = append(ids, ap.artifactID())
		}
	}
	missing, err := missingIDs(ctx, s.cols.artifacts, EntityJob, uniqueIDs(ids))
	if err != nil || len(missing) == 0 {
		return err
	}
	return invalidf(EntityJob, "params.artifact_id", "no model_artifact with id %s: create the artifact before enqueueing its jobs", hexList(missing))
}

// jobDoc is a job as inserted: with its unique_lock, which harmonia keeps
// to itself. While the job is pending or running and has a unique key,
// the lock is "key:" and the key; otherwise it is "job:" and the job's id,
// unique by construction. A unique index on the lock then admits one
// active job per key, race-free, without partial indexes (which the
// embedded server lacks).
//
// finished_lease is the lease token of the attempt whose outcome was
// recorded last (success, failure or release): it tells a batched write
// which outcomes it recorded, and a claim that a pending job has not been
// claimed and given back since it was read.
type jobDoc struct {
	Job           `bson:",inline"`
	UniqueLock    string `bson:"unique_lock"`
	FinishedLease string `bson:"finished_lease,omitempty"`
}

func activeLock(j *Job) string {
	if j.UniqueKey == "" {
		return finishedLock(j.ID)
	}
	return "key:" + j.UniqueKey
}

func finishedLock(id bson.ObjectID) string { return "job:" + id.Hex() }

// newJob builds and validates the job p describes.
func newJob(p EnqueueParams, now time.Time) (*Job, error) {
	var o EnqueueOpts
	if p.Opts != nil {
		o = *p.Opts
	}
	raw, err := encodeDoc(p.Params)
	if err != nil {
		return nil, invalidCause(EntityJob, "params", err, "must encode as a BSON document (a struct, map, bson.D or bson.Raw)")
	}
	runAfter := now
	if !o.RunAfter.IsZero() {
		runAfter = o.RunAfter.UTC().Truncate(time.Millisecond)
	}
	j := &Job{
		ID: bson.NewObjectID(), SchemaVersion: SchemaVersion, Type: p.Type, Status: JobPending,
		Priority: o.Priority, Params: raw, UniqueKey: o.UniqueKey, RunAfter: runAfter,
		MaxAttempts: o.MaxAttempts, CreatedAt: now, UpdatedAt: now,
	}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = MaxAttemptsDefault
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	if v := paramsValidator(p.Params); v != nil {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// paramsValidator returns params as a value with a Validate method: params
// itself, or a pointer to a copy of it when the method has a pointer
// receiver. It returns nil when params has no such method.
func paramsValidator(params any) interface{ Validate() error } {
	type validator = interface{ Validate() error }
	if v, ok := params.(validator); ok {
		if rv := reflect.ValueOf(params); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return nil
		}
		return v
	}
	rv := reflect.ValueOf(params)
	if !rv.IsValid() {
		return nil
	}
	p := reflect.New(rv.Type())
	p.Elem().Set(rv)
	v, _ := p.Interface().(validator)
	return v
}

// encodeDoc encodes v as a BSON document; nil stays nil.
func encodeDoc(v any) (bson.Raw, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case bson.Raw:
		if v == nil {
			return nil, nil
		}
		return v, v.Validate()
	}
	return bson.Marshal(v)
}

// insertJobs inserts docs[i] for every i in idx with unordered batched
// inserts and returns the indexes whose unique lock was taken.
func (s *Store) insertJobs(ctx context.Context, docs []jobDoc, idx []int) ([]int, error) {
	batch := make([]any, len(idx))
	for k, i := range idx {
		batch[k] = &docs[i]
	}
	_, err := s.cols.jobs.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, wrapErr(EntityJob, "enqueue", err)
	}
	var taken []int
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) || we.Index < 0 || we.Index >= len(idx) {
			return nil, wrapErr(EntityJob, "enqueue", err)
		}
		taken = append(taken, idx[we.Index])
	}
	slices.Sort(taken)
	return taken, nil
}

// lockHolders reads, in one command, the jobs holding the unique locks of
// docs[i] for i in idx, by lock.
func (s *Store) lockHolders(ctx context.Context, docs []jobDoc, idx []int) (map[string]*Job, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	locks := make([]string, len(idx))
	for k, i := range idx {
		locks[k] = docs[i].UniqueLock
	}
	found, err := findAll[jobDoc](ctx, s.cols.jobs, EntityJob, bson.D{{Key: "unique_lock", Value: bson.D{{Key: "$in", Value: locks}}}}, len(locks))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Job, len(found))
	for i := range found {
		out[found[i].UniqueLock] = &found[i].Job
	}
	return out, nil
}

// JobsEnqueued returns a channel that is closed when this Store next
// enqueues a job or gives one back to the queue ([Queue.ReleaseJob]), so
// that idle workers of this process need not wait for their next poll.
// Call it again after each close for the next one. Jobs enqueued through
// other Stores or processes close nothing: poll for those.
func (q *Queue) JobsEnqueued() <-chan struct{} { return q.store.enqueued.wait() }

// wakeup lets goroutines wait for the next wake call.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel that is closed by the next wake.
func (w *wakeup) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// wake wakes every goroutine waiting.
func (w *wakeup) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// JobKeysInUse returns which of keys a job carries as its unique key,
// pending, running or finished, with one query. A scheduler enqueues
// only the periods whose keys it does not find.
//
// Errors: [CodeInternal].
func (q *Queue) JobKeysInUse(ctx context.Context, keys []string) (map[string]bool, error) {
	s := q.store
	type keyOnly struct {
		Key string `bson:"unique_key"`
	}
	found, err := findAll[keyOnly](ctx, s.cols.jobs, EntityJob, bson.D{{Key: "unique_key", Value: bson.D{{Key: "$in", Value: keys}}}}, len(keys),
		options.Find().SetProjection(bson.D{{Key: "unique_key", Value: 1}, {Key: "_id", Value: 0}}))
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(found))
	for _, f := range found {
		have[f.Key] = true
	}
	return have, nil
}
