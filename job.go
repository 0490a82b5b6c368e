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
	// ClaimSent is when this process sent the write that claimed the job,
	// on its own monotonic clock; zero on a job this process did not
	// claim. The lease runs from no earlier than then, whatever the
	// server's clock, so a lease holder that counts its lease from
	// ClaimSent never believes it holds a job the server has already
	// released, however long the claim took (a claim may read and stamp
	// more than once when other workers take its candidates first).
	ClaimSent  time.Time  `bson:"-" json:"-" validate:"-"`
	StartedAt  *time.Time `bson:"started_at,omitempty" json:"started_at,omitempty" validate:"-"`
	FinishedAt *time.Time `bson:"finished_at,omitempty" json:"finished_at,omitempty" validate:"-"`

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

// CancelJob cancels a pending or running job: its status becomes
// [JobCancelled], no worker will claim it, and its unique key is free
// again. A running job's lease ends: its worker's next heartbeat finds the
// job cancelled and cancels the handler's context, with the cause
// [ErrJobCancelled], and the handler's outcome is not recorded. A finished
// job cannot be cancelled.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeNotFound], [CodeConflict] (finished already), [CodeInternal].
func (q *Queue) CancelJob(ctx context.Context, id bson.ObjectID) (*Job, error) {
	s := q.store
	now := s.Now()
	update := bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "status", Value: JobCancelled}, {Key: "finished_at", Value: now},
			{Key: "updated_at", Value: now}, {Key: "unique_lock", Value: finishedLock(id)},
		}},
		{Key: "$unset", Value: bson.D{{Key: "lease_token", Value: ""}, {Key: "lease_expires_at", Value: ""}}},
	}
	active := bson.D{{Key: "$in", Value: bson.A{JobPending, JobRunning}}}
	var j Job
	err := s.cols.jobs.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: active}}, update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&j)
	if err == nil {
		return &j, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, wrapErr(EntityJob, "cancel", err)
	}
	cur, err := s.Queue().GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	return nil, conflictf(EntityJob, "status", "job %s is %s: only a pending or running job can be cancelled", id.Hex(), cur.Status)
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
func (q *Queue) AppendLog(ctx context.Context, job *Job, level LogLevel, message string) error {
	s := q.store
	if job == nil {
		return nilArgument(EntityJob)
	}
	ev, err := s.newEvent(job, level, message)
	if err != nil {
		return err
	}
	tail := s.logTail(job.LogTail, []Event{ev})
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "log_tail", Value: tail}, {Key: "updated_at", Value: ev.At}}}}
	if err := s.leaseWrite(ctx, job, "log to", update); err != nil {
		return err
	}
	job.LogTail, job.UpdatedAt = tail, ev.At
	if _, err := s.cols.events.InsertOne(ctx, &ev); err != nil {
		return wrapErr(EntityJob, "log", err)
	}
	return nil
}

// newEvent returns the log line of job at level, now.
func (s *Store) newEvent(job *Job, level LogLevel, message string) (Event, error) {
	return NewLogEvent(job, level, message, s.Now())
}

// NewLogEvent returns the log line of job at level, at the time at, its
// message cut at MaxLogMessageBytes, for [LeaseWrite].Lines.
//
// Errors: [CodeInvalid] (unknown level).
func NewLogEvent(job *Job, level LogLevel, message string, at time.Time) (Event, error) {
	switch level {
	case LevelDebug, LevelInfo, LevelWarn, LevelError:
	default:
		return Event{}, invalidf(EntityJob, "level", "log level %q is not one of debug, info, warn, error", level)
	}
	return Event{ID: bson.NewObjectID(), SchemaVersion: SchemaVersion, JobID: job.ID, Attempt: job.Attempt,
		Level: level, Message: textcut.Cut(message, MaxLogMessageBytes), At: at}, nil
}

// logTail returns tail with the lines of events added at its end, keeping
// the last Options.JobLogTail lines.
func (s *Store) logTail(tail []string, events []Event) []string {
	lines := make([]string, len(events))
	for i, ev := range events {
		lines[i] = ev.At.Format("2006-01-02T15:04:05.000Z07:00") + " " + string(ev.Level) + " " + ev.Message
	}
	all := slices.Concat(tail, lines)
	return slices.Clip(all[max(0, len(all)-s.opts.JobLogTail):])
}

// JobLog returns every log line of the job with id, in order, with one
// query.
//
// Errors: [CodeInternal].
func (q *Queue) JobLog(ctx context.Context, id bson.ObjectID) ([]Event, error) {
	s := q.store
	o := options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}})
	return findAll[Event](ctx, s.cols.events, EntityJob, bson.D{{Key: "job_id", Value: id}}, 10000, o)
}
