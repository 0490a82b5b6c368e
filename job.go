package harmonia

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// JobType names what a job does. The three built-in types have handlers in
// harmonia; callers may register handlers for their own types.
type JobType string

// Built-in job types.
const (
	JobDownload  JobType = "download"
	JobValidate  JobType = "validate"
	JobInference JobType = "inference"
)

// JobStatus is a job's state, stored as a stable string.
type JobStatus string

// Job statuses. A failed attempt below the job's maximum goes back to
// pending with a backoff; only the last one leaves it failed.
const (
	JobPending JobStatus = "pending"
	JobRunning JobStatus = "running"
	JobSuccess JobStatus = "success"
	JobFailed  JobStatus = "failed"
)

// Defaults of job options (see [EnqueueOpts] and [Options]).
const (
	// MaxAttemptsDefault is how many attempts a job gets when
	// EnqueueOpts.MaxAttempts is 0.
	MaxAttemptsDefault = 3
	// JobBackoffBaseDefault is the wait after a job's first failed attempt.
	JobBackoffBaseDefault = 10 * time.Second
	// JobBackoffMaxDefault caps the wait between a job's attempts.
	JobBackoffMaxDefault = time.Hour
	// JobLogTailDefault is how many log lines a job's log_tail keeps.
	JobLogTailDefault = 50
)

// Limits on the text a job keeps.
const (
	// MaxLogMessageBytes bounds one log line; a longer one is cut.
	MaxLogMessageBytes = 4096
	// MaxErrorBytes bounds one attempt's error text; a longer one is cut.
	MaxErrorBytes = 4096
)

// ErrLeaseLost is the cause of the error a worker gets when it writes to a
// job whose lease it no longer holds: the lease expired and another worker
// claimed the job, or the job is no longer running. Such errors have the
// code [CodeConflict]; test for them with
//
//	errors.Is(err, harmonia.ErrLeaseLost)
var ErrLeaseLost = errors.New("lease lost")

// Job is a unit of work in the queue. Many workers may share the queue; a
// lease (token and expiry) guarantees that at most one of them runs a job
// at a time.
//
// The Store methods that write as the job's lease holder (Heartbeat,
// AppendLog, CompleteJob, FailJob, ReleaseJob) update the *Job they are
// given; they are not safe for concurrent use on the same *Job.
type Job struct {
	ID            bson.ObjectID `bson:"_id,omitempty" json:"id" validate:"-"`
	SchemaVersion int           `bson:"schema_version" json:"schema_version" validate:"-"`

	Type     JobType   `bson:"type" json:"type" validate:"required,max=64,jobtype"`
	Status   JobStatus `bson:"status" json:"status" validate:"-"`
	Priority int       `bson:"priority" json:"priority" validate:"-"`
	// Params is the job's input document, decoded by its handler with
	// [Job.DecodeParams].
	Params bson.Raw `bson:"params,omitempty" json:"params,omitempty" validate:"-"`
	// UniqueKey, when set, makes a second enqueue of the same key while a
	// job with it is pending or running return that job.
	UniqueKey   string    `bson:"unique_key,omitempty" json:"unique_key,omitempty" validate:"max=200,nocontrol"`
	RunAfter    time.Time `bson:"run_after" json:"run_after" validate:"-"`
	Attempt     int       `bson:"attempt" json:"attempt" validate:"-"`
	MaxAttempts int       `bson:"max_attempts" json:"max_attempts" validate:"gte=1,lte=1000"`

	WorkerID       string     `bson:"worker_id,omitempty" json:"worker_id,omitempty" validate:"-"`
	LeaseToken     string     `bson:"lease_token,omitempty" json:"-" validate:"-"`
	LeaseExpiresAt *time.Time `bson:"lease_expires_at,omitempty" json:"lease_expires_at,omitempty" validate:"-"`
	StartedAt      *time.Time `bson:"started_at,omitempty" json:"started_at,omitempty" validate:"-"`
	FinishedAt     *time.Time `bson:"finished_at,omitempty" json:"finished_at,omitempty" validate:"-"`

	// Error is the last attempt's error; Errors keeps every attempt's.
	Error   string         `bson:"error,omitempty" json:"error,omitempty" validate:"-"`
	Errors  []AttemptError `bson:"errors,omitempty" json:"errors,omitempty" validate:"-"`
	Result  bson.Raw       `bson:"result,omitempty" json:"result,omitempty" validate:"-"`
	LogTail []string       `bson:"log_tail,omitempty" json:"log_tail,omitempty" validate:"-"`

	CreatedAt time.Time `bson:"created_at" json:"created_at" validate:"-"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at" validate:"-"`
}

// AttemptError records why one attempt of a job failed.
type AttemptError struct {
	Attempt  int       `bson:"attempt" json:"attempt" validate:"-"`
	WorkerID string    `bson:"worker_id" json:"worker_id" validate:"-"`
	Error    string    `bson:"error" json:"error" validate:"-"`
	At       time.Time `bson:"at" json:"at" validate:"-"`
}

// LogLevel is the level of a job's log line, stored as a stable string.
type LogLevel string

// Log levels.
const (
	LevelDebug LogLevel = "debug"
	LevelInfo  LogLevel = "info"
	LevelWarn  LogLevel = "warn"
	LevelError LogLevel = "error"
)

// Event is one log line of a job, kept in the append-only events
// collection.
type Event struct {
	ID            bson.ObjectID `bson:"_id,omitempty" json:"id" validate:"-"`
	SchemaVersion int           `bson:"schema_version" json:"schema_version" validate:"-"`
	JobID         bson.ObjectID `bson:"job_id" json:"job_id" validate:"-"`
	Attempt       int           `bson:"attempt" json:"attempt" validate:"-"`
	Level         LogLevel      `bson:"level" json:"level" validate:"-"`
	Message       string        `bson:"message" json:"message" validate:"-"`
	At            time.Time     `bson:"at" json:"at" validate:"-"`
}

// Validate checks the job's fields against their rules. It returns nil or
// an *Error with code [CodeInvalid] listing every broken rule.
func (j *Job) Validate() error { return validateEntity(EntityJob, j) }

// DecodeParams decodes the job's params document into v, a pointer to a
// struct with bson tags (for the built-in types: [ValidateParams],
// [DownloadParams], [InferenceParams]). A job without params leaves v as
// it is.
//
// Errors: [CodeInvalid] when the params do not fit v.
func (j *Job) DecodeParams(v any) error {
	if len(j.Params) == 0 {
		return nil
	}
	if err := bson.Unmarshal(j.Params, v); err != nil {
		return &Error{Code: CodeInvalid, Entity: EntityJob, Field: "params",
			Reason: fmt.Sprintf("params of job %s do not decode into %T: %v", j.ID.Hex(), v, err), Err: err}
	}
	return nil
}

// ValidateParams are the params of a [JobValidate] job.
type ValidateParams struct {
	// ArtifactID is the artifact whose local file is checked.
	ArtifactID bson.ObjectID `bson:"artifact_id" json:"artifact_id"`
}

// Validate checks that an artifact is named.
func (p *ValidateParams) Validate() error { return requireArtifact(p.ArtifactID) }

// DownloadParams are the params of a [JobDownload] job.
type DownloadParams struct {
	// ArtifactID is the artifact whose local file the download writes.
	ArtifactID bson.ObjectID `bson:"artifact_id" json:"artifact_id"`
	// Source is where the file comes from: a file://, http:// or https://
	// URL.
	Source string `bson:"source" json:"source"`
}

// Validate checks that an artifact is named and that the source is a
// file, http or https URL.
func (p *DownloadParams) Validate() error {
	if err := requireArtifact(p.ArtifactID); err != nil {
		return err
	}
	if msg := sourceProblem(p.Source); msg != "" {
		return invalidf(EntityJob, "params.source", "%s", msg)
	}
	return nil
}

// InferenceParams are the params of a [JobInference] job.
type InferenceParams struct {
	// ArtifactID is the model the inference runs.
	ArtifactID bson.ObjectID `bson:"artifact_id" json:"artifact_id"`
	// Input is the caller's input document, passed to the InferenceFunc
	// as it is.
	Input bson.Raw `bson:"input,omitempty" json:"input,omitempty"`
}

// Validate checks that an artifact is named.
func (p *InferenceParams) Validate() error { return requireArtifact(p.ArtifactID) }

func requireArtifact(id bson.ObjectID) error {
	if id.IsZero() {
		return invalidf(EntityJob, "params.artifact_id", "is required: the id of the artifact the job works on")
	}
	return nil
}

// downloadSchemes are the source schemes a download accepts.
var downloadSchemes = map[string]bool{"file": true, "http": true, "https": true}

// sourceProblem returns why s is not an acceptable download source, or "".
func sourceProblem(s string) string {
	if s == "" {
		return "is required: a file://, http:// or https:// URL"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a valid URL: " + err.Error()
	}
	scheme := strings.ToLower(u.Scheme)
	if !downloadSchemes[scheme] {
		return fmt.Sprintf("scheme %q is not allowed: use file, http or https", u.Scheme)
	}
	if scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return "file URLs must not name a remote host"
		}
		if !path.IsAbs(u.Path) || path.Clean(u.Path) != u.Path {
			return "file URLs must hold a clean absolute path"
		}
	} else if u.Host == "" {
		return "must name a host"
	}
	return ""
}

// builtinParams returns an empty params value of a built-in type, nil for
// other types.
func builtinParams(t JobType) interface{ Validate() error } {
	switch t {
	case JobValidate:
		return &ValidateParams{}
	case JobDownload:
		return &DownloadParams{}
	case JobInference:
		return &InferenceParams{}
	}
	return nil
}

// EnqueueOpts are the per-job options of [Store.Enqueue]. A nil
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

// EnqueueParams is one job of [Store.EnqueueMany].
type EnqueueParams struct {
	// Type is the job's type.
	Type JobType
	// Params is the job's input, as for [Store.Enqueue].
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
// For the built-in types it must decode into their params type
// ([ValidateParams], [DownloadParams], [InferenceParams]) and pass its
// Validate. With a unique key, a pending or running job with the same key
// is returned instead (EnqueueResult.Duplicate); this holds under
// concurrent enqueues, on every deployment.
//
// Errors: [CodeInvalid] (nothing written), [CodeInternal].
func (s *Store) Enqueue(ctx context.Context, t JobType, params any, opts *EnqueueOpts) (*EnqueueResult, error) {
	res, err := s.EnqueueMany(ctx, []EnqueueParams{{Type: t, Params: params, Opts: opts}})
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
// Errors: [CodeInvalid] naming the index of the first invalid job
// (nothing written), [CodeConflict] when unique keys keep being taken and
// freed under it (rare; retry), [CodeInternal].
func (s *Store) EnqueueMany(ctx context.Context, jobs []EnqueueParams) ([]EnqueueResult, error) {
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

// jobDoc is a job as inserted: with its unique_lock, which harmonia keeps
// to itself. While the job is pending or running and has a unique key,
// the lock is "key:" and the key; otherwise it is "job:" and the job's id,
// unique by construction. A unique index on the lock then admits one
// active job per key, race-free, without partial indexes (which the
// embedded server lacks).
type jobDoc struct {
	Job        `bson:",inline"`
	UniqueLock string `bson:"unique_lock"`
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
		return nil, invalidf(EntityJob, "params", "must encode as a BSON document (a struct, map, bson.D or bson.Raw): %v", err)
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
	if typed := builtinParams(p.Type); typed != nil {
		if err := j.DecodeParams(typed); err != nil {
			return nil, err
		}
		if err := typed.Validate(); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// encodeDoc encodes v as a BSON document; nil stays nil.
func encodeDoc(v any) (bson.Raw, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case bson.Raw:
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

// GetJob returns the job with id.
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) GetJob(ctx context.Context, id bson.ObjectID) (*Job, error) {
	return findOne[Job](ctx, s.cols.jobs, EntityJob, bson.D{{Key: "_id", Value: id}}, "id "+id.Hex())
}

// ClaimJob takes the next job of one of types for the worker workerID and
// returns it, or nil when there is none. The claim is one
// findOneAndUpdate: it takes the pending job with the highest priority
// (then the earliest run-after, then the oldest) whose run-after has
// passed, or a running job whose lease has expired, sets it running under
// a fresh lease token that expires lease from now, and counts the
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
	switch {
	case workerID == "":
		return nil, invalidf(EntityJob, "worker_id", "a worker id is required")
	case len(types) == 0:
		return nil, invalidf(EntityJob, "type", "name at least one job type to claim")
	case lease < time.Millisecond:
		return nil, invalidf(EntityJob, "lease_expires_at", "the lease must be at least a millisecond (got %s)", lease)
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
	ofType := bson.E{Key: "type", Value: bson.D{{Key: "$in", Value: types}}}
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "status", Value: JobPending}, ofType, {Key: "run_after", Value: bson.D{{Key: "$lte", Value: now}}}},
		bson.D{{Key: "status", Value: JobRunning}, ofType, {Key: "lease_expires_at", Value: bson.D{{Key: "$lt", Value: now}}}},
	}}}
	update := bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "status", Value: JobRunning}, {Key: "worker_id", Value: workerID}, {Key: "started_at", Value: now},
			{Key: "lease_token", Value: token}, {Key: "lease_expires_at", Value: expires}, {Key: "updated_at", Value: now},
		}},
		{Key: "$inc", Value: bson.D{{Key: "attempt", Value: 1}}},
	}
	// The document before the update tells a fresh claim from a take-over;
	// the claimed state is known from the update itself.
	o := options.FindOneAndUpdate().SetReturnDocument(options.Before).
		SetSort(bson.D{{Key: "priority", Value: -1}, {Key: "run_after", Value: 1}, {Key: "_id", Value: 1}})
	var before Job
	if err := s.cols.jobs.FindOneAndUpdate(ctx, filter, update, o).Decode(&before); err != nil {
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
	expired := "lease expired"
	if prev.LeaseExpiresAt != nil {
		expired += " at " + prev.LeaseExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	ae := AttemptError{Attempt: prev.Attempt, WorkerID: prev.WorkerID, At: now,
		Error: expired + ": worker " + prev.WorkerID + " stopped heart-beating"}
	if prev.Attempt >= prev.MaxAttempts {
		update := bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "status", Value: JobFailed}, {Key: "finished_at", Value: now}, {Key: "updated_at", Value: now},
				{Key: "error", Value: ae.Error}, {Key: "unique_lock", Value: finishedLock(job.ID)},
			}},
			{Key: "$unset", Value: bson.D{{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}}},
			{Key: "$push", Value: bson.D{{Key: "errors", Value: ae}}},
			{Key: "$inc", Value: bson.D{{Key: "attempt", Value: -1}}},
		}
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

// leaseWrite applies update to job if the caller still holds its lease.
func (s *Store) leaseWrite(ctx context.Context, job *Job, op string, update bson.D) error {
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

// Heartbeat extends the lease of a running job to lease from now.
//
// Errors: [CodeConflict] wrapping [ErrLeaseLost], [CodeInternal].
func (s *Store) Heartbeat(ctx context.Context, job *Job, lease time.Duration) error {
	now := s.Now()
	expires := now.Add(lease).Truncate(time.Millisecond)
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "lease_expires_at", Value: expires}, {Key: "updated_at", Value: now}}}}
	if err := s.leaseWrite(ctx, job, "heartbeat", update); err != nil {
		return err
	}
	job.LeaseExpiresAt, job.UpdatedAt = &expires, now
	return nil
}

// AppendLog adds a line to the log of a running job: an [Event] in the
// events collection, and the line, with its time and level, at the end of
// the job's log_tail, which keeps the last Options.JobLogTail lines. The
// message is cut at MaxLogMessageBytes.
//
// The tail is written whole, conditioned on the lease like every write of
// the lease holder, who is its only writer. (A $push with $slice would do
// on MongoDB; the embedded server, FerretDB v1.24, ignores $slice.)
//
// Errors: [CodeInvalid] (unknown level), [CodeConflict] wrapping
// [ErrLeaseLost] (nothing written), [CodeInternal].
func (s *Store) AppendLog(ctx context.Context, job *Job, level LogLevel, message string) error {
	switch level {
	case LevelDebug, LevelInfo, LevelWarn, LevelError:
	default:
		return invalidf(EntityJob, "level", "log level %q is not one of debug, info, warn, error", level)
	}
	now := s.Now()
	message = cut(message, MaxLogMessageBytes)
	line := now.Format("2006-01-02T15:04:05.000Z07:00") + " " + string(level) + " " + message
	tail := job.LogTail[max(0, len(job.LogTail)+1-s.opts.JobLogTail):]
	tail = slices.Concat(tail, []string{line})
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "log_tail", Value: tail}, {Key: "updated_at", Value: now}}}}
	if err := s.leaseWrite(ctx, job, "log to", update); err != nil {
		return err
	}
	job.LogTail, job.UpdatedAt = tail, now
	ev := Event{ID: bson.NewObjectID(), SchemaVersion: SchemaVersion, JobID: job.ID, Attempt: job.Attempt, Level: level, Message: message, At: now}
	if _, err := s.cols.events.InsertOne(ctx, &ev); err != nil {
		return wrapErr(EntityJob, "log", err)
	}
	return nil
}

// JobLog returns every log line of the job with id, in order, with one
// query.
//
// Errors: [CodeInternal].
func (s *Store) JobLog(ctx context.Context, id bson.ObjectID) ([]Event, error) {
	o := options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}})
	return findAll[Event](ctx, s.cols.events, EntityJob, bson.D{{Key: "job_id", Value: id}}, 10000, o)
}

// CompleteJob records the success of a running job's attempt, with result
// (a document, as for Enqueue's params; nil for none).
//
// Errors: [CodeInvalid] (result is not a document; nothing written),
// [CodeConflict] wrapping [ErrLeaseLost], [CodeInternal].
func (s *Store) CompleteJob(ctx context.Context, job *Job, result any) error {
	raw, err := encodeDoc(result)
	if err != nil {
		return invalidf(EntityJob, "result", "must encode as a BSON document (a struct, map, bson.D or bson.Raw): %v", err)
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
	msg := "failed"
	if cause != nil {
		msg = cut(cause.Error(), MaxErrorBytes)
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

// CancelJob cancels a pending job: it becomes failed with the error
// "cancelled", and its unique key is free again. A running or finished job
// cannot be cancelled.
//
// Errors: [CodeNotFound], [CodeConflict] (not pending), [CodeInternal].
func (s *Store) CancelJob(ctx context.Context, id bson.ObjectID) (*Job, error) {
	now := s.Now()
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: JobFailed}, {Key: "error", Value: "cancelled"}, {Key: "finished_at", Value: now},
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

// Permanent marks err as a failure that retrying will not fix: FailJob
// (and a Worker, when a handler returns it) fails the job for good
// whatever attempts it has left. The text is err's.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
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

// applyJobDefaults fills in and checks the job options of o.
func (o *Options) applyJobDefaults() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"JobBackoffBase", int64(o.JobBackoffBase)}, {"JobBackoffMax", int64(o.JobBackoffMax)}, {"JobLogTail", int64(o.JobLogTail)}} {
		if f.v < 0 {
			return invalidf("store", f.name, "must not be negative (0 takes the default)")
		}
	}
	if o.JobBackoffBase == 0 {
		o.JobBackoffBase = JobBackoffBaseDefault
	}
	if o.JobBackoffMax == 0 {
		o.JobBackoffMax = max(JobBackoffMaxDefault, o.JobBackoffBase)
	}
	if o.JobLogTail == 0 {
		o.JobLogTail = JobLogTailDefault
	}
	if o.JobBackoffMax < o.JobBackoffBase {
		return invalidf("store", "JobBackoffMax", "must be at least JobBackoffBase (%s)", o.JobBackoffBase)
	}
	return nil
}

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := n - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}

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
