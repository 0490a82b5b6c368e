package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

func (a *app) jobsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, inspect, cancel and retry jobs",
		Long: `jobs reads and steers the job queue: list jobs with filters, show one
with its attempts and log, cancel a job that has not finished, retry one
that failed or was cancelled.`,
		Example: `  harmonia jobs list --status failed
  harmonia jobs show 6743a1f0c2a4b5d6e7f80912
  harmonia jobs cancel 6743a1f0c2a4b5d6e7f80912
  harmonia jobs retry 6743a1f0c2a4b5d6e7f80912`,
	}
	return group(cmd, a.jobsListCommand(), a.jobsShowCommand(), a.jobsCancelCommand(), a.jobsRetryCommand())
}

// storeAndJobID parses a job id argument and returns the run's Store.
func (a *app) storeAndJobID(ctx context.Context, s string) (*harmonia.Store, bson.ObjectID, error) {
	id, err := bson.ObjectIDFromHex(s)
	if err != nil {
		return nil, id, invalidArg("id", "%q is not a job id (24 hex digits)", s)
	}
	store, err := a.store(ctx)
	return store, id, err
}

// attemptJSON is one failed attempt of a job in --json output.
type attemptJSON struct {
	Attempt  int       `json:"attempt"`
	WorkerID string    `json:"worker_id"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

// eventJSON is one log line of a job in jobs show --json.
type eventJSON struct {
	At      time.Time `json:"at"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// jobJSON is a job in --json output; params and result are relaxed
// MongoDB Extended JSON.
type jobJSON struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Status      string          `json:"status"`
	Priority    int             `json:"priority"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	UniqueKey   string          `json:"unique_key,omitempty"`
	WorkerID    string          `json:"worker_id,omitempty"`
	RunAfter    time.Time       `json:"run_after"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	Error       string          `json:"error,omitempty"`
	Errors      []attemptJSON   `json:"errors,omitempty"`
	Params      json.RawMessage `json:"params,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	LogTail     []string        `json:"log_tail,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Log         []eventJSON     `json:"log,omitempty"`
}

// extJSON renders a document as relaxed Extended JSON (nil for none).
func extJSON(raw bson.Raw) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	b, err := bson.MarshalExtJSON(raw, false, false)
	if err != nil {
		return nil
	}
	return b
}

func jobOf(j *harmonia.Job) jobJSON {
	out := jobJSON{ID: j.ID.Hex(), Type: string(j.Type), Status: string(j.Status), Priority: j.Priority, Attempt: j.Attempt,
		MaxAttempts: j.MaxAttempts, UniqueKey: j.UniqueKey, WorkerID: j.WorkerID, RunAfter: j.RunAfter, StartedAt: j.StartedAt,
		FinishedAt: j.FinishedAt, Error: j.Error, Params: extJSON(j.Params), Result: extJSON(j.Result), LogTail: j.LogTail,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
	for _, e := range j.Errors {
		out.Errors = append(out.Errors, attemptJSON{Attempt: e.Attempt, WorkerID: e.WorkerID, Error: e.Error, At: e.At})
	}
	return out
}

// printJob prints one job in detail.
func (a *app) printJob(j jobJSON) error {
	if a.json {
		return a.printJSON(j)
	}
	rows := [][2]string{
		{"id", j.ID}, {"type", j.Type}, {"status", j.Status}, {"priority", strconv.Itoa(j.Priority)},
		{"attempt", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts)}, {"unique key", j.UniqueKey},
		{"worker", j.WorkerID}, {"created", timeText(j.CreatedAt)}, {"run after", timeText(j.RunAfter)},
		{"started", timePtrText(j.StartedAt)}, {"finished", timePtrText(j.FinishedAt)},
		{"params", string(j.Params)}, {"result", string(j.Result)}, {"error", j.Error},
	}
	t := a.newTable("FIELD", "VALUE")
	for _, r := range rows {
		t.row(r[0], r[1])
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(j.Errors) > 0 {
		fmt.Fprintln(a.stdout, "\nattempts:")
		t := a.newTable("ATTEMPT", "AT", "WORKER", "ERROR")
		for _, e := range j.Errors {
			t.row(strconv.Itoa(e.Attempt), timeText(e.At), e.WorkerID, e.Error)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(j.Log) > 0 {
		fmt.Fprintln(a.stdout, "\nlog:")
		for _, e := range j.Log {
			fmt.Fprintf(a.stdout, "%s %-5s %s\n", timeText(e.At), strings.ToUpper(e.Level), e.Message)
		}
	}
	return nil
}

func (a *app) jobsShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a job with its attempts and log",
		Long: `show prints the job ID: type, status, attempts, params and result
(as Extended JSON), the error of every failed attempt, and its log. An
unknown id exits with code 3.`,
		Example: `  harmonia jobs show 6743a1f0c2a4b5d6e7f80912
  harmonia jobs show 6743a1f0c2a4b5d6e7f80912 --json`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, id, err := a.storeAndJobID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			j, err := store.Queue().GetJob(cmd.Context(), id)
			if err != nil {
				return err
			}
			events, err := store.Queue().JobLog(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := jobOf(j)
			for _, e := range events {
				out.Log = append(out.Log, eventJSON{At: e.At, Level: string(e.Level), Message: e.Message})
			}
			return a.printJob(out)
		},
	}
}

func (a *app) jobsCancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job that has not finished",
		Long: `cancel takes the job ID off the queue: a pending job never runs, a
running one has its handler's context cancelled at its next heartbeat. A
job that already finished exits with code 4; an unknown id with code 3.`,
		Example: `  harmonia jobs cancel 6743a1f0c2a4b5d6e7f80912`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, id, err := a.storeAndJobID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			j, err := store.Queue().CancelJob(cmd.Context(), id)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(jobOf(j))
			}
			fmt.Fprintf(a.stdout, "job %s %s\n", j.ID.Hex(), j.Status)
			return nil
		},
	}
}

func (a *app) jobsRetryCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "retry ID",
		Short: "Enqueue a failed or cancelled job again",
		Long: `retry enqueues a new job with the type, params, priority, maximum
attempts and unique key of the job ID, which must have failed or been
cancelled (otherwise exit code 4), and prints the new job's id. The old job
stays as it was, for the record.`,
		Example: `  harmonia jobs retry 6743a1f0c2a4b5d6e7f80912`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, id, err := a.storeAndJobID(ctx, args[0])
			if err != nil {
				return err
			}
			j, err := store.Queue().GetJob(ctx, id)
			if err != nil {
				return err
			}
			if j.Status != harmonia.JobFailed && j.Status != harmonia.JobCancelled {
				return &harmonia.Error{Code: harmonia.CodeConflict, Entity: harmonia.EntityJob, Field: "status",
					Reason: fmt.Sprintf("job %s is %s: only a failed or cancelled job can be retried", j.ID.Hex(), j.Status)}
			}
			var params any
			if len(j.Params) > 0 {
				params = j.Params
			}
			res, err := store.Queue().Enqueue(ctx, j.Type, params, &harmonia.EnqueueOpts{Priority: j.Priority, MaxAttempts: j.MaxAttempts, UniqueKey: j.UniqueKey})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"retried": j.ID.Hex(), "job": jobOf(res.Job), "duplicate": res.Duplicate})
			}
			if res.Duplicate {
				fmt.Fprintf(a.stdout, "job %s with unique key %q is already queued: %s\n", res.Job.ID.Hex(), j.UniqueKey, res.Job.Status)
				return nil
			}
			fmt.Fprintf(a.stdout, "job %s retried as %s\n", j.ID.Hex(), res.Job.ID.Hex())
			return nil
		},
	}
}
