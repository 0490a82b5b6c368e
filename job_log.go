package harmonia

import (
	"context"
	"slices"
	"time"

	"github.com/harmonia-ml/harmonia/internal/textcut"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

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
