package harmonia

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
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

// Job is a unit of work in the queue. Many workers may share the queue; a
// lease (token and expiry) guarantees that at most one of them runs a job
// at a time.
type Job struct {
	ID            bson.ObjectID `bson:"_id,omitempty" json:"id" validate:"-"`
	SchemaVersion int           `bson:"schema_version" json:"schema_version" validate:"-"`

	Type     JobType   `bson:"type" json:"type" validate:"required,max=64,jobtype"`
	Status   JobStatus `bson:"status" json:"status" validate:"-"`
	Priority int       `bson:"priority" json:"priority" validate:"-"`
	// Params is the job's input document, decoded by its handler.
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

// Event is one log line of a job, kept in the append-only events
// collection.
type Event struct {
	ID      bson.ObjectID `bson:"_id,omitempty" json:"id" validate:"-"`
	JobID   bson.ObjectID `bson:"job_id" json:"job_id" validate:"-"`
	Attempt int           `bson:"attempt" json:"attempt" validate:"-"`
	Level   string        `bson:"level" json:"level" validate:"-"`
	Message string        `bson:"message" json:"message" validate:"-"`
	At      time.Time     `bson:"at" json:"at" validate:"-"`
}
