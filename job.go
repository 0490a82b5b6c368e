package harmonia

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// JobType names what a job does. Workers (package worker) run each type
// with the handler registered for it: the built-in types ([JobValidate],
// [JobDownload], [JobInference]) have handlers in package worker, and
// callers register handlers for their own types.
type JobType string

// JobStatus is a job's state, stored as a stable string.
type JobStatus string

// Job statuses. A failed attempt below the job's maximum goes back to
// pending with a backoff; only the last one leaves it failed. Success,
// failed and cancelled are final.
const (
	JobPending JobStatus = "pending"
	JobRunning JobStatus = "running"
	JobSuccess JobStatus = "success"
	JobFailed  JobStatus = "failed"
	// JobCancelled is a job that [Queue.CancelJob] took off the queue,
	// pending or running (its handler is then stopped at its next
	// heartbeat).
	JobCancelled JobStatus = "cancelled"
)

// Limits on the text a job keeps.
const (
	// MaxLogMessageBytes bounds one log line; a longer one is cut.
	MaxLogMessageBytes = 4096
	// MaxErrorBytes bounds one attempt's error text; a longer one is cut.
	MaxErrorBytes = 4096
)

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
			Reason: fmt.Sprintf("params of job %s do not decode into %T", j.ID.Hex(), v), Err: err}
	}
	return nil
}

// DecodeResult decodes the result document of a finished job (what its
// handler returned) into v, a pointer to a struct with bson tags (for the
// built-in validate and download handlers: worker.VerifyResult). A
// job without a result leaves v as it is. It is the twin of
// [Job.DecodeParams].
//
// Errors: [CodeInvalid] when the result does not fit v.
func (j *Job) DecodeResult(v any) error {
	if len(j.Result) == 0 {
		return nil
	}
	if err := bson.Unmarshal(j.Result, v); err != nil {
		return &Error{Code: CodeInvalid, Entity: EntityJob, Field: "result",
			Reason: fmt.Sprintf("result of job %s does not decode into %T", j.ID.Hex(), v), Err: err}
	}
	return nil
}

// GetJob returns the job with id.
//
// Errors: [CodeNotFound], [CodeInternal].
func (q *Queue) GetJob(ctx context.Context, id bson.ObjectID) (*Job, error) {
	s := q.store
	return findOne[Job](ctx, s.cols.jobs, EntityJob, bson.D{{Key: "_id", Value: id}}, "id "+id.Hex())
}

// Queue is the job queue of a [Store]: its data operations (enqueue,
// claim, the lease holder's writes, list, wait, cancel, prune), which
// the worker package and custom loops call. It shares the Store's
// database, clock and options; get it with [Store.Queue].
type Queue struct {
	store *Store
}

// Queue returns the Store's job queue.
func (s *Store) Queue() *Queue { return &s.queue }
