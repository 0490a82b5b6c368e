package worker

import (
	"context"
	"github.com/harmonia-ml/harmonia"
	"time"
)

// Defaults of [AuditOptions].
const (
	// AuditScheduleName is the name of the schedule [AuditSchedule]
	// returns.
	AuditScheduleName = "audit"
	// AuditCronDefault runs the audit every day at 03:00 UTC.
	AuditCronDefault = "0 3 * * *"
	// AuditWindowDefault is how long an audit's validate jobs are spread
	// over.
	AuditWindowDefault = time.Hour
)

// AuditOptions configures [AuditSchedule]. A nil *AuditOptions takes
// every default.
type AuditOptions struct {
	// Cron says when audits run, as [Schedule].Cron. Defaults to
	// AuditCronDefault unless Every is set.
	Cron string
	// Every runs audits at this interval instead, as [Schedule].Every.
	// Defaults to none.
	Every time.Duration
	// Window is how long the audit's jobs are spread over: their run-after
	// times are evenly spaced from the enqueue to the end of the window,
	// so that an audit does not start every validation at once. Keep it
	// shorter than the period. Defaults to AuditWindowDefault.
	Window time.Duration
	// Priority is the validate jobs' priority. Defaults to 0.
	Priority int
}

// AuditSchedule returns the built-in "audit" schedule for a [Scheduler]:
// each period it enqueues one [JobValidate] job per artifact of the
// published inventory versions (the artifacts marked published), which a
// worker with [ValidateHandler] runs to re-verify the artifact's file
// against its size and sha256, recording verified_at or verify_error. Bit
// rot and tampered storage show up within a period. The jobs are spread
// over AuditOptions.Window.
//
// Each job's unique key is the period's key and the artifact's id, so a
// process that takes over a stalled audit enqueues only the artifacts
// missing.
func AuditSchedule(opts *AuditOptions) Schedule {
	var o AuditOptions
	if opts != nil {
		o = *opts
	}
	if o.Every == 0 && o.Cron == "" {
		o.Cron = AuditCronDefault
	}
	if o.Window <= 0 {
		o.Window = AuditWindowDefault
	}
	return Schedule{Name: AuditScheduleName, Cron: o.Cron, Every: o.Every,
		Jobs: func(ctx context.Context, store *harmonia.Store, p Period) ([]harmonia.EnqueueParams, error) {
			return auditJobs(ctx, store, o)
		}}
}

// auditJobs returns a validate job for every published artifact, their
// run-after times spread evenly over o.Window from now.
func auditJobs(ctx context.Context, s *harmonia.Store, o AuditOptions) ([]harmonia.EnqueueParams, error) {
	published := true
	f := harmonia.ArtifactFilter{Published: &published, Limit: harmonia.ListLimitMax}
	var arts []*harmonia.ModelArtifact
	for {
		page, err := s.ListArtifacts(ctx, f)
		if err != nil {
			return nil, err
		}
		arts = append(arts, page.Items...)
		if !page.More() {
			break
		}
		f.After = page.Next
	}
	now := s.Now()
	jobs := make([]harmonia.EnqueueParams, len(arts))
	step := o.Window / time.Duration(max(len(arts), 1))
	for i, a := range arts {
		at := now.Add(step * time.Duration(i))
		jobs[i] = harmonia.EnqueueParams{Type: harmonia.JobValidate, Params: harmonia.ValidateParams{ArtifactID: a.ID},
			Opts: &harmonia.EnqueueOpts{UniqueKey: a.ID.Hex(), RunAfter: at, Priority: o.Priority}}
	}
	return jobs, nil
}
