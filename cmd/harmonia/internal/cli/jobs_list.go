package cli

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia"
)

func (a *app) jobsListCommand() *cobra.Command {
	var statuses, types []string
	var f harmonia.JobFilter
	var since, before string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, with filters",
		Long: `list prints jobs in the order they were enqueued, with their type,
status, attempts, worker and last error. Filters combine: --status and
--type (repeatable or comma-separated: any of them), --worker, --unique-key,
--since and --before (RFC 3339 times bounding created_at). --limit keeps
the first N (default 100; 0 lists all).`,
		Example: `  harmonia jobs list --status failed
  harmonia jobs list --type validate --status pending,running --json
  harmonia jobs list --since 2026-11-27T00:00:00Z --limit 0`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			filter := f
			for _, s := range splitList(statuses) {
				filter.Statuses = append(filter.Statuses, harmonia.JobStatus(s))
			}
			for _, t := range splitList(types) {
				filter.Types = append(filter.Types, harmonia.JobType(t))
			}
			var err error
			if filter.CreatedFrom, err = timeFlag("since", since); err != nil {
				return err
			}
			if filter.CreatedBefore, err = timeFlag("before", before); err != nil {
				return err
			}
			if limit < 0 {
				return invalidArg("limit", "must not be negative")
			}
			store, err := a.store(ctx)
			if err != nil {
				return err
			}
			filter.Limit = harmonia.ListLimitMax
			if limit > 0 {
				filter.Limit = min(limit, harmonia.ListLimitMax)
			}
			out := []jobJSON{}
		pages:
			for {
				page, err := store.Queue().ListJobs(ctx, filter)
				if err != nil {
					return err
				}
				for _, j := range page.Items {
					if limit > 0 && len(out) == limit {
						break pages
					}
					out = append(out, jobOf(j))
				}
				if !page.More() {
					break
				}
				filter.After = page.Next
			}
			if a.json {
				return a.printJSON(map[string]any{"jobs": out})
			}
			t := a.newTable("ID", "TYPE", "STATUS", "ATTEMPT", "CREATED", "WORKER", "ERROR")
			for _, j := range out {
				t.row(j.ID, j.Type, j.Status, strconv.Itoa(j.Attempt)+"/"+strconv.Itoa(j.MaxAttempts), timeText(j.CreatedAt), j.WorkerID, j.Error)
			}
			return t.flush()
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&statuses, "status", nil, "keep jobs in these statuses: pending, running, success, failed, cancelled")
	fl.StringArrayVar(&types, "type", nil, "keep jobs of these types")
	fl.StringVar(&f.WorkerID, "worker", "", "keep jobs last claimed by this worker")
	fl.StringVar(&f.UniqueKey, "unique-key", "", "keep jobs with this unique key")
	fl.StringVar(&since, "since", "", "keep jobs created at or after this time (RFC 3339)")
	fl.StringVar(&before, "before", "", "keep jobs created before this time (RFC 3339)")
	fl.IntVar(&limit, "limit", harmonia.ListLimitDefault, "list at most this many jobs (0: all)")
	return cmd
}

// timeFlag parses an optional RFC 3339 time flag.
func timeFlag(name, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, invalidArg(name, "%q is not an RFC 3339 time such as 2026-11-27T00:00:00Z", v)
	}
	return &t, nil
}
