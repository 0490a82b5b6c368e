package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// Job is a job as the API shows it: harmonia's Job with its params and
// result as relaxed Extended JSON (an ObjectID is {"$oid": "…"}).
type Job struct {
	ID             string                  `json:"id"`
	Type           string                  `json:"type"`
	Status         harmonia.JobStatus      `json:"status"`
	Priority       int                     `json:"priority"`
	Params         json.RawMessage         `json:"params,omitempty"`
	UniqueKey      string                  `json:"unique_key,omitempty"`
	RunAfter       time.Time               `json:"run_after"`
	Attempt        int                     `json:"attempt"`
	MaxAttempts    int                     `json:"max_attempts"`
	WorkerID       string                  `json:"worker_id,omitempty"`
	LeaseExpiresAt *time.Time              `json:"lease_expires_at,omitempty"`
	StartedAt      *time.Time              `json:"started_at,omitempty"`
	FinishedAt     *time.Time              `json:"finished_at,omitempty"`
	Error          string                  `json:"error,omitempty"`
	Errors         []harmonia.AttemptError `json:"errors,omitempty"`
	Result         json.RawMessage         `json:"result,omitempty"`
	LogTail        []string                `json:"log_tail,omitempty"`
	CreatedAt      time.Time               `json:"created_at"`
	UpdatedAt      time.Time               `json:"updated_at"`
}

func jobOf(j *harmonia.Job) (*Job, error) {
	out := &Job{ID: j.ID.Hex(), Type: string(j.Type), Status: j.Status, Priority: j.Priority, UniqueKey: j.UniqueKey,
		RunAfter: j.RunAfter, Attempt: j.Attempt, MaxAttempts: j.MaxAttempts, WorkerID: j.WorkerID, LeaseExpiresAt: j.LeaseExpiresAt,
		StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, Error: j.Error, Errors: j.Errors, LogTail: j.LogTail,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
	var err error
	if out.Params, err = extJSON(j.Params); err != nil {
		return nil, err
	}
	if out.Result, err = extJSON(j.Result); err != nil {
		return nil, err
	}
	return out, nil
}

func extJSON(raw bson.Raw) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	b, err := bson.MarshalExtJSON(raw, false, false)
	return json.RawMessage(b), err
}

// JobPage is one page of GET /jobs, in the order jobs were enqueued.
type JobPage struct {
	Items []*Job `json:"items"`
	// Next is the cursor of the next page, absent on the last.
	Next string `json:"next,omitempty"`
}

// EnqueueInput is the body of POST /jobs.
type EnqueueInput struct {
	Type string `json:"type" validate:"max=64"`
	// Params is the job's input: for the built-in types an object such as
	// {"artifact_id": "<hex>"}, for others any object (relaxed Extended
	// JSON: {"$oid": …} is an ObjectID).
	Params      json.RawMessage `json:"params,omitempty"`
	Priority    int             `json:"priority,omitempty"`
	RunAfter    *time.Time      `json:"run_after,omitempty"`
	MaxAttempts int             `json:"max_attempts,omitempty"`
	UniqueKey   string          `json:"unique_key,omitempty" validate:"max=200"`
}

// EnqueueOutput is the answer of POST /jobs.
type EnqueueOutput struct {
	Job *Job `json:"job"`
	// Duplicate is true when a pending or running job had the unique key:
	// nothing was enqueued.
	Duplicate bool `json:"duplicate"`
}

// EventList is the answer of GET /jobs/{id}/log.
type EventList struct {
	Items []harmonia.Event `json:"items"`
}

// jobParams decodes a job's params: the built-in types into their
// params types (so that their ids are ObjectIDs), others as relaxed
// Extended JSON.
func jobParams(t harmonia.JobType, raw json.RawMessage) (any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	strict := func(v any) error {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return &harmonia.Error{Code: harmonia.CodeInvalid, Entity: harmonia.EntityJob, Field: "params",
				Reason: "params of a " + string(t) + " job: " + err.Error(), Fields: []harmonia.FieldError{{Field: "params", Reason: err.Error()}}}
		}
		return nil
	}
	switch t {
	case harmonia.JobValidate:
		var p harmonia.ValidateParams
		return &p, strict(&p)
	case harmonia.JobDownload:
		var p harmonia.DownloadParams
		return &p, strict(&p)
	case harmonia.JobInference:
		var p struct {
			ArtifactID bson.ObjectID   `json:"artifact_id"`
			Input      json.RawMessage `json:"input"`
		}
		if err := strict(&p); err != nil {
			return nil, err
		}
		out := &harmonia.InferenceParams{ArtifactID: p.ArtifactID}
		if len(p.Input) > 0 {
			var d bson.D
			if err := bson.UnmarshalExtJSON(p.Input, false, &d); err != nil {
				return nil, &harmonia.Error{Code: harmonia.CodeInvalid, Entity: harmonia.EntityJob, Field: "params.input", Reason: err.Error()}
			}
			b, err := bson.Marshal(d)
			if err != nil {
				return nil, err
			}
			out.Input = b
		}
		return out, nil
	}
	var d bson.D
	if err := bson.UnmarshalExtJSON(raw, false, &d); err != nil {
		return nil, &harmonia.Error{Code: harmonia.CodeInvalid, Entity: harmonia.EntityJob, Field: "params", Reason: "params must be a JSON object: " + err.Error()}
	}
	return d, nil
}

func (h *Handler) jobOperations() []*operation {
	id := idParam("id", "the job's id")
	return []*operation{
		{method: "GET", path: "/jobs", id: "listJobs", tag: "jobs", scope: ScopeRead, summary: "List jobs, in the order they were enqueued",
			params: []param{queryStrings("status", "jobs in any of these statuses (repeatable)"),
				queryStrings("type", "jobs of any of these types (repeatable)"),
				queryString("worker_id", "jobs last claimed by this worker"), queryString("unique_key", "jobs enqueued with this unique key"),
				queryTime("created_from", "created at or after (RFC 3339)"), queryTime("created_before", "created before (RFC 3339)"),
				afterParam(), limitParam()},
			ok: http.StatusOK, out: &JobPage{}, link: true, run: func(c *call) error {
				q := c.r.URL.Query()
				f := harmonia.JobFilter{WorkerID: q.Get("worker_id"), UniqueKey: q.Get("unique_key"), After: queryObjectID(c, "after"),
					Limit: queryInt(c, "limit"), CreatedFrom: queryTimePtr(c, "created_from"), CreatedBefore: queryTimePtr(c, "created_before")}
				for _, s := range q["status"] {
					f.Statuses = append(f.Statuses, harmonia.JobStatus(s))
				}
				for _, t := range q["type"] {
					f.Types = append(f.Types, harmonia.JobType(t))
				}
				page, err := h.store.Queue().ListJobs(c.ctx, f)
				if err != nil {
					return err
				}
				out := &JobPage{Items: make([]*Job, len(page.Items)), Next: cursor(page.Next)}
				for i, j := range page.Items {
					if out.Items[i], err = jobOf(j); err != nil {
						return err
					}
				}
				nextLink(c, "after", out.Next)
				return c.reply(http.StatusOK, out)
			}},
		{method: "POST", path: "/jobs", id: "enqueueJob", tag: "jobs", scope: ScopeWrite, summary: "Enqueue a job",
			description: "201 when enqueued, 200 when a pending or running job had the unique key (duplicate: true).",
			body:        &EnqueueInput{}, ok: http.StatusCreated, also: []int{http.StatusOK}, out: &EnqueueOutput{},
			run: func(c *call) error {
				var in EnqueueInput
				if err := c.decode(&in); err != nil {
					return err
				}
				t := harmonia.JobType(in.Type)
				params, err := jobParams(t, in.Params)
				if err != nil {
					return err
				}
				o := &harmonia.EnqueueOpts{Priority: in.Priority, MaxAttempts: in.MaxAttempts, UniqueKey: in.UniqueKey}
				if in.RunAfter != nil {
					o.RunAfter = *in.RunAfter
				}
				res, err := h.store.Queue().Enqueue(c.ctx, t, params, o)
				if err != nil {
					return err
				}
				j, err := jobOf(res.Job)
				if err != nil {
					return err
				}
				status := http.StatusCreated
				if res.Duplicate {
					status = http.StatusOK
				}
				return c.reply(status, &EnqueueOutput{Job: j, Duplicate: res.Duplicate})
			}},
		{method: "GET", path: "/jobs/{id}", id: "getJob", tag: "jobs", scope: ScopeRead, summary: "Get a job",
			params: []param{id}, ok: http.StatusOK, out: &Job{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				return jobReply(c)(h.store.Queue().GetJob(c.ctx, pathID(c, "id")))
			}},
		{method: "POST", path: "/jobs/{id}/cancel", id: "cancelJob", tag: "jobs", scope: ScopeAdmin,
			summary: "Cancel a pending or running job (a running one stops at its next heartbeat)",
			params:  []param{id}, ok: http.StatusOK, out: &Job{}, errs: []int{http.StatusNotFound, http.StatusConflict}, run: func(c *call) error {
				return jobReply(c)(h.store.Queue().CancelJob(c.ctx, pathID(c, "id")))
			}},
		{method: "GET", path: "/jobs/{id}/log", id: "jobLog", tag: "jobs", scope: ScopeRead, summary: "A job's log lines, oldest first",
			params: []param{id}, ok: http.StatusOK, out: &EventList{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				if _, err := h.store.Queue().GetJob(c.ctx, pathID(c, "id")); err != nil {
					return err // the Store's log of an unknown job is empty, not an error
				}
				evs, err := h.store.Queue().JobLog(c.ctx, pathID(c, "id"))
				if err != nil {
					return err
				}
				return c.reply(http.StatusOK, &EventList{Items: nonNil(evs)})
			}},
	}
}

// jobReply returns the function that replies with a Store call's job,
// or returns its error: jobReply(c)(store.GetJob(…)).
func jobReply(c *call) func(*harmonia.Job, error) error {
	return func(j *harmonia.Job, err error) error {
		if err != nil {
			return err
		}
		out, err := jobOf(j)
		return answer(c, http.StatusOK, out, err)
	}
}
